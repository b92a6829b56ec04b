#!/usr/bin/env python3
"""Probe training with stored hidden states (``reuse_states``) vs without.

The demo's probe stage: a VGG-LSTM of the recipe's size, its paper layers
(one probe each, trained in one pass), noisy training (the recipe's
NoiseMixer, prob 0.5), ``--number_of_epochs=2`` without prefetch. Without
``reuse_states`` every epoch mixes fresh noise and runs the ASR on every
batch; with it, each utterance gets one noise draw, its hidden states and mel
target are stored on disk in epoch 1 (float16) and epoch 2 reads them.
Validation (clean input, the ASR's forward) is the same in both.

Each repeat runs both (the order alternating, so a shared machine's load
hits both alike) with one torch thread, and prints the wall time of each
epoch (training stage, then training + validation). ``--dtype_check`` adds a
run whose states are stored in float32 (same seed) and prints every run's
validation L1 per layer after the last epoch.

    python benchmarks/bench_probe_states.py --dtype_check
    python benchmarks/bench_probe_states.py --asr_source random --train_utts 80

``--data`` is a built-in corpus (``data/synthetic_quick``: ``python -m
speechbrain_probe.demo --quick --corpus-only``); ``--asr_source`` an
exported ASR, or ``random`` for a randomly initialised one of the recipe's
size (the cost does not depend on the weights; the L1s do).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import speechbrain as sb
import torch
from _probe_bench import make_asr, threads_note
from bench_all_layers import PAPER, recipe_optimizer
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_probe.probe.brain import ProbeBrain
from speechbrain_probe.probe.model import build_probes
from speechbrain_probe.probe.noise_mixer import NoiseMixer
from speechbrain_probe.probe.state_store import StateStore
from speechbrain_probe.probe.training import dataio_prepare

ROOT = Path(__file__).resolve().parents[1]
QUICK_ASR = ROOT / "results" / "demo_quick" / "asr" / "vgg_lstm_baseline" / "export"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "synthetic_quick"))
    parser.add_argument(
        "--asr_source",
        default=str(QUICK_ASR) if QUICK_ASR.exists() else "random",
        help="an exported VGG-LSTM, or random",
    )
    parser.add_argument("--train_utts", type=int, default=160)
    parser.add_argument("--valid_utts", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--dtype_check", action="store_true")
    return parser.parse_args()


class EpochClock:
    """Wall time of each epoch's training stage and of the whole epoch."""

    def __init__(self, brain):
        self.train, self.epoch, self._t = [], [], {}
        start, end = brain.on_stage_start, brain.on_stage_end

        def on_start(stage, epoch=None):
            if stage == sb.Stage.TRAIN:
                self._t["epoch"] = self._t["train"] = time.perf_counter()
            return start(stage, epoch)

        def on_end(stage, loss, epoch=None):
            out = end(stage, loss, epoch)
            now = time.perf_counter()
            if stage == sb.Stage.TRAIN:
                self.train.append(now - self._t["train"])
            elif stage == sb.Stage.VALID:
                self.epoch.append(now - self._t["epoch"])
            return out

        brain.on_stage_start, brain.on_stage_end = on_start, on_end


def run(asr, layers, data, args, store_dtype=None):
    """One 2-epoch training; ``store_dtype`` None: no stored states."""
    train, valid = data
    mixer = NoiseMixer(Path(args.data) / "noise_train.csv", prob=0.5, seed=args.seed)
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        store = None
        if store_dtype is not None:
            store = StateStore(tmp, asr.fingerprint, layers, dtype=store_dtype)
        brain = ProbeBrain(
            asr,
            layers,
            modules=build_probes(asr, layers),
            opt_class=recipe_optimizer(),
            run_opts={"device": "cpu"},
            add_noise=mixer,
            state_store=store,
        )
        clock = EpochClock(brain)
        loader = {"batch_size": args.batch}
        brain.fit(
            EpochCounter(2),
            train,
            valid,
            train_loader_kwargs=loader,
            valid_loader_kwargs=loader,
            progressbar=False,
        )
        stored_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*.pt")) / 1e6
    return clock, brain.layer_losses(), stored_mb


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    source = None if args.asr_source == "random" else args.asr_source
    asr = make_asr(source, "vgg_lstm", "recipe")
    layers = asr.check_layers(PAPER["vgg_lstm"])
    hp = {"train_utts": args.train_utts, "valid_utts": args.valid_utts, "seed": 0}
    csvs = {"train": f"{args.data}/train.csv", "valid": f"{args.data}/dev.csv"}
    data = dataio_prepare(hp, csvs)
    print(f"# {asr.describe()}")
    print(
        f"# {len(data[0])} train + {len(data[1])} valid utterances, batch "
        f"{args.batch}, 2 epochs, noise prob 0.5; {threads_note()}"
    )
    runs = {"off": [], "on": []}
    losses, stored = {}, 0.0
    for rep in range(args.repeats):
        for mode in ("off", "on") if rep % 2 == 0 else ("on", "off"):
            clock, losses[mode], mb = run(
                asr, layers, data, args, "float16" if mode == "on" else None
            )
            stored = max(stored, mb)
            runs[mode].append(clock)
            print(
                f"repeat {rep + 1} reuse {mode:3s}: train stage "
                + " ".join(f"{t:6.1f}" for t in clock.train)
                + " s; epoch (train + valid) "
                + " ".join(f"{t:6.1f}" for t in clock.epoch)
                + " s",
                flush=True,
            )
    best = {m: [min(c.epoch[e] for c in runs[m]) for e in range(2)] for m in runs}
    for mode, (e1, e2) in best.items():
        print(
            f"reuse {mode:3s} best of {args.repeats}: epoch 1 {e1:6.1f} s, epoch 2 {e2:6.1f} s"
        )
    off, on = best["off"], best["on"]
    print(f"stored states (float16): {stored:.0f} MB for {len(data[0])} utterances")
    print(
        f"2-epoch run: off/on = {sum(off):.1f}/{sum(on):.1f} s = {sum(off) / sum(on):.2f}x"
    )
    print(f"epoch 2 alone: off/on = {off[1]:.1f}/{on[1]:.1f} s = {off[1] / on[1]:.2f}x")
    print(
        f"epoch 1 (storing): off/on = {off[0]:.1f}/{on[0]:.1f} s = {off[0] / on[0]:.2f}x"
    )
    if args.dtype_check:
        _, losses["on, float32"], _ = run(asr, layers, data, args, "float32")
        print("valid L1 after epoch 2   " + " ".join(f"{n:>8s}" for n in layers))
        for mode in ("off", "on", "on, float32"):
            print(
                f"  reuse {mode:16s} "
                + " ".join(f"{losses[mode][n]:8.5f}" for n in layers)
            )
        diff = max(abs(losses["on"][n] - losses["on, float32"][n]) for n in layers)
        print(f"float16 vs float32 stored states: max |valid L1 difference| {diff:.5f}")


if __name__ == "__main__":
    main()
