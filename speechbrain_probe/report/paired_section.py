"""The report's section on paired robust - baseline statistics and the
paper's claims.

:func:`paired_section` computes them from the study folder's per-item cell
values (:func:`speechbrain_probe.evaluation.paired.write_paired_results`
writes ``paired.csv`` and ``claims.csv``), writes their tables
(``tables/claims*.{csv,md}``, ``tables/paired_<metric>.{csv,md}``) and the
figure ``figures/paired_eer_robust_minus_baseline.png``, and returns what the
page shows. A folder without per-item values (an older study, or results
without ``cells/``) gets a one-line note instead.
"""

from __future__ import annotations

from pathlib import Path

from speechbrain_probe.report.figures import plot_paired_eer
from speechbrain_probe.report.tables import (
    claim_cells_table,
    claims_table,
    paired_tables,
)
from speechbrain_probe.study_info import STUDY_INFO

__all__ = ["paired_section", "PAIRED_FIGURE"]

#: File name of the paired EER figure in ``figures/``.
PAIRED_FIGURE = "paired_eer_robust_minus_baseline.png"
_HEADING = "Robust - baseline, paired, and the paper's claims"


def _note(text: str) -> str:
    from html import escape

    return f'<p class="note">{escape(text)}</p>'


def paired_section(
    results_dir,
    table_dir,
    figure_dir,
    note: str = "",
    n_boot: int = 2000,
    seed: int = 0,
):
    """Sections and figures of the paired comparison for the report.

    Arguments
    ---------
    results_dir : path
        The study folder.
    table_dir, figure_dir : path
        Where the tables (CSV, Markdown) and the figure go.
    note : str
        Added to the figure's title.
    n_boot, seed : int
        The paired bootstrap's resamples and seed.

    Returns
    -------
    sections : list of (str, list of str)
        Headings and HTML fragments for
        :func:`~speechbrain_probe.report.html.write_listening_page`.
    figures : list of (str, Path)
        Caption and PNG of the paired EER figure (none without EER rows).

    Example
    -------
    >>> sections, figures = paired_section(getfixture("tmp_path"), "t", "f")
    >>> [heading for heading, _ in sections], figures
    (["Robust - baseline, paired, and the paper's claims"], [])
    >>> "per-item values" in sections[0][1][0]
    True
    """
    results_dir = Path(results_dir)
    needed = [STUDY_INFO, "trials.csv", "cells"]
    lacking = [name for name in needed if not (results_dir / name).exists()]
    if lacking:
        return [
            (
                _HEADING,
                [
                    _note(
                        "Not available: paired statistics need the per-item values "
                        "of the evaluation's cells (this folder lacks "
                        f"{', '.join(lacking)})."
                    )
                ],
            )
        ], []
    # the evaluation package loads torch: only when there is something to compute
    from speechbrain_probe.evaluation import paired

    try:
        paired_rows, claim_rows = paired.write_paired_results(
            results_dir, n_boot=n_boot, seed=seed
        )
    except paired.NoPerItemValues:
        return [
            (
                _HEADING,
                [
                    _note(
                        "Not available: no cell keeps per-item values (scored by an "
                        "older version); run the evaluation again to rescore them."
                    )
                ],
            )
        ], []
    tables = [
        (
            "claims",
            claims_table(
                paired.claim_summaries(claim_rows), paired.CLAIMS, paired.CLAIM_TESTS
            ),
        ),
        ("claims_cells", claim_cells_table(claim_rows)),
    ]
    tables += [(f"paired{suffix}", t) for suffix, t in paired_tables(paired_rows)]
    for stem, table in tables:
        table.write(table_dir, stem)
    fragments = [table.to_html() for _, table in tables]
    if not paired_rows:
        fragments.append(
            _note(
                "No paired robust - baseline table: no architecture has both a "
                "robust and a baseline model with per-item values."
            )
        )
    fragments.append(
        _note(
            f"All numbers: {paired.PAIRED_CSV} and {paired.CLAIMS_CSV} in the "
            f"study folder ({n_boot} bootstrap resamples of the speakers, seed {seed})."
        )
    )
    figures = []
    if any(r.metric.startswith("eer") for r in paired_rows):
        out = plot_paired_eer(paired_rows, Path(figure_dir) / PAIRED_FIGURE, note)
        figures.append(
            ("Paired EER difference, robust - baseline, vs layer (95% interval)", out)
        )
    return [(_HEADING, fragments)], figures
