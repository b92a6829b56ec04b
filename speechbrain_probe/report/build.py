"""Build the whole report of an evaluation from its results folder.

``build_report(results_dir)`` reads ``metrics.csv``, ``asr_results.csv`` and
``samples.csv`` (whichever exist; formats in TEAM.md) and writes, inside the
same folder:

* ``tables/table1_asr.{csv,md}`` and ``tables/table2_<metric>.{csv,md}``
  (and ``tables/excluded.{csv,md}``, counts of the exclusion record
  ``excluded.csv`` (``utt_id,metric,reason``) when the evaluation wrote one);
* ``figures/eer_vs_layer_<verifier>.png``, ``figures/fig4_<metric>_robust_vs_baseline.png``
  and ``figures/fig3_mel_grid.png``;
* ``report.html``, the listening page with the tables and figures.

Running it again rewrites the same files (atomically), so it is safe to call
after every finished evaluation step.

Figure 3 uses the probe outputs themselves when the pipeline saved them in
``figure3_mels.npz`` (see :func:`save_figure3_mels`); otherwise it re-analyses
the reconstructed wavs of one noisy utterance listed in ``samples.csv`` (and
says so in its title).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from speechbrain_probe.report import figures as figs
from speechbrain_probe.report.html import write_listening_page
from speechbrain_probe.report.results import (
    ARCH_LAYERS,
    ARCH_NAMES,
    CONDITION_NAMES,
    CONDITIONS,
    read_asr_results,
    read_metrics,
    read_samples,
)
from speechbrain_probe.report.tables import (
    METRIC_SPECS,
    exclusions_table,
    table1,
    table2,
)

__all__ = [
    "build_report",
    "save_figure3_mels",
    "load_figure3_mels",
    "figure3_from_samples",
]

FIGURE3_MELS = "figure3_mels.npz"


def save_figure3_mels(
    path: str | os.PathLike, mels: dict, references: dict | None = None, title: str = ""
) -> Path:
    """Save the probe mels of Figure 3 where :func:`build_report` finds them.

    Arguments
    ---------
    path : path
        Usually ``<results_dir>/figure3_mels.npz``.
    mels : dict
        training -> {layer: mel ``[T, n_mels]``} (numpy or torch).
    references : dict, optional
        name -> mel (e.g. ``clean``, ``mixture``).
    title : str
        Which utterance, model and condition.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> p = save_figure3_mels(tmp / "m.npz", {"robust": {"cnn1": np.ones((5, 80))}},
    ...                       {"mixture": np.zeros((5, 80))}, "utt u, 0 dB")
    >>> mels, refs, title = load_figure3_mels(p)
    >>> mels["robust"]["cnn1"].shape, list(refs), title
    ((5, 80), ['mixture'], 'utt u, 0 dB')
    """
    arrays = {}
    for training, by_layer in mels.items():
        for layer, mel in by_layer.items():
            arrays[f"mel/{training}/{layer}"] = np.asarray(mel, dtype=np.float32)
    for name, mel in (references or {}).items():
        arrays[f"ref/{name}"] = np.asarray(mel, dtype=np.float32)
    arrays["title"] = np.array(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
    return path


def load_figure3_mels(path: str | os.PathLike) -> tuple[dict, dict, str]:
    """Read what :func:`save_figure3_mels` wrote: ``(mels, references, title)``."""
    mels, refs, title = {}, {}, ""
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            if key.startswith("mel/"):
                _, training, layer = key.split("/", 2)
                mels.setdefault(training, {})[layer] = npz[key]
            elif key.startswith("ref/"):
                refs[key[4:]] = npz[key]
            elif key == "title":
                title = str(npz[key])
    return mels, refs, title


def _mel_of_wav(file, mel_fn):
    import soundfile as sf
    import torch

    audio, _ = sf.read(str(file), dtype="float32", always_2d=True)
    return mel_fn(torch.from_numpy(audio.mean(axis=1))).numpy()


def figure3_from_samples(
    sample_rows: list[dict],
    out_path: str | os.PathLike,
    model_info: dict | None = None,
    arch: str | None = None,
    condition: str | None = None,
) -> Path | None:
    """Figure 3 from the reconstructed wavs of one noisy utterance.

    Picks the noisiest condition (0 dB first) and an utterance with
    reconstructions from both a baseline and a robust model of one
    architecture (VGG-LSTM first), and shows the log-mel of each
    reconstruction (re-analysed, so it includes the vocoder's round trip).
    Returns ``None`` when ``samples.csv`` has no such utterance.

    Example
    -------
    >>> from speechbrain_probe.report.example import make_example_results
    >>> tmp = getfixture("tmp_path")
    >>> _ = make_example_results(tmp, n_utts=1, conditions=("snr0",), seconds=0.2)
    >>> rows = read_samples(tmp / "samples.csv")
    >>> figure3_from_samples(rows, tmp / "fig3.png").stat().st_size > 0
    True
    """
    from speechbrain_probe.features import LogMelSpectrogram

    model_info = model_info or {}

    def arch_of(model):
        if model in model_info:
            return model_info[model]
        found = next(
            (
                a
                for a in sorted(ARCH_LAYERS, key=len, reverse=True)
                if model.startswith(a)
            ),
            "",
        )
        training = (
            "robust"
            if model.endswith("robust")
            else "baseline"
            if model.endswith("baseline")
            else ""
        )
        return found, training

    recs = [
        r
        for r in sample_rows
        if r["kind"] == "reconstruction" and Path(r["file"]).is_file()
    ]
    conditions = [condition] if condition else list(reversed(CONDITIONS))
    archs = [arch] if arch else list(ARCH_LAYERS)
    for cond in conditions:
        for arch_name in archs:
            by_utt = {}
            for r in recs:
                a, training = arch_of(r["model"])
                if (
                    r["condition"] == cond
                    and a == arch_name
                    and training in ("baseline", "robust")
                ):
                    by_utt.setdefault(r["utt_id"], {}).setdefault(training, {})[
                        r["layer"]
                    ] = r["file"]
            for utt in sorted(by_utt):
                if len(by_utt[utt]) < 2:
                    continue
                mel_fn = LogMelSpectrogram()
                mels = {
                    t: {layer: _mel_of_wav(f, mel_fn) for layer, f in layers.items()}
                    for t, layers in by_utt[utt].items()
                }
                refs = {}
                for kind, name in (("original", "clean input"), ("mixture", "mixture")):
                    row = next(
                        (
                            r
                            for r in sample_rows
                            if r["utt_id"] == utt
                            and r["kind"] == kind
                            and (r["condition"] == cond or kind == "original")
                            and Path(r["file"]).is_file()
                        ),
                        None,
                    )
                    if row is not None:
                        refs[name] = _mel_of_wav(row["file"], mel_fn)
                title = (
                    f"{ARCH_NAMES.get(arch_name, arch_name)}, utterance {utt}, "
                    f"{CONDITION_NAMES.get(cond, cond)} input: log-mel of the audio "
                    "reconstructed from each layer (re-analysed after the vocoder)"
                )
                return figs.plot_mel_grid(mels, out_path, refs, title)
    return None


def _model_info(*row_lists):
    info = {}
    for rows in row_lists:
        for r in rows:
            if r.get("model") and r.get("arch"):
                info.setdefault(r["model"], (r["arch"], r.get("training", "")))
    return info


def build_report(
    results_dir: str | os.PathLike,
    title: str = "What does each layer hear?",
    note: str = "",
    verbose: bool = True,
) -> Path:
    """Write tables, figures and ``report.html`` into ``results_dir``.

    Arguments
    ---------
    results_dir : path
        Folder with ``metrics.csv``, ``asr_results.csv`` and/or ``samples.csv``.
    title : str
        Title of the page.
    note : str
        A sentence shown on the page and figures (e.g. "tiny CPU run").
    verbose : bool
        Print where the report is.

    Returns
    -------
    Path
        The ``report.html`` written.

    Example
    -------
    >>> from speechbrain_probe.report.example import make_example_results
    >>> tmp = getfixture("tmp_path")
    >>> _ = make_example_results(tmp, n_utts=1, conditions=("clean", "snr0"), seconds=0.2)
    >>> page = build_report(tmp, verbose=False)
    >>> page.name, (tmp / "tables" / "table2_stoi.md").is_file()
    ('report.html', True)
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(
            f"results folder {results_dir} does not exist; pass the folder the "
            "evaluation wrote metrics.csv / asr_results.csv / samples.csv into"
        )
    paths = {
        name: results_dir / f"{name}.csv"
        for name in ("metrics", "asr_results", "samples")
    }
    if not any(p.is_file() for p in paths.values()):
        raise FileNotFoundError(
            f"no result files in {results_dir}: expected metrics.csv, asr_results.csv "
            "and/or samples.csv (run the evaluation recipe first)"
        )
    metrics = read_metrics(paths["metrics"]) if paths["metrics"].is_file() else []
    asr = (
        read_asr_results(paths["asr_results"]) if paths["asr_results"].is_file() else []
    )
    samples = read_samples(paths["samples"]) if paths["samples"].is_file() else []
    info = _model_info(metrics, asr)
    table_dir, figure_dir = results_dir / "tables", results_dir / "figures"

    tables = []
    if asr:
        tables.append(("table1_asr", table1(asr)))
    present = {r["metric"] for r in metrics}
    metric_names = [m for m in METRIC_SPECS if m in present and m not in ("wer", "cer")]
    metric_names += sorted(present - set(METRIC_SPECS))
    for metric in metric_names:
        tables.append((f"table2_{metric}", table2(metrics, metric)))
    excluded = results_dir / "excluded.csv"
    if excluded.is_file():
        with open(excluded, newline="", encoding="utf-8") as handle:
            tables.append(("excluded", exclusions_table(list(csv.DictReader(handle)))))
    for stem, table in tables:
        table.write(table_dir, stem)

    figure_list = []
    for metric in metric_names:
        if metric.startswith("eer"):
            out = figs.plot_metric_vs_layer(
                metrics,
                metric,
                figure_dir / f"eer_vs_layer_{metric[4:]}.png",
                note=note,
            )
            figure_list.append((f"{METRIC_SPECS[metric].label} vs layer", out))
    for metric in ("stoi", "pesq"):
        if metric in present:
            out = figs.plot_robust_vs_baseline(
                metrics,
                figure_dir / f"fig4_{metric}_robust_vs_baseline.png",
                metric=metric,
                note=note,
            )
            label = "Figure 4: " if metric == "stoi" else ""
            figure_list.append(
                (
                    f"{label}{METRIC_SPECS[metric].label} vs layer, robust vs baseline",
                    out,
                )
            )
    fig3 = figure_dir / "fig3_mel_grid.png"
    if (results_dir / FIGURE3_MELS).is_file():
        mels, refs, fig_title = load_figure3_mels(results_dir / FIGURE3_MELS)
        out = figs.plot_mel_grid(mels, fig3, refs, fig_title)
    else:
        out = figure3_from_samples(samples, fig3, info) if samples else None
    if out is not None:
        figure_list.append(
            ("Figure 3: mel spectrograms reconstructed from each layer", out)
        )

    notes = [note] if note else []
    notes.append(
        "Tables as CSV and Markdown are in tables/, figures in figures/. "
        "A dash marks a result that is missing."
    )
    page, _ = write_listening_page(
        results_dir / "report.html",
        samples,
        tables_html=[table.to_html() for _, table in tables],
        figures=figure_list,
        model_info=info,
        title=title,
        notes=notes,
        metric_rows=metrics,
    )
    if verbose:
        print(
            f"report: {page.resolve()}  (open it in a browser: file://{page.resolve()})"
        )
    return page
