"""The speaker bootstrap: every 95% interval the project prints.

Trials and utterances of one speaker are not independent (one hard speaker
makes many errors), so an interval that resamples trials or utterances is
too narrow. Every interval here resamples **speakers**: a resample draws the
speakers with replacement (as many draws as speakers) and weights each item
by how often its speakers were drawn:

* an utterance of speaker s, and a same-speaker trial of s, by ``c_s``;
* a different-speaker trial of s and t by ``c_s * c_t``.

This is the trial list of a corpus made of the drawn speakers: each copy of
a speaker brings its own utterances and same-speaker trials, and each pair
of copies of two speakers the trials between them (the "subsets bootstrap"
of biometric error rates, Bolle, Ratha and Pankanti 2004); a speaker drawn
twice is not paired with itself as an impostor. The EER and minDCF normalise
each class by its own total weight, so that negatives grow with the square
of the counts and positives linearly changes nothing but the resampling.
The interval is the 2.5 and 97.5 percentiles of the resampled values.

One cell (:func:`verification_metrics`: EER and minDCF; :func:`mean_interval`:
mean STOI or PESQ) and two cells paired on the same items
(:func:`paired_eer`, :func:`paired_mean`: the difference of the two cells'
values under the same weights) are the same resampling, and a seed draws the
same speakers wherever the speakers are the same.

Weights are integer counts and the EER and minDCF of a weighted trial list
are cumulative sums over scores sorted once
(:class:`~speechbrain_probe.metrics.eer.SortedTrials`), so 1,000 resamples of
10,000 trials cost a fraction of a second (``benchmarks/bench_eer.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechbrain_probe.metrics.eer import ErrorCounts, SortedTrials

__all__ = [
    "PairedDiff",
    "verification_metrics",
    "mean_interval",
    "paired_eer",
    "paired_mean",
]

_CHUNK_ELEMENTS = 2_000_000  # bootstrap rows x items evaluated at once


@dataclass(frozen=True)
class PairedDiff:
    """A paired difference ``b - a`` with its percentile-bootstrap interval.

    Attributes
    ----------
    a, b : float
        The metric of each cell on the common items.
    diff : float
        ``b - a``.
    low, high : float or None
        The interval (None when no resample could be evaluated).
    n_speakers, n_items : int
        Speakers and items (trials or utterances) scored in both cells.
    """

    a: float
    b: float
    diff: float
    low: float | None
    high: float | None
    n_speakers: int
    n_items: int


def _codes(values) -> tuple[np.ndarray, int]:
    """Integer codes of the distinct values (and how many there are)."""
    unique, codes = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    return codes.reshape(-1), len(unique)


def _interval(values: np.ndarray, alpha: float):
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _speaker_counts(n_speakers: int, n_items: int, n_boot: int, seed: int):
    """How often each speaker is drawn, ``[b, n_speakers]`` int32, in chunks
    of ``b`` resamples (``b`` x ``n_items`` bounded) that add up to ``n_boot``."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    size = max(1, min(n_boot, _CHUNK_ELEMENTS // max(n_items, 1)))
    for start in range(0, n_boot, size):
        b = min(size, n_boot - start)
        draws = rng.integers(0, n_speakers, size=(b, n_speakers))
        draws += (np.arange(b) * n_speakers)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * n_speakers)
        yield counts.reshape(b, n_speakers).astype(np.int32)


class _SpeakerTrials:
    """One cell's trials, weighted by how often their speakers are drawn
    (:meth:`errors`); ``enrol_code``, ``test_code``: speaker numbers."""

    def __init__(self, scores, positive, enrol_code, test_code):
        self.sorted = SortedTrials(scores, positive)
        self.n = scores.size
        self.pos_spk = enrol_code[self.sorted.pos_at]
        self.neg_spk = enrol_code[self.sorted.neg_at], test_code[self.sorted.neg_at]

    def errors(self, counts: np.ndarray) -> ErrorCounts:
        w_neg = np.prod([np.take(counts, spk, axis=1) for spk in self.neg_spk], axis=0)
        return self.sorted.errors(np.take(counts, self.pos_spk, axis=1), w_neg)


def _trial_cells(score_lists, labels, enrol_spk, test_spk):
    """A :class:`_SpeakerTrials` per score list, of the trials scored
    (finite) in all of them, and the number of their speakers."""
    arrays = [np.asarray(s, dtype=np.float64) for s in score_lists]
    arrays += [np.asarray(x) for x in (labels, enrol_spk, test_spk)]
    if len({x.shape for x in arrays}) != 1:
        sizes = ", ".join(str(x.size) for x in arrays)
        raise ValueError(
            f"scores, labels and speakers need one entry per trial ({sizes})"
        )
    *scores, positive, enrol, test = arrays
    keep = np.logical_and.reduce([np.isfinite(s) for s in scores])
    codes, n_spk = _codes(np.concatenate([enrol[keep], test[keep]]))
    e_code, t_code = np.split(codes, 2)
    positive = positive[keep].astype(bool)
    cells = [_SpeakerTrials(s[keep], positive, e_code, t_code) for s in scores]
    return cells, n_spk


def verification_metrics(
    scores, labels, enrol_spk, test_spk, n_boot=1000, seed=0, alpha=0.05
) -> dict:
    """EER and minDCF of one cell's trials, with speaker-bootstrap intervals.

    Arguments
    ---------
    scores, labels : array-like ``[n]``
        One score per trial (NaN: the trial was dropped, and is left out);
        1 for a same-speaker trial.
    enrol_spk, test_spk : array-like ``[n]``
        The speakers of each trial's two utterances.
    n_boot, seed, alpha
        Resamples, their seed, and ``1 - coverage``.

    Returns
    -------
    dict
        ``{"eer": (value, low, high), "mindcf": (value, low, high), "n":
        trials, "n_speakers": speakers}`` (EER as a fraction; the values are
        :func:`~speechbrain_probe.metrics.eer.eer`'s and ``min_dcf``'s).

    Example
    -------
    >>> spk = np.repeat(np.arange(8), 4)
    >>> labels = np.tile([1, 1, 0, 0], 8)
    >>> scores = labels + np.linspace(-0.9, 0.9, 32)
    >>> test = np.where(labels == 1, spk, (spk + 1) % 8)
    >>> out = verification_metrics(scores, labels, spk, test, n_boot=200)
    >>> out["eer"][0], out["n"], out["n_speakers"]
    (0.25, 32, 8)
    >>> bool(out["eer"][1] <= out["eer"][0] <= out["eer"][2])
    True
    """
    (cell,), n_spk = _trial_cells([scores], labels, enrol_spk, test_spk)
    eers, dcfs = [], []
    for counts in _speaker_counts(n_spk, cell.n, n_boot, seed):
        errors = cell.errors(counts)
        eers.append(errors.eer()[0])
        dcfs.append(errors.min_dcf()[0])
    point = cell.sorted.errors()
    return {
        "eer": (float(point.eer()[0][0]), *_interval(np.concatenate(eers), alpha)),
        "mindcf": (
            float(point.min_dcf()[0][0]),
            *_interval(np.concatenate(dcfs), alpha),
        ),
        "n": int(cell.n),
        "n_speakers": n_spk,
    }


def paired_eer(
    scores_a, scores_b, labels, enrol_spk, test_spk, n_boot=2000, seed=0, alpha=0.05
) -> PairedDiff:
    """EER of cell b minus EER of cell a on the same trials, paired: both
    cells' EERs under the same speaker weights make one bootstrap value.

    Trials without a finite score in either cell are left out of both.
    Arguments as :func:`verification_metrics`'; 2,000 resamples of 10,000
    trials take well under a second.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> spk = np.repeat(np.arange(20), 10)
    >>> labels = np.tile([1] * 5 + [0] * 5, 20)
    >>> other = (spk + 1) % 20
    >>> a = rng.normal(labels * 1.0, 1.0)
    >>> out = paired_eer(a, a + labels, labels, spk, np.where(labels, spk, other), 500)
    >>> out.diff < 0 and out.high < 0
    True
    """
    cells, n_spk = _trial_cells([scores_a, scores_b], labels, enrol_spk, test_spk)
    value_a, value_b = (float(c.sorted.errors().eer()[0][0]) for c in cells)
    diffs = []
    for counts in _speaker_counts(n_spk, cells[0].n, n_boot, seed):
        eer_a, eer_b = (c.errors(counts).eer()[0] for c in cells)
        diffs.append(eer_b - eer_a)
    low, high = _interval(np.concatenate(diffs), alpha)
    diff = value_b - value_a
    return PairedDiff(value_a, value_b, diff, low, high, n_spk, int(cells[0].n))


def _weighted_means(values: np.ndarray, speakers, n_boot: int, seed: int):
    """The speaker-bootstrap means of per-utterance ``values``, and the
    number of speakers."""
    codes, n_spk = _codes(speakers)
    means = []
    for counts in _speaker_counts(n_spk, values.size, n_boot, seed):
        w = np.take(counts, codes, axis=1)
        means.append((w @ values) / w.sum(axis=1))
    return np.concatenate(means), n_spk


def mean_interval(values, speakers, n_boot=1000, seed=0, alpha=0.05):
    """Mean of per-utterance ``values`` (STOI, PESQ) with a speaker-bootstrap
    interval: ``(mean, low, high)``.

    Example
    -------
    >>> m, lo, hi = mean_interval([0.5, 0.6, 0.7, 0.8], ["a", "a", "b", "b"], 200)
    >>> round(m, 2), (round(lo, 2), round(hi, 2))
    (0.65, (0.55, 0.75))
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0 or x.shape != np.shape(speakers):
        raise ValueError(f"{x.size} values, {np.size(speakers)} speakers: one each")
    return (
        float(x.mean()),
        *_interval(_weighted_means(x, speakers, n_boot, seed)[0], alpha),
    )


def paired_mean(
    values_a, values_b, speakers, n_boot=2000, seed=0, alpha=0.05
) -> PairedDiff:
    """Mean of cell b minus mean of cell a over the same utterances (STOI,
    PESQ), paired: a resample's value is the weighted mean of the
    per-utterance differences.

    Utterances without a finite value in either cell (None, NaN) are left
    out of both.

    Example
    -------
    >>> spk = np.repeat(np.arange(10), 4)
    >>> a = np.linspace(0.5, 0.7, 40)
    >>> out = paired_mean(a, a + 0.05, spk, n_boot=200)
    >>> round(out.diff, 3), round(out.low, 3), round(out.high, 3), out.n_speakers
    (0.05, 0.05, 0.05, 10)
    """
    a = np.asarray(values_a, dtype=np.float64)
    b = np.asarray(values_b, dtype=np.float64)
    spk = np.asarray(speakers)
    if not (a.shape == b.shape == spk.shape):
        raise ValueError(f"{a.size}, {b.size} values and {spk.size} speakers: one each")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b, spk = a[keep], b[keep], spk[keep]
    if a.size == 0:
        raise ValueError("no utterance has a value in both cells")
    means, n_spk = _weighted_means(b - a, spk, n_boot, seed)
    low, high = _interval(means, alpha)
    diff = float((b - a).mean())
    return PairedDiff(float(a.mean()), float(b.mean()), diff, low, high, n_spk, a.size)
