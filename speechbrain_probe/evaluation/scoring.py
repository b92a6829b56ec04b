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

__all__ = [
    "mean_ci",
    "score_cell",
    "submit_quality",
    "load_cell",
    "save_cell",
]


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
    quality_handle=None,
    pesq_ids=None,
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
    quality_handle : optional
        STOI/PESQ of this cell already started on long-lived workers by
        :func:`submit_quality` (they run while this process embeds the
        audio). Without one, ``n_jobs`` processes are started for the cell.
    pesq_ids : collection of str, optional
        Score PESQ on these utterances only (STOI on all); None: all. PESQ
        costs ten times STOI, and its cell mean over fewer utterances is
        still reported with its own ``n``.

    Returns
    -------
    dict
        ``{"metrics": {metric: [value, low, high, n]}, "excluded": [...]}``
        (EER as a fraction).
    """
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
        rows = []
        if quality_handle is not None:
            parts = [collect_stoi_pesq(handle) for handle in quality_handle]
        else:
            parts = [
                stoi_pesq(
                    [utt_ids[i] for i in keep],
                    [str(clean_paths[i]) for i in keep],
                    [audio[i] for i in keep],
                    metrics=metrics,
                    n_jobs=n_jobs,
                )
                for metrics, keep in _quality_jobs(utt_ids, pesq_ids)
            ]
        for part_rows, excl in parts:
            rows.extend(part_rows)
            excluded.extend(excl)
        for metric in ("stoi", "pesq"):
            values = [r[metric] for r in rows if r.get(metric) is not None]
            if values:
                metrics[metric] = [*mean_ci(values, n_boot, seed), len(values)]
    return {"metrics": metrics, "excluded": [asdict(e) for e in excluded]}


def submit_quality(pool, utt_ids, wav_paths, clean_paths, pesq_ids=None):
    """Start a cell's STOI/PESQ on ``pool`` (the workers read the audio);
    pass the handle to :func:`score_cell` as ``quality_handle``."""
    return [
        submit_stoi_pesq(
            pool,
            [utt_ids[i] for i in keep],
            [str(clean_paths[i]) for i in keep],
            [str(wav_paths[i]) for i in keep],
            metrics=metrics,
        )
        for metrics, keep in _quality_jobs(utt_ids, pesq_ids)
    ]


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


def load_cell(path) -> dict | None:
    """A stored cell result, or None if the cell has not been scored."""
    path = Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text())
