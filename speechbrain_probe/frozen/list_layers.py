"""Command line: list the probe-able layers of a frozen ASR model.

::

    python -m speechbrain_probe.frozen.list_layers <model dir or hub id> [--all] [--savedir DIR]

Prints one row per layer with its output dim and time downsampling, measured
on two dummy inputs (see :func:`speechbrain_probe.hooks.measure_layers`).
Rows marked ``*`` are the model's default layers
(:meth:`~speechbrain_probe.frozen.interface.FrozenASR.default_layers`, what a
recipe probes when given no layers); they are also listed on the last line.
Lives above :mod:`speechbrain_probe.frozen.load` (which loads the model) and
:mod:`speechbrain_probe.hooks` (which measures and formats), so neither of
those imports the other back.
"""

from __future__ import annotations

import argparse
import sys

from speechbrain_probe.frozen.load import load_asr
from speechbrain_probe.hooks import format_layer_table

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Command line: ``SOURCE [--all] [--savedir DIR]``; 0 on success, 2 on a bad source."""
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_probe.frozen.list_layers",
        description="Print each probe-able layer of a frozen ASR model with its "
        "output dim and time downsampling.",
    )
    parser.add_argument(
        "source", help="exported model directory, HF model dir or hub id"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every submodule with a time axis, not only the declared probe layers",
    )
    parser.add_argument("--savedir", default=None, help="where a hub model is cached")
    args = parser.parse_args(argv)

    try:
        asr = load_asr(args.source, savedir=args.savedir)
        reports = asr.measure(all_modules=args.all)
        defaults = asr.default_layers()
    except (FileNotFoundError, NotADirectoryError, KeyError, ValueError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    marked = [asr.layers[name] for name in defaults] + list(defaults)
    print(f"# {asr.describe()}")
    print(format_layer_table(reports, marked=marked))
    print(f"# default layers (*): {' '.join(defaults)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
