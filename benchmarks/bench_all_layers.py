#!/usr/bin/env python3
"""All-layers-in-one-pass probe training vs one run per layer, side by side.

Same ASR, same batches, same number of training steps (``ProbeBrain.fit_batch``:
ASR forward, mel target, probe forward/backward, optimizer step), with the
recipe's optimizer (``opt_class`` of
``recipes/Synthetic/Probe/Highway/hparams/all_layers.yaml``). Each round times the all-layers brain for ``--steps``
steps, then each single-layer brain, then the shared work alone (mel target,
ASR forward with every hook), so all of them see the same machine load.
Target: the L separate runs take at least 0.8*L times as long as the one-pass
run. Times are wall clock and process CPU time (with ``--threads 1`` the CPU
time is what a step costs, whatever else loads the machine).

The split: A = mel target + ASR forward (shared), P_k = separate run of layer
k - A (its probe's forward, backward, optimizer step and overheads). The
speed-up is then at most L*(A + P)/(A + L*P) (P the mean P_k); it reaches
0.8*L only when A/P >= 4L - 5 (19 for L = 6, 15 for L = 5). A timed alone
is noisy on a loaded machine (and under bf16 autocast); the split "from the
runs" uses only the training steps: P = (one pass - mean separate run)/(L-1).

    python benchmarks/bench_all_layers.py --threads 1            # VGG-LSTM, recipe size
    python benchmarks/bench_all_layers.py --size paper --arch blstm
    python benchmarks/bench_all_layers.py --asr_source results/asr/vgg_lstm_baseline/export

``--runs DATA_FOLDER`` also times whole runs (``brain.fit``: 1 epoch + validation),
one pass against L separate runs; with ``--prefetch`` every one of those runs
computes the next batch's mel target and ASR forward on a second thread while its
probes train (``ProbeBrain(prefetch=True)``), so a step costs about max(A, L*P)
instead of A + L*P. Give torch one thread per core pair for that
(``--threads 1`` on 2 cores).

Comparing two versions of the code in separate processes: glibc's malloc adapts
its mmap threshold to the allocation history, which moved the mel target's cost
by ~30% between processes; pin it for such comparisons with
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from _probe_bench import make_asr, speech_batch, threads_note
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_probe.features import LogMelSpectrogram
from speechbrain_probe.probe.brain import ProbeBrain
from speechbrain_probe.probe.model import build_probes

RECIPE = (
    Path(__file__).resolve().parents[1] / "recipes" / "Synthetic" / "Probe" / "Highway"
)
RECIPE_HPARAMS = RECIPE / "hparams" / "all_layers.yaml"

PAPER = {
    "vgg_lstm": ["cnn1", "cnn2", "cnn4", "blstm1", "blstm3", "blstm5"],
    "blstm": ["blstm1", "blstm2", "blstm3", "blstm4", "blstm5"],
}


def recipe_optimizer():
    """The ``opt_class`` that ``train_probe.py`` uses (from all_layers.yaml)."""
    from hyperpyyaml import load_hyperpyyaml

    with tempfile.TemporaryDirectory() as tmp, open(RECIPE_HPARAMS) as fin:
        hparams = load_hyperpyyaml(fin, {"output_folder": tmp})
    return hparams["opt_class"]


def make_brain(asr, layers, opt_class=None, precision="fp32", prefetch=False):
    probes = build_probes(asr, layers)
    brain = ProbeBrain(
        asr,
        layers,
        modules=probes,
        opt_class=opt_class or recipe_optimizer(),
        run_opts={"device": "cpu", "precision": precision},
        prefetch=prefetch,
    )
    brain.init_optimizers()
    brain.modules.train()
    brain.on_stage_start(None)
    return brain


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr_source", default=None)
    parser.add_argument("--arch", default="vgg_lstm", choices=["vgg_lstm", "blstm"])
    parser.add_argument(
        "--size", default="recipe", choices=["recipe", "small", "paper"]
    )
    parser.add_argument("--layers", default="paper", help="paper | all | a,b,c")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: default)"
    )
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16"],
        help="SpeechBrain run option of every brain (bf16: CPU autocast)",
    )
    parser.add_argument(
        "--runs",
        default=None,
        metavar="DATA_FOLDER",
        help="also time whole training runs (1 epoch + validation) on this corpus",
    )
    parser.add_argument(
        "--prefetch",
        action="store_true",
        help="whole runs: every brain (one-pass and separate) prepares the next "
        "batch's ASR forward on a second thread while its probes train",
    )
    parser.add_argument("--train_utts", type=int, default=48)
    parser.add_argument("--valid_utts", type=int, default=24)
    return parser.parse_args()


def pick_layers(asr, args) -> list[str]:
    """The layers of ``--layers``: the paper's of the architecture, all, or a list."""
    if args.layers == "paper":
        arch = args.arch
        if args.asr_source and hasattr(asr, "pretrained"):
            arch = getattr(asr.pretrained.hparams, "arch", arch)
        return asr.check_layers(PAPER[arch])
    if args.layers == "all":
        return asr.check_layers(list(asr.layers))
    return asr.check_layers(args.layers.split(","))


def step_times(asr, layers, args, opt_class) -> dict:
    """Milliseconds per training step, by clock (wall, cpu): the one-pass run
    (``one``), each separate run (by layer), the mel target and ASR forward."""
    wavs, lens = speech_batch(args.batch, args.seconds)
    n = wavs.shape[1]
    batch = PaddedBatch(
        [
            {"id": f"u{i}", "sig": wavs[i, : int(round(float(lens[i]) * n))]}
            for i in range(len(lens))
        ]
    )

    together = make_brain(asr, layers, opt_class, args.precision)
    alone = {
        name: make_brain(asr, [name], opt_class, args.precision) for name in layers
    }
    mel = LogMelSpectrogram(asr.mel_config)
    for brain in [together, *alone.values()]:
        brain.fit_batch(batch)  # warm-up
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    keys = ["one", "mel", "asr", *layers]
    spent = {c: dict.fromkeys(keys, 0.0) for c in clocks}

    def timed(key, fn):
        start = {c: f() for c, f in clocks.items()}
        for _ in range(args.steps):
            fn()
        for c, f in clocks.items():
            spent[c][key] += f() - start[c]

    for _ in range(args.rounds):
        timed("one", lambda: together.fit_batch(batch))
        for name, brain in alone.items():
            timed(name, lambda brain=brain: brain.fit_batch(batch))
        with torch.no_grad():
            timed("mel", lambda: mel(wavs))
            with together.training_ctx:  # autocast under --precision bf16
                timed("asr", lambda: asr.hidden_states(wavs, lens, layers))
    steps = args.steps * args.rounds
    return {c: {k: v / steps * 1000 for k, v in d.items()} for c, d in spent.items()}


def report(asr, layers, args, opt_class, ms) -> None:
    """The table of step times and the verdict against the 0.8*L target."""
    clocks = list(ms)
    steps = args.steps * args.rounds
    L = len(layers)
    print(f"# {asr.describe()}")
    print(
        f"# batch {args.batch} x {args.seconds} s, {steps} steps per run; {threads_note()}"
    )
    print(f"# optimizer {opt_class}; precision {args.precision}")
    print(f"layers (L={L}): {' '.join(layers)}")
    print(f"{'ms per step':32s} {'wall':>8s} {'cpu':>8s}")

    def row(label, key_or_value):
        vals = [
            ms[c][key_or_value] if isinstance(key_or_value, str) else key_or_value[c]
            for c in clocks
        ]
        print(f"{label:32s} " + " ".join(f"{v:8.1f}" for v in vals))

    for name in layers:
        row(f"  separate run {name}", name)
    row("mel target alone", "mel")
    row("ASR forward alone (all hooks)", "asr")
    shared = {c: ms[c]["mel"] + ms[c]["asr"] for c in clocks}
    probe = {c: {n: ms[c][n] - shared[c] for n in layers} for c in clocks}
    mean_p = {c: sum(probe[c].values()) / L for c in clocks}
    row("A = mel target + ASR forward", shared)
    for name in layers:
        row(f"  P {name} = run - A", {c: probe[c][name] for c in clocks})
    row(
        "one pass - A - sum(P): overhead",
        {c: ms[c]["one"] - shared[c] - sum(probe[c].values()) for c in clocks},
    )
    total = {c: sum(ms[c][n] for n in layers) for c in clocks}
    row("L separate runs, total", total)
    row("one pass, all L layers", "one")
    # from the training runs alone (no separately timed A): a probe costs
    # (one pass - mean separate run) / (L - 1), the rest of a run is shared
    p_run = {c: (ms[c]["one"] - total[c] / L) / max(L - 1, 1) for c in clocks}
    a_run = {c: total[c] / L - p_run[c] for c in clocks}
    row("from the runs: A", a_run)
    row("from the runs: P per probe", p_run)
    for c in clocks:
        ratio = total[c] / ms[c]["one"]
        a_p = shared[c] / mean_p[c] if mean_p[c] > 0 else float("inf")
        bound = L * (shared[c] + mean_p[c]) / (shared[c] + L * mean_p[c])
        verdict = "PASS" if ratio >= 0.8 * L else "FAIL"
        a_p_run = a_run[c] / p_run[c] if p_run[c] > 0 else float("inf")
        print(
            f"training steps ({c}): speed-up {ratio:.2f}x (target >= 0.8*L = "
            f"{0.8 * L:.1f}x: {verdict}); A/P from the runs {a_p_run:.1f}, "
            f"with A timed alone {a_p:.1f} (0.8*L needs >= {4 * L - 5}; "
            f"bound L(A+P)/(A+LP) = {bound:.2f}x)"
        )


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    asr = make_asr(args.asr_source, args.arch, args.size)
    layers = pick_layers(asr, args)
    opt_class = recipe_optimizer()
    report(asr, layers, args, opt_class, step_times(asr, layers, args, opt_class))
    if args.runs:
        time_runs(asr, layers, args)


def time_runs(asr, layers, args):
    """Whole runs: one epoch on ``train_utts`` + validation on ``valid_utts``."""
    import importlib.util

    from speechbrain.utils.epoch_loop import EpochCounter

    spec = importlib.util.spec_from_file_location(
        "train_probe", RECIPE / "train_probe.py"
    )
    train_probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_probe)
    dataio_prepare = train_probe.dataio_prepare

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

    opt_class = recipe_optimizer()

    def run(names):
        brain = make_brain(asr, names, opt_class, args.precision, args.prefetch)
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
        f"# whole runs on {args.runs}: {len(train)} train + {len(valid)} valid "
        f"utterances; prefetch {'on' if args.prefetch else 'off'} in every run"
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
