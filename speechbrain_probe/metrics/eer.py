"""Equal error rate and minDCF by sorting, of trial lists with integer weights.

The values are identical to :func:`speechbrain.utils.metric_stats.EER` and
:func:`speechbrain.utils.metric_stats.minDCF`, which loop in Python over
thresholds (EER) or build a thresholds x trials matrix (minDCF). Here the
scores are sorted once (:class:`SortedTrials`), false rejections and false
acceptances are cumulative counts, and only the last position of each group
of tied scores is a threshold (a score ``<=`` threshold is rejected, as in
SpeechBrain). Rates are float32 like SpeechBrain's, so the numbers match bit
for bit; ``benchmarks/bench_eer.py`` checks it on 10,000 trials.

A trial of integer weight k counts as k copies of it, and the counts of many
weightings (rows) are evaluated at once: one cumulative sum per row, no sort.
That is what the speaker bootstrap evaluates
(:mod:`speechbrain_probe.metrics.bootstrap`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SortedTrials", "ErrorCounts", "eer", "min_dcf"]


class SortedTrials:
    """A trial list sorted by score once, for the EER and minDCF of many
    integer weightings of its trials (:meth:`errors`).

    Arguments
    ---------
    scores : array-like ``[n]``
        One finite score per trial.
    labels : array-like ``[n]``
        1 (or True) for a same-speaker trial.

    Attributes
    ----------
    pos_at, neg_at : np.ndarray
        The positive and the negative trials (their indices in ``scores``)
        in score order: the order of the weights :meth:`errors` takes.
    thresholds : np.ndarray
        The candidate thresholds (the distinct scores, ascending).

    Example
    -------
    >>> trials = SortedTrials([0.9, 0.2, 0.6, 0.5], [1, 1, 0, 0])
    >>> trials.pos_at.tolist(), trials.neg_at.tolist()
    ([1, 0], [3, 2])
    >>> trials.errors().eer()[0].tolist()
    [0.5]
    >>> trials.errors([[1, 0], [0, 1]], [[1, 1], [1, 1]]).eer()[0].tolist()
    [1.0, 0.0]
    """

    def __init__(self, scores, labels):
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        positive = np.asarray(labels).astype(bool).reshape(-1)
        if positive.shape != s.shape:
            raise ValueError(f"{s.size} scores but {positive.size} labels")
        if not np.isfinite(s).all():
            raise ValueError(
                "scores contain NaN or inf; drop the trials of excluded utterances first"
            )
        if not positive.any() or positive.all():
            raise ValueError(
                f"need at least one positive and one negative score (got "
                f"{int(positive.sum())} positive, {int((~positive).sum())} negative)"
            )
        order = np.argsort(s, kind="stable")
        s, pos = s[order], positive[order]
        self.pos_at, self.neg_at = order[pos], order[~pos]
        last = np.ones(s.size, dtype=bool)
        last[:-1] = s[1:] != s[:-1]
        at = np.flatnonzero(last)
        self.thresholds = s[at]
        #: positives and negatives with a score <= each threshold
        self.pos_below = np.cumsum(pos)[at]
        self.neg_below = at + 1 - self.pos_below

    def errors(self, w_pos=None, w_neg=None) -> ErrorCounts:
        """The error counts of weighted trials at every threshold.

        Arguments
        ---------
        w_pos, w_neg : array-like ``[B, n_pos]`` and ``[B, n_neg]``, optional
            Integer weights of the positive and negative trials in score
            order (:attr:`pos_at`, :attr:`neg_at`), a row per weighting.
            Default: one each (the trial list itself).
        """
        if w_pos is None:
            w_pos = np.ones((1, self.pos_at.size), dtype=np.int32)
            w_neg = np.ones((1, self.neg_at.size), dtype=np.int32)
        return ErrorCounts(
            self,
            np.cumsum(np.atleast_2d(w_pos), axis=1, dtype=np.int32),
            np.cumsum(np.atleast_2d(w_neg), axis=1, dtype=np.int32),
        )


class ErrorCounts:
    """Cumulative weights of the positive and negative trials of
    :class:`SortedTrials` in score order, a row per weighting: each row's
    EER (:meth:`eer`) and minDCF (:meth:`min_dcf`).

    A row without positive or negative weight has no rates: NaN.
    """

    def __init__(self, trials: SortedTrials, cpos: np.ndarray, cneg: np.ndarray):
        self.trials, self.cpos, self.cneg = trials, cpos, cneg
        self.n_pos, self.n_neg = cpos[:, -1:], cneg[:, -1:]

    def rates(self, at: np.ndarray):
        """FRR and FAR (float32) at threshold indices ``at`` ``[B, k]``."""
        kp, kn = self.trials.pos_below[at], self.trials.neg_below[at]
        rejected = np.where(kp > 0, _take(self.cpos, np.maximum(kp - 1, 0)), 0)
        accepted = self.n_neg - np.where(
            kn > 0, _take(self.cneg, np.maximum(kn - 1, 0)), 0
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            return (
                np.divide(rejected, self.n_pos, dtype=np.float32),
                np.divide(accepted, self.n_neg, dtype=np.float32),
            )

    def eer(self):
        """EER of each row, and its threshold index (``[B]`` each).

        ``(FAR + FRR) / 2`` at the first threshold where ``|FAR - FRR|`` is
        smallest. FRR only grows and FAR only falls along the thresholds, so
        that threshold is the last with ``FAR > FRR`` or the next one, found
        by bisection.
        """
        m, rows = self.trials.thresholds.size, self.cpos.shape[0]
        lo, hi = np.zeros((rows, 1), dtype=np.int64), np.full((rows, 1), m)
        while (lo < hi).any():
            mid = (lo + hi) // 2
            frr, far = self.rates(np.minimum(mid, m - 1))
            up = far > frr
            lo, hi = np.where((lo < hi) & up, mid + 1, lo), np.where(up, hi, mid)
        at = np.hstack([np.maximum(lo - 1, 0), np.minimum(lo, m - 1)])
        frr, far = (r.astype(np.float64) for r in self.rates(at))
        gap = np.abs(far - frr)
        gap[:, 0][lo[:, 0] == 0] = np.inf
        gap[:, 1][lo[:, 0] == m] = np.inf
        pick = (gap[:, 1] < gap[:, 0]).astype(int)[:, None]
        value = np.take_along_axis((far + frr) / 2, pick, axis=1)[:, 0]
        return self._valid(value), np.take_along_axis(at, pick, axis=1)[:, 0]

    def min_dcf(self, c_miss=1.0, c_fa=1.0, p_target=0.01):
        """Minimum detection cost of each row, and its threshold index."""
        every = np.arange(self.trials.thresholds.size)[None, :]
        p_miss, p_fa = self.rates(every)
        cost = c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target)
        at = np.argmin(cost, axis=1)
        value = np.take_along_axis(cost, at[:, None], axis=1)[:, 0]
        return self._valid(value.astype(np.float64)), at

    def _valid(self, value: np.ndarray) -> np.ndarray:
        value[(self.n_pos[:, 0] <= 0) | (self.n_neg[:, 0] <= 0)] = np.nan
        return value


def _take(cumulative: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``cumulative[row, at[row, j]]`` for every row (``at`` of one row
    broadcasts to all)."""
    return np.take_along_axis(
        cumulative, np.broadcast_to(at, (cumulative.shape[0], at.shape[1])), axis=1
    )


def _trials(positive_scores, negative_scores) -> SortedTrials:
    pos = np.asarray(positive_scores, dtype=np.float64).reshape(-1)
    neg = np.asarray(negative_scores, dtype=np.float64).reshape(-1)
    labels = np.r_[np.ones(pos.size, dtype=bool), np.zeros(neg.size, dtype=bool)]
    return SortedTrials(np.r_[pos, neg], labels)


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
    trials = _trials(positive_scores, negative_scores)
    value, at = trials.errors().eer()
    return float(value[0]), float(trials.thresholds[at[0]])


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
    trials = _trials(positive_scores, negative_scores)
    value, at = trials.errors().min_dcf(c_miss, c_fa, p_target)
    return float(value[0]), float(trials.thresholds[at[0]])
