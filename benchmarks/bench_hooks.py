#!/usr/bin/env python3
"""Cost of capturing every probe layer: hooked forward vs plain forward.

Both run interleaved on the same batch (plain, hooked, plain, hooked, ...), so
load changes on a shared machine hit both alike; the ratio of medians is
reported. Target: hooked within 5% of plain.

    python benchmarks/bench_hooks.py                   # random team VGG-LSTM
    python benchmarks/bench_hooks.py --size paper --arch blstm
    python benchmarks/bench_hooks.py --asr_source results/asr/vgg_lstm_baseline/export
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _probe_bench import make_asr, speech_batch, threads_note

from speechbrain_probe.hooks import LayerCapture


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr_source", default=None)
    parser.add_argument("--arch", default="vgg_lstm", choices=["vgg_lstm", "blstm"])
    parser.add_argument("--size", default="recipe", choices=["recipe", "paper"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: default)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    asr = make_asr(args.asr_source, args.arch, args.size)
    wavs, lens = speech_batch(args.batch, args.seconds)
    paths = dict(asr.layers)
    plain, hooked = [], []
    with torch.no_grad():
        asr.encode(wavs, lens)  # warm-up
        for _ in range(args.reps):
            t0 = time.perf_counter()
            ref = asr.encode(wavs, lens)
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with LayerCapture(asr.root, paths) as cap:
                out = asr.encode(wavs, lens)
            hooked.append(time.perf_counter() - t0)
    assert torch.equal(ref, out), "hooks changed the model's output"
    assert all(cap.outputs[n] is not None for n in paths)
    p, h = statistics.median(plain), statistics.median(hooked)
    print(f"# {asr.describe()}")
    print(
        f"# batch {args.batch} x {args.seconds} s, {args.reps} reps; {threads_note()}"
    )
    print(f"layers captured: {len(paths)}")
    print(f"plain forward  median {p * 1000:.1f} ms")
    print(f"hooked forward median {h * 1000:.1f} ms")
    verdict = "PASS" if h <= 1.05 * p else "FAIL"
    print(f"hooked/plain = {h / p:.3f} (target <= 1.05: {verdict})")


if __name__ == "__main__":
    main()
