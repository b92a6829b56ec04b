"""Human error rate (HER) per layer, with a 95% interval, beside the EER.

The HER of a (model, condition, layer) cell is the share of wrong ABX answers
over all raters' trials of that cell. Its interval is Wilson's score interval,
which treats the answers as independent; with few raters, rater differences make
the true uncertainty larger than that. The figure puts the HER next to the
speaker verification EER of the same layers from the evaluation's
``metrics.csv`` (the paper's Figure 2).

``without_audio`` counts the answers of a cell whose rater had not fetched all
three recordings (A, B and X) of the trial when answering (the rater page plays
them all first; a scripted client need not). Answers stored before this was
recorded are not counted.
"""

from __future__ import annotations

import csv
import io
import math
import os

from speechbrain_probe.result_rows import read_metrics
from speechbrain_probe.vocabulary import layer_sort_key

__all__ = [
    "wilson_interval",
    "her_table",
    "read_eer",
    "merge_eer",
    "her_csv",
    "answers_csv",
    "figure_png",
    "without_audio",
]

_CELL = ("model", "condition", "layer")
#: Columns of ``her.csv``.
HER_FIELDS = (
    _CELL
    + ("n", "errors", "raters", "her", "ci_low", "ci_high")
    + ("eer_metric", "eer", "eer_ci_low", "eer_ci_high", "without_audio")
)
#: Columns of ``answers.csv``.
ANSWER_FIELDS = (
    _CELL
    + ("rater_id", "trial_id", "answer", "correct", "response_ms")
    + ("answered_at", "audio_fetched")
)


def wilson_interval(
    errors: int, n: int, z: float = 1.959963984540054
) -> tuple[float, float]:
    """Wilson score interval of a proportion ``errors / n`` (95% by default).

    Example
    -------
    >>> lo, hi = wilson_interval(5, 10)
    >>> round(lo, 3), round(hi, 3)
    (0.237, 0.763)
    >>> wilson_interval(0, 20)[0]
    0.0
    """
    if n <= 0:
        raise ValueError("a proportion needs n >= 1 answers")
    if not 0 <= errors <= n:
        raise ValueError(f"errors must lie in [0, n]; got {errors} of {n}")
    p = errors / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact at the ends (the formula gives 0 and 1 there, up to rounding)
    low = 0.0 if errors == 0 else max(0.0, centre - half)
    high = 1.0 if errors == n else min(1.0, centre + half)
    return low, high


def her_table(answers: list[dict]) -> list[dict]:
    """HER per (model, condition, layer) from answer rows with a ``correct`` field.

    Example
    -------
    >>> rows = [dict(model="m", condition="clean", layer="cnn1", rater_id="r", correct=c)
    ...         for c in (1, 1, 1, 0)]
    >>> t = her_table(rows)[0]
    >>> t["n"], t["errors"], t["her"], t["without_audio"]
    (4, 1, 0.25, 0)
    """
    cells: dict[tuple, dict] = {}
    for row in answers:
        cell = cells.setdefault(
            tuple(row[c] for c in _CELL),
            {"n": 0, "errors": 0, "raters": set(), "without_audio": 0},
        )
        cell["n"] += 1
        cell["errors"] += 1 - int(row["correct"])
        cell["raters"].add(row["rater_id"])
        cell["without_audio"] += int(without_audio(row))
    table = []
    for key in sorted(cells, key=lambda k: (k[0], k[1], layer_sort_key(k[2]))):
        cell = cells[key]
        low, high = wilson_interval(cell["errors"], cell["n"])
        her = cell["errors"] / cell["n"]
        table.append(
            {**dict(zip(_CELL, key)), **cell, "raters": len(cell["raters"])}
            | {"her": her, "ci_low": low, "ci_high": high}
        )
    return table


def without_audio(answer: dict) -> bool:
    """True when an answer row says its rater had not fetched all of A, B and X
    (False when it does not say: answers stored before this was recorded).

    Example
    -------
    >>> [without_audio({"audio_fetched": f}) for f in ("ABX", "AX", "", None)]
    [False, True, True, False]
    """
    fetched = answer.get("audio_fetched")
    return fetched is not None and set(fetched) != {"A", "B", "X"}


def read_eer(
    metrics_csv: str | os.PathLike, metric: str = "eer_ge2e"
) -> dict[tuple[str, str, str], tuple[float | None, float | None, float | None]]:
    """EER of each (model, condition, layer) from the evaluation's ``metrics.csv``.

    Values are fractions, as the file holds them (see
    :mod:`speechbrain_probe.result_rows`); a missing number is ``None``.

    Example
    -------
    >>> p = getfixture("tmp_path") / "metrics.csv"
    >>> _ = p.write_text("model,arch,training,layer,condition,metric,value,ci_low,ci_high,n\\n"
    ...     "m,blstm,baseline,cnn1,clean,eer_ge2e,0.045,0.03,0.06,100\\n")
    >>> read_eer(p)[("m", "clean", "cnn1")]
    (0.045, 0.03, 0.06)
    """
    rows = [r for r in read_metrics(metrics_csv) if r.metric == metric]
    if not rows:
        raise ValueError(f"{metrics_csv} has no rows of metric {metric!r}")
    return {
        (r.model, r.condition, r.layer): (r.value, r.ci_low, r.ci_high) for r in rows
    }


def merge_eer(table: list[dict], eer: dict | None, metric: str) -> list[dict]:
    """Add ``eer*`` columns (empty where the metrics have no such cell).

    Reference stimuli (``original``, ``copy_synthesis``) have no model in
    ``samples.csv`` (model ``reference`` here) but one row per model in
    ``metrics.csv``; they take the EER of the first model (by name) that has one:
    the audio, and so the EER, is the same for every model.

    Example
    -------
    >>> t = her_table([dict(model="reference", condition="clean", layer="original",
    ...                     rater_id="r", correct=1)])
    >>> eer = {("vgg", "clean", "original"): (0.03, 0.02, 0.04)}
    >>> merge_eer(t, eer, "eer_ge2e")[0]["eer"]
    0.03
    """
    eer = eer or {}
    out = []
    for row in table:
        row = dict(row)
        value = eer.get((row["model"], row["condition"], row["layer"]))
        if value is None and row["model"] == "reference":
            same = sorted(k for k in eer if k[1:] == (row["condition"], row["layer"]))
            value = eer[same[0]] if same else None
        row["eer_metric"] = metric if value else ""
        row["eer"], row["eer_ci_low"], row["eer_ci_high"] = value or ("", "", "")
        out.append(row)
    return out


def _csv(rows: list[dict], fields: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(
        {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
        for row in rows
    )
    return buf.getvalue()


def her_csv(table: list[dict]) -> str:
    """The text of ``her.csv``: the HER table (columns ``HER_FIELDS``).

    Example
    -------
    >>> t = her_table([dict(model="m", condition="c", layer="l", rater_id="r", correct=0)])
    >>> her_csv(merge_eer(t, None, "eer_ge2e")).splitlines()[1]
    'm,c,l,1,1,1,1.0,0.206549,1.0,,,,,0'
    """
    return _csv(table, HER_FIELDS)


def answers_csv(answers: list[dict]) -> str:
    """The text of ``answers.csv``: one row per answer, for analyses beyond HER.

    Example
    -------
    >>> rows = [dict(model="m", condition="c", layer="l", rater_id="r", trial_id="t",
    ...              answer="A", correct=1, response_ms=800, answered_at=1.5,
    ...              audio_fetched="ABX")]
    >>> answers_csv(rows).splitlines()[1]
    'm,c,l,r,t,A,1,800,1.5,ABX'
    """
    return _csv(answers, ANSWER_FIELDS)


def figure_png(table: list[dict]) -> bytes:
    """HER (and EER where known) in percent against layer, one panel per
    (model, condition), as the paper's Figure 2: a PNG.

    Example
    -------
    >>> t = her_table([dict(model="m", condition="c", layer=l, rater_id="r", correct=c)
    ...                for l, c in (("cnn1", 1), ("blstm1", 0))])
    >>> figure_png(merge_eer(t, None, "eer_ge2e"))[:4]
    b'\x89PNG'
    """
    # The object API without pyplot: safe inside a multi-threaded server.
    from matplotlib.figure import Figure

    if not table:
        raise ValueError("no answers yet: nothing to plot")
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in table:
        groups.setdefault((row["model"], row["condition"]), []).append(row)
    n = len(groups)
    cols = min(n, 3)
    rows_n = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 3.3 * rows_n))
    axes = fig.subplots(rows_n, cols, squeeze=False, sharey=True)
    for ax, ((model, condition), rows) in zip(axes.flat, groups.items()):
        rows = sorted(rows, key=lambda r: layer_sort_key(r["layer"]))
        x = list(range(len(rows)))
        her = [100 * r["her"] for r in rows]
        err = [
            [100 * (r["her"] - r["ci_low"]) for r in rows],
            [100 * (r["ci_high"] - r["her"]) for r in rows],
        ]
        ax.errorbar(
            x, her, yerr=err, marker="o", capsize=3, label="HER (human, 95% CI)"
        )
        eer_rows = [(i, r) for i, r in zip(x, rows) if r.get("eer") not in (None, "")]
        if eer_rows:
            metric = eer_rows[0][1].get("eer_metric", "EER")
            ax.plot(
                [i for i, _ in eer_rows],
                [100 * r["eer"] for _, r in eer_rows],
                marker="s",
                linestyle="--",
                label=f"EER ({metric})",
            )
        ax.axhline(50, color="grey", linewidth=0.8, linestyle=":", label="chance")
        ax.set_xticks(x)
        ax.set_xticklabels([r["layer"] for r in rows], rotation=30)
        ax.set_ylim(0, 100)
        ax.set_title(f"{model}, {condition}", fontsize=10)
        ax.set_ylabel("error rate (%)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()
