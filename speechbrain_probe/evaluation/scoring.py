"""Score one evaluation cell: speaker verification and STOI/PESQ of its audio.

A cell is one (model, layer, condition), or a reference row (``original``:
the input audio itself; ``copy_synthesis``). Its result is stored as JSON in
``<study>/cells/`` so that a finished cell is never recomputed.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from speechbrain_probe.data.audio import read_checked
from speechbrain_probe.data.manifest import atomic_write_text
from speechbrain_probe.metrics.eer import verification_metrics
from speechbrain_probe.metrics.quality import (
    Exclusion,
    collect_stoi_pesq,
    stoi_pesq,
    submit_stoi_pesq,
)
from speechbrain_probe.metrics.speaker import score_trials

__all__ = ["mean_ci", "score_cell", "submit_quality", "load_cell", "save_cell"]


def mean_ci(values, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05):
    """Mean of ``values`` with a percentile-bootstrap interval over items.

    Returns ``(mean, low, high)``; ``(None, None, None)`` for no values.

    Example
    -------
    >>> m, lo, hi = mean_ci([0.5, 0.6, 0.7, 0.8], n_boot=200)
    >>> round(m, 2), lo <= m <= hi
    (0.65, True)
    """
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return None, None, None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(x.mean()), float(low), float(high)


def score_cell(
    utt_ids: list[str],
    wav_paths: list[Path],
    clean_paths: list[Path],
    trials,
    verifiers: dict,
    quality: bool = True,
    n_boot: int = 1000,
    n_jobs: int | None = None,
    seed: int = 0,
    pool=None,
    quality_handle=None,
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
    pool : EvaluationPool, optional
        Long-lived workers for STOI/PESQ (they run while this process embeds
        the audio). Without one, ``n_jobs`` processes are started for the cell.
    quality_handle : optional
        STOI/PESQ of this cell already started by :func:`submit_quality`.

    Returns
    -------
    dict
        ``{"metrics": {metric: [value, low, high, n]}, "excluded": [...]}``
        (EER as a fraction).
    """
    if quality and quality_handle is None and pool is not None:
        quality_handle = submit_quality(pool, utt_ids, wav_paths, clean_paths)
    audio = [read_checked(p) for p in wav_paths]
    metrics, excluded = {}, []
    for name, verifier in verifiers.items():
        emb, excl = verifier.embed(audio, utt_ids)
        excluded.extend(excl)
        scores, labels, dropped = score_trials(emb, trials, f"eer_{name}")
        excluded.extend(dropped)
        if len(set(labels.tolist())) < 2:
            excluded.append(
                Exclusion("*", f"eer_{name}", "no scorable trial of both kinds")
            )
            continue
        out = verification_metrics(scores, labels, n_boot=n_boot, seed=seed)
        metrics[f"eer_{name}"] = [*out["eer"], out["n"]]
        metrics[f"mindcf_{name}"] = [*out["mindcf"], out["n"]]
    if quality:
        if quality_handle is not None:
            rows, excl = collect_stoi_pesq(quality_handle)
        else:
            rows, excl = stoi_pesq(
                utt_ids, [str(p) for p in clean_paths], audio, n_jobs=n_jobs
            )
        excluded.extend(excl)
        for metric in ("stoi", "pesq"):
            values = [r[metric] for r in rows if r[metric] is not None]
            if values:
                metrics[metric] = [*mean_ci(values, n_boot, seed), len(values)]
    return {"metrics": metrics, "excluded": [asdict(e) for e in excluded]}


def submit_quality(pool, utt_ids, wav_paths, clean_paths):
    """Start a cell's STOI/PESQ on ``pool`` (the workers read the audio);
    pass the handle to :func:`score_cell` as ``quality_handle``."""
    return submit_stoi_pesq(
        pool, utt_ids, [str(p) for p in clean_paths], [str(p) for p in wav_paths]
    )


def save_cell(path, result: dict) -> None:
    """Store a cell's result (atomically)."""
    atomic_write_text(path, json.dumps(result, indent=1, sort_keys=True))


def load_cell(path) -> dict | None:
    """A stored cell result, or None if the cell has not been scored."""
    path = Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text())
