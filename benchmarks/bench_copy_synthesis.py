#!/usr/bin/env python3
"""Copy synthesis of the built-in corpus's test set: what the vocoder alone loses.

    python benchmarks/bench_copy_synthesis.py [--data data/synthetic] \
        [--out results/copy_synthesis] [--iters 30]

Griffin-Lim of the true mel of every test utterance (written to ``--out``;
existing files are reused, so a killed run resumes), then GE2E EER on the
original and on the copy-synthesised audio with the same seeded, balanced
trial list, and STOI / PESQ of the copies against the originals.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from speechbrain_probe.data.manifest import read_manifest
from speechbrain_probe.metrics.eer import verification_metrics
from speechbrain_probe.metrics.quality import stoi_pesq, write_exclusions
from speechbrain_probe.metrics.speaker import GE2EVerifier, score_trials
from speechbrain_probe.metrics.trials import load_trials, make_trials, save_trials
from speechbrain_probe.vocoder import GriffinLimVocoder, copy_synthesis


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"))
    parser.add_argument("--out", type=Path, default=Path("results/copy_synthesis"))
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--n_boot", type=int, default=1000)
    parser.add_argument("--trials_seed", type=int, default=0)
    args = parser.parse_args()
    rows = read_manifest(args.data / "test.csv")
    args.out.mkdir(parents=True, exist_ok=True)
    voc = GriffinLimVocoder(n_iter=args.iters)
    originals, copies = [], []
    start = time.time()
    for r in tqdm(rows, desc="copy synthesis"):
        wav, sr = sf.read(r["wav"], dtype="float32")
        target = args.out / f"{r['ID']}.wav"
        if target.is_file():
            copy = sf.read(target, dtype="float32")[0]
        else:
            copy = copy_synthesis([wav], voc)[0].numpy()
            tmp = target.with_suffix(".tmp.wav")
            sf.write(tmp, copy, sr)
            tmp.replace(target)
        originals.append(wav)
        copies.append(copy)
    print(f"copy synthesis of {len(rows)} utterances: {time.time() - start:.0f} s")

    trials_file = args.out / "trials_test.csv"
    if trials_file.is_file():
        trials = load_trials(trials_file)
    else:
        trials = make_trials(rows, seed=args.trials_seed)
        save_trials(trials_file, trials)
    ids = [r["ID"] for r in rows]
    verifier = GE2EVerifier()
    exclusions = []
    for name, audio in (("original", originals), ("copy_synthesis", copies)):
        emb, excluded = verifier.embed(audio, ids)
        scores, labels, dropped = score_trials(emb, trials)
        exclusions += excluded + dropped
        m = verification_metrics(scores, labels, n_boot=args.n_boot)
        e, lo, hi = (100 * v for v in m["eer"])
        print(
            f"GE2E {name:15s} EER {e:.2f}% [{lo:.2f}, {hi:.2f}]  "
            f"minDCF {m['mindcf'][0]:.3f}  ({m['n']} trials)"
        )
    start = time.time()
    qrows, excluded = stoi_pesq(ids, originals, copies, progress=True)
    exclusions += excluded
    stoi = [r["stoi"] for r in qrows if r["stoi"] is not None]
    pesq = [r["pesq"] for r in qrows if r["pesq"] is not None]
    print(
        f"copy synthesis STOI {np.mean(stoi):.3f} (n={len(stoi)}), "
        f"PESQ-wb {np.mean(pesq):.2f} (n={len(pesq)}), "
        f"{time.time() - start:.0f} s; excluded {len(exclusions)}"
    )
    write_exclusions(args.out / "excluded.csv", exclusions)


if __name__ == "__main__":
    torch.set_num_threads(1)  # on a shared 2-core machine one thread is faster
    main()
