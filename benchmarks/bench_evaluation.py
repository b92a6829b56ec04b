#!/usr/bin/env python3
"""Evaluation cost per reconstruction, before and after, stage by stage, side by side.

    python benchmarks/bench_evaluation.py [--n 8] [--seconds 3] [--repeats 3]

What ``run_study`` spends on each (model, layer, condition, utterance), on one
CPU thread (the evaluation's workers and main process each run on one):
Griffin-Lim of a probe-like mel (the true mel of an eSpeak utterance, blurred
over 5 frames and 5 mel bands), the wav written and read back, the GE2E
embedding (resemblyzer, batched as ``GE2EVerifier.embed`` does), STOI and
wide-band PESQ against the clean utterance, and an ECAPA embedding (a
randomly initialised ECAPA-TDNN of the recipe's size,
``recipes/Synthetic/SpeakerRec/ECAPA/hparams/ecapa.yaml``: its cost, not its
accuracy). "Before" is the torch Griffin-Lim engine (``engine="torch"``) and
pystoi with numpy's OpenBLAS on every core, as the evaluation pool's workers
had it (they limited their threads after numpy was loaded); "after" is the
CPU engine (the default on a CPU), the vectorised STOI of
:mod:`speechbrain_probe.metrics.quality` and one OpenBLAS thread
(``threadpoolctl``, now in ``pool.worker_init``). The other stages are the
same code before and after (one BLAS thread), timed once per round. Two
rows split the STOI change (pystoi on one BLAS thread) and show what GE2E
costs with OpenBLAS on every core (the study's main process unless
``OMP_NUM_THREADS=1``).

Times are CPU seconds of this process (``time.process_time``; one torch
thread), so what else loads a shared machine inflates them less than wall
time; rounds are interleaved (before/after order alternating) and the
minimum over ``--repeats`` rounds is kept. Also printed: the FFTs alone of
the Griffin-Lim (30 x (irfft + rfft) + 1 irfft of ``[T, n_fft]`` frame
matrices), the floor the Griffin-Lim engines are measured against, and how far
the after-engine's waveforms and STOI values are from the before ones.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from speechbrain_probe.data.audio import read_checked, write_wav
from speechbrain_probe.features import LogMelSpectrogram
from speechbrain_probe.vocoder import GriffinLimVocoder

TEXT = "a large red boat sailed slowly across the quiet harbour at night and then"


def utterances(n: int, seconds: float):
    """``n`` eSpeak utterances (different voices), cut or zero-padded to ``seconds``."""
    from speechbrain_probe.data.espeak import Voice, synthesize

    size = int(seconds * 16000)
    out = []
    for i in range(n):
        voice = Voice(
            "en-us" if i % 2 else "en", f"{'mf'[i % 2]}{1 + i % 5}", rate=150 + 7 * i
        )
        w = synthesize(TEXT, voice)[:size]
        out.append(np.pad(w, (0, size - len(w))).astype(np.float32))
    return out


def probe_like(mel: torch.Tensor) -> torch.Tensor:
    """A smooth mel like a probe's output: the true mel blurred over 5 frames and 5 bands."""
    k = torch.tensor([1.0, 2.0, 3.0, 2.0, 1.0])
    k = (k / k.sum())[None, None]
    x = torch.nn.functional.conv1d(mel.T[:, None], k, padding=2)[:, 0].T
    return torch.nn.functional.conv1d(x[:, None], k, padding=2)[:, 0]


def ecapa_stage():
    """Fbank + sentence mean norm + ECAPA-TDNN of the recipe's size, batched by 16."""
    from speechbrain.lobes.features import Fbank
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    from speechbrain.processing.features import InputNormalization

    torch.manual_seed(0)
    fbank = Fbank(n_mels=80)
    norm = InputNormalization(norm_type="sentence", std_norm=False)
    model = ECAPA_TDNN(
        80,
        channels=[128, 128, 128, 128, 384],
        kernel_sizes=[5, 3, 3, 3, 1],
        dilations=[1, 2, 3, 4, 1],
        attention_channels=64,
        lin_neurons=128,
    ).eval()

    def embed(wavs):
        batch = torch.from_numpy(np.stack(wavs))
        with torch.no_grad():
            for s in range(0, len(wavs), 16):
                lens = torch.ones(len(wavs[s : s + 16]))
                feats = norm(fbank(batch[s : s + 16]), lens)
                model(feats, lens)

    return embed


def fft_floor(frames: list[int], n_fft: int, n_iter: int):
    """The Griffin-Lim's FFTs alone, on random data of the same shapes."""
    mats = [torch.randn(t, n_fft) for t in frames]
    specs = [torch.fft.rfft(m) for m in mats]

    def run():
        for m, s in zip(mats, specs):
            for _ in range(n_iter):
                torch.fft.irfft(s, n=n_fft)
                torch.fft.rfft(m)
            torch.fft.irfft(s, n=n_fft)

    return run


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def stages(args, clean, tmp: Path, out: dict) -> dict:
    """stage -> (before, after) callables (after None: the same code), which
    leave their outputs in ``out``."""
    import pystoi
    from pesq import pesq

    from speechbrain_probe.metrics.quality import stoi
    from speechbrain_probe.metrics.speaker import GE2EVerifier

    cores = os.cpu_count() or 1
    mel_fn = LogMelSpectrogram()
    with torch.no_grad():
        mels = [probe_like(mel_fn(torch.from_numpy(w)[None])[0]) for w in clean]
    out["frames"] = [m.shape[0] for m in mels]
    engines = {
        name: GriffinLimVocoder(n_iter=args.iters, device="cpu", engine=name)
        for name in ("torch", "cpu")
    }
    ge2e = GE2EVerifier(device="cpu")
    ecapa = ecapa_stage()

    def griffin_lim(name):
        def run():
            out[name] = [
                engines[name].synthesize(m)[0].numpy()[: len(w)]
                for m, w in zip(mels, clean)
            ]

        return run

    def wav_io():
        for i, w in enumerate(out["cpu"]):
            write_wav(tmp / f"{i}.wav", w)
        out["read"] = [read_checked(tmp / f"{i}.wav") for i in range(len(clean))]

    def pairs():
        ref = [w.astype(np.float64) for w in clean]
        deg = [
            np.pad(d, (0, len(r) - len(d))).astype(np.float64)
            for r, d in zip(ref, out["read"])
        ]
        return ref, deg

    def stoi_stage(fn, key, blas_threads=1):
        def run():
            with threadpool_limits(blas_threads):
                out[key] = [fn(r, d, 16000) for r, d in zip(*pairs())]

        return run

    def ge2e_all_cores():
        with threadpool_limits(cores):
            ge2e.embed(out["read"])

    return {
        "griffin-lim": (griffin_lim("torch"), griffin_lim("cpu")),
        "wav write + read": (wav_io, None),
        "ge2e embedding": (lambda: ge2e.embed(out["read"]), None),
        "stoi": (
            stoi_stage(pystoi.stoi, "stoi_before", cores),
            stoi_stage(stoi, "stoi_after"),
        ),
        "  (pystoi, 1 BLAS thread)": (stoi_stage(pystoi.stoi, "stoi_1"), None),
        "pesq (wb)": (
            lambda: [pesq(16000, r, d, "wb") for r, d in zip(*pairs())],
            None,
        ),
        "ecapa embedding": (lambda: ecapa(out["read"]), None),
        f"  (ge2e, {cores} BLAS threads)": (ge2e_all_cores, None),
        "  (FFTs alone)": (fft_floor(out["frames"], 2048, args.iters), None),
    }


def timings(stages: dict, repeats: int, n: int) -> dict:
    """stage -> (before, after) CPU seconds per utterance: the minimum of
    ``repeats`` rounds, before/after order alternating, after a warm-up
    (imports, numba kernels, MKL and allocator set-up)."""
    for before, after in stages.values():
        before()
        if after is not None:
            after()
    times = {name: ([], []) for name in stages}
    for rep in range(repeats):
        for name, (before, after) in stages.items():
            runs = [(0, before)] + ([(1, after)] if after is not None else [])
            if rep % 2:
                runs.reverse()
            for slot, fn in runs:
                times[name][slot].append(cpu_seconds(fn) / n)
    return {name: (min(b), min(a) if a else min(b)) for name, (b, a) in times.items()}


def report(args, stages: dict, per: dict, out: dict) -> None:
    """Print the stages, the throughputs and how far after is from before."""
    load = os.getloadavg()[0]
    print(
        f"{args.n} eSpeak utterances of {args.seconds:g} s, probe-like mels, "
        f"{args.iters} Griffin-Lim iterations (n_fft 2048, win 800, hop 200), "
        f"1 torch thread, {os.cpu_count()} cpus, load avg {load:.1f}; "
        f"CPU-ms per reconstruction, min of {args.repeats} interleaved rounds"
    )
    print(f"  {'stage':28s} {'before':>9s} {'after':>9s} {'ratio':>7s}")
    for name, (b, a) in per.items():
        ratio = f"x{b / a:.2f}" if stages[name][1] is not None else ""
        print(f"  {name:28s} {b * 1e3:9.1f} {a * 1e3:9.1f} {ratio:>7s}")

    def pipeline(label, names):
        b = sum(per[n][0] for n in names)
        a = sum(per[n][1] for n in names)
        print(
            f"  {label:42s} {1 / b:6.2f} -> {1 / a:6.2f} reconstructions/CPU-s  x{b / a:.2f}"
        )

    print("throughput (one CPU thread):")
    core = ["griffin-lim", "wav write + read", "ge2e embedding", "stoi"]
    pipeline("Griffin-Lim + wav I/O + GE2E + STOI", core)
    pipeline("  + PESQ", core + ["pesq (wb)"])
    pipeline("  + ECAPA", core + ["ecapa embedding"])
    pipeline("  + PESQ + ECAPA", core + ["pesq (wb)", "ecapa embedding"])
    gl = per["griffin-lim"][1] / per["  (FFTs alone)"][0]
    print(f"after-engine Griffin-Lim / its FFTs alone: x{gl:.2f}")

    diffs = [
        float(np.linalg.norm(a - b) / np.linalg.norm(a))
        for a, b in zip(out["torch"], out["cpu"])
    ]
    same = out["stoi_before"] == out["stoi_after"] == out["stoi_1"]
    print(
        f"after vs before: Griffin-Lim waveform RMS difference <= {max(diffs):.1e} "
        f"of the RMS; STOI values identical: {same}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8, help="utterances")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(1)  # numpy's and scipy's BLAS, except where a stage says
    clean = utterances(args.n, args.seconds)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench_evaluation_") as tmp:
        chosen = stages(args, clean, Path(tmp), out)
        per = timings(chosen, args.repeats, args.n)
    report(args, chosen, per, out)


if __name__ == "__main__":
    main()
