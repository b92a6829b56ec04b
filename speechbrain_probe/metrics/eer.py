"""Equal error rate and minDCF by sorting, with bootstrap intervals.

The values are identical to :func:`speechbrain.utils.metric_stats.EER` and
:func:`speechbrain.utils.metric_stats.minDCF`, which loop in Python over
thresholds (EER) or build a thresholds x trials matrix (minDCF). Here every
threshold is evaluated at once: the scores are sorted, false rejections and
false acceptances are cumulative counts, and only the last position of each
group of tied scores is a threshold (a score ``<=`` threshold is rejected, as
in SpeechBrain). Rates are float32 like SpeechBrain's, so the numbers match
bit for bit; ``benchmarks/bench_eer.py`` checks it on 10,000 trials.

The same sorted evaluation runs on a whole matrix of bootstrap resamples, so a
95% interval of 1,000 resamples costs about as much as one sort of the matrix.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["eer", "min_dcf", "bootstrap_ci", "verification_metrics"]


def _as_tensor(scores) -> torch.Tensor:
    t = torch.as_tensor(
        np.asarray(scores, dtype=np.float64) if not torch.is_tensor(scores) else scores
    )
    if t.dim() != 1:
        t = t.reshape(-1)
    if not torch.isfinite(t).all():
        raise ValueError(
            "scores contain NaN or inf; drop the trials of excluded utterances first"
        )
    return t


def _check(pos: torch.Tensor, neg: torch.Tensor):
    if pos.numel() == 0 or neg.numel() == 0:
        raise ValueError(
            f"need at least one positive and one negative score "
            f"(got {pos.numel()} positive, {neg.numel()} negative)"
        )


def _rates(scores: torch.Tensor, labels: torch.Tensor, n_pos: int, n_neg: int):
    """FRR, FAR (float32) at every threshold of each row, and a validity mask.

    ``scores`` and ``labels`` are ``[B, n]``; each row is one trial list.
    """
    order = torch.sort(scores, dim=1, stable=True)
    s = order.values
    lab = torch.gather(labels, 1, order.indices)
    cpos = torch.cumsum(lab, dim=1)  # positives <= threshold
    cneg = torch.cumsum(1 - lab, dim=1)  # negatives <= threshold
    last = torch.ones_like(s, dtype=torch.bool)
    last[:, :-1] = s[:, 1:] != s[:, :-1]
    frr = cpos.float() / n_pos
    far = (n_neg - cneg).float() / n_neg
    return s, frr, far, last


def _eer_from_rates(s, frr, far, last):
    gap = (far.double() - frr.double()).abs()
    gap[~last] = float("inf")
    idx = torch.argmin(gap, dim=1, keepdim=True)  # first minimum, as SpeechBrain
    value = (far.gather(1, idx).double() + frr.gather(1, idx).double()) / 2
    return value.squeeze(1), s.gather(1, idx).squeeze(1)


def _dcf_from_rates(s, p_miss, p_fa, last, c_miss, c_fa, p_target):
    c_det = c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target)
    c_det[~last] = float("inf")
    c_min, idx = torch.min(c_det, dim=1, keepdim=True)
    return c_min.squeeze(1).double(), s.gather(1, idx).squeeze(1)


def _eer_rows(scores, labels, n_pos, n_neg):
    return _eer_from_rates(*_rates(scores, labels, n_pos, n_neg))


def _dcf_rows(scores, labels, n_pos, n_neg, c_miss, c_fa, p_target):
    rates = _rates(scores, labels, n_pos, n_neg)
    return _dcf_from_rates(*rates, c_miss, c_fa, p_target)


def _stack(pos: torch.Tensor, neg: torch.Tensor):
    dtype = torch.promote_types(pos.dtype, neg.dtype)
    scores = torch.cat([pos.to(dtype), neg.to(dtype)]).unsqueeze(0)
    labels = torch.cat(
        [
            torch.ones(pos.numel(), dtype=torch.long),
            torch.zeros(neg.numel(), dtype=torch.long),
        ]
    ).unsqueeze(0)
    return scores, labels


def eer(positive_scores, negative_scores) -> tuple[float, float]:
    """Equal error rate (a fraction) and its threshold.

    Same value and threshold as ``speechbrain.utils.metric_stats.EER``.

    Arguments
    ---------
    positive_scores, negative_scores : array-like
        Scores of same-speaker and different-speaker trials.

    Example
    -------
    >>> eer([0.6, 0.7, 0.8, 0.5], [0.4, 0.3, 0.2, 0.1])
    (0.0, 0.4...)
    >>> eer([0.1, 0.9], [0.5, 0.5])[0]
    0.75
    """
    pos, neg = _as_tensor(positive_scores), _as_tensor(negative_scores)
    _check(pos, neg)
    value, thr = _eer_rows(*_stack(pos, neg), pos.numel(), neg.numel())
    return float(value[0]), float(thr[0])


def min_dcf(
    positive_scores, negative_scores, c_miss=1.0, c_fa=1.0, p_target=0.01
) -> tuple[float, float]:
    """Minimum detection cost and its threshold.

    Same value and threshold as ``speechbrain.utils.metric_stats.minDCF``.

    Example
    -------
    >>> min_dcf([0.6, 0.7, 0.8, 0.5], [0.4, 0.3, 0.2, 0.1])
    (0.0, 0.4...)
    """
    pos, neg = _as_tensor(positive_scores), _as_tensor(negative_scores)
    _check(pos, neg)
    value, thr = _dcf_rows(
        *_stack(pos, neg), pos.numel(), neg.numel(), c_miss, c_fa, p_target
    )
    return float(value[0]), float(thr[0])


def bootstrap_ci(
    positive_scores,
    negative_scores,
    metric: str = "eer",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    chunk: int = 100,
    **dcf_kwargs,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the EER or minDCF.

    Positive and negative trials are resampled separately (with replacement),
    so every resample keeps the trial list's balance.

    Arguments
    ---------
    metric : str
        ``"eer"`` or ``"mindcf"``.
    n_boot : int
        Number of resamples.
    alpha : float
        ``1 - alpha`` is the coverage (0.05: a 95% interval).
    seed : int
        Seed of the resampling (the interval is reproducible).
    chunk : int
        Resamples evaluated per batch (bounds memory).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> pos, neg = rng.normal(1, 1, 500), rng.normal(-1, 1, 500)
    >>> lo, hi = bootstrap_ci(pos, neg, n_boot=200)
    >>> bool(lo <= eer(pos, neg)[0] <= hi)
    True
    """
    if metric not in ("eer", "mindcf"):
        raise ValueError(f"unknown metric {metric!r}; use 'eer' or 'mindcf'")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    pos, neg = _as_tensor(positive_scores), _as_tensor(negative_scores)
    _check(pos, neg)
    n_pos, n_neg = pos.numel(), neg.numel()
    scores, labels = _stack(pos, neg)
    # Sort once. A resample only re-weights the trials (how often each one is
    # drawn), so its cumulative counts are weighted cumulative sums over the
    # same order: no sort per resample.
    order = torch.sort(scores[0], stable=True)
    s = order.values.unsqueeze(0)
    lab = labels[0][order.indices]
    last = torch.ones_like(s, dtype=torch.bool)
    last[:, :-1] = s[:, 1:] != s[:, :-1]
    where = torch.empty_like(order.indices)
    where[order.indices] = torch.arange(where.numel())
    pos_at, neg_at = where[:n_pos], where[n_pos:]
    dcf = _dcf_defaults(dcf_kwargs)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        weights = torch.zeros(b, n_pos + n_neg, dtype=torch.long)
        for at, n in ((pos_at, n_pos), (neg_at, n_neg)):
            draws = torch.randint(0, n, (b, n), generator=gen)
            counts = torch.zeros(b, n, dtype=torch.long)
            counts.scatter_add_(1, draws, torch.ones_like(draws))
            weights[:, at] = counts
        cpos = torch.cumsum(weights * lab, dim=1)
        cneg = torch.cumsum(weights * (1 - lab), dim=1)
        frr = cpos.float() / n_pos
        far = (n_neg - cneg).float() / n_neg
        rows = s.expand(b, -1), frr, far, last.expand(b, -1).clone()
        if metric == "eer":
            v, _ = _eer_from_rates(*rows)
        else:
            v, _ = _dcf_from_rates(*rows, **dcf)
        values.append(v)
    values = torch.cat(values).numpy()
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _dcf_defaults(kwargs: dict) -> dict:
    out = {"c_miss": 1.0, "c_fa": 1.0, "p_target": 0.01}
    unknown = set(kwargs) - set(out)
    if unknown:
        raise ValueError(
            f"unknown minDCF setting(s) {sorted(unknown)}; known: {sorted(out)}"
        )
    out.update(kwargs)
    return out


def verification_metrics(
    scores, labels, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict:
    """EER and minDCF with bootstrap intervals from trial scores and labels.

    Arguments
    ---------
    scores : array-like
        One score per trial.
    labels : array-like
        1 for a same-speaker trial, 0 otherwise.

    Returns
    -------
    dict
        ``{"eer": (value, low, high), "mindcf": (value, low, high), "n": trials}``
        (EER as a fraction).

    Example
    -------
    >>> out = verification_metrics([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0], n_boot=10)
    >>> out["eer"][0], out["n"]
    (0.0, 4)
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if scores.shape != labels.shape:
        raise ValueError(
            f"{scores.shape[0]} scores but {labels.shape[0]} labels; one label per trial"
        )
    if not set(np.unique(labels)) <= {0, 1}:
        raise ValueError("labels must be 1 (same speaker) or 0 (different speakers)")
    pos, neg = scores[labels == 1], scores[labels == 0]
    out = {"n": int(scores.shape[0])}
    e, _ = eer(pos, neg)
    out["eer"] = (e, *bootstrap_ci(pos, neg, "eer", n_boot, alpha, seed))
    d, _ = min_dcf(pos, neg)
    out["mindcf"] = (d, *bootstrap_ci(pos, neg, "mindcf", n_boot, alpha, seed))
    return out
