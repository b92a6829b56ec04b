"""Build the whole report of an evaluation from its results folder.

``build_report(results_dir)`` reads ``metrics.csv``, ``asr_results.csv`` and
``samples.csv`` (whichever exist; formats and units in
:mod:`speechbrain_probe.result_rows`) and ``study.json``, what the study ran
(:class:`~speechbrain_probe.study_info.StudyInfo`; an older folder without it
is described from its rows, :func:`~speechbrain_probe.study_info.infer_study_info`),
and writes, inside the same folder:

* ``tables/table1_asr.{csv,md}``; for a study of the paper's models
  (:meth:`~speechbrain_probe.study_info.StudyInfo.is_paper_layout`)
  ``tables/table2_<metric>.{csv,md}`` in the paper's Table 2 layout, for any
  other study ``tables/layers_<metric>[_<model>].{csv,md}``
  (:func:`~speechbrain_probe.report.result_tables.layer_tables`: only the models,
  layers and conditions it has, layers in each model's order); and
  ``tables/excluded.{csv,md}``, counts of the exclusion record
  ``excluded.csv`` (``utt_id,metric,reason``) when the evaluation wrote one;
* ``figures/eer_vs_layer_<verifier>.png`` (any study also
  ``figures/<stoi|pesq>_vs_layer.png``),
  ``figures/fig4_<metric>_robust_vs_baseline.png`` (only with robust and
  baseline models of one architecture) and ``figures/fig3_mel_grid.png``
  (from ``figure3_mels.npz``);
* from ``paired.csv`` and ``claims.csv`` (the paired robust - baseline
  statistics and the verdicts on the paper's claims, which the evaluation
  writes), ``tables/claims*.{csv,md}``, ``tables/paired_<metric>.{csv,md}``
  and ``figures/paired_eer_robust_minus_baseline.png``
  (:mod:`speechbrain_probe.report.paired_section`); a folder without them
  gets a one-line note instead;
* ``report.html``, the listening page with the tables and figures, which
  links every file relative to itself (the folder can be moved).

Running it again rewrites the same files (atomically), so it is safe to call
after every finished evaluation step.

Figure 3 shows the probe mels the evaluation saved in ``figure3_mels.npz``
(:func:`~speechbrain_probe.result_rows.save_figure3_mels`); without that file
the report has no Figure 3 (it never recomputes mels from the wavs).
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from speechbrain_probe.report import figures as figs
from speechbrain_probe.report.html import write_listening_page
from speechbrain_probe.report.paired_section import paired_section
from speechbrain_probe.report.result_tables import (
    exclusions_table,
    layer_tables,
    table1,
    table2,
)
from speechbrain_probe.report.table import METRIC_SPECS
from speechbrain_probe.result_rows import (
    FIGURE3_MELS,
    load_figure3_mels,
    read_asr_results,
    read_metrics,
    read_samples,
)
from speechbrain_probe.study_info import (
    STUDY_INFO,
    VOCODER_NAMES,
    StudyInfo,
    StudyModel,
    infer_study_info,
    read_study_info,
)
from speechbrain_probe.vocabulary import condition_sort_key

__all__ = ["build_report", "study_info"]


def study_info(results_dir, metric_rows=(), sample_rows=()) -> StudyInfo:
    """What the study in ``results_dir`` ran: its ``study.json``, completed by
    any model, layer or condition that only the rows have (so nothing found
    is dropped); without ``study.json``, inferred from the rows.

    Example
    -------
    >>> from speechbrain_probe.result_rows import MetricRow
    >>> from speechbrain_probe.study_info import write_study_info
    >>> tmp = getfixture("tmp_path")
    >>> _ = write_study_info(tmp / "study.json",
    ...     StudyInfo([StudyModel("w", ("cnn", "layer1"), source="hub/w")], ["clean"]))
    >>> rows = [MetricRow("w", "", "", "layer2", "snr5", "stoi", 0.5)]
    >>> info = study_info(tmp, rows)
    >>> info.models[0].layers, info.models[0].source, info.conditions
    (('cnn', 'layer1', 'layer2'), 'hub/w', ('clean', 'snr5'))
    """
    found = infer_study_info(metric_rows, sample_rows)
    path = Path(results_dir) / STUDY_INFO
    if not path.is_file():
        return found
    info = read_study_info(path)
    inferred = {m.name: m for m in found.models}
    models = []
    for m in info.models:
        extra = [x for x in inferred.pop(m.name, m).layers if x not in m.layers]
        models.append(
            StudyModel(
                m.name, m.layers + tuple(extra), m.arch, m.training, m.source, m.label
            )
        )
    models += inferred.values()
    conditions = list(info.conditions)
    conditions += sorted(
        set(found.conditions) - set(conditions), key=condition_sort_key
    )
    verifiers = list(info.verifiers)
    verifiers += [v for v in found.verifiers if v not in verifiers]
    return StudyInfo(tuple(models), tuple(conditions), tuple(verifiers), info.vocoder)


def _paper_layout(info: StudyInfo) -> bool:
    """The paper's Table 2 / Figure 4 layouts fit: paper models only, one per
    (architecture, training)."""
    pairs = [(m.arch, m.training) for m in info.models]
    return info.is_paper_layout() and len(pairs) == len(set(pairs))


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
    >>> from speechbrain_probe.result_rows import MetricRow, write_metrics
    >>> tmp = getfixture("tmp_path")
    >>> _ = write_metrics(tmp / "metrics.csv", [MetricRow(
    ...     "w", "", "", layer, "clean", "stoi", 0.9) for layer in ("cnn", "l1")])
    >>> page = build_report(tmp, verbose=False)
    >>> page.name, sorted(p.name for p in (tmp / "tables").iterdir())
    ('report.html', ['layers_stoi.csv', 'layers_stoi.md'])
    """
    results_dir = Path(results_dir)
    # matplotlib logs every font it scores at DEBUG level (into an experiment log)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    metrics, asr, samples = _read_results(results_dir)
    info = study_info(results_dir, metrics, samples)
    paper = _paper_layout(info)
    # absolute: the page links each figure relative to itself, wherever the
    # caller's current folder is
    table_dir, figure_dir = results_dir / "tables", results_dir.resolve() / "figures"
    present = {r.metric for r in metrics}
    metric_names = [m for m in METRIC_SPECS if m in present and m not in ("wer", "cer")]
    metric_names += sorted(present - set(METRIC_SPECS))
    tables = _tables(results_dir, metrics, asr, info, paper, metric_names)
    for stem, table in tables:
        table.write(table_dir, stem)
    figure_list = _layer_figures(metrics, info, paper, metric_names, figure_dir, note)
    sections, paired_figures = paired_section(results_dir, table_dir, figure_dir, note)
    figure_list += paired_figures
    figure_list += _mel_grid(results_dir, info, paper, figure_dir)
    page, _ = write_listening_page(
        results_dir / "report.html",
        samples,
        tables_html=[table.to_html() for _, table in tables],
        figures=figure_list,
        model_info=info,
        title=title,
        notes=_page_notes(info, paper, note),
        metric_rows=metrics,
        conditions=info.conditions,
        sections=sections,
    )
    if verbose:
        print(
            f"report: {page.resolve()}  (open it in a browser: file://{page.resolve()})"
        )
    return page


def _read_results(results_dir: Path) -> tuple[list, list, list]:
    """The rows of ``metrics.csv``, ``asr_results.csv`` and ``samples.csv``
    (none for a file that does not exist; at least one must)."""
    if not results_dir.is_dir():
        raise FileNotFoundError(
            f"results folder {results_dir} does not exist; pass the folder the "
            "evaluation wrote metrics.csv / asr_results.csv / samples.csv into"
        )
    readers = {
        "metrics.csv": read_metrics,
        "asr_results.csv": read_asr_results,
        "samples.csv": read_samples,
    }
    if not any((results_dir / name).is_file() for name in readers):
        raise FileNotFoundError(
            f"no result files in {results_dir}: expected metrics.csv, asr_results.csv "
            "and/or samples.csv (run the evaluation recipe first)"
        )
    return tuple(
        read(results_dir / name) if (results_dir / name).is_file() else []
        for name, read in readers.items()
    )


def _tables(results_dir, metrics, asr, info, paper, metric_names) -> list:
    """(file stem, Table) of Table 1, each metric's layout and the exclusions."""
    tables = [("table1_asr", table1(asr, info=info))] if asr else []
    for metric in metric_names:
        if paper:
            tables.append((f"table2_{metric}", table2(metrics, metric)))
        else:
            for suffix, table in layer_tables(metrics, metric, info):
                tables.append((f"layers_{metric}{suffix}", table))
    excluded = results_dir / "excluded.csv"
    if excluded.is_file():
        with open(excluded, newline="", encoding="utf-8") as handle:
            tables.append(("excluded", exclusions_table(list(csv.DictReader(handle)))))
    return tables


def _layer_figures(metrics, info, paper, metric_names, figure_dir, note) -> list:
    """(caption, PNG) of each metric against layer, and of Figure 4 where the
    study has robust and baseline models of one architecture."""
    figure_list = []
    pairs = info.robust_baseline_archs()
    for metric in metric_names:
        is_eer = metric.startswith("eer")
        # STOI/PESQ vs layer: Figure 4 shows them where robust/baseline pairs exist
        if not is_eer and ((paper and pairs) or metric not in ("stoi", "pesq")):
            continue
        name = f"eer_vs_layer_{metric[4:]}.png" if is_eer else f"{metric}_vs_layer.png"
        if paper:
            out = figs.plot_metric_vs_layer(
                metrics, metric, figure_dir / name, note=note
            )
        else:
            out = figs.plot_layer_curves(metrics, metric, figure_dir / name, info, note)
        figure_list.append((f"{METRIC_SPECS[metric].label} vs layer", out))
    if not pairs:
        return figure_list
    names = {m.name for models in pairs.values() for m in models}
    pair_rows = (
        metrics if paper else [r for r in metrics if r.model in names or not r.model]
    )
    order = None if paper else {a: models[0].layers for a, models in pairs.items()}
    for metric in ("stoi", "pesq"):
        if metric in metric_names:
            out = figs.plot_robust_vs_baseline(
                pair_rows,
                figure_dir / f"fig4_{metric}_robust_vs_baseline.png",
                metric=metric,
                note=note,
                layers=order,
            )
            label = "Figure 4: " if metric == "stoi" else ""
            caption = f"{METRIC_SPECS[metric].label} vs layer, robust vs baseline"
            figure_list.append((label + caption, out))
    return figure_list


def _mel_grid(results_dir, info, paper, figure_dir) -> list:
    """(caption, PNG) of Figure 3, from ``figure3_mels.npz`` (if any)."""
    if not (results_dir / FIGURE3_MELS).is_file():
        return []
    mels, refs, fig_title = load_figure3_mels(results_dir / FIGURE3_MELS)
    order = None
    if not paper:
        order = [
            key
            for m in info.models
            for layer in m.layers
            for key in (f"{m.arch}:{layer}", f"{m.name}:{layer}", layer)
        ]
    out = figs.plot_mel_grid(
        mels, figure_dir / "fig3_mel_grid.png", refs, fig_title, order=order
    )
    return [("Figure 3: mel spectrograms reconstructed from each layer", out)]


def _page_notes(info, paper, note) -> list[str]:
    notes = [note] if note else []
    if not paper and info.models:
        notes.append(
            "Models: "
            + "; ".join(
                m.label
                + (f" ({m.source})" if m.source else "")
                + f", {len(m.layers)} probed layers"
                for m in info.models
            )
            + "."
        )
    if info.vocoder:
        notes.append(
            f"Audio (copy synthesis and every layer's reconstruction) made by "
            f"{VOCODER_NAMES[info.vocoder]}."
        )
    notes.append(
        "Tables as CSV and Markdown are in tables/, figures in figures/. "
        "A dash marks a result that is missing."
    )
    return notes
