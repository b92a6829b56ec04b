"""The report of two studies compared (studies that differ in the vocoder).

:func:`write_comparison_report` reads ``vocoder_comparison.csv`` (what
:func:`~speechbrain_probe.evaluation.compare_studies.compare_studies` found,
:func:`~speechbrain_probe.result_rows.read_comparison`) and writes, next to
it:

``vocoder_comparison.md``
    The comparison as a table (:func:`comparison_table`; EER in %), a
    difference whose interval excludes 0 marked ``*``.
``vocoder_comparison.png``
    EER (first verifier) and STOI against layer, both vocoders, one panel
    per model (:func:`plot_comparison`).
``listen.html``
    Every utterance, condition and layer through both vocoders side by side
    (a table per model, a row per vocoder, copy synthesis in the first
    column), with the table and figure (:func:`write_comparison_page`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from matplotlib.figure import Figure

from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.report.figures import condition_colour, save_figure
from speechbrain_probe.report.html import write_listening_page
from speechbrain_probe.report.table import Table, format_cell, metric_spec, scaled
from speechbrain_probe.result_rows import (
    COMPARISON_CSV,
    PairedRow,
    read_comparison,
    read_metrics,
    read_samples,
)
from speechbrain_probe.study_info import STUDY_INFO, StudyModel, read_study_info
from speechbrain_probe.vocabulary import condition_label, display_scale

__all__ = [
    "comparison_table",
    "plot_comparison",
    "write_comparison_page",
    "write_comparison_report",
]

#: Display names of the vocoders a study records (other labels are shown as given).
_PRETTY = {"griffin_lim": "Griffin-Lim", "hifigan": "HiFi-GAN"}
_COPY = "copy synthesis"  # the column of copy synthesis on the listening page


def _pretty(label: str) -> str:
    return _PRETTY.get(label, label)


def write_comparison_report(study_a, study_b, out, n_boot: int | None = None) -> dict:
    """Write ``vocoder_comparison.{md,png}`` and ``listen.html`` into ``out``
    from its ``vocoder_comparison.csv``; return their paths (``md``,
    ``png``: None without model rows, ``page``).

    Arguments
    ---------
    study_a, study_b : path
        The two study folders compared (their audio, ``study.json`` and
        ``metrics.csv``).
    out : path
        The folder with ``vocoder_comparison.csv``.
    n_boot : int, optional
        The resamples of its intervals, as the table's note states them.
    """
    out = Path(out)
    rows = read_comparison(out / COMPARISON_CSV)
    table = comparison_table(rows, n_boot)
    md = atomic_write_text(out / "vocoder_comparison.md", table.to_markdown())
    png = plot_comparison(rows, out / "vocoder_comparison.png")
    figures = [("EER and STOI vs layer, both vocoders", png)] if png else []
    page = write_comparison_page(
        study_a, study_b, out, rows, figures=figures, tables_html=[table.to_html()]
    )
    return {"md": md, "png": png, "page": page}


def _difference_cells(r: PairedRow) -> tuple[list, list]:
    """A, B and ``B - A [low, high]`` (``*`` where the interval excludes 0)
    of one row, as text and as numbers (an EER in %)."""
    digits, scale = metric_spec(r.metric).digits, display_scale(r.metric)
    diff = format_cell(r.diff, r.ci_low, r.ci_high, digits, scale)
    texts = [format_cell(x, digits=digits, scale=scale) for x in (r.value_a, r.value_b)]
    numbers = scaled(scale, r.value_a, r.value_b, r.diff)
    return texts + [diff + (" *" if r.excludes_zero else "")], list(numbers)


def comparison_table(rows: list[PairedRow], n_boot: int | None = None) -> Table:
    """The comparison as a table: a row per (condition, model, layer), per
    metric A, B and B - A [95% CI]; EER in %; a difference whose interval
    excludes 0 is marked (``*``, and bold in HTML).

    Example
    -------
    >>> row = PairedRow("clean", "cnn1", "eer_ge2e", "m", "m", 0.2, 0.1, -0.1,
    ...                 -0.15, -0.05, 10, 400, label_a="griffin_lim", label_b="hifigan")
    >>> t = comparison_table([row])
    >>> t.cells[0], t.columns[2]
    (['20.00', '10.00', '-10.00 [-15.00, -5.00] *'], ('EER (%), GE2E verifier', 'HiFi-GAN - Griffin-Lim [95% CI]'))
    """
    if not rows:
        return Table("No shared cells", ["condition"], [], [], [], [])
    label_a, label_b = _pretty(rows[0].label_a), _pretty(rows[0].label_b)
    metrics = list(dict.fromkeys(r.metric for r in rows))
    keys = list(
        dict.fromkeys((r.condition, r.model_a, r.model_b, r.layer) for r in rows)
    )
    found = {(r.condition, r.model_a, r.model_b, r.layer, r.metric): r for r in rows}
    columns = []
    for metric in metrics:
        label = metric_spec(metric).label
        columns += [
            (label, label_a),
            (label, label_b),
            (label, f"{label_b} - {label_a} [95% CI]"),
        ]
    row_labels, cells, values, marked = [], [], [], []
    for i, (condition, model_a, model_b, layer) in enumerate(keys):
        model = model_a if model_a == model_b else f"{model_a} / {model_b}"
        row_labels.append([condition_label(condition), model or "reference", layer])
        line, numbers = [], []
        for metric in metrics:
            r = found.get((condition, model_a, model_b, layer, metric))
            texts, nums = _difference_cells(r) if r else (["-"] * 3, [None] * 3)
            if r is not None and r.excludes_zero:
                marked.append((i, len(line) + 2))
            line += texts
            numbers += nums
        cells.append(line)
        values.append(numbers)
    resamples = f"{n_boot} " if n_boot else ""
    notes = [
        f"Paired differences {label_b} - {label_a} on the same utterances and "
        f"trials, 95% intervals from {resamples}speaker-bootstrap resamples; "
        "*: the interval excludes 0. EER in %. 'original' is the same "
        "audio in both studies; 'copy synthesis' is each vocoder on the input's "
        "own mel."
    ]
    return Table(
        f"{label_a} vs {label_b}: every shared cell",
        ["condition", "model", "layer"],
        row_labels,
        columns,
        cells,
        values,
        notes,
        marked,
    )


def _plot_panel(ax, rows, metric, labels, conditions):
    """One model's ``metric`` against layer: a line per condition and study."""
    layers = list(dict.fromkeys(r.layer for r in rows))
    scale = display_scale(metric)
    for k, condition in enumerate(conditions):
        got = {
            r.layer: r for r in rows if (r.condition, r.metric) == (condition, metric)
        }
        x = [n for n, layer in enumerate(layers) if layer in got]
        if not x:
            continue
        for side, style, label in zip(("value_a", "value_b"), ("-o", "--s"), labels):
            ax.plot(
                x,
                [getattr(got[layers[n]], side) * scale for n in x],
                style,
                color=condition_colour(condition, k),
                label=f"{label}, {condition_label(condition)}",
            )
    ax.set_xticks(range(len(layers)), layers, rotation=30)
    ax.set_ylabel("EER (%)" if metric.startswith("eer") else "STOI")
    ax.grid(alpha=0.3)


def plot_comparison(rows: list[PairedRow], path, verifier: str | None = None):
    """EER (of ``verifier``, default the first) and STOI against layer for
    both vocoders, one panel column per model; colour: condition, solid:
    A, dashed: B. Returns the PNG's path (None without model rows)."""
    model_rows = [r for r in rows if r.model_a]
    if not model_rows:
        return None
    eers = [r.metric for r in model_rows if r.metric.startswith("eer_")]
    eer = f"eer_{verifier}" if verifier else (eers[0] if eers else None)
    metrics = [m for m in (eer, "stoi") if m]
    pairs = list(dict.fromkeys((r.model_a, r.model_b) for r in model_rows))
    conditions = list(dict.fromkeys(r.condition for r in model_rows))
    labels = _pretty(rows[0].label_a), _pretty(rows[0].label_b)
    fig = Figure(figsize=(4.2 * len(pairs), 3.0 * len(metrics)))
    axes = fig.subplots(len(metrics), len(pairs), squeeze=False)
    for j, (ma, mb) in enumerate(pairs):
        own = [r for r in model_rows if (r.model_a, r.model_b) == (ma, mb)]
        for i, metric in enumerate(metrics):
            _plot_panel(axes[i][j], own, metric, labels, conditions)
        axes[0][j].set_title(ma if ma == mb else f"{ma} / {mb}")
    handles, legend = axes[0][0].get_legend_handles_labels()
    # A and B of a condition side by side, as many pairs a row as panels fit
    ncol = max(2, min(len(legend), 2 * len(pairs)))
    legend_rows = -(-len(legend) // ncol)
    bottom = min(0.3, 0.035 * legend_rows / len(metrics) * 2 + 0.01)
    if handles:
        fig.legend(
            handles,
            legend,
            loc="lower center",
            ncol=ncol,
            bbox_to_anchor=(0.5, 0.0),
            fontsize="small",
        )
    fig.suptitle(f"{labels[0]} (solid) vs {labels[1]} (dashed)")
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return save_figure(fig, path)


def _side_by_side(model: StudyModel, label: str, caption: str, samples, metrics):
    """One model of one study under its page name (e.g. ``vgg (HiFi-GAN)``):
    its group on the page, its description, and its clips and scores with
    copy synthesis as its first layer."""
    name = f"{model.name} ({_pretty(label)})"
    group = dict(
        group_label=f"{caption}: one row per vocoder",
        row_header="vocoder",
        row_label=_pretty(label),
    )
    clips = [
        replace(s, model=name, layer=_COPY, kind="reconstruction")
        if s.kind == "copy_synthesis"
        else replace(s, model=name)
        for s in samples
        if s.kind == "copy_synthesis"
        or (s.kind == "reconstruction" and s.model == model.name)
    ]
    scores = [
        replace(r, model=name) if r.model else replace(r, model=name, layer=_COPY)
        for r in metrics
        if r.model == model.name or (not r.model and r.layer == "copy_synthesis")
    ]
    return name, group, StudyModel(name, (_COPY, *model.layers)), clips, scores


def write_comparison_page(
    study_a, study_b, out, rows: list[PairedRow], figures=(), tables_html=()
) -> Path:
    """``out/listen.html``: both studies' audio side by side.

    For each model pair of ``rows`` a table with a row per vocoder (model
    names suffixed by the vocoder, e.g. ``vgg_lstm_baseline (HiFi-GAN)``)
    and a column per layer, copy synthesis first; the clean input, noise and
    mixture are study A's (the same audio in both). Scores from each
    study's ``metrics.csv`` sit under the clips. Audio is linked relative to
    the page.
    """
    a, b, out = Path(study_a), Path(study_b), Path(out)
    info_a, info_b = (read_study_info(p / STUDY_INFO) for p in (a, b))
    label_a = rows[0].label_a if rows else info_a.vocoder or a.name
    label_b = rows[0].label_b if rows else info_b.vocoder or b.name
    if _pretty(label_a) == _pretty(label_b):
        raise ValueError(
            f"both studies are labelled {_pretty(label_a)!r}; give them different "
            "labels (--label-a, --label-b)"
        )
    samples = [read_samples(p / "samples.csv") for p in (a, b)]
    metrics = [
        read_metrics(p / "metrics.csv") if (p / "metrics.csv").is_file() else []
        for p in (a, b)
    ]
    sample_rows = [s for s in samples[0] if s.kind in ("original", "noise", "mixture")]
    metric_rows = [r for r in metrics[0] if not r.model and r.layer == "original"]
    groups, described = {}, {}
    for name_a, name_b in dict.fromkeys(
        (r.model_a, r.model_b) for r in rows if r.model_a
    ):
        ma, mb = info_a.model(name_a), info_b.model(name_b)
        caption = ma.label if ma.name == mb.name else f"{ma.label} / {mb.label}"
        for side, model, label in ((0, ma, label_a), (1, mb, label_b)):
            name, group, description, clips, scores = _side_by_side(
                model, label, caption, samples[side], metrics[side]
            )
            groups[name] = dict(group=ma.name, **group)
            described[name] = description
            sample_rows += clips
            metric_rows += scores
    title = f"{_pretty(label_a)} vs {_pretty(label_b)}: what does each layer hear?"
    notes = [
        f"A: {a.resolve()} ({_pretty(label_a)}); B: {b.resolve()} ({_pretty(label_b)}). "
        "Each model's table has a row per vocoder; its first column is copy "
        "synthesis (the vocoder on the input's own mel), the input and noise "
        "are the same in both studies."
    ]
    page, _ = write_listening_page(
        out / "listen.html",
        sample_rows,
        tables_html=tables_html,
        figures=figures,
        model_info=described,
        title=title,
        notes=notes,
        metric_rows=metric_rows,
        conditions=info_a.conditions,
        groups=groups,
    )
    return page
