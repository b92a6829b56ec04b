#!/usr/bin/env python3
"""The evaluation's scoring stage, wall time: embeddings in the study's process vs every job shared.

    python benchmarks/bench_eval_stage.py [--cells 6] [--speakers 4] [--utts 10] [--repeats 2]

Scores ``--cells`` cells of ``--speakers`` x ``--utts`` eSpeak utterances
(each cell the utterances with its own level of noise) as ``run_study``
does (its ``_CellScorer``, one pool of ``--jobs`` workers for both sides):
GE2E and ECAPA (a randomly initialised ECAPA-TDNN of the recipe's size)
EER/minDCF on ``make study``'s trial mix (two different-speaker trials per
same-speaker one), STOI on every utterance and PESQ on a fifth of them (as
``make study``: 5 of 25 per speaker), 1000 bootstrap resamples.

"before": every embedding in the study's process, cell after cell, while
the workers run the STOI/PESQ (``_CellScorer.embed_in_workers = False``, a
pool that does not share); "after": the embeddings queued on the workers
too (:class:`~speechbrain_probe.evaluation.embedding.CellEmbeddings`), and
this process, while it waits, runs the newest job no worker has started
(``EvaluationPool(share=True)``). Rounds
alternate before/after (the first of each is a warm-up: verifiers loaded
in every process); wall seconds, best of ``--repeats``. The metrics of the
two sides are checked equal.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from bench_evaluation import utterances

from speechbrain_probe.data.audio import write_wav
from speechbrain_probe.devices import torch_threads
from speechbrain_probe.evaluation import study
from speechbrain_probe.evaluation.pool import EvaluationPool
from speechbrain_probe.metrics.ecapa import build_ecapa, export_ecapa
from speechbrain_probe.metrics.trials import make_trials


def make_cells(args, tmp: Path):
    """The subset, the cells (audio written under ``tmp``) and the trials."""
    rng = np.random.default_rng(0)
    voices = utterances(args.speakers, args.seconds)
    utts, clean = [], []
    for s, voice in enumerate(voices):
        for k in range(args.utts):
            u = SimpleNamespace(utt_id=f"s{s}_{k}", spk_id=f"s{s}")
            wav = voice * (0.6 + 0.05 * k) + 1e-3 * rng.standard_normal(len(voice))
            clean.append(tmp / "clean" / f"{u.utt_id}.wav")
            write_wav(clean[-1], wav.astype(np.float32))
            utts.append(u)
    cells = []
    for c in range(args.cells):
        wavs = []
        for u, ref in zip(utts, clean):
            noise = 0.02 * (c + 1) * rng.standard_normal(args.seconds * 16000)
            wavs.append(tmp / f"cell{c}" / f"{u.utt_id}.wav")
            write_wav(wavs[-1], (0.9 * _read(ref) + noise).astype(np.float32))
        cells.append(study._Cell(None, f"cell{c}", "clean", wavs, clean))
    trials = make_trials(
        [(u.utt_id, u.spk_id) for u in utts], seed=0, negatives_per_positive=2
    )
    return {"clean": utts}, cells, trials


def _read(path):
    from speechbrain_probe.data.audio import read_checked

    return read_checked(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=6)
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--utts", type=int, default=10, help="per speaker")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name, torch_threads(1):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
        tmp = Path(name)
        subset, cells, trials = make_cells(args, tmp)
        ecapa = export_ecapa(tmp / "ecapa", *build_ecapa(2), ["a", "b"])
        verifiers = {"ge2e": None, "ecapa": str(ecapa)}
        pesq_per_speaker = max(1, args.utts // 5)
        n = len(subset["clean"])
        print(
            f"{args.cells} cells x {n} utterances of {args.seconds} s, {len(trials)} "
            f"trials, PESQ on {pesq_per_speaker} per speaker, {args.jobs} workers"
        )
        times: dict[str, list] = {"before": [], "after": []}
        metrics = {}
        with EvaluationPool(args.jobs) as pool:
            for r in range(args.repeats + 1):
                for side in ("before", "after") if r % 2 == 0 else ("after", "before"):
                    out = tmp / f"study_{side}"
                    shutil.rmtree(out, ignore_errors=True)
                    scorer = study._CellScorer(
                        out, subset, trials, verifiers, "cpu", 1000, 0, pesq_per_speaker
                    )
                    scorer.embed_in_workers = pool.share = side == "after"
                    start = time.perf_counter()
                    rows, _ = scorer.score(cells, pool)
                    if r:  # round 0: warm-up
                        times[side].append(time.perf_counter() - start)
                    metrics[side] = rows
        before, after = min(times["before"]), min(times["after"])
        print(f"before (embeddings in the study's process): {before:6.1f} s wall")
        print(f"after  (embeddings shared with the workers): {after:6.1f} s wall")
        print(f"speed-up {before / after:.2f}x; per round before {times['before']}, "
              f"after {times['after']}")
        print(f"metrics identical: {metrics['before'] == metrics['after']}")


if __name__ == "__main__":
    main()
