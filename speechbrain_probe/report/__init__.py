"""Tables, figures and the listening page of an evaluation's results.

``build_report(results_dir)`` (or ``python -m speechbrain_probe.report
<results_dir>``) turns ``metrics.csv``, ``asr_results.csv`` and ``samples.csv``
into the paper's Table 1 and Table 2 layouts (CSV and Markdown), its figures
(PNG) and a self-contained ``report.html``.
"""

from speechbrain_probe.report.build import build_report
from speechbrain_probe.report.figures import (
    plot_mel_grid,
    plot_metric_vs_layer,
    plot_robust_vs_baseline,
)
from speechbrain_probe.report.html import write_listening_page
from speechbrain_probe.report.tables import MISSING, Table, table1, table2

__all__ = [
    "build_report",
    "plot_mel_grid",
    "plot_metric_vs_layer",
    "plot_robust_vs_baseline",
    "write_listening_page",
    "MISSING",
    "Table",
    "table1",
    "table2",
]
