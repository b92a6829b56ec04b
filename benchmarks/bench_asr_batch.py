#!/usr/bin/env python3
"""ASR training cost per epoch at batch sizes 8, 4 and 2, side by side.

    python benchmarks/bench_asr_batch.py [--utts 96] [--rounds 3] [--threads 1]

The CTC recipe's VGG-LSTM (its default widths: CNN [16, 32], 5 BLSTM layers
of 160 units, 40 output units) trains on the same utterances, in batches of
similar duration as the recipe's sampler forms them, at each batch size in
turn (interleaved rounds, so a shared machine's load hits every size alike):
forward, CTC loss, backward and an Adam step. Utterance durations are drawn
from the built-in corpus's range (1.5-5 s, seeded); features are random, which
costs the same as speech. Printed: seconds per epoch of ``--utts`` utterances
(best of the rounds), updates per epoch, and the cost of an epoch relative to
batch 8. A smaller batch gives more updates for (nearly) the same compute when
the per-epoch cost stays flat: the LSTMs' time steps are sequential, so a
batch of 8 short sequences does not keep a core busier than a batch of 4.
"""

import argparse
import time

import torch

from speechbrain_probe.asr.models import VGGLSTM

FRAMES_PER_SECOND = 80  # 12.5 ms hop


def make_utterances(n: int, seed: int = 0) -> list[torch.Tensor]:
    """``n`` random ``[T, 240]`` feature sequences of 1.5-5 s."""
    g = torch.Generator().manual_seed(seed)
    seconds = 1.5 + 3.5 * torch.rand(n, generator=g)
    return [torch.randn(int(s * FRAMES_PER_SECOND), 240, generator=g) for s in seconds]


def batches(utts: list[torch.Tensor], size: int) -> list[list[torch.Tensor]]:
    """Batches of similar length (sorted by duration, then cut)."""
    ordered = sorted(utts, key=len)
    return [ordered[k : k + size] for k in range(0, len(ordered), size)]


def train_step(model, head, opt, batch: list[torch.Tensor]) -> None:
    """One CTC training step on ``batch`` (``[T, 240]`` tensors, random targets):
    forward, loss, backward and an optimiser step."""
    lens = torch.tensor([len(u) for u in batch])
    x = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True)
    rel = lens.float() / x.shape[1]
    h = model(x, rel)
    logp = torch.log_softmax(head(h), dim=-1).transpose(0, 1)
    out_lens = (rel * h.shape[1]).round().long().clamp(1, h.shape[1])
    target_lens = (out_lens // 2).clamp(min=1)
    targets = torch.randint(1, head.out_features, (int(target_lens.sum()),))
    loss = torch.nn.functional.ctc_loss(
        logp, targets, out_lens, target_lens, zero_infinity=True
    )
    opt.zero_grad()
    loss.backward()
    opt.step()


def epoch_seconds(model, head, opt, utts, size: int) -> float:
    """Wall seconds of one training epoch over ``utts`` at batch ``size``."""
    start = time.perf_counter()
    for batch in batches(utts, size):
        train_step(model, head, opt, batch)
    return time.perf_counter() - start


def main() -> None:
    """Interleaved rounds of one epoch per batch size; print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default="8,4,2")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes = [int(s) for s in args.sizes.split(",")]
    utts = make_utterances(args.utts)
    runs = {}
    for size in sizes:
        model = VGGLSTM(
            n_mels=80,
            in_channels=3,
            cnn_channels=[16, 32],
            hidden_size=160,
            num_blstm=5,
            layer_norm=True,
        )
        head = torch.nn.Linear(320, 40)
        params = list(model.parameters()) + list(head.parameters())
        runs[size] = (model, head, torch.optim.Adam(params, lr=1e-3))
    best = {size: float("inf") for size in sizes}
    for r in range(args.rounds):
        for size in sizes:
            best[size] = min(best[size], epoch_seconds(*runs[size], utts, size))
        print(
            f"round {r + 1}: " + ", ".join(f"batch {s} {best[s]:.1f} s" for s in sizes)
        )
    base = best[sizes[0]]
    print(
        f"\n{args.utts} utterances (1.5-5 s), {args.threads} thread(s), best of {args.rounds}"
    )
    print(
        f"{'batch':>5} {'s/epoch':>8} {'updates':>8} {'epoch cost':>11} {'s/update':>9}"
    )
    for size in sizes:
        updates = -(-args.utts // size)
        print(
            f"{size:>5} {best[size]:>8.1f} {updates:>8} "
            f"{best[size] / base:>10.2f}x {best[size] / updates:>9.3f}"
        )


if __name__ == "__main__":
    main()
