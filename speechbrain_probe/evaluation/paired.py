"""Paired robust-minus-baseline statistics of a study (``paired.csv``).

Each cell of a study stores per-item values (one score per trial of the
study's trial list for every verifier, one STOI and PESQ per utterance;
:mod:`~speechbrain_probe.evaluation.scoring`), and every cell of a study is
scored on the same utterances and trials. So two cells can be compared
*paired*: the difference of a metric between them, with a 95% interval from
one bootstrap that resamples the same items for both cells. The interval of
a difference is then far narrower than the two cells' own intervals suggest,
because what the two cells share (which speakers are easy) cancels.

The bootstrap resamples **speakers**, not trials: trials of one speaker are
correlated (one hard speaker makes many errors), and only resampling the
speakers carries that into the interval (:func:`paired_eer`,
:func:`paired_mean`).

:func:`write_paired_results` writes two files into the study folder
(:mod:`speechbrain_probe.result_rows`): ``paired.csv`` (:func:`paired_table`),
for every architecture with a baseline and a robust model, every layer they
share, every condition and every metric (``eer_<verifier>``, ``stoi``,
``pesq``), robust minus baseline with its interval (EER differences are
fractions, like the EERs); and ``claims.csv``, the verdicts on the paper's
claims (:mod:`speechbrain_probe.evaluation.claims`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechbrain_probe.evaluation.claims import (
    paired_claims,
    robust_baseline_pairs,
    shared_layers,
)
from speechbrain_probe.evaluation.scoring import load_cell
from speechbrain_probe.metrics.trials import load_trials
from speechbrain_probe.result_rows import (
    CLAIMS_CSV,
    PAIRED_CSV,
    ClaimRow,
    PairedRow,
    write_claims,
    write_paired,
)
from speechbrain_probe.study_info import STUDY_INFO, StudyInfo, read_study_info

__all__ = [
    "PairedDiff",
    "weighted_eer",
    "paired_eer",
    "paired_mean",
    "StudyItems",
    "NoPerItemValues",
    "paired_row",
    "paired_table",
    "write_paired_results",
]

_CHUNK_ELEMENTS = 2_000_000  # bootstrap rows x items evaluated at once


# --- the paired bootstrap ------------------------------------------------------


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


class _SortedTrials:
    """One cell's trials sorted by score, ready for weighted EERs of many
    weight rows at once (:meth:`eer`).

    As :func:`speechbrain_probe.metrics.eer.eer`: a score ``<=`` the
    threshold is rejected, only the last of tied scores is a threshold, rates
    are float32, and the EER is ``(FAR + FRR) / 2`` at the first threshold
    where ``|FAR - FRR|`` is smallest. FRR only grows and FAR only falls
    along the sorted scores, so that threshold is one of two: the last with
    ``FAR > FRR`` or the next one, found by bisection. A resample then costs
    one cumulative sum of the positive and one of the negative trials'
    weights, which makes 2,000 resamples of 10,000 trials cheap.
    """

    def __init__(self, scores: np.ndarray, positive: np.ndarray):
        order = np.argsort(scores, kind="stable")
        s, pos = scores[order], positive[order]
        self.pos_at, self.neg_at = order[pos], order[~pos]  # trials, sorted
        last = np.ones(s.size, dtype=bool)
        last[:-1] = s[1:] != s[:-1]
        rejected_pos = np.cumsum(pos)  # positives with a score <= s[i]
        thresholds = np.flatnonzero(last)
        self.pos_below = rejected_pos[thresholds]
        self.neg_below = thresholds + 1 - self.pos_below

    def weights(self, w: np.ndarray):
        """Weights ``[B, n]`` in the trials' order -> (positives, negatives)
        in this cell's score order, as :meth:`eer` takes them."""
        # np.take keeps the rows contiguous (w[:, idx] does not): the
        # cumulative sums along them are then several times faster
        return np.take(w, self.pos_at, axis=1), np.take(w, self.neg_at, axis=1)

    def eer(self, w_pos: np.ndarray, w_neg: np.ndarray) -> np.ndarray:
        """EER of each row of integer weights of the positive ``[B, n_pos]``
        and negative ``[B, n_neg]`` trials in score order (:meth:`weights`);
        NaN for a row without positive or negative weight."""
        cpos = np.cumsum(w_pos, axis=1, dtype=np.int32)
        cneg = np.cumsum(w_neg, axis=1, dtype=np.int32)
        n_pos, n_neg = cpos[:, -1], cneg[:, -1]
        rows = np.arange(cpos.shape[0])

        def rates(j):
            kp, kn = self.pos_below[j], self.neg_below[j]
            fr = np.where(kp > 0, cpos[rows, np.maximum(kp - 1, 0)], 0)
            fa = n_neg - np.where(kn > 0, cneg[rows, np.maximum(kn - 1, 0)], 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                return (
                    np.divide(fr, n_pos, dtype=np.float32),
                    np.divide(fa, n_neg, dtype=np.float32),
                )

        # bisection: how many thresholds have FAR > FRR (a prefix of them)
        m = self.pos_below.size
        lo, hi = np.zeros(rows.size, dtype=np.int64), np.full(rows.size, m)
        while (lo < hi).any():
            mid = (lo + hi) // 2
            frr, far = rates(np.minimum(mid, m - 1))
            up = far > frr
            lo, hi = np.where((lo < hi) & up, mid + 1, lo), np.where(up, hi, mid)
        frr1, far1 = rates(np.maximum(lo - 1, 0))
        frr2, far2 = rates(np.minimum(lo, m - 1))
        gap1 = np.where(lo > 0, np.abs(far1.astype(float) - frr1), np.inf)
        gap2 = np.where(lo < m, np.abs(far2.astype(float) - frr2), np.inf)
        first = gap1 <= gap2
        value = np.where(
            first,
            (far1.astype(float) + frr1.astype(float)) / 2,
            (far2.astype(float) + frr2.astype(float)) / 2,
        )
        value[(n_pos <= 0) | (n_neg <= 0)] = np.nan
        return value


def _counts(rng, n_categories: int, n_draws: int, b: int) -> np.ndarray:
    """How often each of ``n_categories`` comes up in ``n_draws`` uniform
    draws with replacement, for ``b`` resamples: ``[b, n_categories]`` int32."""
    draws = rng.integers(0, n_categories, size=(b, n_draws))
    draws += (np.arange(b) * n_categories)[:, None]
    counts = np.bincount(draws.ravel(), minlength=b * n_categories)
    return counts.reshape(b, n_categories).astype(np.int32)


def weighted_eer(scores, labels, weights=None) -> np.ndarray:
    """EER (a fraction) of trials weighted by ``weights``, one per weight row.

    A trial of weight k counts as k copies of it; weight 0 leaves it out.
    With unit weights it is exactly :func:`speechbrain_probe.metrics.eer.eer`.

    Arguments
    ---------
    scores, labels : array-like ``[n]``
        Trial scores and labels (1: same speaker).
    weights : array-like ``[n]`` or ``[B, n]``, optional
        Default: one each.

    Returns
    -------
    np.ndarray ``[B]``
        NaN for a row without positive or negative weight.

    Example
    -------
    >>> weighted_eer([0.9, 0.2, 0.6, 0.5], [1, 1, 0, 0])
    array([0.5])
    >>> weighted_eer([0.9, 0.2, 0.6, 0.5], [1, 1, 0, 0], [[1, 0, 1, 1], [0, 1, 1, 1]])
    array([0., 1.])
    """
    s = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(labels).astype(bool)
    w = np.ones((1, s.size), dtype=np.int64) if weights is None else np.asarray(weights)
    w = np.atleast_2d(w)
    if w.shape[1] != s.size or positive.shape != s.shape:
        raise ValueError(
            f"{s.size} scores, {positive.size} labels and weights of shape "
            f"{w.shape}: one label and one weight column per trial"
        )
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or inf; leave those trials out")
    if not positive.any() or positive.all():
        raise ValueError("need at least one positive and one negative trial")
    trials = _SortedTrials(s, positive)
    return trials.eer(*trials.weights(w))


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


def _chunks(n_boot: int, n_items: int):
    size = max(1, min(n_boot, _CHUNK_ELEMENTS // max(n_items, 1)))
    for start in range(0, n_boot, size):
        yield min(size, n_boot - start)


def _check_resample(resample: str, n_boot: int) -> None:
    if resample not in ("speakers", "items"):
        raise ValueError(f"resample must be 'speakers' or 'items', got {resample!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def paired_eer(
    scores_a,
    scores_b,
    labels,
    enrol_spk,
    test_spk,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    resample: str = "speakers",
) -> PairedDiff:
    """EER of cell b minus EER of cell a on the same trials, paired bootstrap.

    Trials without a finite score in either cell are left out of both.

    Speaker resampling (the default): each resample draws the trials'
    speakers with replacement (as many draws as speakers) and weights a
    same-speaker trial of speaker s by ``c_s``, the times s was drawn, and a
    different-speaker trial of s and t by ``c_s * c_t``. This is the trial
    list of a corpus made of the drawn speakers: each copy of a speaker
    brings its own same-speaker trials, and each pair of copies of two
    speakers the trials between them (the "subsets bootstrap" of biometric
    error rates, Bolle, Ratha and Pankanti 2004). A speaker drawn twice is
    not paired with itself as an impostor. The EER normalises each class by
    its own total weight, so that negatives grow with the square of the
    counts and positives linearly changes nothing but the resampling. Both
    cells' weighted EERs use the same weights in a resample; their difference
    is one bootstrap value, and the interval is its 2.5 and 97.5 percentiles.

    ``resample="items"`` resamples trials instead (positives and negatives
    separately, as :func:`speechbrain_probe.metrics.eer.bootstrap_ci` does),
    for comparison: it ignores that trials of one speaker are correlated.

    Arguments
    ---------
    scores_a, scores_b : array-like ``[n]``
        One score per trial in each cell (None/NaN: the trial was dropped).
    labels : array-like ``[n]``
        1 for a same-speaker trial.
    enrol_spk, test_spk : array-like ``[n]``
        The speakers of each trial's two utterances.
    n_boot : int
        Resamples (2,000 on 10,000 trials take well under a second).
    seed : int
        Seed of the resampling: the same seed draws the same speakers for
        every pair of cells of a study.
    alpha : float
        ``1 - alpha`` is the coverage.
    resample : str
        ``"speakers"`` or ``"items"``.

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
    _check_resample(resample, n_boot)
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    positive = np.asarray(labels).astype(bool)
    enrol, test = np.asarray(enrol_spk), np.asarray(test_spk)
    if not (a.shape == b.shape == positive.shape == enrol.shape == test.shape):
        raise ValueError(
            "scores_a, scores_b, labels, enrol_spk and test_spk need one entry per "
            f"trial (got {a.size}, {b.size}, {positive.size}, {enrol.size}, {test.size})"
        )
    keep = np.isfinite(a) & np.isfinite(b)
    a, b, positive, enrol, test = (
        a[keep],
        b[keep],
        positive[keep],
        enrol[keep],
        test[keep],
    )
    if not positive.any() or positive.all():
        raise ValueError(
            "need at least one same-speaker and one different-speaker trial scored in "
            f"both cells (got {int(positive.sum())} and {int((~positive).sum())})"
        )
    codes, n_spk = _codes(np.concatenate([enrol, test]))
    e_code, t_code = codes[: enrol.size], codes[enrol.size :]
    cells = [_SortedTrials(a, positive), _SortedTrials(b, positive)]
    unit = np.ones((1, a.size), dtype=np.int32)
    value_a, value_b = (float(c.eer(*c.weights(unit))[0]) for c in cells)
    rng = np.random.default_rng(seed)
    pos_idx, neg_idx = np.flatnonzero(positive), np.flatnonzero(~positive)
    # each cell's speaker codes in its own score order
    codes = [(e_code[c.pos_at], e_code[c.neg_at], t_code[c.neg_at]) for c in cells]
    diffs = []
    for size in _chunks(n_boot, a.size):
        eers = []
        if resample == "speakers":
            c = _counts(rng, n_spk, n_spk, size)
            for cell, (pos_e, neg_e, neg_t) in zip(cells, codes):
                w_neg = np.take(c, neg_e, axis=1) * np.take(c, neg_t, axis=1)
                eers.append(cell.eer(np.take(c, pos_e, axis=1), w_neg))
        else:
            w = np.empty((size, a.size), dtype=np.int32)
            for idx in (pos_idx, neg_idx):
                w[:, idx] = _counts(rng, idx.size, idx.size, size)
            eers = [cell.eer(*cell.weights(w)) for cell in cells]
        diffs.append(eers[1] - eers[0])
    low, high = _interval(np.concatenate(diffs), alpha)
    return PairedDiff(
        value_a, value_b, value_b - value_a, low, high, n_spk, int(a.size)
    )


def paired_mean(
    values_a,
    values_b,
    speakers,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    resample: str = "speakers",
) -> PairedDiff:
    """Mean of cell b minus mean of cell a over the same utterances (STOI,
    PESQ), paired bootstrap.

    Utterances without a finite value in either cell are left out of both.
    A speaker resample draws the speakers with replacement and weights each
    utterance by how often its speaker was drawn; the bootstrap value is the
    weighted mean of the per-utterance differences (= the difference of the
    two weighted means). ``resample="items"`` draws utterances instead.

    Arguments
    ---------
    values_a, values_b : array-like ``[n]``
        One value per utterance in each cell (None/NaN: missing).
    speakers : array-like ``[n]``
        Each utterance's speaker.

    Example
    -------
    >>> spk = np.repeat(np.arange(10), 4)
    >>> a = np.linspace(0.5, 0.7, 40)
    >>> out = paired_mean(a, a + 0.05, spk, n_boot=200)
    >>> round(out.diff, 3), round(out.low, 3), round(out.high, 3), out.n_speakers
    (0.05, 0.05, 0.05, 10)
    """
    _check_resample(resample, n_boot)
    a = np.asarray(values_a, dtype=np.float64)
    b = np.asarray(values_b, dtype=np.float64)
    spk = np.asarray(speakers)
    if not (a.shape == b.shape == spk.shape):
        raise ValueError(
            "values_a, values_b and speakers need one entry per utterance (got "
            f"{a.size}, {b.size}, {spk.size})"
        )
    keep = np.isfinite(a) & np.isfinite(b)
    a, b, spk = a[keep], b[keep], spk[keep]
    if a.size == 0:
        raise ValueError("no utterance has a value in both cells")
    d = b - a
    codes, n_spk = _codes(spk)
    rng = np.random.default_rng(seed)
    means = []
    for size in _chunks(n_boot, a.size):
        if resample == "speakers":
            w = np.take(_counts(rng, n_spk, n_spk, size), codes, axis=1)
        else:
            w = _counts(rng, a.size, a.size, size)
        means.append((w @ d) / w.sum(axis=1))
    low, high = _interval(np.concatenate(means), alpha)
    value_a, value_b = float(a.mean()), float(b.mean())
    return PairedDiff(value_a, value_b, float(d.mean()), low, high, n_spk, int(a.size))


# --- a study's per-item values -----------------------------------------------


class NoPerItemValues(ValueError):
    """The study folder has no cell with per-item values (an older study, or
    no evaluation yet)."""


class StudyItems:
    """A study folder's trials, speakers and per-item cell values.

    Arguments
    ---------
    folder : path
        The study folder (``study.json``, ``trials.csv``, ``cells/``, and
        ``subset.csv`` for the utterances' speakers).

    Raises
    ------
    FileNotFoundError
        Without ``study.json`` or ``trials.csv``.
    NoPerItemValues
        When no cell of a model keeps per-item values.

    Example
    -------
    >>> StudyItems(getfixture("tmp_path"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: study description not found: .../study.json
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.info: StudyInfo = read_study_info(self.folder / STUDY_INFO)
        self.trials = load_trials(self.folder / "trials.csv")
        self.labels = np.array([t.label for t in self.trials], dtype=int)
        self.enrol_spk = np.array([t.enrol_spk for t in self.trials], dtype=str)
        self.test_spk = np.array([t.test_spk for t in self.trials], dtype=str)
        self.speaker_of = self._speakers()
        self._cells = {}
        if not any(
            self.cell(m.name, layer, c) is not None
            for m in self.info.models
            for layer in m.layers
            for c in self.info.conditions
        ):
            raise NoPerItemValues(
                f"no cell in {self.folder / 'cells'} keeps per-item values (scored "
                "by an older version, or not scored yet); run the evaluation again "
                "to rescore them"
            )

    def _speakers(self) -> dict:
        speaker_of = {}
        for t in self.trials:
            speaker_of.setdefault(t.enrol, t.enrol_spk)
            speaker_of.setdefault(t.test, t.test_spk)
        subset = self.folder / "subset.csv"
        if subset.is_file():
            with open(subset, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    speaker_of[row["ID"]] = row["spk_id"]
        return speaker_of

    def cell(self, owner: str, layer: str, condition: str) -> dict | None:
        """A cell's stored result with per-item values, or None."""
        key = (owner, layer, condition)
        if key not in self._cells:
            path = self.folder / "cells" / condition / owner / f"{layer}.json"
            self._cells[key] = load_cell(path, require_items=True)
        return self._cells[key]

    def compare(
        self,
        cell_a: dict,
        cell_b: dict,
        metric: str,
        n_boot: int = 2000,
        seed: int = 0,
        alpha: float = 0.05,
    ) -> PairedDiff | None:
        """``metric`` of ``cell_b`` minus ``cell_a`` on their common items;
        None when the two have no common items to compare."""
        if metric.startswith("eer_"):
            verifier = metric[4:]
            scores = [c["trial_scores"].get(verifier) for c in (cell_a, cell_b)]
            if any(s is None or len(s) != len(self.trials) for s in scores):
                return None
            try:
                return paired_eer(
                    np.array(scores[0], dtype=np.float64),
                    np.array(scores[1], dtype=np.float64),
                    self.labels,
                    self.enrol_spk,
                    self.test_spk,
                    n_boot,
                    seed,
                    alpha,
                )
            except ValueError:
                return None
        values = [c["utt_scores"].get(metric) or {} for c in (cell_a, cell_b)]
        utts = sorted(
            u
            for u in set(values[0]) & set(values[1])
            if values[0][u] is not None
            and values[1][u] is not None
            and u in self.speaker_of
        )
        if not utts:
            return None
        return paired_mean(
            [values[0][u] for u in utts],
            [values[1][u] for u in utts],
            [self.speaker_of[u] for u in utts],
            n_boot,
            seed,
            alpha,
        )

    def metrics(self) -> list[str]:
        """``eer_<verifier>`` of the study's verifiers, then ``stoi``, ``pesq``."""
        return [f"eer_{v}" for v in self.info.verifiers] + ["stoi", "pesq"]


def paired_row(cell: tuple, diff, **context) -> PairedRow:
    """A :class:`~speechbrain_probe.result_rows.PairedRow` of a cell
    (condition, layer, metric, model_a, model_b), its paired difference
    (:meth:`StudyItems.compare`) and any other field (``context``)."""
    numbers = (diff.a, diff.b, diff.diff, diff.low, diff.high)
    return PairedRow(*cell, *numbers, diff.n_speakers, diff.n_items, **context)


def paired_table(
    items: StudyItems, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> list[PairedRow]:
    """Robust (B) minus baseline (A) for every architecture with both models,
    every layer they share (the baseline's order), condition and metric.

    Cells without per-item values, and metrics without common items, have no
    row. ``n_boot``, ``seed`` and ``alpha`` are the paired bootstrap's
    resamples, seed and ``1 - coverage``.
    """
    rows = []
    for arch, (base, robust) in robust_baseline_pairs(items.info).items():
        for layer in shared_layers(base, robust):
            for condition in items.info.conditions:
                cell_a = items.cell(base.name, layer, condition)
                cell_b = items.cell(robust.name, layer, condition)
                if cell_a is None or cell_b is None:
                    continue
                for metric in items.metrics():
                    out = items.compare(cell_a, cell_b, metric, n_boot, seed, alpha)
                    if out is not None:
                        cell = (condition, layer, metric, base.name, robust.name)
                        rows.append(paired_row(cell, out, arch=arch))
    return rows


def write_paired_results(
    study_folder, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> tuple[list[PairedRow], list[ClaimRow]]:
    """Write ``paired.csv`` (:func:`paired_table`) and ``claims.csv``
    (:func:`~speechbrain_probe.evaluation.claims.paired_claims`) into the
    study folder; return their rows.

    Raises
    ------
    FileNotFoundError, NoPerItemValues
        When the folder has no ``study.json``/``trials.csv``, or no cell with
        per-item values.
    """
    items = StudyItems(study_folder)
    paired = paired_table(items, n_boot, seed, alpha)
    claims = paired_claims(items, paired, n_boot, seed, alpha)
    write_paired(items.folder / PAIRED_CSV, paired)
    write_claims(items.folder / CLAIMS_CSV, claims)
    return paired, claims
