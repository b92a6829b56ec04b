"""The command that compares two studies differing only in the vocoder.

It runs the comparison
(:func:`~speechbrain_probe.evaluation.compare_studies.compare_studies`),
writes ``vocoder_comparison.csv`` into ``--out``, and builds its report from
that file (:func:`~speechbrain_probe.report.comparison.write_comparison_report`:
``vocoder_comparison.{md,png}`` and ``listen.html``)::

    python -m speechbrain_probe.compare STUDY_A STUDY_B \\
        --out DIR --label-a griffin_lim --label-b hifigan
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speechbrain_probe.evaluation.compare_studies import compare_studies
from speechbrain_probe.report.comparison import write_comparison_report
from speechbrain_probe.result_rows import COMPARISON_CSV, PairedRow, write_comparison

__all__ = ["main"]


def _mapping(text: list[str] | None) -> dict | None:
    if not text:
        return None
    out = {}
    for item in text:
        name_a, sep, name_b = item.partition("=")
        if not sep or not name_a or not name_b:
            raise SystemExit(f"--model takes NAME_IN_A=NAME_IN_B, got {item!r}")
        out[name_a] = name_b
    return out


def main(argv=None) -> list[PairedRow]:
    """The command line (see the module's docstring); prints the table."""
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_probe.compare",
        description="Compare two studies that differ in the vocoder; write "
        "vocoder_comparison.{csv,md,png} and listen.html into --out.",
    )
    parser.add_argument("study_a")
    parser.add_argument("study_b")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--label-a", help="name of study A (default: its vocoder)")
    parser.add_argument("--label-b", help="name of study B (default: its vocoder)")
    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME_IN_A=NAME_IN_B",
        help="pair two models (repeatable; default: by architecture and "
        "training, else by name)",
    )
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = compare_studies(
        args.study_a,
        args.study_b,
        n_boot=args.n_boot,
        seed=args.seed,
        models=_mapping(args.model),
        label_a=args.label_a,
        label_b=args.label_b,
    )
    csv = write_comparison(Path(args.out) / COMPARISON_CSV, rows)
    paths = write_comparison_report(args.study_a, args.study_b, args.out, args.n_boot)
    print(paths["md"].read_text(encoding="utf-8"))
    print(f"wrote {csv}, {paths['md']}, {paths['png']}, {paths['page']}")
    return rows


if __name__ == "__main__":
    main()
