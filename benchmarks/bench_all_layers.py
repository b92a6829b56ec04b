#!/usr/bin/env python3
"""All-layers-in-one-pass probe training vs one run per layer, side by side.

Same ASR, same batches, same number of training steps (``ProbeBrain.fit_batch``:
ASR forward, mel target, probe forward/backward, optimizer step). Each round
times the all-layers brain for ``--steps`` steps, then each single-layer brain
for ``--steps`` steps, so both see the same machine load. Target: the L separate
runs take at least 0.8*L times as long as the one-pass run.

    python benchmarks/bench_all_layers.py                      # team VGG-LSTM, recipe size
    python benchmarks/bench_all_layers.py --size paper --arch blstm
    python benchmarks/bench_all_layers.py --asr_source results/asr/vgg_lstm_baseline/export
"""

from __future__ import annotations

import argparse
import time

import torch
from _probe_bench import make_asr, speech_batch, threads_note
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_probe.probe.brain import ProbeBrain, build_probes

PAPER = {
    "vgg_lstm": ["cnn1", "cnn2", "cnn4", "blstm1", "blstm3", "blstm5"],
    "blstm": ["blstm1", "blstm2", "blstm3", "blstm4", "blstm5"],
}


def make_brain(asr, layers):
    probes = build_probes(asr, layers)
    brain = ProbeBrain(
        asr,
        layers,
        modules=probes,
        opt_class=lambda p: torch.optim.Adam(p, lr=1e-3),
        run_opts={"device": "cpu"},
    )
    brain.init_optimizers()
    brain.modules.train()
    brain.on_stage_start(None)
    return brain


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr_source", default=None)
    parser.add_argument("--arch", default="vgg_lstm", choices=["vgg_lstm", "blstm"])
    parser.add_argument("--size", default="recipe", choices=["recipe", "paper"])
    parser.add_argument("--layers", default="paper", help="paper | all | a,b,c")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: default)"
    )
    parser.add_argument(
        "--runs",
        default=None,
        metavar="DATA_FOLDER",
        help="also time whole training runs (1 epoch + validation) on this corpus",
    )
    parser.add_argument("--train_utts", type=int, default=48)
    parser.add_argument("--valid_utts", type=int, default=24)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    asr = make_asr(args.asr_source, args.arch, args.size)
    if args.layers == "paper":
        arch = args.arch
        if args.asr_source and hasattr(asr, "pretrained"):
            arch = getattr(asr.pretrained.hparams, "arch", arch)
        layers = PAPER[arch]
    elif args.layers == "all":
        layers = list(asr.layers)
    else:
        layers = args.layers.split(",")
    layers = asr.check_layers(layers)
    wavs, lens = speech_batch(args.batch, args.seconds)
    n = wavs.shape[1]
    batch = PaddedBatch(
        [
            {"id": f"u{i}", "sig": wavs[i, : int(round(float(lens[i]) * n))]}
            for i in range(len(lens))
        ]
    )

    together = make_brain(asr, layers)
    alone = {name: make_brain(asr, [name]) for name in layers}
    for brain in [together, *alone.values()]:
        brain.fit_batch(batch)  # warm-up
    t_all, t_sep = 0.0, {name: 0.0 for name in layers}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            together.fit_batch(batch)
        t_all += time.perf_counter() - t0
        for name, brain in alone.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                brain.fit_batch(batch)
            t_sep[name] += time.perf_counter() - t0
    steps = args.steps * args.rounds
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(steps):
            asr.hidden_states(wavs, lens, layers)
        t_fwd = time.perf_counter() - t0
    total_sep = sum(t_sep.values())
    L = len(layers)
    print(f"# {asr.describe()}")
    print(
        f"# batch {args.batch} x {args.seconds} s, {steps} steps per run; {threads_note()}"
    )
    print(f"layers (L={L}): {' '.join(layers)}")
    for name in layers:
        print(f"  separate run {name:8s} {t_sep[name] / steps * 1000:8.1f} ms/step")
    print(f"ASR forward alone (all hooks)  {t_fwd / steps * 1000:8.1f} ms/step")
    print(f"L separate runs, total         {total_sep / steps * 1000:8.1f} ms/step")
    print(f"one pass, all L layers         {t_all / steps * 1000:8.1f} ms/step")
    ratio = total_sep / t_all
    verdict = "PASS" if ratio >= 0.8 * L else "FAIL"
    print(
        f"training steps: speed-up {ratio:.2f}x (target >= 0.8*L = {0.8 * L:.1f}x: {verdict})"
    )
    if args.runs:
        time_runs(asr, layers, args)


def time_runs(asr, layers, args):
    """Whole runs: one epoch on ``train_utts`` + validation on ``valid_utts``."""
    from speechbrain.utils.epoch_loop import EpochCounter

    from speechbrain_probe.probe.recipe import dataio_prepare

    hp = {
        "data_folder": args.runs,
        "train_csv": f"{args.runs}/train.csv",
        "valid_csv": f"{args.runs}/dev.csv",
        "train_utts": args.train_utts,
        "valid_utts": args.valid_utts,
        "seed": 0,
    }
    train, valid = dataio_prepare(hp)
    loader = {"batch_size": args.batch}

    def run(names):
        brain = make_brain(asr, names)
        t0 = time.perf_counter()
        brain.fit(
            EpochCounter(1),
            train,
            valid,
            train_loader_kwargs=loader,
            valid_loader_kwargs=loader,
            progressbar=False,
        )
        return time.perf_counter() - t0

    t_one = run(layers)
    t_each = {name: run([name]) for name in layers}
    t_one = (t_one + run(layers)) / 2  # before and after the separate runs
    total = sum(t_each.values())
    L = len(layers)
    print(
        f"# whole runs on {args.runs}: {len(train)} train + {len(valid)} valid utterances"
    )
    for name, t in t_each.items():
        print(f"  separate run {name:8s} {t:7.1f} s")
    print(f"L separate runs, total  {total:7.1f} s")
    print(f"one pass, all L layers  {t_one:7.1f} s")
    ratio = total / t_one
    verdict = "PASS" if ratio >= 0.8 * L else "FAIL"
    print(
        f"whole runs: speed-up {ratio:.2f}x (target >= 0.8*L = {0.8 * L:.1f}x: {verdict})"
    )


if __name__ == "__main__":
    main()
