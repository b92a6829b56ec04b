"""Fixed, seeded speaker-verification trial lists on unseen speakers.

A trial list has equal numbers of positive (same speaker, two different
utterances) and negative (two speakers) pairs. It depends only on the set of
utterances and the seed, not on their order, and is saved as CSV next to the
results so that every layer and model is scored on the same trials.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechbrain_probe.atomic import atomic_write_text

__all__ = ["Trial", "make_trials", "save_trials", "load_trials"]

FIELDS = ["label", "enrol", "test", "enrol_spk", "test_spk"]


@dataclass(frozen=True)
class Trial:
    """One verification trial: ``label`` 1 = same speaker, 0 = different."""

    label: int
    enrol: str
    test: str
    enrol_spk: str
    test_spk: str


def make_trials(
    utterances,
    n_pairs: int | None = None,
    seed: int = 0,
    negatives_per_positive: int = 1,
) -> list[Trial]:
    """Balanced trials from ``(utt_id, spk_id)`` pairs.

    Arguments
    ---------
    utterances : iterable of (utt_id, spk_id), or of dicts with ``ID`` and ``spk_id``
        The test utterances (e.g. the rows of ``test.csv``).
    n_pairs : int, optional
        Number of positive pairs (and of negative pairs). Default: every
        positive pair. Capped at the number of distinct positive pairs.
    seed : int
        Seed of the sampling.
    negatives_per_positive : int
        Different-speaker trials per same-speaker trial (1: balanced). 400
        utterances of 16 speakers have 4,800 positive pairs; 2 gives 14,400
        trials, so the EER's interval narrows where positives run out.

    Returns
    -------
    list of Trial
        ``n`` positives then ``negatives_per_positive * n`` negatives, each
        group sorted by ids. With ``negatives_per_positive=1`` the list is the
        one this function always made (same seed, same trials).

    Example
    -------
    >>> utts = [(f"s{s}_u{u}", f"s{s}") for s in range(3) for u in range(3)]
    >>> trials = make_trials(utts, seed=1)
    >>> len(trials), sum(t.label for t in trials)
    (18, 9)
    >>> make_trials(list(reversed(utts)), seed=1) == trials
    True
    >>> more = make_trials(utts, seed=1, negatives_per_positive=2)
    >>> len(more), sum(t.label for t in more)
    (27, 9)
    """
    if int(negatives_per_positive) < 1:
        raise ValueError(
            f"negatives_per_positive must be >= 1, got {negatives_per_positive}"
        )
    pairs = []
    for u in utterances:
        if isinstance(u, dict):
            pairs.append((str(u["ID"]), str(u["spk_id"])))
        else:
            utt, spk = u
            pairs.append((str(utt), str(spk)))
    ids = [p[0] for p in pairs]
    if len(set(ids)) != len(ids):
        raise ValueError("utterance ids must be unique to build trials")
    pairs.sort()
    by_spk = defaultdict(list)
    for utt, spk in pairs:
        by_spk[spk].append(utt)
    if len(by_spk) < 2:
        raise ValueError(
            f"trials need at least 2 speakers; got {len(by_spk)} ({sorted(by_spk)})"
        )
    positives = [
        (a, b, spk, spk)
        for spk in sorted(by_spk)
        for i, a in enumerate(by_spk[spk])
        for b in by_spk[spk][i + 1 :]
    ]
    if not positives:
        raise ValueError(
            "no speaker has two utterances: no same-speaker trial is possible"
        )
    rng = np.random.default_rng(seed)
    n = len(positives) if n_pairs is None else min(int(n_pairs), len(positives))
    if n < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    chosen = rng.choice(len(positives), size=n, replace=False)
    pos = sorted(positives[i] for i in chosen)

    n = len(pos) * int(negatives_per_positive)
    spk_of = np.array([p[1] for p in pairs])
    n_neg_possible = (len(pairs) ** 2 - sum(len(v) ** 2 for v in by_spk.values())) // 2
    if n_neg_possible < n:
        raise ValueError(
            f"only {n_neg_possible} different-speaker pairs for {n} negative trials; "
            "lower negatives_per_positive or n_pairs"
        )
    seen: set[tuple[int, int]] = set()
    while len(seen) < n:
        need = n - len(seen)
        i = rng.integers(0, len(pairs), size=2 * need + 16)
        j = rng.integers(0, len(pairs), size=2 * need + 16)
        for a, b in zip(i.tolist(), j.tolist()):
            if spk_of[a] == spk_of[b]:
                continue
            key = (min(a, b), max(a, b))
            if key not in seen:
                seen.add(key)
                if len(seen) == n:
                    break
    neg = sorted((pairs[a][0], pairs[b][0], pairs[a][1], pairs[b][1]) for a, b in seen)
    return [Trial(1, *p) for p in pos] + [Trial(0, *p) for p in neg]


def save_trials(path: str | os.PathLike, trials: list[Trial]) -> None:
    """Write trials as CSV (``label,enrol,test,enrol_spk,test_spk``), atomically.

    Example
    -------
    >>> p = getfixture("tmp_path") / "trials.csv"
    >>> t = make_trials([("a1", "a"), ("a2", "a"), ("b1", "b")])
    >>> save_trials(p, t)
    >>> load_trials(p) == t
    True
    """
    lines = [",".join(FIELDS)]
    for t in trials:
        for field in (t.enrol, t.test, t.enrol_spk, t.test_spk):
            if "," in field or "\n" in field:
                raise ValueError(f"id {field!r} contains a comma or newline")
        lines.append(f"{t.label},{t.enrol},{t.test},{t.enrol_spk},{t.test_spk}")
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def load_trials(path: str | os.PathLike) -> list[Trial]:
    """Read a trial list written by :func:`save_trials`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"trial list {path} does not exist; create it with make_trials"
        )
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(FIELDS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"trial list {path} lacks column(s) {sorted(missing)}")
        return [
            Trial(int(r["label"]), r["enrol"], r["test"], r["enrol_spk"], r["test_spk"])
            for r in reader
        ]
