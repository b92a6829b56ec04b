"""Score one evaluation cell: speaker verification and STOI/PESQ of its audio.

A cell is one (model, layer, condition), or a reference row (``original``:
the input audio itself; ``copy_synthesis``). Its result is stored as JSON in
``<study>/cells/`` so that a finished cell is never recomputed.

Besides its aggregates (``metrics``: value, 95% interval and n per metric,
:func:`cell_metrics`) a cell keeps its per-item values, from which the
aggregates are computed and two cells scored on the same items can be
compared pairwise (:mod:`speechbrain_probe.evaluation.paired`):
``trial_scores`` (verifier -> one cosine score per trial of the study's
trial list, in its order, ``null`` where the trial was dropped) and
``utt_scores`` (``stoi``/``pesq`` -> ``{utt_id: value}``, ``null`` where the
utterance was excluded; an utterance not scored for a metric is absent). A
cell stored without them (an older version) is not current
(:func:`has_items`) and is scored again; one whose intervals an older
version computed (without :data:`INTERVALS`) gets them again from its
per-item values (:func:`cell_metrics`). Every interval resamples speakers
(:mod:`speechbrain_probe.metrics.bootstrap`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.data.audio import read_checked
from speechbrain_probe.metrics.bootstrap import mean_interval, verification_metrics
from speechbrain_probe.metrics.quality import (
    Exclusion,
    collect_stoi_pesq,
    stoi_pesq,
    submit_stoi_pesq,
)
from speechbrain_probe.metrics.speaker import score_trials

#: How a cell's intervals resample (the ``intervals`` of a stored cell): a cell
#: without it was scored by an older version that resampled trials and
#: utterances.
INTERVALS = "speakers"

__all__ = [
    "INTERVALS",
    "score_cell",
    "cell_metrics",
    "has_items",
    "submit_quality",
    "load_cell",
    "save_cell",
]


def score_cell(
    utt_ids: list[str],
    wav_paths: list[Path],
    clean_paths: list[Path],
    trials,
    verifiers: dict,
    quality: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    quality_handle=None,
    pesq_ids=None,
    speaker_of: dict | None = None,
) -> dict:
    """Verification EER/minDCF with every verifier, and STOI/PESQ.

    Arguments
    ---------
    utt_ids, wav_paths, clean_paths : lists
        The cell's utterances, their audio and their clean references.
    trials : list of Trial
        The study's fixed trial list.
    verifiers : dict
        name -> :class:`~speechbrain_probe.metrics.speaker.SpeakerVerifier`.
    quality : bool
        Compute STOI and PESQ.
    n_boot, seed : int
        Resamples of the speaker bootstrap (:func:`cell_metrics`) and its seed.
    quality_handle : optional
        STOI/PESQ of this cell already started on long-lived workers by
        :func:`submit_quality` (they run while this process embeds the
        audio). Without one, they run in this process.
    pesq_ids : collection of str, optional
        Score PESQ on these utterances only (STOI on all); None: all. PESQ
        costs ten times STOI, and its cell mean over fewer utterances is
        still reported with its own ``n``.
    speaker_of : dict, optional
        utt_id -> speaker, for the intervals of STOI and PESQ (needed with
        ``quality``).

    Returns
    -------
    dict
        ``{"metrics": {metric: [value, low, high, n]}, "excluded": [...],
        "trial_scores": {verifier: [score or None per trial]},
        "utt_scores": {"stoi": {utt_id: value}, "pesq": {...}},
        "intervals": "speakers"}`` (EER as a fraction; see the module's
        description of the per-item values).
    """
    audio = [read_checked(p) for p in wav_paths]
    trial_scores, excluded = {}, []
    for name, verifier in verifiers.items():
        emb, excl = verifier.embed(audio, utt_ids)
        excluded.extend(excl)
        scores, labels, dropped = score_trials(emb, trials, f"eer_{name}")
        excluded.extend(dropped)
        trial_scores[name] = _aligned(scores, trials, emb)
        if len(set(labels.tolist())) < 2:
            excluded.append(
                Exclusion("*", f"eer_{name}", "no scorable trial of both kinds")
            )
    utt_scores = {}
    if quality:
        parts = [collect_stoi_pesq(handle) for handle in quality_handle or []]
        if quality_handle is None:  # in this process
            clean = [str(p) for p in clean_paths]
            parts = [
                stoi_pesq(*_pick(keep, utt_ids, clean, audio), metrics=m, n_jobs=1)
                for m, keep in _quality_jobs(utt_ids, pesq_ids)
            ]
        rows = [row for part_rows, _ in parts for row in part_rows]
        excluded.extend(e for _, excl in parts for e in excl)
        for metric in ("stoi", "pesq"):
            utt_scores[metric] = {r["utt_id"]: r[metric] for r in rows if metric in r}
    result = {
        "excluded": [asdict(e) for e in excluded],
        "trial_scores": trial_scores,
        "utt_scores": utt_scores,
        "intervals": INTERVALS,
    }
    result["metrics"] = cell_metrics(result, trials, speaker_of, n_boot, seed)
    return result


def cell_metrics(
    result: dict, trials, speaker_of: dict | None, n_boot: int, seed: int
) -> dict:
    """A cell's aggregates from its per-item values: ``{metric: [value, low,
    high, n]}``, with speaker-bootstrap intervals
    (:mod:`speechbrain_probe.metrics.bootstrap`).

    ``eer_<verifier>`` and ``mindcf_<verifier>`` from the trials scored
    (none without a scored trial of both kinds); ``stoi`` and ``pesq``: the
    mean over the utterances with a value (in id order), none without one.

    Example
    -------
    >>> from speechbrain_probe.metrics.trials import Trial
    >>> trials = [Trial(1, "a1", "a2", "a", "a"), Trial(0, "a1", "b1", "a", "b")]
    >>> cell = {"trial_scores": {"ge2e": [0.9, None]},
    ...         "utt_scores": {"stoi": {"b1": 0.7, "a1": 0.5, "a2": None}}}
    >>> cell_metrics(cell, trials, {"a1": "a", "a2": "a", "b1": "b"}, 10, 0)
    {'stoi': [0.6, 0.5, 0.7, 2]}
    """
    metrics = {}
    labels = np.array([t.label for t in trials], dtype=int)
    enrol = np.array([t.enrol_spk for t in trials], dtype=str)
    test = np.array([t.test_spk for t in trials], dtype=str)
    for name, values in result["trial_scores"].items():
        scores = np.array(values, dtype=np.float64)
        if len(set(labels[np.isfinite(scores)].tolist())) < 2:
            continue  # no scored trial of both kinds
        out = verification_metrics(scores, labels, enrol, test, n_boot, seed)
        metrics[f"eer_{name}"] = [*out["eer"], out["n"]]
        metrics[f"mindcf_{name}"] = [*out["mindcf"], out["n"]]
    for metric, values in result["utt_scores"].items():
        utts = sorted(u for u, v in values.items() if v is not None)
        if utts:
            if speaker_of is None or any(u not in speaker_of for u in utts):
                raise ValueError(
                    f"the {metric} interval resamples speakers: pass speaker_of, "
                    "the speaker of every utterance"
                )
            spk = [speaker_of[u] for u in utts]
            x = [values[u] for u in utts]
            metrics[metric] = [*mean_interval(x, spk, n_boot, seed), len(utts)]
    return metrics


def _aligned(scores, trials, embeddings) -> list:
    """One score per trial (``None`` where a trial's utterance has no
    embedding), from :func:`score_trials`' scores of the kept trials.

    A score of float32 precision (cosine scores are) is written with the
    shortest decimal that reads back as the same float32: this keeps the
    order and the ties of the scores, so any EER computed from them is the
    same, at about half the size of a float64 repr.

    Example
    -------
    >>> from speechbrain_probe.metrics.trials import Trial
    >>> trials = [Trial(1, "a", "b", "x", "x"), Trial(0, "a", "c", "x", "y")]
    >>> _aligned(np.array([np.float32(0.1)], dtype=np.float64), trials, {"a": 0, "b": 0})
    [0.1, None]
    """
    values = iter(np.asarray(scores, dtype=np.float64).tolist())
    out = []
    for t in trials:
        if t.enrol in embeddings and t.test in embeddings:
            out.append(_compact(next(values)))
        else:
            out.append(None)
    if next(values, None) is not None:
        raise ValueError("more scores than scorable trials; score with score_trials")
    return out


def _compact(value: float) -> float:
    """``value``, or the shortest float that reads back as its float32 when
    ``value`` is exactly a float32.

    Example
    -------
    >>> _compact(float(np.float32(0.7))), _compact(0.7)
    (0.7, 0.7)
    >>> _compact(1 / 3)
    0.3333333333333333
    """
    single = np.float32(value)
    if float(single) != value:
        return value
    return float(str(single))


def has_items(result: dict | None) -> bool:
    """A stored cell keeps its per-item values (this version's cells do);
    ``False`` for no cell or one written by an older version, which must be
    scored again.

    Example
    -------
    >>> has_items({"metrics": {}, "excluded": []}), has_items(None)
    (False, False)
    >>> has_items({"metrics": {}, "excluded": [], "trial_scores": {}, "utt_scores": {}})
    True
    """
    return (
        isinstance(result, dict)
        and isinstance(result.get("trial_scores"), dict)
        and isinstance(result.get("utt_scores"), dict)
    )


def submit_quality(pool, utt_ids, wav_paths, clean_paths, pesq_ids=None):
    """Start a cell's STOI/PESQ on ``pool`` (the workers read the audio);
    pass the handle to :func:`score_cell` as ``quality_handle``."""
    wavs, clean = [str(p) for p in wav_paths], [str(p) for p in clean_paths]
    return [
        submit_stoi_pesq(pool, *_pick(keep, utt_ids, clean, wavs), metrics=m)
        for m, keep in _quality_jobs(utt_ids, pesq_ids)
    ]


def _pick(indices, *lists) -> list[list]:
    """The items at ``indices`` of each list."""
    return [[items[i] for i in indices] for items in lists]


def _quality_jobs(utt_ids, pesq_ids):
    """``(metrics, indices)`` groups: both metrics on every utterance, or (with
    ``pesq_ids``) STOI on all and PESQ on those listed.

    Example
    -------
    >>> _quality_jobs(["a", "b", "c"], None)
    [(('stoi', 'pesq'), [0, 1, 2])]
    >>> _quality_jobs(["a", "b", "c"], {"b"})
    [(('stoi',), [0, 1, 2]), (('pesq',), [1])]
    """
    every = list(range(len(utt_ids)))
    if pesq_ids is None:
        return [(("stoi", "pesq"), every)]
    wanted = set(pesq_ids)
    chosen = [i for i in every if utt_ids[i] in wanted]
    return [(("stoi",), every), (("pesq",), chosen)]


def save_cell(path, result: dict) -> None:
    """Store a cell's result (atomically)."""
    atomic_write_text(path, json.dumps(result, indent=1, sort_keys=True))


def load_cell(path, require_items: bool = False) -> dict | None:
    """A stored cell result, or None if the cell has not been scored (with
    ``require_items``, also None for a cell without per-item values, written
    by an older version: :func:`has_items`)."""
    path = Path(path)
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    if require_items and not has_items(result):
        return None
    return result
