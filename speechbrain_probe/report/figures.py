"""The paper's figures as PNG files (matplotlib, Agg canvas, no pyplot state).

* :func:`plot_metric_vs_layer`: a metric (EER with a verifier) against layer
  depth, one panel per ASR model (architecture x training), one line per
  input condition (the paper's models).
* :func:`plot_layer_curves`: the same for any study: one panel per model
  with the x axis in the model's own layer order (:class:`StudyInfo`), one
  line per condition the model was evaluated in.
* :func:`plot_robust_vs_baseline`: the paper's Figure 4: a metric (STOI)
  against layer, robust vs baseline, one panel per architecture and condition.
* :func:`plot_paired_eer`: the paired EER difference robust - baseline
  against layer with its 95% interval band, a line per condition, a panel per
  architecture and verifier (from ``paired.csv``).
* :func:`plot_mel_grid`: the paper's Figure 3: mel spectrograms that the probes
  of each layer reconstruct from one noisy utterance, baseline vs robust. It
  takes the mel arrays (numpy ``[T, n_mels]``) so a pipeline can pass its own.

Every function writes the PNG atomically and returns its path.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from speechbrain_probe.atomic import atomic_write_bytes
from speechbrain_probe.report.table import metric_scale, metric_spec
from speechbrain_probe.result_rows import MetricRow
from speechbrain_probe.study_info import StudyInfo, StudyModel
from speechbrain_probe.vocabulary import (
    ARCH_LAYERS,
    ARCH_NAMES,
    CONDITIONS,
    REFERENCE_LAYERS,
    TRAININGS,
    condition_label,
    condition_sort_key,
    layer_sort_key,
    ordered,
)

__all__ = [
    "plot_metric_vs_layer",
    "plot_robust_vs_baseline",
    "plot_layer_curves",
    "layer_curves",
    "plot_mel_grid",
    "plot_paired_eer",
    "save_figure",
    "condition_colour",
    "condition_colours",
]

_CONDITION_COLOURS = {
    "clean": "#1b7837",
    "snr20": "#2166ac",
    "snr10": "#b35806",
    "snr0": "#b2182b",
}
#: Colours of other conditions, in turn (none is one of the above).
_MORE_COLOURS = ("#762a83", "#e08214", "#35978f", "#c51b7d", "#8c510a", "#01665e")
_TRAINING_STYLE = {
    "robust": dict(color="#1f78b4", linestyle="-", marker="o"),
    "baseline": dict(color="#e66101", linestyle="--", marker="s"),
}


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Render ``fig`` to a PNG at ``path`` through a temporary file and a rename.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> fig = Figure(figsize=(2, 2)); _ = fig.add_subplot().plot([0, 1])
    >>> save_figure(fig, tmp / "a.png").stat().st_size > 0
    True
    """
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def _grid_key(key: str) -> tuple:
    """Order Figure 3's ``<arch>:<layer>`` (or plain layer) columns: the
    paper's architectures first, then layers by :func:`layer_sort_key`."""
    arch, _, layer = key.rpartition(":")
    rank = list(ARCH_LAYERS).index(arch) if arch in ARCH_LAYERS else len(ARCH_LAYERS)
    return (rank, arch, layer_sort_key(layer))


def _arch_layers(rows, arch, order=None):
    """Layers to plot for ``arch``: the paper's and any others with data
    (sorted by :func:`layer_sort_key`), or, given ``order`` (the model's own
    layer order), those of ``order`` with data, then any others with data."""
    found = {r.layer for r in rows if r.arch == arch and r.value is not None}
    found -= set(REFERENCE_LAYERS)
    if order is not None:
        return [x for x in order if x in found] + sorted(
            found - set(order), key=layer_sort_key
        )
    layers = set(ARCH_LAYERS.get(arch, ())) | found
    return sorted(layers, key=layer_sort_key)


def _prepare(metric_rows, metric):
    spec, scale = metric_spec(metric), metric_scale(metric)
    rows = [r for r in metric_rows if r.metric == metric]
    archs = ordered(
        [r.arch for r in rows if r.layer not in REFERENCE_LAYERS and r.arch],
        tuple(ARCH_LAYERS),
    )
    return spec, rows, scale, archs


def _series(rows, arch, training, condition, layers, scale, model=None):
    """x positions, values and error-bar half-widths of one line (of the rows
    of ``arch`` and ``training``, or of ``model`` when given)."""
    lookup = {}
    for r in rows:
        if model is not None:
            if (r.model, r.condition) == (model, condition):
                lookup[r.layer] = r
        elif (r.arch, r.training, r.condition) == (arch, training, condition):
            lookup[r.layer] = r
    xs, ys, lows, highs = [], [], [], []
    for i, layer in enumerate(layers):
        r = lookup.get(layer)
        if r is None or r.value is None:
            continue
        value = r.value * scale
        xs.append(i)
        ys.append(value)
        if r.ci_low is not None and r.ci_high is not None:
            lows.append(max(value - r.ci_low * scale, 0.0))
            highs.append(max(r.ci_high * scale - value, 0.0))
        else:
            lows.append(0.0)
            highs.append(0.0)
    return xs, ys, [lows, highs]


def _copy_synthesis(rows, condition, training, scale):
    candidates = [
        r
        for r in rows
        if r.layer == "copy_synthesis"
        and r.condition == condition
        and r.value is not None
    ]
    candidates.sort(key=lambda r: r.training != training)
    return candidates[0].value * scale if candidates else None


def _figure_legend(fig, axes):
    """One legend under the panels with every label drawn anywhere."""
    handles = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncol=len(handles),
            fontsize=9,
        )


def _finish(fig, axes, title, note="", fontsize=11) -> Figure:
    """The title (and ``note`` under it) and one legend under the panels."""
    fig.suptitle(f"{title}\n{note}" if note else title, fontsize=fontsize)
    _figure_legend(fig, axes)
    return fig


def _vs_layer_title(label: str, chance: bool) -> str:
    return f"{label} of reconstructed speech vs layer (dotted: copy synthesis" + (
        ", dashed grey: chance)" if chance else ")"
    )


def _condition_line(ax, condition, colour, series, ref) -> bool:
    """A condition's values against layer with their intervals (``series``:
    xs, ys, [lows, highs]) and its copy-synthesis reference ``ref`` (dotted);
    whether there were values."""
    xs, ys, err = series
    if xs:
        ax.errorbar(
            xs,
            ys,
            yerr=err,
            color=colour,
            marker="o",
            markersize=4,
            capsize=2,
            label=condition_label(condition),
        )
    if ref is not None:
        ax.axhline(ref, color=colour, linestyle=":", linewidth=1)
    return bool(xs)


def _layer_axis(ax, layers, title: str, ylabel: str = "", **ticks):
    """A panel's layer ticks (``ticks``: their rotation, font size), title,
    grid and, in the first column, ``ylabel``."""
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, **ticks)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ylabel:
        ax.set_ylabel(ylabel)


def _band(ax, xs, lows, highs, colour):
    """A shaded 95% interval."""
    ax.fill_between(xs, lows, highs, color=colour, alpha=0.15, linewidth=0)


def _chance(ax):
    """The EER of chance, 50%."""
    ax.axhline(50.0, color="0.5", linestyle="--", linewidth=0.8)


def _no_data(ax, text="no data"):
    ax.text(
        0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4"
    )


def plot_metric_vs_layer(
    metric_rows: list[MetricRow],
    metric: str,
    path: str | os.PathLike,
    conditions=None,
    note: str = "",
) -> Path:
    """Plot ``metric`` against layer: a panel per model, a line per condition.

    Panels are architecture (rows) x training (columns); the dotted line of
    each colour is the condition's copy-synthesis reference, and an EER plot
    marks chance (50%).

    Arguments
    ---------
    metric_rows : list of MetricRow
        Rows of ``metrics.csv`` (an EER, stored as a fraction, is drawn in %).
    metric : str
        e.g. ``eer_ge2e``.
    path : path
        PNG to write.
    conditions : sequence of str, optional
        Lines to draw (default: all conditions in the data).
    note : str
        Added to the title (e.g. "tiny run, 2 CPU cores").

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> rows = [MetricRow("v", "vgg_lstm", "baseline", l, "clean", "eer_ge2e", v)
    ...         for l, v in [("cnn1", 0.045), ("blstm5", 0.481)]]
    >>> plot_metric_vs_layer(rows, "eer_ge2e", tmp / "eer.png").stat().st_size > 0
    True
    """
    spec, rows, scale, archs = _prepare(metric_rows, metric)
    if conditions is None:
        conditions = ordered([r.condition for r in rows], CONDITIONS)
    trainings = ordered(
        [r.training for r in rows if r.layer not in REFERENCE_LAYERS], TRAININGS
    ) or list(TRAININGS)
    archs = archs or list(ARCH_LAYERS)
    fig = Figure(
        figsize=(4.2 * len(trainings), 3.0 * len(archs) + 0.8), layout="constrained"
    )
    axes = fig.subplots(len(archs), len(trainings), squeeze=False, sharey=True)
    is_eer = metric.startswith("eer")
    for i, arch in enumerate(archs):
        layers = _arch_layers(rows, arch)
        for j, training in enumerate(trainings):
            ax = axes[i][j]
            drawn = False
            for k, condition in enumerate(conditions):
                drawn |= _condition_line(
                    ax,
                    condition,
                    _CONDITION_COLOURS.get(condition, f"C{k}"),
                    _series(rows, arch, training, condition, layers, scale),
                    _copy_synthesis(rows, condition, training, scale),
                )
            if is_eer and spec.percent:
                _chance(ax)
            if not drawn:
                _no_data(ax)
            title = f"{ARCH_NAMES.get(arch, arch)}, {training}"
            _layer_axis(ax, layers, title, spec.label if j == 0 else "", rotation=30)
    title = _vs_layer_title(spec.label, is_eer and spec.percent)
    return save_figure(_finish(fig, axes, title, note), path)


def condition_colour(condition: str, k: int) -> str:
    """The colour of a condition: the paper's own, else the ``k``-th of the
    others.

    Example
    -------
    >>> condition_colour("clean", 3), condition_colour("snr5", 0)
    ('#1b7837', '#762a83')
    """
    if condition in _CONDITION_COLOURS:
        return _CONDITION_COLOURS[condition]
    return _MORE_COLOURS[k % len(_MORE_COLOURS)]


def condition_colours(conditions) -> dict:
    """condition -> colour, the conditions without one of their own taking
    the others in turn.

    Example
    -------
    >>> condition_colours(["snr5", "clean", "snr3"])
    {'snr5': '#762a83', 'clean': '#1b7837', 'snr3': '#e08214'}
    """
    colours = {}
    for condition in dict.fromkeys(conditions):
        others = [c for c in colours if c not in _CONDITION_COLOURS]
        colours[condition] = condition_colour(condition, len(others))
    return colours


def layer_curves(metric_rows: list[MetricRow], metric: str, info: StudyInfo) -> list:
    """What :func:`plot_layer_curves` draws, one dict per panel (model).

    Each panel: ``model`` (the :class:`StudyModel`), ``layers`` (the x axis:
    the model's layers with a value, in the model's order, then any layer
    only the rows have), ``lines`` (condition -> ``(xs, ys, [lows, highs])``,
    conditions in the study's order, only those with a value) and
    ``copy_synthesis`` (condition -> the reference value). Values are in the
    displayed unit (an EER in percent). Models without a value are left out.

    Example
    -------
    >>> info = StudyInfo([StudyModel("w", ("cnn", "layer1", "layer2"))],
    ...                  ["clean", "snr5"])
    >>> rows = [MetricRow("w", "", "", l, "snr5", "eer_ge2e", v)
    ...         for l, v in (("layer2", .4), ("cnn", .1))]
    >>> [(p["model"].name, p["layers"], list(p["lines"])) for p in
    ...  layer_curves(rows, "eer_ge2e", info)]
    [('w', ['cnn', 'layer2'], ['snr5'])]
    >>> layer_curves(rows, "eer_ge2e", info)[0]["lines"]["snr5"][:2]
    ([0, 1], [10.0, 40.0])
    """
    spec, rows, scale, _ = _prepare(metric_rows, metric)
    models = list(info.models)
    known = {m.name for m in models}
    for row in rows:
        if row.model and row.model not in known and row.layer not in REFERENCE_LAYERS:
            known.add(row.model)
            models.append(StudyModel(row.model, (), row.arch, row.training))
    present = [r.condition for r in rows]
    conditions = [c for c in info.conditions if c in present]
    conditions += sorted(set(present) - set(conditions), key=condition_sort_key)
    panels = []
    for model in models:
        own = [
            r for r in rows if r.model == model.name and r.layer not in REFERENCE_LAYERS
        ]
        found = {r.layer for r in own if r.value is not None}
        if not found:
            continue
        first_seen = list(dict.fromkeys(r.layer for r in own))
        layers = [x for x in model.layers if x in found]
        layers += [x for x in first_seen if x in found and x not in layers]
        lines, copies = {}, {}
        for condition in conditions:
            xs, ys, err = _series(
                own, "", "", condition, layers, scale, model=model.name
            )
            if xs:
                lines[condition] = (xs, ys, err)
                ref = _copy_synthesis(rows, condition, model.training, scale)
                if ref is not None:
                    copies[condition] = ref
        panels.append(
            dict(model=model, layers=layers, lines=lines, copy_synthesis=copies)
        )
    return panels


def plot_layer_curves(
    metric_rows: list[MetricRow],
    metric: str,
    path: str | os.PathLike,
    info: StudyInfo,
    note: str = "",
) -> Path:
    """Plot ``metric`` against layer for any study: a panel per model (its
    own layer order on the x axis), a line per condition it was evaluated in.

    The dotted line of each colour is the condition's copy-synthesis
    reference; an EER plot marks chance (50%). See :func:`layer_curves`.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> info = StudyInfo([StudyModel("w", ("cnn", "layer1"))], ["clean"])
    >>> rows = [MetricRow("w", "", "", l, "clean", "stoi", v)
    ...         for l, v in (("cnn", .9), ("layer1", .7))]
    >>> plot_layer_curves(rows, "stoi", tmp / "s.png", info).stat().st_size > 0
    True
    """
    spec = metric_spec(metric)
    panels = layer_curves(metric_rows, metric, info)
    n = max(len(panels), 1)
    n_cols = min(n, 3)
    n_rows = -(-n // n_cols)
    widest = max((len(p["layers"]) for p in panels), default=1)
    fig = Figure(
        figsize=(max(3.6, 0.55 * widest + 1.6) * n_cols, 3.0 * n_rows + 0.9),
        layout="constrained",
    )
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey=True)
    is_eer = metric.startswith("eer") and spec.percent
    colour_of = condition_colours(c for panel in panels for c in panel["lines"])
    for index, ax in enumerate(np.ravel(axes)):
        if index >= len(panels):
            if panels:
                ax.axis("off")
            else:
                _no_data(ax)
            continue
        panel = panels[index]
        model, layers = panel["model"], panel["layers"]
        for condition, series in panel["lines"].items():
            ref = panel["copy_synthesis"].get(condition)
            _condition_line(ax, condition, colour_of[condition], series, ref)
        if is_eer:
            _chance(ax)
        title = model.label
        if model.source and model.source != model.label:
            title += f"\n({model.source})"
        ylabel = spec.label if index % n_cols == 0 else ""
        _layer_axis(
            ax, layers, title, ylabel, rotation=30 if widest > 6 else 0, fontsize=8
        )
        ax.set_xlabel("layer (input side first)", fontsize=8)
    return save_figure(
        _finish(fig, axes, _vs_layer_title(spec.label, is_eer), note), path
    )


def plot_robust_vs_baseline(
    metric_rows: list[MetricRow],
    path: str | os.PathLike,
    metric: str = "stoi",
    conditions=None,
    note: str = "",
    layers: dict | None = None,
) -> Path:
    """The paper's Figure 4: ``metric`` vs layer, robust vs baseline.

    One panel per architecture (rows) and input condition (columns); shaded
    bands are the 95% intervals where known. ``layers`` (arch -> layer order)
    sets the x axis of an architecture; default: the paper's layers, then
    others by :func:`layer_sort_key`.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> rows = [MetricRow(t, "blstm", t, l, "snr0", "stoi", v, v - .02, v + .02, 9)
    ...         for t in ("robust", "baseline")
    ...         for l, v in [("blstm1", .8), ("blstm5", .6)]]
    >>> plot_robust_vs_baseline(rows, tmp / "stoi.png").stat().st_size > 0
    True
    """
    spec, rows, scale, archs = _prepare(metric_rows, metric)
    if conditions is None:
        conditions = ordered([r.condition for r in rows], CONDITIONS) or list(
            CONDITIONS
        )
    archs = archs or list(ARCH_LAYERS)
    trainings = ordered(
        [r.training for r in rows if r.layer not in REFERENCE_LAYERS], TRAININGS
    )
    fig = Figure(
        figsize=(3.2 * len(conditions), 2.8 * len(archs) + 0.8), layout="constrained"
    )
    axes = fig.subplots(len(archs), len(conditions), squeeze=False, sharey=True)
    for i, arch in enumerate(archs):
        order = (layers or {}).get(arch)
        arch_layers = _arch_layers(rows, arch, order)
        for j, condition in enumerate(conditions):
            ax = axes[i][j]
            drawn = False
            for k, training in enumerate(trainings):
                style = _TRAINING_STYLE.get(
                    training, dict(color=f"C{k + 2}", marker="^")
                )
                xs, ys, (lows, highs) = _series(
                    rows, arch, training, condition, arch_layers, scale
                )
                if not xs:
                    continue
                drawn = True
                ax.plot(xs, ys, label=training, markersize=4, **style)
                if any(lows) or any(highs):
                    lows, highs = np.subtract(ys, lows), np.add(ys, highs)
                    _band(ax, xs, lows, highs, style["color"])
            ref = _copy_synthesis(rows, condition, "", scale)
            if ref is not None:
                ax.axhline(ref, color="0.4", linestyle=":", linewidth=1)
            if not drawn:
                _no_data(ax)
            title = f"{ARCH_NAMES.get(arch, arch)}, {condition_label(condition)} input"
            ylabel = spec.label if j == 0 else ""
            _layer_axis(ax, arch_layers, title, ylabel, rotation=30)
    title = (
        f"{spec.label} vs layer: noise-robust vs baseline ASR (dotted: copy synthesis)"
    )
    return save_figure(_finish(fig, axes, title, note), path)


def plot_paired_eer(paired_rows, path: str | os.PathLike, note: str = "") -> Path:
    """Paired EER difference, robust - baseline, against layer.

    One panel per architecture (rows) and verifier (columns), one line per
    condition with its 95% interval as a band (a paired bootstrap over
    speakers); below the dashed
    zero line the robust model keeps more speaker information. Layers in the
    order of ``paired_rows`` (the baseline model's order).

    Arguments
    ---------
    paired_rows : list of PairedRow
        Rows of ``paired.csv``; only the ``eer_*`` ones are drawn (in
        percentage points).
    path : path
        PNG to write.
    note : str
        Added to the title.

    Example
    -------
    >>> from speechbrain_probe.result_rows import PairedRow
    >>> tmp = getfixture("tmp_path")
    >>> rows = [PairedRow("snr0", l, "eer_ge2e", "b", "r", .3, .3 + d, d,
    ...                   d - .02, d + .02, 8, 96, arch="blstm")
    ...         for l, d in (("blstm1", -0.05), ("blstm2", -0.01))]
    >>> plot_paired_eer(rows, tmp / "paired.png").stat().st_size > 0
    True
    """
    rows = [r for r in paired_rows if r.metric.startswith("eer") and r.diff is not None]
    archs = list(dict.fromkeys(r.arch for r in rows)) or [""]
    verifiers = list(dict.fromkeys(r.metric for r in rows)) or ["eer"]
    conditions = sorted({r.condition for r in rows}, key=condition_sort_key)
    colour_of = condition_colours(conditions)
    fig = Figure(
        figsize=(max(6.0, 4.4 * len(verifiers)), 3.0 * len(archs) + 1.1),
        layout="constrained",
    )
    axes = fig.subplots(len(archs), len(verifiers), squeeze=False, sharey=True)
    for i, arch in enumerate(archs):
        layers = list(dict.fromkeys(r.layer for r in rows if r.arch == arch))
        for j, metric in enumerate(verifiers):
            ax = axes[i][j]
            scale = metric_scale(metric)
            drawn = False
            for condition in conditions:
                line = {
                    r.layer: r
                    for r in rows
                    if (r.arch, r.metric, r.condition) == (arch, metric, condition)
                }
                xs = [k for k, layer in enumerate(layers) if layer in line]
                if not xs:
                    continue
                drawn = True
                chosen = [line[layers[k]] for k in xs]
                ys = [r.diff * scale for r in chosen]
                colour = colour_of[condition]
                ax.plot(
                    xs,
                    ys,
                    color=colour,
                    marker="o",
                    markersize=4,
                    label=condition_label(condition),
                )
                known = [r.ci_low is not None and r.ci_high is not None for r in chosen]
                if all(known):
                    lows = [r.ci_low * scale for r in chosen]
                    _band(ax, xs, lows, [r.ci_high * scale for r in chosen], colour)
            ax.axhline(0.0, color="0.4", linestyle="--", linewidth=0.8)
            if not drawn:
                _no_data(ax)
            verifier = metric.partition("_")[2] or metric
            unit = " (points)" if scale != 1.0 else ""
            _layer_axis(
                ax,
                layers,
                f"{ARCH_NAMES.get(arch, arch)}, {verifier}",
                f"EER robust - baseline{unit}" if j == 0 else "",
                rotation=30 if len(layers) > 6 else 0,
                fontsize=8,
            )
    title = (
        "Speaker EER of the reconstructions, robust - baseline\n(paired, same "
        "trials; band: 95% interval, speakers resampled; below 0: robust keeps more)"
    )
    return save_figure(_finish(fig, axes, title, note, fontsize=10), path)


def _check_mel(name, mel):
    array = np.asarray(mel, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(
            f"mel {name!r} has shape {array.shape}; expected [T, n_mels] "
            "(drop the batch dimension)"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"mel {name!r} is empty (shape {array.shape})")
    if not np.isfinite(array).all():
        raise ValueError(f"mel {name!r} contains NaN or infinite values")
    return array


def _grid_rows(checked: dict, order) -> tuple[list, dict]:
    """Figure 3's rows (baseline, robust, or the models named in ``order``
    in that order) and each row's column keys."""
    trainings = ordered(list(checked), ("baseline", "robust"))
    if order:  # rows named in order (e.g. models) come in that order
        named = [k.split(":", 1)[0] for k in order]
        trainings = sorted(
            trainings, key=lambda t: named.index(t) if t in named else len(named)
        )
    every = {layer for by_layer in checked.values() for layer in by_layer}
    first = [k for k in dict.fromkeys(order or ()) if k in every]
    layers = first + sorted(every - set(first), key=_grid_key)
    # rows without a layer in common (models with their own layers): each
    # row shows its own layers from the left
    own_columns = len(checked) > 1 and sum(map(len, checked.values())) == len(every)
    return trainings, {
        t: [k for k in layers if k in checked[t]] if own_columns else layers
        for t in trainings
    }


def plot_mel_grid(
    mels: dict,
    path: str | os.PathLike,
    references: dict | None = None,
    title: str = "",
    hop_s: float = 0.0125,
    order=None,
) -> Path:
    """The paper's Figure 3: probe-reconstructed mels across layers.

    Arguments
    ---------
    mels : dict
        training (row, e.g. ``baseline``, ``robust``) -> {layer: mel ``[T, n_mels]``}.
        Columns are the layers, in depth order.
    path : path
        PNG to write.
    references : dict, optional
        name -> mel ``[T, n_mels]`` shown in a top row (e.g. the clean input,
        the noisy mixture, copy synthesis).
    title : str
        Figure title (say which utterance and condition).
    hop_s : float
        Frame shift in seconds, for the time axis.
    order : sequence of str, optional
        Column keys in this order first (e.g. each model's layers in model
        order); the rest by the paper's order and :func:`layer_sort_key`.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> rng = np.random.default_rng(0)
    >>> mels = {t: {l: rng.random((40, 80)) for l in ("cnn1", "blstm3")}
    ...         for t in ("baseline", "robust")}
    >>> out = plot_mel_grid(mels, tmp / "fig3.png", {"mixture": rng.random((40, 80))})
    >>> out.stat().st_size > 0
    True
    >>> plot_mel_grid({"baseline": {"cnn1": np.zeros((1, 40, 80))}}, tmp / "x.png")
    Traceback (most recent call last):
    ...
    ValueError: mel 'baseline/cnn1' has shape (1, 40, 80); expected [T, n_mels] (drop the batch dimension)
    """
    if not mels or not any(mels.values()):
        raise ValueError("plot_mel_grid needs at least one reconstructed mel")
    checked = {
        training: {
            layer: _check_mel(f"{training}/{layer}", mel)
            for layer, mel in by_layer.items()
        }
        for training, by_layer in mels.items()
    }
    refs = {name: _check_mel(name, mel) for name, mel in (references or {}).items()}
    trainings, row_layers = _grid_rows(checked, order)
    everything = [m for by in checked.values() for m in by.values()] + list(
        refs.values()
    )
    low = min(float(m.min()) for m in everything)
    high = max(float(m.max()) for m in everything)
    vmin, vmax = (0.0, 1.0) if low >= 0.0 and high <= 1.0 else (low, high)
    n_rows = len(trainings) + (1 if refs else 0)
    n_cols = max(max(len(v) for v in row_layers.values()), len(refs))
    fig = Figure(figsize=(2.0 * n_cols + 1.2, 1.7 * n_rows + 0.8), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True)
    image = None

    def show(ax, mel, label):
        nonlocal image
        duration = mel.shape[0] * hop_s
        image = ax.imshow(
            mel.T,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
            extent=(0.0, duration, 0, mel.shape[1]),
            interpolation="nearest",
        )
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)

    row = 0
    if refs:
        for col in range(n_cols):
            ax = axes[0][col]
            if col < len(refs):
                name = list(refs)[col]
                show(ax, refs[name], name)
            else:
                ax.axis("off")
        axes[0][0].set_ylabel("reference\nmel bin", fontsize=8)
        row = 1

    def cell_title(training, key):
        if training and key.startswith(f"{training}:"):
            key = key[len(training) + 1 :]  # the row already names the model
        return f"{training}: {key}".lstrip(": ")

    for training in trainings:
        for col in range(n_cols):
            ax = axes[row][col]
            shown = row_layers[training]
            layer = shown[col] if col < len(shown) else None
            if layer is None:
                ax.axis("off")
            elif layer in checked[training]:
                show(ax, checked[training][layer], cell_title(training, layer))
            else:
                _no_data(ax, cell_title(training, layer) + "\nmissing")
        axes[row][0].set_ylabel(f"{training or 'probe'}\nmel bin", fontsize=8)
        row += 1
    for ax in np.ravel(axes):
        ax.tick_params(labelsize=7)
        ax.label_outer()
    for col in range(n_cols):
        axes[-1][col].set_xlabel("time (s)", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="normalised log-mel")
    fig.suptitle(title or "Mel spectrograms reconstructed by the probe of each layer")
    return save_figure(fig, path)
