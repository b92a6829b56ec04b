"""A formatted results table, and how a metric's numbers are printed in it.

:class:`Table` holds labelled rows, grouped columns and string cells, and
writes itself as CSV, Markdown and an HTML fragment. A cell shows the value
and, when known, its 95% interval, e.g. ``32.87 [30.10, 35.52]``
(:func:`format_cell`); a cell without a finite value is an explicit
:data:`MISSING` dash, never ``nan``. :data:`METRIC_SPECS` names each metric
and sets its decimals and unit.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.vocabulary import display_scale

__all__ = [
    "MISSING",
    "METRIC_SPECS",
    "MetricSpec",
    "metric_spec",
    "metric_scale",
    "scaled",
    "span",
    "format_cell",
    "Table",
]

#: What a cell without a value shows.
MISSING = "-"


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is named and printed.

    Arguments
    ---------
    label : str
        Human name used in titles and axis labels.
    digits : int
        Decimals printed.
    percent : bool
        Shown in percent (an EER is stored as a fraction and shown x100, see
        :func:`~speechbrain_probe.vocabulary.display_scale`; WER and CER are
        stored in percent).
    """

    label: str
    digits: int
    percent: bool = False


#: Known metrics of ``metrics.csv`` and ``asr_results.csv``, in table order.
METRIC_SPECS = {
    "eer_ge2e": MetricSpec("EER (%), GE2E verifier", 2, True),
    "eer_ecapa": MetricSpec("EER (%), ECAPA-TDNN verifier", 2, True),
    "mindcf_ge2e": MetricSpec("minDCF, GE2E verifier", 3),
    "mindcf_ecapa": MetricSpec("minDCF, ECAPA-TDNN verifier", 3),
    "stoi": MetricSpec("STOI", 3),
    "pesq": MetricSpec("PESQ (wide band)", 2),
    "wer": MetricSpec("WER (%)", 2, True),
    "cer": MetricSpec("CER (%)", 2, True),
}


def metric_spec(metric: str) -> MetricSpec:
    """How ``metric`` is printed (:data:`METRIC_SPECS`; an unknown one by
    its name, three decimals)."""
    return METRIC_SPECS.get(metric, MetricSpec(metric, 3))


def metric_scale(metric: str) -> float:
    """Factor from the stored value of ``metric`` to the one shown: 100 for
    an EER in percent (:func:`~speechbrain_probe.vocabulary.display_scale`).

    Example
    -------
    >>> metric_scale("eer_ge2e"), metric_scale("stoi"), metric_scale("eer_new")
    (100.0, 1.0, 1.0)
    """
    return display_scale(metric) if metric_spec(metric).percent else 1.0


def scaled(scale: float, *numbers) -> tuple:
    """``numbers`` times ``scale``, None left None."""
    return tuple(None if x is None else x * scale for x in numbers)


def span(values) -> str:
    """``a`` or ``a to b``: the first and last of sorted ``values``."""
    return str(values[0]) if len(values) == 1 else f"{values[0]} to {values[-1]}"


def format_cell(value, ci_low=None, ci_high=None, digits: int = 2, scale=1.0) -> str:
    """Format a value with its 95% interval, all times ``scale``; ``None``
    gives :data:`MISSING`.

    Example
    -------
    >>> format_cell(4.4712, 3.9, 5.1), format_cell(0.25, 0.2, None, scale=100.0)
    ('4.47 [3.90, 5.10]', '25.00')
    >>> format_cell(0.9, digits=3), format_cell(None, 1.0, 2.0)
    ('0.900', '-')
    """
    if value is None:
        return MISSING
    value, ci_low, ci_high = scaled(scale, value, ci_low, ci_high)
    text = f"{value:.{digits}f}"
    if ci_low is not None and ci_high is not None:
        text += f" [{ci_low:.{digits}f}, {ci_high:.{digits}f}]"
    return text


@dataclass
class Table:
    """A formatted table: labelled rows, grouped columns, string cells.

    Arguments
    ---------
    title : str
        Caption.
    row_header : list of str
        Names of the label columns (e.g. ``["SNR", "ASR training"]``).
    row_labels : list of list of str
        One label per label column, per row.
    columns : list of (str, str)
        ``(group, name)`` of each value column, e.g. ``("VGG-LSTM", "cnn1")``.
    cells : list of list of str
        Formatted cells, :data:`MISSING` where there is no value.
    values : list of list of float or None
        The numbers behind the cells (after unit scaling).
    notes : list of str
        Sentences printed under the table.
    marked : list of (int, int)
        ``(row, column)`` of value cells to stand out (class ``marked`` in
        HTML), e.g. a difference whose interval excludes 0.

    Example
    -------
    >>> t = Table("T", ["model"], [["a"]], [("clean", "WER")], [["1.00"]], [[1.0]])
    >>> print(t.to_markdown())
    **T**
    <BLANKLINE>
    | model | clean WER |
    |---|---|
    | a | 1.00 |
    <BLANKLINE>
    """

    title: str
    row_header: list
    row_labels: list
    columns: list
    cells: list
    values: list
    notes: list = field(default_factory=list)
    marked: list = field(default_factory=list)

    def column_names(self) -> list[str]:
        """Flat header: label columns, then ``"group name"`` per value column."""
        flat = [f"{group} {name}".strip() for group, name in self.columns]
        return list(self.row_header) + flat

    def to_csv(self) -> str:
        """The table as CSV text (formatted cells, flat header)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.column_names())
        for labels, cells in zip(self.row_labels, self.cells):
            writer.writerow(list(labels) + list(cells))
        return buffer.getvalue()

    def to_markdown(self) -> str:
        """The table as GitHub Markdown, with its title and notes."""

        def clean(text):
            return str(text).replace("|", "\\|").replace("\n", " ")

        lines = [f"**{clean(self.title)}**", ""]
        header = self.column_names()
        lines.append("| " + " | ".join(clean(h) for h in header) + " |")
        lines.append("|" + "---|" * len(header))
        for labels, cells in zip(self.row_labels, self.cells):
            row = list(labels) + list(cells)
            lines.append("| " + " | ".join(clean(c) for c in row) + " |")
        lines.append("")
        for note in self.notes:
            lines.append(f"{clean(note)}")
            lines.append("")
        return "\n".join(lines)

    def to_html(self) -> str:
        """The table as an escaped HTML fragment with a two-level header."""
        out = [f'<table class="results"><caption>{escape(self.title)}</caption>']
        out.append("<thead><tr>")
        for name in self.row_header:
            out.append(f'<th rowspan="2">{escape(name)}</th>')
        groups = []
        for group, _ in self.columns:
            if groups and groups[-1][0] == group:
                groups[-1][1] += 1
            else:
                groups.append([group, 1])
        for group, span in groups:
            out.append(f'<th colspan="{span}">{escape(group)}</th>')
        out.append("</tr><tr>")
        for _, name in self.columns:
            out.append(f"<th>{escape(name)}</th>")
        out.append("</tr></thead><tbody>")
        marked = {tuple(m) for m in self.marked}
        for i, (labels, cells) in enumerate(zip(self.row_labels, self.cells)):
            out.append("<tr>")
            out.extend(f"<th>{escape(str(label))}</th>" for label in labels)
            for j, text in enumerate(cells):
                cls = ' class="missing"' if text == MISSING else ""
                if (i, j) in marked:
                    cls = ' class="marked"'
                out.append(f"<td{cls}>{escape(text)}</td>")
            out.append("</tr>")
        out.append("</tbody></table>")
        out.extend(f'<p class="note">{escape(note)}</p>' for note in self.notes)
        return "".join(out)

    def write(self, out_dir: str | os.PathLike, stem: str) -> dict:
        """Write ``<stem>.csv`` and ``<stem>.md`` (atomically); return their paths.

        Example
        -------
        >>> tmp = getfixture("tmp_path")
        >>> t = Table("T", ["m"], [["a"]], [("g", "x")], [["-"]], [[None]])
        >>> paths = t.write(tmp, "t")
        >>> paths["csv"].read_text()
        'm,g x\\na,-\\n'
        """
        out_dir = Path(out_dir)
        return {
            "csv": atomic_write_text(out_dir / f"{stem}.csv", self.to_csv()),
            "md": atomic_write_text(out_dir / f"{stem}.md", self.to_markdown()),
        }
