#!/usr/bin/env python3
"""The project's sorted EER/minDCF vs SpeechBrain's loop, side by side.

    python benchmarks/bench_eer.py [--trials 10000] [--seed 0]

Prints both values (they must be identical), both times and the speed-up.
"""

import argparse
import time

import torch
from speechbrain.utils.metric_stats import EER, minDCF

from speechbrain_probe.metrics.eer import bootstrap_ci, eer, min_dcf


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    n = args.trials // 2
    # cosine-like scores: positives higher on average, rounded to 4 decimals
    # so that tied scores occur as they do with real verifiers
    pos = ((torch.randn(n, generator=g) * 0.1 + 0.55) * 1e4).round() / 1e4
    neg = ((torch.randn(n, generator=g) * 0.1 + 0.35) * 1e4).round() / 1e4

    print(f"{args.trials} trials ({n} positive, {n} negative), {args.threads} threads")
    rows = []
    for name, ours, theirs in (("EER", eer, EER), ("minDCF", min_dcf, minDCF)):
        mine, t_mine = timed(ours, pos, neg)
        sb, t_sb = timed(theirs, pos, neg)
        same = mine == sb
        rows.append((name, mine[0], sb[0], same, t_mine, t_sb))
        print(
            f"{name:7s} project {mine[0]:.6f} (thr {mine[1]:.4f}) in {t_mine * 1e3:8.1f} ms | "
            f"speechbrain {sb[0]:.6f} (thr {sb[1]:.4f}) in {t_sb * 1e3:8.1f} ms | "
            f"identical: {same} | speed-up x{t_sb / t_mine:.0f}"
        )
        if not same:
            raise SystemExit(f"{name} differs from SpeechBrain's: {mine} vs {sb}")
    (lo, hi), t_boot = timed(lambda: bootstrap_ci(pos, neg, n_boot=1000))
    print(
        f"bootstrap 95% CI of the EER (1000 resamples): [{lo:.4f}, {hi:.4f}] in {t_boot:.2f} s"
    )


if __name__ == "__main__":
    main()
