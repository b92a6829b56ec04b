"""The report's section on paired robust - baseline statistics and the
paper's claims.

The evaluation writes ``paired.csv`` and ``claims.csv`` into the study folder
(:mod:`speechbrain_probe.result_rows`); :func:`paired_section` reads them,
writes their tables (``tables/claims*.{csv,md}``,
``tables/paired_<metric>.{csv,md}``) and the figure
``figures/paired_eer_robust_minus_baseline.png``, and returns what the page
shows. A folder without them gets a one-line note saying how to make them.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from speechbrain_probe.report.figures import plot_paired_eer
from speechbrain_probe.report.table import (
    METRIC_SPECS,
    MISSING,
    Table,
    format_cell,
    metric_scale,
    metric_spec,
    span,
)
from speechbrain_probe.result_rows import (
    CLAIM_TESTS,
    CLAIMS,
    CLAIMS_CSV,
    NOT_APPLICABLE,
    PAIRED_CSV,
    PAIRED_N_BOOT,
    VERDICTS,
    read_claims,
    read_paired,
)
from speechbrain_probe.vocabulary import ARCH_NAMES, condition_label

__all__ = [
    "paired_section",
    "paired_tables",
    "claim_summaries",
    "claims_table",
    "claim_cells_table",
    "PAIRED_FIGURE",
]

#: File name of the paired EER figure in ``figures/``.
PAIRED_FIGURE = "paired_eer_robust_minus_baseline.png"
_HEADING = "Robust - baseline, paired, and the paper's claims"


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def paired_section(
    results_dir,
    table_dir,
    figure_dir,
    note: str = "",
):
    """Sections and figures of the paired comparison for the report.

    Arguments
    ---------
    results_dir : path
        The study folder (``paired.csv``, ``claims.csv``).
    table_dir, figure_dir : path
        Where the tables (CSV, Markdown) and the figure go.
    note : str
        Added to the figure's title.

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
    >>> "run the evaluation again" in sections[0][1][0]
    True
    """
    results_dir = Path(results_dir)
    lacking = [n for n in (PAIRED_CSV, CLAIMS_CSV) if not (results_dir / n).is_file()]
    if lacking:
        text = (
            f"Not available: the study folder has no {' or '.join(lacking)}; run "
            "the evaluation again to write them (from the per-item values of its "
            "cells, which studies scored by an older version lack)."
        )
        return [(_HEADING, [_note(text)])], []
    paired_rows = read_paired(results_dir / PAIRED_CSV)
    claim_rows = read_claims(results_dir / CLAIMS_CSV)
    tables = [
        ("claims", claims_table(claim_rows)),
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
            f"All numbers: {PAIRED_CSV} and {CLAIMS_CSV} in the study folder "
            f"({PAIRED_N_BOOT} bootstrap resamples of the speakers, seeded with the "
            "study's seed)."
        )
    )
    figures = []
    if any(r.metric.startswith("eer") for r in paired_rows):
        out = plot_paired_eer(paired_rows, Path(figure_dir) / PAIRED_FIGURE, note)
        figures.append(
            ("Paired EER difference, robust - baseline, vs layer (95% interval)", out)
        )
    return [(_HEADING, fragments)], figures


def _first_seen(values) -> list:
    return list(dict.fromkeys(values))


def paired_tables(paired_rows) -> list[tuple[str, Table]]:
    """Paired robust - baseline differences, one table per metric.

    Rows are (architecture, layer) in the order of ``paired_rows``, columns
    the conditions; a cell is ``diff [low, high]`` (an EER difference in
    percentage points), marked with ``*`` (and the ``marked`` class in HTML)
    where the 95% interval excludes 0.

    Arguments
    ---------
    paired_rows : list of PairedRow
        Rows of ``paired.csv`` (A: baseline, B: robust).

    Returns
    -------
    list of (str, Table)
        ``_<metric>`` (a file-name suffix) and the table, metrics in
        :data:`METRIC_SPECS` order.

    Example
    -------
    >>> from speechbrain_probe.result_rows import PairedRow
    >>> rows = [PairedRow(c, "blstm1", "eer_ge2e", "b", "r", .3, .3 + d, d,
    ...                   d - .01, d + .01, 8, 96, arch="blstm")
    ...         for c, d in (("clean", 0.0), ("snr0", -0.05))]
    >>> [(suffix, t.columns, t.cells) for suffix, t in paired_tables(rows)]
    [('_eer_ge2e', [('robust - baseline', 'clean'), ('robust - baseline', '0 dB')],
      [['0.00 [-1.00, 1.00]', '-5.00 [-6.00, -4.00] *']])]
    """
    metrics = _first_seen(r.metric for r in paired_rows)
    metrics = [m for m in METRIC_SPECS if m in metrics] + [
        m for m in metrics if m not in METRIC_SPECS
    ]
    return [
        (f"_{metric}", _paired_table([r for r in paired_rows if r.metric == metric]))
        for metric in metrics
    ]


def _paired_table(rows) -> Table:
    """:func:`paired_tables`' table of one metric's rows."""
    metric = rows[0].metric
    spec, scale = metric_spec(metric), metric_scale(metric)
    keys = _first_seen((r.arch, r.layer) for r in rows)
    conditions = _first_seen(r.condition for r in rows)
    by_cell = {(r.arch, r.layer, r.condition): r for r in rows}
    cells, values, marked = [], [], []
    for i, key in enumerate(keys):
        line = [by_cell.get((*key, condition)) for condition in conditions]
        cells.append([_difference(r, spec.digits, scale) for r in line])
        values.append(
            [r.diff * scale if r and r.diff is not None else None for r in line]
        )
        marked += [(i, j) for j, text in enumerate(cells[-1]) if text.endswith(" *")]
    unit = " (percentage points)" if scale != 1.0 else ""
    speakers = sorted({r.n_speakers for r in rows if r.n_speakers is not None})
    items = sorted({r.n_items for r in rows if r.n_items is not None})
    what = "trials" if metric.startswith(("eer", "mindcf")) else "utterances"
    notes = [
        "Cells: robust - baseline [95% interval] of the two models on the same "
        f"{what}; the interval is a paired bootstrap that resamples speakers. "
        "* marks an interval that excludes 0."
    ]
    if speakers and items:
        notes.append(
            f"Per cell: {span(speakers)} speakers, {span(items)} {what} "
            "scored in both models."
        )
    return Table(
        f"Robust - baseline, paired: {spec.label}{unit}",
        ["architecture", "layer"],
        [[ARCH_NAMES.get(a, a), layer] for a, layer in keys],
        [("robust - baseline", condition_label(c)) for c in conditions],
        cells,
        values,
        notes,
        marked,
    )


def _difference(row, digits: int, scale: float) -> str:
    """``diff [low, high]`` of a row (:data:`MISSING` without one), ``*``
    where the interval excludes 0."""
    if row is None or row.diff is None:
        return MISSING
    text = format_cell(row.diff, row.ci_low, row.ci_high, digits, scale)
    return text + " *" if row.excludes_zero else text


def claim_summaries(rows) -> dict:
    """One line per claim of :data:`~speechbrain_probe.result_rows.CLAIMS`,
    from its rows of ``claims.csv``.

    Example
    -------
    >>> from speechbrain_probe.result_rows import ClaimRow
    >>> rows = [ClaimRow("C1", "holds"), ClaimRow("C1", "cannot tell"),
    ...         ClaimRow("C2", "not applicable", note="no pair")]
    >>> claim_summaries(rows)["C1"]
    'holds in 1 of 2 cells, reversed in 0, cannot tell in 1'
    >>> claim_summaries(rows)["C2"], claim_summaries(rows)["C3"]
    ('not applicable: no pair', 'not tested')
    """
    out = {}
    for claim in CLAIMS:
        own = [r for r in rows if r.claim == claim]
        judged = [r for r in own if r.verdict in VERDICTS]
        if judged:
            count = {v: sum(r.verdict == v for r in judged) for v in VERDICTS}
            out[claim] = (
                f"holds in {count['holds']} of {len(judged)} cells, reversed in "
                f"{count['reversed']}, cannot tell in {count['cannot tell']}"
            )
        elif own:
            notes = sorted({r.note for r in own if r.note})
            out[claim] = NOT_APPLICABLE + (f": {'; '.join(notes)}" if notes else "")
        else:
            out[claim] = "not tested"
    return out


def claims_table(claim_rows) -> Table:
    """The paper's claims (:data:`~speechbrain_probe.result_rows.CLAIMS`),
    each with its one-line verdict (:func:`claim_summaries`) and how it is
    tested (notes).

    Example
    -------
    >>> from speechbrain_probe.result_rows import ClaimRow
    >>> t = claims_table([ClaimRow("C1", "holds"), ClaimRow("C1", "holds")])
    >>> t.row_labels[0], t.cells[0]
    (['C1', 'Speaker EER grows with depth'], ['holds in 2 of 2 cells, reversed in 0, cannot tell in 0'])
    """
    summaries, ids = claim_summaries(claim_rows), list(CLAIMS)
    notes = [f"{i}: {CLAIM_TESTS[i]}." for i in ids]
    notes.append(
        "A cell's verdict: holds (the 95% interval lies on the claimed side of 0), "
        "reversed (it lies on the other side) or cannot tell (it contains 0)."
    )
    return Table(
        "The paper's claims",
        ["claim", "statement"],
        [[i, CLAIMS[i]] for i in ids],
        [("", "verdict")],
        [[summaries.get(i, MISSING)] for i in ids],
        [[None] for _ in ids],
        notes,
    )


def claim_cells_table(claim_rows) -> Table:
    """Every cell a claim was tested on: the difference with its interval and
    the verdict (``holds`` and ``reversed`` marked).

    Arguments
    ---------
    claim_rows : list of ClaimRow
        Rows of ``claims.csv``.

    Example
    -------
    >>> from speechbrain_probe.result_rows import ClaimRow
    >>> rows = [ClaimRow("C1", "holds", "", "m", "l1", "m", "l4", "eer_ge2e",
    ...                  "clean", 0.3, 0.2, 0.4, 8, 96),
    ...         ClaimRow("C2", "not applicable", note="no pair")]
    >>> t = claim_cells_table(rows)
    >>> t.row_labels[0], t.cells
    (['C1', 'm', 'EER (%), GE2E verifier', 'clean', 'l4 - l1'], [['30.00 [20.00, 40.00]', 'holds'], ['-', 'not applicable: no pair']])
    >>> t.marked
    [(0, 1)]
    """
    labels, cells, values, marked = [], [], [], []
    for i, r in enumerate(claim_rows):
        spec = metric_spec(r.metric)
        if r.model_a and r.model_a == r.model_b:
            subject, compared = r.model_a, f"{r.layer_b} - {r.layer_a}"
        elif r.model_a:
            subject = ARCH_NAMES.get(r.arch, r.arch) or f"{r.model_b} vs {r.model_a}"
            compared = f"robust - baseline at {r.layer_b}"
        else:
            subject = compared = ""
        label = condition_label(r.condition) if r.condition else ""
        labels.append([r.claim, subject, spec.label, label, compared])
        scale = metric_scale(r.metric)
        text = format_cell(r.diff, r.ci_low, r.ci_high, spec.digits, scale)
        verdict = f"{r.verdict}: {r.note}" if r.note else r.verdict
        cells.append([text, verdict])
        values.append([r.diff, None])
        if r.verdict in ("holds", "reversed"):
            marked.append((i, 1))
    return Table(
        "The paper's claims, cell by cell",
        ["claim", "model", "metric", "input", "difference"],
        labels,
        [("", "difference [95% interval]"), ("", "verdict")],
        cells,
        values,
        [
            "Differences of the same trials or utterances in both cells, with a "
            "paired bootstrap interval that resamples speakers; an EER difference "
            "in percentage points."
        ],
        marked,
    )
