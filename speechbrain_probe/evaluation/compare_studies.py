"""Compare two studies that differ only in the vocoder, and listen to both.

Two study folders made by :func:`~speechbrain_probe.evaluation.study.run_study`
on the same utterances and trials (identical ``subset.csv`` and
``trials.csv``), e.g. probes of one ASR trained on the paper mel (Griffin-Lim)
and on the HiFi-GAN mel (HiFi-GAN), are compared cell by cell: for every
model, layer and condition both have, and the reference rows, every metric
(``eer_<verifier>``, ``stoi``, ``pesq``) in A, in B, and the paired
difference B - A with its speaker-bootstrap interval
(:meth:`~speechbrain_probe.evaluation.paired.StudyItems.compare`, the same
utterances and trials in both cells). ``original`` is the same audio in both
studies and must score the same (else the studies did not hear the same
thing); ``copy_synthesis`` compares the two vocoders on the true mel.

Models are matched by a mapping (``models={name_in_a: name_in_b}``), else by
architecture and training (paper models), else by name.

Files written by :func:`write_comparison` (and the command line) into ``out``:

``vocoder_comparison.csv`` (:data:`COMPARISON_FIELDS`)
    One row per (condition, model, layer, metric): ``label_a``, ``label_b``,
    ``condition``, ``model_a``, ``model_b`` (empty for the reference rows),
    ``layer`` (a probed layer, ``original`` or ``copy_synthesis``),
    ``metric``, ``value_a``, ``value_b``, ``diff`` (B - A), ``ci_low``,
    ``ci_high`` (its 95% interval), ``n_speakers``, ``n_items``; EERs are
    fractions, as in ``metrics.csv``.
``vocoder_comparison.md``
    The same as a table (EER in %), a difference whose interval excludes 0
    marked ``*``.
``vocoder_comparison.png``
    EER (first verifier) and STOI against layer, both vocoders, one panel
    per model.
``listen.html``
    Every utterance, condition and layer through both vocoders side by side
    (a table per model, a row per vocoder, copy synthesis in the first
    column), with the table and figure.

Command line::

    python -m speechbrain_probe.evaluation.compare_studies STUDY_A STUDY_B \\
        --out DIR --label-a griffin_lim --label-b hifigan
"""

from __future__ import annotations

import argparse
import csv
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.evaluation.paired import StudyItems
from speechbrain_probe.result_rows import read_metrics, read_samples
from speechbrain_probe.study_info import (
    STUDY_INFO,
    StudyInfo,
    StudyModel,
    read_study_info,
)
from speechbrain_probe.vocabulary import REFERENCE_LAYERS, condition_label

__all__ = [
    "COMPARISON_CSV",
    "COMPARISON_FIELDS",
    "ComparisonRow",
    "compare_studies",
    "comparison_table",
    "main",
    "match_models",
    "plot_comparison",
    "read_comparison",
    "write_comparison",
    "write_comparison_page",
]

COMPARISON_CSV = "vocoder_comparison.csv"
#: Display names of the vocoders a study records (other labels are shown as given).
_PRETTY = {"griffin_lim": "Griffin-Lim", "hifigan": "HiFi-GAN"}
_COPY = "copy synthesis"  # the column of copy synthesis on the listening page


@dataclass(frozen=True)
class ComparisonRow:
    """One metric of one cell in study A and study B, and B - A.

    ``model_a`` and ``model_b`` are empty for a reference row (``layer``
    ``original`` or ``copy_synthesis``). ``ci_low``/``ci_high`` bound the
    paired difference (speaker bootstrap); EERs are fractions.
    """

    label_a: str
    label_b: str
    condition: str
    model_a: str
    model_b: str
    layer: str
    metric: str
    value_a: float
    value_b: float
    diff: float
    ci_low: float | None
    ci_high: float | None
    n_speakers: int
    n_items: int

    @property
    def excludes_zero(self) -> bool:
        """The interval lies entirely above or below 0."""
        return self.ci_low is not None and (self.ci_low > 0 or self.ci_high < 0)


COMPARISON_FIELDS = tuple(f.name for f in fields(ComparisonRow))


def _same_file(a: Path, b: Path, what: str) -> None:
    for path in (a, b):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist; compare two finished study folders "
                "(run_study writes subset.csv and trials.csv)"
            )
    if a.read_bytes() != b.read_bytes():
        raise ValueError(
            f"{a} and {b} differ: the two studies used other {what}; compare only "
            "studies run on the same corpus with the same conditions, "
            "utts_per_speaker, seed and negatives_per_positive"
        )


def match_models(
    info_a: StudyInfo, info_b: StudyInfo, models: dict | None = None
) -> list[tuple[StudyModel, StudyModel]]:
    """Pairs (model of A, model of B) to compare.

    ``models`` maps names in A to names in B; without it, a paper model
    (architecture and training) is matched to B's only model of the same
    architecture and training, any other model to B's model of its name.

    Example
    -------
    >>> a = StudyInfo([StudyModel("vgg_gl", ("cnn1",), "vgg_lstm", "baseline"),
    ...                StudyModel("w", ("l1",))], ["clean"])
    >>> b = StudyInfo([StudyModel("vgg_hifi", ("cnn1",), "vgg_lstm", "baseline"),
    ...                StudyModel("w", ("l1",))], ["clean"])
    >>> [(x.name, y.name) for x, y in match_models(a, b)]
    [('vgg_gl', 'vgg_hifi'), ('w', 'w')]
    >>> match_models(a, b, {"vgg_gl": "nope"})
    Traceback (most recent call last):
    ...
    ValueError: model 'nope' (mapped from 'vgg_gl') is not in study B; it has: vgg_hifi w
    """
    by_name_b = {m.name: m for m in info_b.models}
    by_name_a = {m.name: m for m in info_a.models}
    if models:
        pairs = []
        for name_a, name_b in models.items():
            if name_a not in by_name_a:
                raise ValueError(
                    f"model {name_a!r} is not in study A; it has: "
                    + " ".join(by_name_a)
                )
            if name_b not in by_name_b:
                raise ValueError(
                    f"model {name_b!r} (mapped from {name_a!r}) is not in study B; "
                    "it has: " + " ".join(by_name_b)
                )
            pairs.append((by_name_a[name_a], by_name_b[name_b]))
        return pairs
    pairs, used = [], set()
    for m in info_a.models:
        twin = None
        if m.arch and m.training:
            same = [
                x for x in info_b.models if (x.arch, x.training) == (m.arch, m.training)
            ]
            if len(same) == 1:
                twin = same[0]
        if twin is None:
            twin = by_name_b.get(m.name)
        if twin is not None and twin.name not in used:
            used.add(twin.name)
            pairs.append((m, twin))
    return pairs


def _check_original(items_a, items_b, condition, cell_a, cell_b, tolerance=1e-4):
    """The original audio must score the same in both studies."""
    for verifier, scores in cell_a.get("trial_scores", {}).items():
        other = cell_b.get("trial_scores", {}).get(verifier)
        if other is None:
            continue
        a = np.array(scores, dtype=np.float64)
        b = np.array(other, dtype=np.float64)
        if a.shape != b.shape or not np.allclose(a, b, atol=tolerance, equal_nan=True):
            raise ValueError(
                f"the original audio of condition {condition} has other {verifier} "
                f"scores in {items_a.folder} than in {items_b.folder}: the studies "
                "did not hear the same audio with the same verifier; compare studies "
                "of the same corpus and verifiers"
            )
    for metric, values in cell_a.get("utt_scores", {}).items():
        other = cell_b.get("utt_scores", {}).get(metric) or {}
        for utt, value in values.items():
            twin = other.get(utt)
            if value is None or twin is None:
                continue
            if abs(value - twin) > tolerance:
                raise ValueError(
                    f"the original audio of condition {condition} has {metric} "
                    f"{value:.4f} for {utt} in {items_a.folder} but {twin:.4f} in "
                    f"{items_b.folder}: the studies did not hear the same audio"
                )


def compare_studies(
    study_a,
    study_b,
    n_boot: int = 2000,
    seed: int = 0,
    models: dict | None = None,
    label_a: str | None = None,
    label_b: str | None = None,
    alpha: float = 0.05,
) -> list[ComparisonRow]:
    """Every shared cell of two studies: A, B and the paired B - A.

    Arguments
    ---------
    study_a, study_b : path
        Study folders with the same ``subset.csv`` and ``trials.csv`` (else a
        ``ValueError``) and per-item cells.
    n_boot : int
        Speaker-bootstrap resamples of each interval.
    seed : int
        Seed of the resampling (the same speakers for every cell).
    models : dict, optional
        Names in A -> names in B (default: :func:`match_models`).
    label_a, label_b : str, optional
        Names of the two studies (default: the vocoder each ``study.json``
        records, else the folder's name).
    alpha : float
        ``1 - alpha`` is the interval's coverage.

    Returns
    -------
    list of ComparisonRow
        Per condition: the reference rows (``original``, ``copy_synthesis``),
        then each matched model's shared layers in A's order; per cell
        ``eer_<verifier>`` of the verifiers both have, ``stoi``, ``pesq``.
    """
    a, b = Path(study_a), Path(study_b)
    _same_file(a / "subset.csv", b / "subset.csv", "utterances")
    _same_file(a / "trials.csv", b / "trials.csv", "trials")
    items_a, items_b = StudyItems(a), StudyItems(b)
    info_a, info_b = items_a.info, items_b.info
    label_a = label_a or info_a.vocoder or a.name
    label_b = label_b or info_b.vocoder or b.name
    verifiers = [v for v in info_a.verifiers if v in info_b.verifiers]
    metrics = [f"eer_{v}" for v in verifiers] + ["stoi", "pesq"]
    conditions = [c for c in info_a.conditions if c in info_b.conditions]
    if not conditions:
        raise ValueError(
            f"the studies share no condition ({', '.join(info_a.conditions)} vs "
            f"{', '.join(info_b.conditions)})"
        )
    pairs = match_models(info_a, info_b, models)
    rows = []

    def add(condition, owner_a, owner_b, layer, model_a="", model_b=""):
        cell_a = items_a.cell(owner_a, layer, condition)
        cell_b = items_b.cell(owner_b, layer, condition)
        if cell_a is None or cell_b is None:
            return
        if layer == "original":
            _check_original(items_a, items_b, condition, cell_a, cell_b)
        for metric in metrics:
            d = items_a.compare(cell_a, cell_b, metric, n_boot, seed, alpha)
            if d is None:
                continue
            rows.append(
                ComparisonRow(
                    label_a,
                    label_b,
                    condition,
                    model_a,
                    model_b,
                    layer,
                    metric,
                    d.a,
                    d.b,
                    d.diff,
                    d.low,
                    d.high,
                    d.n_speakers,
                    d.n_items,
                )
            )

    for condition in conditions:
        for layer in REFERENCE_LAYERS:
            add(condition, "_reference", "_reference", layer)
        for ma, mb in pairs:
            for layer in ma.layers:
                if layer in mb.layers:
                    add(condition, ma.name, mb.name, layer, ma.name, mb.name)
    return rows


def _number(text):
    return None if text in ("", None) else float(text)


def read_comparison(path) -> list[ComparisonRow]:
    """Read ``vocoder_comparison.csv`` back.

    Example
    -------
    >>> row = ComparisonRow("gl", "hifi", "clean", "m", "m", "cnn1", "stoi",
    ...                     0.8, 0.9, 0.1, 0.05, 0.15, 10, 40)
    >>> p = getfixture("tmp_path")
    >>> _ = write_comparison([row], p, plot=False)
    >>> read_comparison(p / COMPARISON_CSV) == [row]
    True
    """
    with open(path, newline="", encoding="utf-8") as handle:
        out = []
        for r in csv.DictReader(handle):
            out.append(
                ComparisonRow(
                    *(r[k] for k in COMPARISON_FIELDS[:7]),
                    *(_number(r[k]) for k in COMPARISON_FIELDS[7:12]),
                    int(r["n_speakers"]),
                    int(r["n_items"]),
                )
            )
        return out


def _pretty(label: str) -> str:
    return _PRETTY.get(label, label)


def comparison_table(rows: list[ComparisonRow], n_boot: int | None = None):
    """The comparison as a :class:`~speechbrain_probe.report.tables.Table`:
    a row per (condition, model, layer), per metric A, B and B - A [95% CI];
    EER in %; a difference whose interval excludes 0 is marked (``*``, and
    bold in HTML).

    Example
    -------
    >>> row = ComparisonRow("griffin_lim", "hifigan", "clean", "m", "m", "cnn1",
    ...                     "eer_ge2e", 0.2, 0.1, -0.1, -0.15, -0.05, 10, 400)
    >>> t = comparison_table([row])
    >>> t.cells[0], t.columns[2]
    (['20.00', '10.00', '-10.00 [-15.00, -5.00] *'], ('EER (%), GE2E verifier', 'HiFi-GAN - Griffin-Lim [95% CI]'))
    """
    from speechbrain_probe.report.tables import METRIC_SPECS, MetricSpec, Table

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
        label = METRIC_SPECS.get(metric, MetricSpec(metric, 3)).label
        columns += [
            (label, label_a),
            (label, label_b),
            (label, f"{label_b} - {label_a} [95% CI]"),
        ]
    row_labels, cells, values, marked = [], [], [], []
    for i, (condition, model_a, model_b, layer) in enumerate(keys):
        model = model_a if model_a == model_b else f"{model_a} / {model_b}"
        row_labels.append([condition_label(condition), model or "reference", layer])
        line, nums = [], []
        for metric in metrics:
            spec = METRIC_SPECS.get(metric, MetricSpec(metric, 3))
            scale = 100.0 if metric.startswith("eer") else 1.0
            r = found.get((condition, model_a, model_b, layer, metric))
            if r is None:
                line += ["-"] * 3
                nums += [None] * 3
                continue
            d = spec.digits

            def f(x, d=d, scale=scale):
                return f"{x * scale:.{d}f}"

            diff = f(r.diff)
            if r.ci_low is not None:
                diff += f" [{f(r.ci_low)}, {f(r.ci_high)}]"
            if r.excludes_zero:
                diff += " *"
                marked.append((i, len(line) + 2))
            line += [f(r.value_a), f(r.value_b), diff]
            nums += [r.value_a * scale, r.value_b * scale, r.diff * scale]
        cells.append(line)
        values.append(nums)
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


def plot_comparison(rows: list[ComparisonRow], path, verifier: str | None = None):
    """EER (of ``verifier``, default the first) and STOI against layer for
    both vocoders, one panel column per model; colour: condition, solid:
    A, dashed: B. Returns the PNG's path (None without model rows)."""
    from matplotlib.figure import Figure

    from speechbrain_probe.report.figures import _condition_colour, save_figure

    model_rows = [r for r in rows if r.model_a]
    if not model_rows:
        return None
    eers = [r.metric for r in model_rows if r.metric.startswith("eer_")]
    eer = f"eer_{verifier}" if verifier else (eers[0] if eers else None)
    metrics = [m for m in (eer, "stoi") if m]
    pairs = list(dict.fromkeys((r.model_a, r.model_b) for r in model_rows))
    conditions = list(dict.fromkeys(r.condition for r in model_rows))
    label_a, label_b = _pretty(rows[0].label_a), _pretty(rows[0].label_b)
    fig = Figure(figsize=(4.2 * len(pairs), 3.0 * len(metrics)))
    axes = fig.subplots(len(metrics), len(pairs), squeeze=False)
    for j, (ma, mb) in enumerate(pairs):
        layers = list(
            dict.fromkeys(
                r.layer for r in model_rows if (r.model_a, r.model_b) == (ma, mb)
            )
        )
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            scale = 100.0 if metric.startswith("eer") else 1.0
            for k, condition in enumerate(conditions):
                colour = _condition_colour(condition, k)
                got = {
                    r.layer: r
                    for r in model_rows
                    if (r.model_a, r.model_b, r.condition, r.metric)
                    == (ma, mb, condition, metric)
                }
                x = [n for n, layer in enumerate(layers) if layer in got]
                if not x:
                    continue
                for side, style, label in (
                    ("value_a", "-o", label_a),
                    ("value_b", "--s", label_b),
                ):
                    y = [getattr(got[layers[n]], side) * scale for n in x]
                    ax.plot(
                        x,
                        y,
                        style,
                        color=colour,
                        label=f"{label}, {condition_label(condition)}",
                    )
            ax.set_xticks(range(len(layers)), layers, rotation=30)
            ax.set_ylabel("EER (%)" if metric.startswith("eer") else "STOI")
            if i == 0:
                ax.set_title(ma if ma == mb else f"{ma} / {mb}")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    # A and B of a condition side by side, as many pairs a row as panels fit
    ncol = max(2, min(len(labels), 2 * len(pairs)))
    legend_rows = -(-len(labels) // ncol)
    bottom = min(0.3, 0.035 * legend_rows / len(metrics) * 2 + 0.01)
    if handles:
        fig.legend(
            handles,
            labels,
            loc="lower center",
            ncol=ncol,
            bbox_to_anchor=(0.5, 0.0),
            fontsize="small",
        )
    fig.suptitle(f"{label_a} (solid) vs {label_b} (dashed)")
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return save_figure(fig, path)


def write_comparison(
    rows: list[ComparisonRow], out, n_boot: int | None = None, plot: bool = True
) -> dict:
    """Write ``vocoder_comparison.{csv,md}`` (and ``.png`` with ``plot``) into
    ``out``; returns their paths (``png`` None without model rows)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [",".join(COMPARISON_FIELDS)]
    for r in rows:
        values = []
        for value in asdict(r).values():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                values.append("")
            elif isinstance(value, float):
                values.append(repr(value))
            else:
                values.append(str(value))
        lines.append(",".join(values))
    paths = {
        "csv": atomic_write_text(out / COMPARISON_CSV, "\n".join(lines) + "\n"),
        "md": atomic_write_text(
            out / "vocoder_comparison.md",
            comparison_table(rows, n_boot).to_markdown(),
        ),
    }
    if plot:
        paths["png"] = plot_comparison(rows, out / "vocoder_comparison.png")
    return paths


def _suffixed(name: str, label: str) -> str:
    return f"{name} ({_pretty(label)})"


def write_comparison_page(
    study_a,
    study_b,
    out,
    rows: list[ComparisonRow],
    models: dict | None = None,
    label_a: str | None = None,
    label_b: str | None = None,
    figures=(),
    tables_html=(),
) -> Path:
    """``out/listen.html``: both studies' audio side by side.

    For each matched model a table with a row per vocoder (model names
    suffixed by the vocoder, e.g. ``vgg_lstm_baseline (HiFi-GAN)``) and a
    column per layer, copy synthesis first; the clean input, noise and
    mixture are study A's (the same audio in both). Scores from each
    study's ``metrics.csv`` sit under the clips. Audio is linked relative to
    the page.
    """
    from speechbrain_probe.report.html import write_listening_page

    a, b, out = Path(study_a), Path(study_b), Path(out)
    info_a, info_b = (read_study_info(p / STUDY_INFO) for p in (a, b))
    label_a = label_a or info_a.vocoder or a.name
    label_b = label_b or info_b.vocoder or b.name
    if _pretty(label_a) == _pretty(label_b):
        raise ValueError(
            f"both studies are labelled {_pretty(label_a)!r}; give them different "
            "labels (--label-a, --label-b)"
        )
    pairs = match_models(info_a, info_b, models)
    samples = [read_samples(p / "samples.csv") for p in (a, b)]
    metrics = [
        read_metrics(p / "metrics.csv") if (p / "metrics.csv").is_file() else []
        for p in (a, b)
    ]
    sample_rows = [s for s in samples[0] if s.kind in ("original", "noise", "mixture")]
    metric_rows = [r for r in metrics[0] if not r.model and r.layer == "original"]
    groups, described = {}, {}
    for ma, mb in pairs:
        caption = ma.label if ma.name == mb.name else f"{ma.label} / {mb.label}"
        for side, model, label in ((0, ma, label_a), (1, mb, label_b)):
            name = _suffixed(model.name, label)
            groups[name] = dict(
                group=ma.name,
                group_label=f"{caption}: one row per vocoder",
                row_header="vocoder",
                row_label=_pretty(label),
            )
            described[name] = StudyModel(name, (_COPY,) + tuple(model.layers))
            for s in samples[side]:
                if s.kind == "copy_synthesis":
                    sample_rows.append(
                        replace(s, model=name, layer=_COPY, kind="reconstruction")
                    )
                elif s.kind == "reconstruction" and s.model == model.name:
                    sample_rows.append(replace(s, model=name))
            for r in metrics[side]:
                if not r.model and r.layer == "copy_synthesis":
                    metric_rows.append(replace(r, model=name, layer=_COPY))
                elif r.model == model.name:
                    metric_rows.append(replace(r, model=name))
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


def main(argv=None) -> list[ComparisonRow]:
    """The command line (see the module's docstring); prints the table."""
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_probe.evaluation.compare_studies",
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
    models = _mapping(args.model)
    rows = compare_studies(
        args.study_a,
        args.study_b,
        n_boot=args.n_boot,
        seed=args.seed,
        models=models,
        label_a=args.label_a,
        label_b=args.label_b,
    )
    paths = write_comparison(rows, args.out, n_boot=args.n_boot)
    table = comparison_table(rows, args.n_boot)
    figures = []
    if paths.get("png"):
        figures.append(("EER and STOI vs layer, both vocoders", paths["png"]))
    page = write_comparison_page(
        args.study_a,
        args.study_b,
        args.out,
        rows,
        models=models,
        label_a=args.label_a,
        label_b=args.label_b,
        figures=figures,
        tables_html=[table.to_html()],
    )
    print(table.to_markdown())
    print(f"wrote {paths['csv']}, {paths['md']}, {paths.get('png')}, {page}")
    return rows


if __name__ == "__main__":
    main()
