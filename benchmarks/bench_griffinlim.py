#!/usr/bin/env python3
"""Griffin-Lim: the project's vocoder (CPU engine; torch engine batched and per
utterance) vs librosa.

    python benchmarks/bench_griffinlim.py [--data data/synthetic] [--n 16] [--iters 30]

All methods invert the same linear magnitudes (pseudo-inverse of the mel of
real test utterances, or of eSpeak speech when the corpus is missing) with
fast Griffin-Lim (momentum 0.99) and the same STFT settings, on the same
threads. The project's engines: ``cpu`` (the default on a CPU, one utterance
at a time) and ``torch`` (``torch.stft``/``istft``, the engine on CUDA; per
utterance and as one padded batch). Reported per method: wall time, process
CPU time and mean spectral convergence ``||S - |STFT(x)||| / ||S||``. Two
comparisons:

* equal iterations (``--iters``);
* equal spectral convergence: librosa's iterations are raised until its
  convergence is at least as good as the project's CPU engine.
"""

import argparse
import time
from pathlib import Path

import librosa
import numpy as np
import torch

from speechbrain_probe.features import LogMelSpectrogram
from speechbrain_probe.vocoder import GriffinLimVocoder, spectral_convergence


def load_utterances(data: Path, n: int, seconds: float):
    manifest = data / "test.csv"
    if manifest.is_file():
        from speechbrain.dataio.dataio import read_audio

        from speechbrain_probe.data.manifest import read_manifest

        rows = read_manifest(manifest)[:n]
        return [read_audio(r["wav"])[: int(seconds * 16000)] for r in rows], str(
            manifest
        )
    from speechbrain_probe.data.espeak import Voice, synthesize

    text = "a large red boat sailed slowly across the quiet harbour at night"
    wavs = [
        torch.from_numpy(
            synthesize(text, Voice("en-us", f"m{1 + i % 7}", rate=120 + 5 * i))
        )
        for i in range(n)
    ]
    return [w[: int(seconds * 16000)] for w in wavs], "eSpeak"


def mean_convergence(voc, wavs, mags):
    """Mean spectral convergence of the waveforms against their magnitudes."""
    return np.mean(
        [
            spectral_convergence(torch.as_tensor(w, dtype=torch.float32), m, voc.stft)
            for w, m in zip(wavs, mags)
        ]
    )


def run_librosa(voc, mags, lengths, n_iter):
    cfg = voc.config
    start = time.perf_counter()
    cpu = time.process_time()
    out = [
        librosa.griffinlim(
            m.numpy(),
            n_iter=n_iter,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            n_fft=cfg.n_fft,
            window="hann",
            center=True,
            length=n,
            momentum=0.99,
            init="random",
            random_state=0,
        )
        for m, n in zip(mags, lengths)
    ]
    return out, time.perf_counter() - start, time.process_time() - cpu


def run_ours(voc, mags, lengths, batched: bool):
    start = time.perf_counter()
    cpu = time.process_time()
    if batched:
        frames = max(m.shape[1] for m in mags)
        batch = torch.zeros(len(mags), mags[0].shape[0], frames)
        for i, m in enumerate(mags):
            batch[i, :, : m.shape[1]] = m
        wavs = voc.griffin_lim(batch, (frames - 1) * voc.config.hop_length)
        out = [w[:n] for w, n in zip(wavs, lengths)]
    else:
        out = [voc.griffin_lim(m, n) for m, n in zip(mags, lengths)]
    return out, time.perf_counter() - start, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"))
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    wavs, source = load_utterances(args.data, args.n, args.seconds)
    voc = GriffinLimVocoder(n_iter=args.iters, device="cpu", engine="cpu")
    ref = GriffinLimVocoder(n_iter=args.iters, device="cpu", engine="torch")
    mel = LogMelSpectrogram(voc.config)
    mags = [voc.mel_to_linear(mel(w.unsqueeze(0)))[0] for w in wavs]
    hop = voc.config.hop_length
    lengths = [(m.shape[1] - 1) * hop for m in mags]
    total = sum(lengths) / 16000
    print(
        f"{len(wavs)} utterances ({total:.1f} s of audio) from {source}, "
        f"n_fft {voc.config.n_fft}, {args.iters} iterations, {args.threads} threads"
    )

    methods = {
        "cpu engine per-utterance": lambda it: run_ours(voc, mags, lengths, False),
        "torch engine per-utterance": lambda it: run_ours(ref, mags, lengths, False),
        "torch engine batched": lambda it: run_ours(ref, mags, lengths, True),
        "librosa per-utterance": lambda it: run_librosa(voc, mags, lengths, it),
    }
    # interleaved repeats, minimum time: a shared machine's load hits every
    # method alike instead of whichever happened to run during a burst
    times = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    conv = {}
    for rep in range(args.repeats):
        order = list(methods) if rep % 2 == 0 else list(reversed(methods))
        for name in order:
            out, seconds, cpu_seconds = methods[name](args.iters)
            times[name].append(seconds)
            cpu[name].append(cpu_seconds)
            if name not in conv:
                conv[name] = mean_convergence(voc, out, mags)
    results = {}
    for name in methods:
        results[name] = (min(times[name]), conv[name])
        print(
            f"  {name:27s} {min(times[name]):7.2f} s (min of "
            f"{', '.join(f'{t:.2f}' for t in times[name])}), "
            f"{min(cpu[name]):6.2f} CPU-s   spectral convergence {conv[name]:.4f}"
        )

    base_t, base_sc = results["cpu engine per-utterance"]
    lib_t, lib_sc = results["librosa per-utterance"]
    tor_t, _ = results["torch engine per-utterance"]
    bat_t, _ = results["torch engine batched"]
    print(f"equal iterations: torch engine / cpu engine = x{tor_t / base_t:.2f}")
    print(f"equal iterations: librosa / cpu engine = x{lib_t / base_t:.2f}")
    print(f"equal iterations: torch batched / per-utterance = x{bat_t / tor_t:.2f}")
    best = "batched" if bat_t < tor_t else "per-utterance"
    print(f"-> on this CPU the faster torch-engine strategy is {best}")

    it, sc, t = args.iters, lib_sc, lib_t
    while sc > base_sc and it < 8 * args.iters:
        it = int(it * 1.25) + 1
        out, t, _ = run_librosa(voc, mags, lengths, it)
        _, t_base, _ = run_ours(voc, mags, lengths, False)  # re-time side by side
        base_t = min(base_t, t_base)
        sc = mean_convergence(voc, out, mags)
        print(
            f"  librosa {it:4d} iterations {t:7.2f} s   spectral convergence {sc:.4f}"
        )
    if it == args.iters:  # librosa already matched at equal iterations
        print("  (librosa's convergence at equal iterations is already as good)")
    status = "reached" if sc <= base_sc else "did NOT reach"
    print(
        f"equal spectral convergence ({base_sc:.4f}): librosa {status} it with {it} "
        f"iterations in {t:.2f} s = x{t / base_t:.2f} the CPU engine's time"
    )


if __name__ == "__main__":
    main()
