#!/usr/bin/env python3
"""How close the demo's ASR training runs to this CPU's matrix-multiply speed.

    python benchmarks/bench_compute_floor.py [--utts 48] [--rounds 3] [--threads 1]

The demo's two ASRs at their demo widths (VGG-LSTM: 8 and 16 filters, 5
BLSTM layers of 96 units; pure-LSTM: 5 BLSTM layers of 128 units, time halved
after blstm2, 3 and 4) train on the same random utterances of 1.5-5 s in
batches of 8 of similar length (``bench_asr_batch``'s helpers and step): forward, CTC
loss, backward and an Adam step, on one thread as in the demo's lanes.

Their floating-point work is counted once: convolutions and linear layers by
``torch.utils.flop_counter.FlopCounterMode`` (forward and backward); the
LSTMs' matrix products by formula, 2 x 4H x (input + H) per frame and
direction forward, three times that with the backward (the gradients of the
inputs and of the weights), since the counter does not see oneDNN's fused
LSTM kernel. Element-wise work (gates, ReLU, normalisation, Adam) is not
counted: the rates below are of useful matrix work.

Printed side by side, measured in one run: each model's seconds per epoch and
its matrix GFLOP/s, and the GFLOP/s of two plain matrix products on the same
thread(s): a large square one (this core's practical peak) and one of the
shape of an LSTM time step at batch 8 (what a recurrence can use at best).
The ratios say how much faster the same training could run at most with
better kernels: the demo's time is compute, not overhead. The last column is
the same epoch with oneDNN turned off (``torch.backends.mkldnn.flags``),
relative to the default: PyTorch's own kernels are the slower choice.
"""

import argparse
import time

import torch
from bench_asr_batch import epoch_seconds, make_utterances, train_step
from torch.utils.flop_counter import FlopCounterMode

from speechbrain_probe.asr.models import VGGLSTM, PureBLSTM

BATCH = 8  # the recipes' batch size


def demo_models() -> dict:
    """The demo's ASRs (recipe widths) with their CTC heads."""
    torch.manual_seed(0)
    vgg = VGGLSTM(
        n_mels=80, in_channels=3, cnn_channels=[8, 16], hidden_size=96, layer_norm=True
    )
    pure = PureBLSTM(
        input_dim=240, hidden_size=128, subsample_layers=[3, 4, 5], layer_norm=True
    )
    return {
        "VGG-LSTM": (vgg, torch.nn.Linear(192, 40)),
        "pure-LSTM": (pure, torch.nn.Linear(256, 500)),
    }


def matrix_flops(model, head, opt, utts) -> float:
    """Matrix FLOPs of one epoch: counted products plus the LSTMs' by formula."""
    lstm_flops = [0.0]

    def count(module, inputs, _output):
        x = inputs[0]
        frames = x.shape[0] * x.shape[1]
        h = module.hidden_size
        lstm_flops[0] += 3 * 2 * frames * 4 * h * (module.input_size + h)

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, torch.nn.LSTM)
    ]
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            epoch_seconds(model, head, opt, utts, BATCH)
    finally:
        for hook in hooks:
            hook.remove()
    return counter.get_total_flops() + lstm_flops[0]


def gemm_rate(m: int, k: int, n: int, repeats: int, rounds: int) -> float:
    """Best GFLOP/s of ``repeats`` products ``[m, k] @ [k, n]``."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * m * k * n * repeats / best / 1e9


def main() -> None:
    """Time each model's epoch and the reference products; print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    utts = make_utterances(args.utts)
    runs = {}
    for name, (model, head) in demo_models().items():
        params = list(model.parameters()) + list(head.parameters())
        opt = torch.optim.Adam(params, lr=1e-4)
        train_step(model, head, opt, utts[:BATCH])  # first-call allocations
        runs[name] = (model, head, opt, matrix_flops(model, head, opt, utts))
    best = {name: float("inf") for name in runs}
    plain = dict(best)  # the same epoch without oneDNN (PyTorch's own kernels)
    for r in range(args.rounds):
        for name, (model, head, opt, _) in runs.items():
            best[name] = min(best[name], epoch_seconds(model, head, opt, utts, BATCH))
            with torch.backends.mkldnn.flags(enabled=False):
                plain[name] = min(
                    plain[name], epoch_seconds(model, head, opt, utts, BATCH)
                )
        print(f"round {r + 1}: " + ", ".join(f"{n} {s:.2f} s" for n, s in best.items()))
    peak = gemm_rate(2048, 2048, 2048, 3, args.rounds)
    step = gemm_rate(8, 128 + 128, 4 * 128, 2000, args.rounds)
    print(
        f"\n{args.utts} utterances (1.5-5 s), batch {BATCH}, {args.threads} thread(s), "
        f"best of {args.rounds}"
    )
    print(f"matrix product 2048x2048x2048: {peak:.1f} GFLOP/s (practical peak)")
    print(f"matrix product 8x256 @ 256x512 (an LSTM step): {step:.1f} GFLOP/s")
    print(
        f"{'model':>10} {'s/epoch':>8} {'GFLOP':>7} {'GFLOP/s':>8} "
        f"{'of peak':>8} {'of LSTM step':>13} {'no oneDNN':>10}"
    )
    for name, (_, _, _, flops) in runs.items():
        rate = flops / best[name] / 1e9
        print(
            f"{name:>10} {best[name]:>8.2f} {flops / 1e9:>7.1f} {rate:>8.1f} "
            f"{rate / peak:>8.2f} {rate / step:>13.2f} {plain[name] / best[name]:>9.2f}x"
        )


if __name__ == "__main__":
    main()
