"""The report's tables of a study's results.

* Table 1 (:func:`table1`): WER and CER of every ASR model under every input
  condition (from ``asr_results.csv``).
* Table 2 layout (:func:`table2`), one table per metric (EER with each
  verifier, minDCF, STOI, PESQ; from ``metrics.csv``): rows are SNR
  condition x {robust, baseline}, columns the probed layers of both
  architectures (VGG-LSTM cnn1 cnn2 cnn4 blstm1 blstm3 blstm5, then
  pure-LSTM blstm1..blstm5) and the reference columns *original* and *copy
  synthesis*. Only for a study of the paper's models
  (:meth:`~speechbrain_probe.study_info.StudyInfo.is_paper_layout`).
* Any other study (:func:`layer_tables`): per metric, one table per set of
  models that share their layers; rows are the (model, condition) pairs with
  results, columns the references then the layers in the model's order;
  no row or column without a value.
* :func:`exclusions_table`: what the evaluation left out, and why.
"""

from __future__ import annotations

from speechbrain_probe.report.table import (
    METRIC_SPECS,
    Table,
    format_cell,
    metric_scale,
    metric_spec,
    scaled,
    span,
)
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
    layer_sort_key,
    ordered,
)

__all__ = ["table1", "table2", "layer_tables", "layer_columns", "exclusions_table"]


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
    >>> t.row_labels, t.columns[:2], t.cells
    ([['VGG-LSTM', 'baseline', 'v']], [('clean', 'WER'), ('clean', 'CER')], [['29.02', '12.50', '-', '-']])
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
    >>> t.row_labels[-2:], t.columns[0], [line[0] for line in t.cells[-2:]]
    ([['0 dB', 'robust'], ['0 dB', 'baseline']], ('VGG-LSTM', 'cnn1'), ['0.710 [0.690, 0.730]', '-'])
    >>> len(t.row_labels) == 2 * len(PAPER_CONDITIONS), len(t.columns)
    (True, 13)
    """
    spec = metric_spec(metric)
    rows = [r for r in metric_rows if r.metric == metric]
    if models is not None:
        rows = [r for r in rows if r.model in set(models)]
    scale = _scale(metric, rows)
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
            numbers = [scaled(scale, *n) for n in numbers]
            values.append([n[0] for n in numbers])
            cells.append([format_cell(*n, spec.digits) for n in numbers])
    header = [(ARCH_NAMES.get(arch, arch), layer) for arch, layer in columns]
    header += [("reference", REFERENCE_NAMES[ref]) for ref in REFERENCE_LAYERS]
    notes = [_CELLS_NOTE + "."] + _scale_note(scale)
    if hidden:
        notes.append(
            "Also in metrics.csv, not in this layout: " + ", ".join(hidden) + "."
        )
    notes += _n_note(rows)
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
    rows = [r for r in metric_rows if r.metric == metric]
    by_cell, references = _cells_and_references(rows)
    conditions = _study_order(
        [r.condition for r in rows], info.conditions, condition_sort_key
    )
    tables = []
    for layers, group in _layer_groups(info, by_cell).items():
        grid = _LayerGrid(metric, rows, by_cell, references, layers)
        table = grid.table(group, conditions)
        if table is not None:
            tables.append((group[0].name, table))
    if len(tables) == 1:
        return [("", tables[0][1])]
    return [(f"_{name}", table) for name, table in tables]


def _cells_and_references(rows) -> tuple[dict, dict]:
    """(model, layer, condition) -> row of a probed layer, and (condition,
    reference) -> the reference row (one without a model first: run_study's
    references do not depend on the model; older files have them under a
    model)."""
    by_cell, references = {}, {}
    for row in rows:
        if row.layer not in REFERENCE_LAYERS:
            by_cell[(row.model, row.layer, row.condition)] = row
    for row in sorted(rows, key=lambda r: bool(r.model)):
        if row.layer in REFERENCE_LAYERS:
            references.setdefault((row.condition, row.layer), row)
    return by_cell, references


def _layer_groups(info: StudyInfo, by_cell: dict) -> dict:
    """layers -> the models with those layers (the study's, then any only
    the rows have); a model's layers are its own, then those only the rows
    have."""
    models = list(info.models)
    known = {m.name for m in models}
    extra = {}
    for model, layer, _ in by_cell:
        if model not in known:
            extra.setdefault(model, []).append(layer)
    models += [StudyModel(name, tuple(dict.fromkeys(ls))) for name, ls in extra.items()]
    groups = {}
    for model in models:
        found = [layer for name, layer, _ in by_cell if name == model.name]
        layers = tuple(dict.fromkeys([*model.layers, *found]))
        groups.setdefault(layers, []).append(model)
    return groups


class _LayerGrid:
    """The numbers of one :func:`layer_tables` table: a row per (model,
    condition) with a value, columns the references then ``layers``."""

    def __init__(self, metric, rows, by_cell, references, layers):
        self.metric, self.rows, self.layers = metric, rows, layers
        self.by_cell, self.references = by_cell, references
        self.scale = _scale(metric, rows)

    def number(self, row) -> tuple:
        if row is None or row.value is None:
            return (None, None, None)
        return scaled(self.scale, row.value, row.ci_low, row.ci_high)

    def line(self, model, condition) -> list | None:
        """A row's (value, low, high) per column; None without any value."""
        own = [
            self.number(self.by_cell.get((model.name, layer, condition)))
            for layer in self.layers
        ]
        if all(n[0] is None for n in own):
            return None  # not evaluated (or no value) in this condition
        refs = [self.references.get((condition, ref)) for ref in REFERENCE_LAYERS]
        return [self.number(r) for r in refs] + own

    def table(self, group, conditions) -> Table | None:
        keys, grid = [], []
        for model in group:
            for condition in conditions:
                line = self.line(model, condition)
                if line is not None:
                    keys.append((model, condition))
                    grid.append(line)
        if not keys:
            return None
        header = [("reference", REFERENCE_NAMES[ref]) for ref in REFERENCE_LAYERS]
        # a one-model table names the model over its layers, like Table 2's
        # architecture groups
        group_name = group[0].label if len(group) == 1 else "probed layer"
        header += [(group_name, layer) for layer in self.layers]
        keep = [j for j in range(len(header)) if any(r[j][0] is not None for r in grid)]
        shown = [m for m in group if any(k[0] is m for k in keys)]
        spec = metric_spec(self.metric)
        return Table(
            f"{spec.label} of speech reconstructed from each layer: "
            + ", ".join(m.label for m in shown),
            ["ASR model", "input"],
            [[m.label, condition_label(c)] for m, c in keys],
            columns=[header[j] for j in keep],
            cells=[[format_cell(*r[j], spec.digits) for j in keep] for r in grid],
            values=[[r[j][0] for j in keep] for r in grid],
            notes=self.notes(shown),
        )

    def notes(self, shown) -> list[str]:
        notes = [_CELLS_NOTE + ". Rows and columns without any result are left out."]
        sources = [f"{m.label}: {m.source}" for m in shown if m.source]
        if sources:
            notes.append("ASR source: " + "; ".join(sources) + ".")
        names = {m.name for m in shown}
        rows = [r for r in self.rows if r.model in names or r.layer in REFERENCE_LAYERS]
        return notes + _scale_note(self.scale) + _n_note(rows)


_CELLS_NOTE = (
    "Cells: value [95% interval] where the interval is known; - marks a missing "
    "result. Reference columns: the input audio itself and Griffin-Lim copy "
    "synthesis of its true mel (independent of the ASR model)"
)


def _scale(metric: str, rows) -> float:
    """An EER is a fraction, shown in percent (when any value is known)."""
    return metric_scale(metric) if any(r.value is not None for r in rows) else 1.0


def _scale_note(scale: float) -> list[str]:
    return ["metrics.csv holds fractions; shown here x100."] if scale != 1.0 else []


def _n_note(rows) -> list[str]:
    n_values = sorted({r.n for r in rows if r.n is not None})
    return [f"n per cell: {span(n_values)}."] if n_values else []


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
