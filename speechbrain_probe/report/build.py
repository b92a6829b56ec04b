"""Build the whole report of an evaluation from its results folder.

``build_report(results_dir)`` reads ``metrics.csv``, ``asr_results.csv`` and
``samples.csv`` (whichever exist; formats and units in
:mod:`speechbrain_probe.study_data`) and writes, inside the
same folder:

* ``tables/table1_asr.{csv,md}`` and ``tables/table2_<metric>.{csv,md}``
  (and ``tables/excluded.{csv,md}``, counts of the exclusion record
  ``excluded.csv`` (``utt_id,metric,reason``) when the evaluation wrote one);
* ``figures/eer_vs_layer_<verifier>.png``, ``figures/fig4_<metric>_robust_vs_baseline.png``
  and ``figures/fig3_mel_grid.png`` (from ``figure3_mels.npz``);
* ``report.html``, the listening page with the tables and figures.

Running it again rewrites the same files (atomically), so it is safe to call
after every finished evaluation step.

Figure 3 shows the probe mels the evaluation saved in ``figure3_mels.npz``
(:func:`~speechbrain_probe.study_data.save_figure3_mels`); without that file
the report has no Figure 3 (it never recomputes mels from the wavs).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from speechbrain_probe.report import figures as figs
from speechbrain_probe.report.html import write_listening_page
from speechbrain_probe.report.tables import (
    METRIC_SPECS,
    exclusions_table,
    table1,
    table2,
)
from speechbrain_probe.study_data import (
    FIGURE3_MELS,
    load_figure3_mels,
    read_asr_results,
    read_metrics,
    read_samples,
)

__all__ = ["build_report"]


def _model_info(*row_lists):
    info = {}
    for rows in row_lists:
        for r in rows:
            if r.model and r.arch:
                info.setdefault(r.model, (r.arch, r.training))
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
    # absolute: the page resolves a relative figure path against its own folder
    table_dir, figure_dir = results_dir / "tables", results_dir.resolve() / "figures"

    tables = []
    if asr:
        tables.append(("table1_asr", table1(asr)))
    present = {r.metric for r in metrics}
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
