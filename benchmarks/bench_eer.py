#!/usr/bin/env python3
"""The project's EER/minDCF and speaker-bootstrap intervals, side by side.

    python benchmarks/bench_eer.py [--trials 14400] [--speakers 16] [--before REV]

1. The sorted EER/minDCF against SpeechBrain's loop: both values (they must
   be identical), both times and the speed-up.
2. A cell's intervals (``metrics.csv``, about 120 cells of 14,400 trials of
   16 speakers in the full study): 1,000 speaker resamples of the EER and
   minDCF, in units of one plain EER + minDCF of the cell.
3. A paired difference (``paired.csv``): 2,000 resamples of 10,000 trials of
   100 speakers, in units of one plain EER.
4. With ``--before REV`` (a git revision, e.g. one before the speaker
   bootstrap): its ``verification_metrics`` (read from its
   ``speechbrain_probe/metrics/eer.py`` with ``git show``) timed interleaved
   with today's on the same trials, the ratio, and both EER interval widths.
"""

import argparse
import importlib.util
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from speechbrain.utils.metric_stats import EER, minDCF

from speechbrain_probe.metrics.bootstrap import paired_eer, verification_metrics
from speechbrain_probe.metrics.eer import eer, min_dcf


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def speaker_trials(n_trials: int, n_speakers: int, seed: int):
    """Cosine-like scores (rounded to 4 decimals, so that ties occur as with
    real verifiers), a third same-speaker, each speaker with its own offset."""
    rng = np.random.default_rng(seed)
    enrol = rng.integers(0, n_speakers, n_trials)
    labels = (np.arange(n_trials) % 3 == 0).astype(int)
    other = (enrol + rng.integers(1, n_speakers, n_trials)) % n_speakers
    test = np.where(labels == 1, enrol, other)
    offset = rng.normal(0, 0.05, n_speakers)
    scores = 0.35 + 0.2 * labels + offset[enrol] + rng.normal(0, 0.1, n_trials)
    return np.round(scores, 4), labels, enrol, test


def against_speechbrain(pos, neg) -> float:
    """Both functions of both projects; returns the project's time of both."""
    total = 0.0
    for name, ours, theirs in (("EER", eer, EER), ("minDCF", min_dcf, minDCF)):
        mine, t_mine = timed(ours, pos, neg)
        sb, t_sb = timed(theirs, torch.from_numpy(pos), torch.from_numpy(neg))
        total += t_mine
        print(
            f"{name:7s} project {mine[0]:.6f} (thr {mine[1]:.4f}) in {t_mine * 1e3:8.1f} ms | "
            f"speechbrain {sb[0]:.6f} (thr {sb[1]:.4f}) in {t_sb * 1e3:8.1f} ms | "
            f"identical: {mine == sb} | speed-up x{t_sb / t_mine:.0f}"
        )
        if mine != sb:
            raise SystemExit(f"{name} differs from SpeechBrain's: {mine} vs {sb}")
    return total


def load_revision(rev: str):
    """``speechbrain_probe/metrics/eer.py`` of git revision ``rev``, as a module."""
    root = Path(__file__).resolve().parents[1]
    show = ["git", "-C", str(root), "show", f"{rev}:speechbrain_probe/metrics/eer.py"]
    path = Path(tempfile.mkdtemp(prefix="bench_eer_")) / "eer_before.py"
    path.write_text(
        subprocess.run(show, check=True, capture_output=True, text=True).stdout
    )
    spec = importlib.util.spec_from_file_location("eer_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def against_revision(rev: str, trials, n_boot: int, seed: int, repeats: int) -> None:
    """The cell intervals of ``rev`` and today's, interleaved (minimum time)."""
    before = load_revision(rev).verification_metrics
    runs = {
        "before": lambda: before(*trials[:2], n_boot=n_boot, seed=seed),
        "after": lambda: verification_metrics(*trials, n_boot, seed),
    }
    times = {name: [] for name in runs}
    for rep in range(repeats):
        for name in sorted(runs, reverse=bool(rep % 2)):
            times[name].append(timed(runs[name])[1])
    b, a = min(times["before"]), min(times["after"])
    width = {name: run()["eer"][2] - run()["eer"][1] for name, run in runs.items()}
    print(
        f"{rev}'s cell intervals (trials resampled) {b:.2f} s, today's (speakers "
        f"resampled) {a:.2f} s, min of {repeats}: today's x{b / a:.2f} as fast | "
        f"EER interval width {width['before']:.4f} -> {width['after']:.4f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=14_400)
    parser.add_argument("--speakers", type=int, default=16)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--before", help="a git revision to time against")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trials = speaker_trials(args.trials, args.speakers, args.seed)
    scores, labels = trials[:2]
    print(f"{args.trials} trials of {args.speakers} speakers, {args.threads} threads")
    plain = against_speechbrain(scores[labels == 1], scores[labels == 0])

    verification_metrics(*trials, n_boot=10)  # warm-up
    out, t_cell = timed(verification_metrics, *trials, args.n_boot, args.seed)
    print(
        f"cell interval, {args.n_boot} speaker resamples of EER + minDCF: EER "
        f"{out['eer'][0]:.4f} [{out['eer'][1]:.4f}, {out['eer'][2]:.4f}] in "
        f"{t_cell:.2f} s = {t_cell / plain:.0f} plain EER + minDCF"
    )
    pair = speaker_trials(10_000, 100, args.seed)
    better = pair[0] + 0.02 * pair[1]
    diff, t_pair = timed(paired_eer, pair[0], better, *pair[1:], 2000, args.seed)
    _, t_one = timed(eer, pair[0][pair[1] == 1], pair[0][pair[1] == 0])
    print(
        f"paired EER difference, 2000 resamples of 10,000 trials of 100 speakers: "
        f"{diff.diff:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}] in {t_pair:.2f} s = "
        f"{t_pair / t_one:.0f} plain EERs"
    )
    if args.before:
        against_revision(args.before, trials, args.n_boot, args.seed, args.repeats)


if __name__ == "__main__":
    main()
