"""Tables, figures and the listening page of an evaluation's results.

``build_report(results_dir)`` (or ``python -m speechbrain_probe.report
<results_dir>``) turns ``metrics.csv``, ``asr_results.csv`` and ``samples.csv``
into the paper's Table 1 and Table 2 layouts (CSV and Markdown), its figures
(PNG) and a self-contained ``report.html``; a study of other models than the
paper's (``study.json``) gets tables and figures of its own models, layers
and conditions.
"""

from speechbrain_probe.report.build import build_report

__all__ = ["build_report"]
