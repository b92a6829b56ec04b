"""Tables, figures and the listening page of an evaluation's results.

``build_report(results_dir)`` (or ``python -m speechbrain_probe.report
<results_dir>``) turns ``metrics.csv``, ``asr_results.csv`` and ``samples.csv``
into the paper's Table 1 and Table 2 layouts (CSV and Markdown), its figures
(PNG) and a self-contained ``report.html``; a study of other models than the
paper's (``study.json``) gets tables and figures of its own models, layers
and conditions.
"""

from speechbrain_probe.report.build import build_report
from speechbrain_probe.report.figures import (
    plot_layer_curves,
    plot_mel_grid,
    plot_metric_vs_layer,
    plot_robust_vs_baseline,
)
from speechbrain_probe.report.html import write_listening_page
from speechbrain_probe.report.result_tables import layer_tables, table1, table2
from speechbrain_probe.report.table import MISSING, Table

__all__ = [
    "build_report",
    "plot_layer_curves",
    "plot_mel_grid",
    "plot_metric_vs_layer",
    "plot_robust_vs_baseline",
    "write_listening_page",
    "MISSING",
    "Table",
    "table1",
    "table2",
    "layer_tables",
]
