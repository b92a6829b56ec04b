#!/usr/bin/env python3
"""STOI + wide-band PESQ on N utterances: one process vs all cores, side by side.

    python benchmarks/bench_quality.py [--data data/synthetic] [--n 48]

Scores the 10 dB noisy test mixtures against their exact clean references
(``test_snr10.csv``), once with ``n_jobs=1`` and once with every core,
interleaved and repeated (minimum time), and checks both give the same numbers.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbrain_probe.data.manifest import read_manifest
from speechbrain_probe.metrics.quality import stoi_pesq


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"))
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    manifest = args.data / "test_snr10.csv"
    if not manifest.is_file():
        raise SystemExit(
            f"{manifest} not found: build the corpus first "
            "(speechbrain_probe.data.synthetic.build_corpus) or pass --data"
        )
    rows = read_manifest(manifest)[: args.n]
    ids = [r["ID"] for r in rows]
    clean = [sf.read(r["clean_wav"], dtype="float64")[0] for r in rows]
    noisy = [sf.read(r["wav"], dtype="float64")[0] for r in rows]
    seconds = sum(len(c) for c in clean) / 16000
    print(
        f"{len(rows)} utterances ({seconds:.0f} s) of {manifest}, STOI + PESQ-wb, "
        f"{args.jobs} cores available"
    )
    times = {1: [], args.jobs: []}
    results = {}
    for rep in range(args.repeats):
        order = [1, args.jobs] if rep % 2 == 0 else [args.jobs, 1]
        for jobs in order:
            start = time.perf_counter()
            results[jobs] = stoi_pesq(ids, clean, noisy, n_jobs=jobs)
            times[jobs].append(time.perf_counter() - start)
    for jobs, t in times.items():
        print(
            f"  n_jobs={jobs:<3d} {min(t):7.2f} s (min of {', '.join(f'{x:.2f}' for x in t)})"
        )
    same = results[1] == results[args.jobs]
    rows1, excluded = results[1]
    stoi = np.mean([r["stoi"] for r in rows1 if r["stoi"] is not None])
    pesq = np.mean([r["pesq"] for r in rows1 if r["pesq"] is not None])
    print(f"  mean STOI {stoi:.3f}, mean PESQ {pesq:.2f}, excluded {len(excluded)}")
    print(
        f"all cores vs one: x{min(times[1]) / min(times[args.jobs]):.2f} faster, "
        f"identical results: {same}"
    )
    if not same:
        raise SystemExit("parallel and serial results differ")


if __name__ == "__main__":
    main()
