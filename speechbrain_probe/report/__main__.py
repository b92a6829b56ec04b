"""``python -m speechbrain_probe.report <results_dir>``: build the report.

Writes ``tables/``, ``figures/`` and ``report.html`` into ``results_dir`` and
prints where the page is; exit status 2 with a message on bad input. (pytest
does not collect doctests from ``__main__.py``; tests/test_report_html.py runs
:func:`main`.)
"""

from __future__ import annotations

import argparse
import sys

from speechbrain_probe.report.build import build_report


def main(argv=None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_probe.report",
        description=(
            "Write the paper's tables (CSV, Markdown), figures (PNG) and a "
            "self-contained report.html into an evaluation's results folder."
        ),
    )
    parser.add_argument(
        "results_dir", help="folder with metrics.csv, asr_results.csv, samples.csv"
    )
    parser.add_argument("--title", default="What does each layer hear?")
    parser.add_argument(
        "--note", default="", help='shown on the page and figures, e.g. "tiny CPU run"'
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the path")
    args = parser.parse_args(argv)
    try:
        build_report(
            args.results_dir, title=args.title, note=args.note, verbose=not args.quiet
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
