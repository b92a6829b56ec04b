#!/usr/bin/env python3
"""One ASR training on two cores: one process with two threads, or two
single-thread DDP processes, at the same effective batch, side by side.

    python benchmarks/bench_asr_processes.py [--utts 96] [--rounds 3] [--procs 2] [--batch 4]

The CTC recipe's VGG-LSTM (as in ``bench_asr_batch.py``) trains one epoch of
``--utts`` random-feature utterances of 1.5-5 s in batches of similar length,
effective batch ``--batch``: (a) in this process on ``--procs`` torch threads;
(b) in ``--procs`` processes of one thread each (gloo DDP, as ``torchrun``
runs the recipe), each taking its share of every batch, gradients averaged
across processes before each Adam step. Rounds alternate (a) and (b), so a
shared machine's load hits both alike. Printed: seconds per epoch (best of
the rounds) and (a)/(b). An LSTM's time steps are sequential, so a second
thread has little to do in a small layer; a second process works on other
utterances.
"""

import argparse
import os
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from bench_asr_batch import batches, epoch_seconds, make_utterances

from speechbrain_probe.asr.models import VGGLSTM


def make_run(seed: int = 0):
    """The VGG-LSTM, its CTC head and an Adam optimiser."""
    torch.manual_seed(seed)
    model = VGGLSTM(
        n_mels=80, in_channels=3, cnn_channels=[16, 32], hidden_size=160, num_blstm=5
    )
    head = torch.nn.Linear(320, 40)
    return model, head


def shard(utts, batch: int, procs: int, rank: int):
    """This process's share of each effective batch (items ``rank::procs``)."""
    return [u for group in batches(utts, batch) for u in group[rank::procs]]


def _worker(rank, procs, init_file, utts, batch, rounds, go, queue):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=procs
    )
    # the DDP wrappers average the gradients across processes during backward
    model, head = (torch.nn.parallel.DistributedDataParallel(m) for m in make_run())
    opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()))
    mine = shard(utts, batch, procs, rank)
    for _ in range(rounds):
        go.get()  # idle while the one-process epoch runs
        dist.barrier()
        seconds = epoch_seconds(model, head, opt, mine, batch // procs)
        dist.barrier()
        if rank == 0:
            queue.put(seconds)
    dist.destroy_process_group()


def main() -> None:
    """Alternate one-process and DDP epochs; print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    if args.batch % args.procs or args.utts % args.batch:
        raise SystemExit("--batch must divide --utts, and --procs must divide --batch")
    utts = make_utterances(args.utts)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    best_one, best_ddp = float("inf"), float("inf")
    model, head = make_run()
    opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()))
    torch.set_num_threads(args.procs)
    with tempfile.TemporaryDirectory() as tmp:
        go = [ctx.Queue() for _ in range(args.procs)]
        init = os.path.join(tmp, "init")
        procs = [
            ctx.Process(
                target=_worker,
                args=(
                    rank,
                    args.procs,
                    init,
                    utts,
                    args.batch,
                    args.rounds,
                    go[rank],
                    queue,
                ),
            )
            for rank in range(args.procs)
        ]
        for p in procs:
            p.start()
        for r in range(args.rounds):
            best_one = min(best_one, epoch_seconds(model, head, opt, utts, args.batch))
            for q in go:
                q.put(r)
            best_ddp = min(best_ddp, queue.get())
            print(
                f"round {r + 1}: one process, {args.procs} threads {best_one:.1f} s; "
                f"{args.procs} processes x 1 thread {best_ddp:.1f} s"
            )
        for p in procs:
            p.join()
    print(
        f"\n{args.utts} utterances (1.5-5 s), effective batch {args.batch}, "
        f"best of {args.rounds}: one process {best_one:.1f} s/epoch, "
        f"{args.procs} DDP processes {best_ddp:.1f} s/epoch, "
        f"{best_one / best_ddp:.2f}x"
    )


if __name__ == "__main__":
    main()
