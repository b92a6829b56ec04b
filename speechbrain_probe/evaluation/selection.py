"""Which test utterances an evaluation uses, under which conditions.

The evaluation reconstructs every utterance once per (model, layer,
condition), so it works on a fixed, seeded subset of the unseen test speakers:
the same utterance ids under every condition, so that clean and noisy cells are
comparable and each noisy utterance keeps its exact clean reference.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechbrain_probe.data.manifest import read_manifest
from speechbrain_probe.vocabulary import condition_snr_db

__all__ = [
    "TestUtterance",
    "condition_file",
    "condition_manifests",
    "select_subset",
    "first_per_speaker",
]


def condition_file(condition: str) -> str:
    """The manifest file name of a condition.

    Example
    -------
    >>> condition_file("clean"), condition_file("snr5"), condition_file("snr-5")
    ('test.csv', 'test_snr5.csv', 'test_snr-5.csv')
    >>> condition_file("loud")
    Traceback (most recent call last):
    ...
    ValueError: unknown condition 'loud'; a condition is clean or snr<N> (e.g. snr20, snr5, snr-5)
    """
    try:
        condition_snr_db(condition)
    except ValueError:
        raise ValueError(
            f"unknown condition {condition!r}; a condition is clean or snr<N> (e.g. "
            "snr20, snr5, snr-5)"
        ) from None
    return "test.csv" if condition == "clean" else f"test_{condition}.csv"


@dataclass(frozen=True)
class TestUtterance:
    """One test utterance under one condition.

    ``wav`` is what the ASR hears (the mixture for a noisy condition);
    ``clean_wav`` is the clean reference at the same scale.
    """

    utt_id: str
    spk_id: str
    wav: str
    clean_wav: str
    words: str


def condition_manifests(data_folder, conditions) -> dict[str, Path]:
    """Manifest path of each condition, checked to exist.

    Example
    -------
    >>> condition_manifests("no/such/folder", ["clean"])
    Traceback (most recent call last):
    ...
    FileNotFoundError: condition 'clean' needs no/such/folder/test.csv...
    """
    out = {}
    for cond in conditions:
        path = Path(data_folder) / condition_file(cond)
        if not path.is_file():
            raise FileNotFoundError(
                f"condition {cond!r} needs {path}, which does not exist; build the "
                "corpus (make demo) or prepare the noisy test sets first"
            )
        out[cond] = path
    return out


def _read_condition(path: Path) -> dict[str, TestUtterance]:
    rows = read_manifest(path)
    out = {}
    for row in rows:
        out[row["ID"]] = TestUtterance(
            utt_id=row["ID"],
            spk_id=row["spk_id"],
            wav=row["wav"],
            clean_wav=row.get("clean_wav") or row["wav"],
            words=row.get("wrd", ""),
        )
    return out


def select_subset(
    data_folder, conditions, utts_per_speaker: int | None, seed: int = 0
) -> dict[str, list[TestUtterance]]:
    """The evaluation subset: per speaker ``utts_per_speaker`` utterances.

    The same ids are taken under every condition (only ids present in all of
    them qualify), chosen with a seeded generator and listed in id order.

    Arguments
    ---------
    data_folder : str or path
        Prepared corpus folder with the manifests of :func:`condition_file`.
    conditions : list of str
        E.g. ``["clean", "snr20", "snr10", "snr0"]``.
    utts_per_speaker : int or None
        None keeps every utterance.
    seed : int
        Seed of the choice.

    Returns
    -------
    dict
        condition -> list of :class:`TestUtterance`.
    """
    paths = condition_manifests(data_folder, conditions)
    tables = {cond: _read_condition(path) for cond, path in paths.items()}
    common = set.intersection(*(set(t) for t in tables.values()))
    if not common:
        raise ValueError(
            f"the manifests of {', '.join(conditions)} share no utterance id; were "
            "the noisy test sets built from this test set?"
        )
    first = tables[conditions[0]]
    by_speaker = defaultdict(list)
    for utt in sorted(common):
        by_speaker[first[utt].spk_id].append(utt)
    rng = np.random.default_rng(seed)
    chosen = []
    for spk in sorted(by_speaker):
        utts = by_speaker[spk]
        if utts_per_speaker is not None and len(utts) > utts_per_speaker:
            picks = rng.choice(len(utts), size=utts_per_speaker, replace=False)
            utts = [utts[i] for i in sorted(picks)]
        chosen.extend(utts)
    chosen.sort()
    return {cond: [tables[cond][u] for u in chosen] for cond in conditions}


def first_per_speaker(utterances, count: int | None):
    """The ids of the first ``count`` utterances of every speaker (None: all).

    Example
    -------
    >>> from types import SimpleNamespace as U
    >>> utts = [U(utt_id=f"{s}{i}", spk_id=s) for s in "ab" for i in range(3)]
    >>> sorted(first_per_speaker(utts, 1)), first_per_speaker(utts, None)
    (['a0', 'b0'], None)
    """
    if count is None:
        return None
    if count < 1:
        raise ValueError(f"utterances per speaker must be >= 1 or null, got {count}")
    seen: dict[str, int] = {}
    chosen = set()
    for u in utterances:
        if seen.get(u.spk_id, 0) < count:
            seen[u.spk_id] = seen.get(u.spk_id, 0) + 1
            chosen.add(u.utt_id)
    return chosen
