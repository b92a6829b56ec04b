"""The paper's tables from the evaluation's result files.

* Table 1: WER and CER of every ASR model under every input condition
  (from ``asr_results.csv``).
* Table 2 layout, one table per metric (EER with each verifier, minDCF, STOI,
  PESQ; from ``metrics.csv``): rows are SNR condition x {robust, baseline},
  columns the probed layers of both architectures (VGG-LSTM cnn1 cnn2 cnn4
  blstm1 blstm3 blstm5, then pure-LSTM blstm1..blstm5) and the reference
  columns *original* and *copy synthesis*. Only for a study of the paper's
  models (:meth:`~speechbrain_probe.study_info.StudyInfo.is_paper_layout`).
* Any other study (:func:`layer_tables`): per metric, one table per set of
  models that share their layers; rows are the (model, condition) pairs with
  results, columns the references then the layers in the model's order;
  no row or column without a value.
* Paired robust - baseline differences (:func:`paired_tables`, from the rows
  of ``paired.csv``): per metric, rows are (architecture, layer), columns the
  conditions; and the verdicts on the paper's claims (:func:`claims_table`,
  :func:`claim_cells_table`, from ``claims.csv``), see
  :mod:`speechbrain_probe.evaluation.paired`.

A cell shows the value and, when ``ci_low``/``ci_high`` are present, its 95%
interval, e.g. ``32.87 [30.10, 35.52]``. A cell without a finite value is an
explicit :data:`MISSING` dash, never ``nan``. Every table can be written as
CSV, Markdown and an HTML fragment.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.result_rows import AsrResult, MetricRow
from speechbrain_probe.study_info import StudyInfo, StudyModel
from speechbrain_probe.vocabulary import (
    ARCH_LAYERS,
    ARCH_NAMES,
    CONDITIONS,
    PAPER_CONDITIONS,
    REFERENCE_LAYERS,
    REFERENCE_NAMES,
    TRAININGS,
    condition_label,
    condition_sort_key,
    display_scale,
    layer_sort_key,
    ordered,
)

__all__ = [
    "MISSING",
    "METRIC_SPECS",
    "MetricSpec",
    "Table",
    "format_cell",
    "table1",
    "table2",
    "layer_tables",
    "layer_columns",
    "exclusions_table",
    "paired_tables",
    "claims_table",
    "claim_cells_table",
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


def _spec(metric: str) -> MetricSpec:
    return METRIC_SPECS.get(metric, MetricSpec(metric, 3))


def format_cell(value, ci_low=None, ci_high=None, digits: int = 2) -> str:
    """Format a value with its 95% interval; ``None`` gives :data:`MISSING`.

    Example
    -------
    >>> format_cell(4.4712, 3.9, 5.1)
    '4.47 [3.90, 5.10]'
    >>> format_cell(0.9, digits=3), format_cell(None, 1.0, 2.0)
    ('0.900', '-')
    """
    if value is None:
        return MISSING
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

    def cell(self, row_label, column) -> str:
        """The cell at a row (tuple of labels) and a ``(group, name)`` column.

        Example
        -------
        >>> t = Table("T", ["m"], [["a"]], [("g", "x")], [["1.0"]], [[1.0]])
        >>> t.cell(("a",), ("g", "x"))
        '1.0'
        """
        i = [tuple(r) for r in self.row_labels].index(tuple(row_label))
        j = [tuple(c) for c in self.columns].index(tuple(column))
        return self.cells[i][j]

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


def _model_order(row):
    arch_rank = list(ARCH_LAYERS).index(row.arch) if row.arch in ARCH_LAYERS else 99
    train_rank = {"baseline": 0, "robust": 1}.get(row.training, 2)
    return (arch_rank, row.arch, train_rank, row.training, row.model)


def table1(
    asr_rows: list[AsrResult], conditions=None, info: StudyInfo | None = None
) -> Table:
    """Table 1: WER and CER per ASR model (rows) and input condition (columns).

    Arguments
    ---------
    asr_rows : list of AsrResult
        Rows of ``asr_results.csv`` (WER and CER in percent; see
        :func:`~speechbrain_probe.result_rows.read_asr_results`).
    conditions : sequence of str, optional
        Conditions to show; default: those in the data, clean first.
    info : StudyInfo, optional
        What the study ran. Unless it is the paper's layout, rows are its
        models in its order, labelled by their display name (no
        architecture/training columns).

    Example
    -------
    >>> rows = [AsrResult("v", "vgg_lstm", "baseline", "clean", 29.02, 12.5, 100)]
    >>> t = table1(rows, conditions=["clean", "snr0"])
    >>> t.cell(("VGG-LSTM", "baseline", "v"), ("clean", "WER"))
    '29.02'
    >>> t.cell(("VGG-LSTM", "baseline", "v"), ("0 dB", "CER"))
    '-'
    >>> info = StudyInfo([StudyModel("w", ("cnn",), label="Whisper")], ["clean"])
    >>> t = table1([AsrResult("w", "", "", "snr5", 40.0, 20.0)], info=info)
    >>> t.row_labels, t.columns
    ([['Whisper', 'w']], [('5 dB', 'WER'), ('5 dB', 'CER')])
    """
    generic = info is not None and not info.is_paper_layout()
    if conditions is None:
        if generic:
            conditions = _study_order(
                [r.condition for r in asr_rows], info.conditions, condition_sort_key
            )
        else:
            conditions = ordered([r.condition for r in asr_rows], CONDITIONS)
    by_key = {}
    for row in asr_rows:
        key = (row.model, row.condition)
        if key in by_key and (by_key[key].wer, by_key[key].cer) != (
            row.wer,
            row.cer,
        ):
            raise ValueError(
                f"asr_results.csv has two different rows for model {key[0]!r}, "
                f"condition {key[1]!r}; keep one"
            )
        by_key[key] = row
    models = {}
    if generic:
        rank = {m.name: i for i, m in enumerate(info.models)}
        ordered_rows = sorted(asr_rows, key=lambda r: rank.get(r.model, len(rank)))
    else:
        ordered_rows = sorted(asr_rows, key=_model_order)
    for row in ordered_rows:
        models.setdefault(row.model, row)
    labels_of = {m.name: m.label for m in info.models} if generic else {}
    columns = [
        (condition_label(c), m.upper()) for c in conditions for m in ("wer", "cer")
    ]
    labels, cells, values = [], [], []
    counts = set()
    for model, first in models.items():
        if generic:
            labels.append([labels_of.get(model, model), model])
        else:
            labels.append(
                [ARCH_NAMES.get(first.arch, first.arch), first.training, model]
            )
        row_cells, row_values = [], []
        for cond in conditions:
            row = by_key.get((model, cond))
            if row is not None and row.n is not None:
                counts.add(row.n)
            for metric in ("wer", "cer"):
                value = None if row is None else getattr(row, metric)
                row_values.append(value)
                row_cells.append(format_cell(value, digits=METRIC_SPECS[metric].digits))
        cells.append(row_cells)
        values.append(row_values)
    notes = ["WER and CER in %; - marks a model/condition without a result."]
    if counts:
        notes.append(
            "Utterances per condition: "
            + ", ".join(str(c) for c in sorted(counts))
            + "."
        )
    return Table(
        "Table 1: word and character error rates of the ASR models",
        ["ASR model", "model id"] if generic else ["ASR model", "training", "model id"],
        labels,
        columns,
        cells,
        values,
        notes,
    )


def layer_columns(metric_rows: list[MetricRow], layers: dict | None = None) -> list:
    """``(arch, layer)`` columns of Table 2: the paper's, then unknown archs.

    Architectures not in ``layers`` (default :data:`~speechbrain_probe.vocabulary.ARCH_LAYERS`)
    that appear in the data are appended with all their layers.

    Example
    -------
    >>> cols = layer_columns([])
    >>> [layer for arch, layer in cols if arch == "vgg_lstm"]
    ['cnn1', 'cnn2', 'cnn4', 'blstm1', 'blstm3', 'blstm5']
    >>> len(cols)
    11
    """
    layers = dict(ARCH_LAYERS if layers is None else layers)
    columns = [(arch, layer) for arch, names in layers.items() for layer in names]
    extra = {}
    for row in metric_rows:
        if row.arch and row.arch not in layers and row.layer not in REFERENCE_LAYERS:
            extra.setdefault(row.arch, set()).add(row.layer)
    for arch in sorted(extra):
        columns.extend(
            (arch, layer) for layer in sorted(extra[arch], key=layer_sort_key)
        )
    return columns


def table2(
    metric_rows: list[MetricRow],
    metric: str,
    conditions=PAPER_CONDITIONS,
    trainings=TRAININGS,
    layers: dict | None = None,
    models=None,
) -> Table:
    """Table 2 layout for one metric: SNR x training rows, layer columns.

    Arguments
    ---------
    metric_rows : list of MetricRow
        Rows of ``metrics.csv`` (see
        :func:`~speechbrain_probe.result_rows.read_metrics`).
    metric : str
        e.g. ``eer_ge2e``, ``eer_ecapa`` (stored as fractions, shown in
        percent), ``stoi``, ``pesq``.
    conditions, trainings : sequence of str
        Row blocks shown even when empty (explicit dashes; default the paper's
        four conditions); other values found in the data (e.g. 5 dB) join
        them in :data:`~speechbrain_probe.vocabulary.CONDITIONS` order.
    layers : dict, optional
        arch -> layers to show (default: the paper's probed layers).
    models : sequence of str, optional
        Only these models (needed when two models share an arch and training).

    Example
    -------
    >>> rows = [MetricRow("v", "vgg_lstm", "robust", "cnn1", "snr0", "stoi",
    ...                   0.71, 0.69, 0.73, 20)]
    >>> t = table2(rows, "stoi")
    >>> t.cell(("0 dB", "robust"), ("VGG-LSTM", "cnn1"))
    '0.710 [0.690, 0.730]'
    >>> t.cell(("0 dB", "baseline"), ("VGG-LSTM", "cnn1"))
    '-'
    >>> len(t.row_labels) == 2 * len(PAPER_CONDITIONS), len(t.columns)
    (True, 13)
    """
    spec = _spec(metric)
    rows = [r for r in metric_rows if r.metric == metric]
    if models is not None:
        rows = [r for r in rows if r.model in set(models)]
    # An EER is a fraction, shown in percent (the note says so when it shows).
    scale = display_scale(metric) if spec.percent else 1.0
    if all(r.value is None for r in rows):
        scale = 1.0
    conditions = ordered(
        list(conditions) + [r.condition for r in rows],
        (*CONDITIONS, *conditions),
    )
    trainings = ordered(
        list(trainings) + [r.training for r in rows if r.layer not in REFERENCE_LAYERS],
        trainings,
    )
    # One value per (arch, training, layer, condition); two models there is ambiguous.
    cells_by_key, owner = {}, {}
    for row in rows:
        if row.layer in REFERENCE_LAYERS:
            continue
        key = (row.arch, row.training, row.layer, row.condition)
        numbers = (row.value, row.ci_low, row.ci_high)
        if key in cells_by_key and cells_by_key[key] != numbers:
            other = owner[key]
            what = "models" if other != row.model else "rows of model"
            raise ValueError(
                f"metrics.csv has two {metric} values for {'/'.join(key)} "
                f"({what} {other!r} and {row.model!r}); keep one row, or pass "
                "models=[...] to choose the models of the table"
            )
        cells_by_key[key] = numbers
        owner[key] = row.model
    columns = layer_columns(rows, layers)
    shown = set(columns)
    hidden = sorted(
        {
            f"{key[0]}/{key[2]}"
            for key, numbers in cells_by_key.items()
            if (key[0], key[2]) not in shown and numbers[0] is not None
        }
    )

    def reference(layer, condition, training):
        candidates = [r for r in rows if r.layer == layer and r.condition == condition]
        if not candidates:
            return (None, None, None)
        arch_rank = {a: i for i, a in enumerate(ARCH_LAYERS)}
        candidates.sort(
            key=lambda r: (
                r.training != training,
                r.value is None,
                arch_rank.get(r.arch, 99),
                r.model,
            )
        )
        best = candidates[0]
        return (best.value, best.ci_low, best.ci_high)

    labels, cells, values = [], [], []
    for condition in conditions:
        for training in trainings:
            labels.append([condition_label(condition), training])
            numbers = [
                cells_by_key.get((arch, training, layer, condition), (None, None, None))
                for arch, layer in columns
            ]
            numbers += [reference(ref, condition, training) for ref in REFERENCE_LAYERS]
            row_values, row_cells = [], []
            for value, low, high in numbers:
                value, low, high = (
                    None if x is None else x * scale for x in (value, low, high)
                )
                row_values.append(value)
                row_cells.append(format_cell(value, low, high, spec.digits))
            values.append(row_values)
            cells.append(row_cells)
    header = [(ARCH_NAMES.get(arch, arch), layer) for arch, layer in columns]
    header += [("reference", REFERENCE_NAMES[ref]) for ref in REFERENCE_LAYERS]
    notes = [
        "Cells: value [95% interval] where the interval is known; - marks a missing "
        "result. Reference columns: the input audio itself and Griffin-Lim copy "
        "synthesis of its true mel (independent of the ASR model)."
    ]
    if scale != 1.0:
        notes.append("metrics.csv holds fractions; shown here x100.")
    if hidden:
        notes.append(
            "Also in metrics.csv, not in this layout: " + ", ".join(hidden) + "."
        )
    n_values = sorted({r.n for r in rows if r.n is not None})
    if n_values:
        notes.append(
            f"n per cell: {n_values[0]}"
            + (f" to {n_values[-1]}" if len(n_values) > 1 else "")
            + "."
        )
    return Table(
        f"Table 2 layout: {spec.label} of speech reconstructed from each layer",
        ["SNR", "ASR training"],
        labels,
        columns=header,
        cells=cells,
        values=values,
        notes=notes,
    )


def _study_order(found, preferred, key) -> list:
    """Distinct ``found`` values: those in ``preferred`` first (its order),
    then the others sorted by ``key``."""
    present = set(found)
    first = [v for v in preferred if v in present]
    return first + sorted(present - set(first), key=key)


def layer_tables(
    metric_rows: list[MetricRow], metric: str, info: StudyInfo
) -> list[tuple[str, Table]]:
    """Tables of one metric for any study: references, then each layer.

    Models with the same layers share a table; each other set of layers gets
    its own. Rows are the (model, condition) pairs of the study that have a
    value, in the study's order; columns are *original* and *copy synthesis*
    (the model-independent references of the row's condition), then the
    layers in the model's order (:attr:`StudyModel.layers`; layers found only
    in the rows follow). A row or column without any value is left out.

    Arguments
    ---------
    metric_rows : list of MetricRow
        Rows of ``metrics.csv``.
    metric : str
        e.g. ``eer_ge2e`` (a fraction, shown in percent), ``stoi``.
    info : StudyInfo
        What the study ran (models and their layer order, conditions).

    Returns
    -------
    list of (str, Table)
        A file-name suffix (``""`` for the only table, else ``_<model>`` of
        the table's first model) and the table.

    Example
    -------
    >>> info = StudyInfo([StudyModel("w", ("cnn", "layer1", "layer2"))],
    ...                  ["clean", "snr5", "snr0"])
    >>> rows = [MetricRow("w", "", "", l, c, "stoi", v)
    ...         for c in ("clean", "snr5") for l, v in (("layer1", .7), ("cnn", .9))]
    >>> rows.append(MetricRow("", "", "", "copy_synthesis", "clean", "stoi", .95))
    >>> [(suffix, t.columns, t.row_labels) for suffix, t in layer_tables(rows, "stoi", info)]
    [('', [('reference', 'copy synthesis'), ('w', 'cnn'), ('w', 'layer1')],
      [['w', 'clean'], ['w', '5 dB']])]
    >>> layer_tables(rows, "stoi", info)[0][1].cells
    [['0.950', '0.900', '0.700'], ['-', '0.900', '0.700']]
    """
    spec = _spec(metric)
    rows = [r for r in metric_rows if r.metric == metric]
    scale = display_scale(metric) if spec.percent else 1.0
    if all(r.value is None for r in rows):
        scale = 1.0
    by_cell, references = {}, {}
    for row in rows:
        if row.layer in REFERENCE_LAYERS:
            if not row.model:  # run_study's references do not depend on the model
                references.setdefault((row.condition, row.layer), row)
            continue
        by_cell[(row.model, row.layer, row.condition)] = row
    for row in rows:  # older files: a reference row under a model
        if row.layer in REFERENCE_LAYERS and row.model:
            references.setdefault((row.condition, row.layer), row)

    models = list(info.models)
    known = {m.name for m in models}
    extra = {}
    for model, layer, _ in by_cell:
        if model not in known:
            extra.setdefault(model, []).append(layer)
    models += [StudyModel(name, tuple(dict.fromkeys(ls))) for name, ls in extra.items()]
    conditions = _study_order(
        [r.condition for r in rows], info.conditions, condition_sort_key
    )

    # models that share their layers share a table
    groups = {}
    for model in models:
        layers = list(model.layers)
        layers += [
            layer
            for (name, layer, _) in by_cell
            if name == model.name and layer not in layers
        ]
        layers = list(dict.fromkeys(layers))
        groups.setdefault(tuple(layers), []).append(model)

    def number(row):
        if row is None or row.value is None:
            return (None, None, None)
        return tuple(
            None if x is None else x * scale
            for x in (row.value, row.ci_low, row.ci_high)
        )

    tables = []
    for layers, group in groups.items():
        row_keys, grid = [], []
        for model in group:
            for condition in conditions:
                layer_numbers = [
                    number(by_cell.get((model.name, layer, condition)))
                    for layer in layers
                ]
                if all(n[0] is None for n in layer_numbers):
                    continue  # not evaluated (or no value) in this condition
                ref_numbers = [
                    number(references.get((condition, ref))) for ref in REFERENCE_LAYERS
                ]
                row_keys.append((model, condition))
                grid.append(ref_numbers + layer_numbers)
        if not row_keys:
            continue
        header = [("reference", REFERENCE_NAMES[ref]) for ref in REFERENCE_LAYERS]
        # a one-model table names the model over its layers, like Table 2's
        # architecture groups
        group_name = group[0].label if len(group) == 1 else "probed layer"
        header += [(group_name, layer) for layer in layers]
        keep = [j for j in range(len(header)) if any(r[j][0] is not None for r in grid)]
        cells = [[format_cell(*r[j], spec.digits) for j in keep] for r in grid]
        values = [[r[j][0] for j in keep] for r in grid]
        shown = [m for m in group if any(k[0] is m for k in row_keys)]
        notes = [
            "Cells: value [95% interval] where the interval is known; - marks a "
            "missing result. Reference columns: the input audio itself and "
            "Griffin-Lim copy synthesis of its true mel (independent of the ASR "
            "model). Rows and columns without any result are left out."
        ]
        sources = [f"{m.label}: {m.source}" for m in shown if m.source]
        if sources:
            notes.append("ASR source: " + "; ".join(sources) + ".")
        if scale != 1.0:
            notes.append("metrics.csv holds fractions; shown here x100.")
        n_values = sorted(
            {
                r.n
                for r in rows
                if r.n is not None
                and (r.model in {m.name for m in shown} or r.layer in REFERENCE_LAYERS)
            }
        )
        if n_values:
            notes.append(
                f"n per cell: {n_values[0]}"
                + (f" to {n_values[-1]}" if len(n_values) > 1 else "")
                + "."
            )
        names = ", ".join(m.label for m in shown)
        tables.append(
            (
                group[0].name,
                Table(
                    f"{spec.label} of speech reconstructed from each layer: {names}",
                    ["ASR model", "input"],
                    [[m.label, condition_label(c)] for m, c in row_keys],
                    columns=[header[j] for j in keep],
                    cells=cells,
                    values=values,
                    notes=notes,
                ),
            )
        )
    if len(tables) == 1:
        return [("", tables[0][1])]
    return [(f"_{name}", table) for name, table in tables]


def exclusions_table(rows: list[dict], source: str = "excluded.csv") -> Table:
    """Count the per-utterance exclusions of the evaluation by metric and reason.

    Arguments
    ---------
    rows : list of dict
        Rows of an exclusion record (``utt_id,metric,reason`` and optionally
        ``model``, ``layer``, ``condition``).
    source : str
        File name shown in the title.

    Example
    -------
    >>> rows = [dict(utt_id="u1", metric="stoi", reason="too short"),
    ...         dict(utt_id="u2", metric="stoi", reason="too short"),
    ...         dict(utt_id="u2", metric="pesq", reason="silent <b>")]
    >>> t = exclusions_table(rows)
    >>> t.row_labels, [c[0] for c in t.cells]
    ([['pesq', 'silent <b>'], ['stoi', 'too short']], ['1', '2'])
    """
    counts, utts = {}, {}
    for row in rows:
        key = (row.get("metric", "") or "", row.get("reason", "") or "")
        counts[key] = counts.get(key, 0) + 1
        utts.setdefault(key, set()).add(row.get("utt_id", ""))
    keys = sorted(counts)
    return Table(
        f"Excluded from the metrics ({source}): count by metric and reason",
        ["metric", "reason"],
        [list(k) for k in keys],
        [("", "entries"), ("", "utterances")],
        [[str(counts[k]), str(len(utts[k]))] for k in keys],
        [[float(counts[k]), float(len(utts[k]))] for k in keys],
        [f"Every excluded utterance and why: {source}."],
    )


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
        Rows of ``paired.csv``
        (:func:`speechbrain_probe.evaluation.paired.paired_table`).

    Returns
    -------
    list of (str, Table)
        ``_<metric>`` (a file-name suffix) and the table, metrics in
        :data:`METRIC_SPECS` order.

    Example
    -------
    >>> from speechbrain_probe.evaluation.paired import PairedRow
    >>> rows = [PairedRow("blstm", "blstm1", c, "eer_ge2e", "b", "r", .3, .3 + d,
    ...                   d, d - .01, d + .01, 8, 96)
    ...         for c, d in (("clean", 0.0), ("snr0", -0.05))]
    >>> [(suffix, t.columns, t.cells) for suffix, t in paired_tables(rows)]
    [('_eer_ge2e', [('robust - baseline', 'clean'), ('robust - baseline', '0 dB')],
      [['0.00 [-1.00, 1.00]', '-5.00 [-6.00, -4.00] *']])]
    """
    metrics = _first_seen(r.metric for r in paired_rows)
    metrics = [m for m in METRIC_SPECS if m in metrics] + [
        m for m in metrics if m not in METRIC_SPECS
    ]
    tables = []
    for metric in metrics:
        spec = _spec(metric)
        scale = display_scale(metric) if spec.percent else 1.0
        rows = [r for r in paired_rows if r.metric == metric]
        keys = _first_seen((r.arch, r.layer) for r in rows)
        conditions = _first_seen(r.condition for r in rows)
        by_cell = {(r.arch, r.layer, r.condition): r for r in rows}
        cells, values, marked = [], [], []
        for i, key in enumerate(keys):
            row_cells, row_values = [], []
            for j, condition in enumerate(conditions):
                r = by_cell.get((*key, condition))
                if r is None or r.diff is None:
                    row_cells.append(MISSING)
                    row_values.append(None)
                    continue
                low, high = (
                    None if x is None else x * scale for x in (r.ci_low, r.ci_high)
                )
                text = format_cell(r.diff * scale, low, high, spec.digits)
                if r.excludes_zero:
                    text += " *"
                    marked.append((i, j))
                row_cells.append(text)
                row_values.append(r.diff * scale)
            cells.append(row_cells)
            values.append(row_values)
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
                f"Per cell: {_span(speakers)} speakers, {_span(items)} {what} "
                "scored in both models."
            )
        tables.append(
            (
                f"_{metric}",
                Table(
                    f"Robust - baseline, paired: {spec.label}{unit}",
                    ["architecture", "layer"],
                    [[ARCH_NAMES.get(a, a), layer] for a, layer in keys],
                    [("robust - baseline", condition_label(c)) for c in conditions],
                    cells,
                    values,
                    notes,
                    marked,
                ),
            )
        )
    return tables


def _span(values) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]} to {values[-1]}"


def claims_table(summaries: dict, statements: dict, tests: dict | None = None) -> Table:
    """The paper's claims, each with its one-line verdict.

    Arguments
    ---------
    summaries : dict
        claim id -> summary line
        (:func:`speechbrain_probe.evaluation.paired.claim_summaries`).
    statements : dict
        claim id -> the claim (:data:`speechbrain_probe.evaluation.paired.CLAIMS`).
    tests : dict, optional
        claim id -> how it is tested (``CLAIM_TESTS``), shown as notes.

    Example
    -------
    >>> t = claims_table({"C1": "holds in 2 of 2 cells, reversed in 0, cannot tell in 0"},
    ...                  {"C1": "Speaker EER grows with depth"})
    >>> t.row_labels, t.cells
    ([['C1', 'Speaker EER grows with depth']], [['holds in 2 of 2 cells, reversed in 0, cannot tell in 0']])
    """
    ids = list(statements)
    notes = [f"{i}: {tests[i]}." for i in ids if tests and i in tests]
    notes.append(
        "A cell's verdict: holds (the 95% interval lies on the claimed side of 0), "
        "reversed (it lies on the other side) or cannot tell (it contains 0)."
    )
    return Table(
        "The paper's claims",
        ["claim", "statement"],
        [[i, statements[i]] for i in ids],
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
        Rows of ``claims.csv``
        (:func:`speechbrain_probe.evaluation.paired.paired_claims`).

    Example
    -------
    >>> from speechbrain_probe.evaluation.paired import ClaimRow
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
        spec = _spec(r.metric) if r.metric else MetricSpec("", 3)
        scale = display_scale(r.metric) if r.metric and spec.percent else 1.0
        if r.model_a and r.model_a == r.model_b:
            subject, compared = r.model_a, f"{r.layer_b} - {r.layer_a}"
        elif r.model_a:
            subject = ARCH_NAMES.get(r.arch, r.arch) or f"{r.model_b} vs {r.model_a}"
            compared = f"robust - baseline at {r.layer_b}"
        else:
            subject = compared = ""
        label = condition_label(r.condition) if r.condition else ""
        labels.append([r.claim, subject, spec.label, label, compared])
        if r.diff is None:
            text, value = MISSING, None
        else:
            low, high = (
                None if x is None else x * scale for x in (r.ci_low, r.ci_high)
            )
            text, value = format_cell(r.diff * scale, low, high, spec.digits), r.diff
        verdict = f"{r.verdict}: {r.note}" if r.note else r.verdict
        cells.append([text, verdict])
        values.append([value, None])
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
