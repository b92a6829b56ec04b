#!/usr/bin/env python3
"""CPU cost of the two vocoders: universal HiFi-GAN vs Griffin-Lim, side by side.

    python benchmarks/bench_vocoders.py [--n 4] [--seconds 3.5] [--repeats 2]

The same eSpeak utterances (synthesised at 22,050 Hz, resampled to 16 kHz
for Griffin-Lim) are decoded by

* :class:`~speechbrain_probe.hifigan.HifiGanUniversalVocoder` from their
  ``HIFIGAN_MEL`` mel (22,050 Hz, hop 256), one utterance at a time;
* ``GriffinLimVocoder(n_iter=30, strategy="per_utterance")`` from their
  paper mel (16 kHz, n_fft 2048, hop 200),

with 1 and then 2 torch threads. Mels are computed beforehand: only the
vocoders are timed. Reported per vocoder and thread count: wall seconds and
process CPU seconds (all threads) per second of audio, minimum over
interleaved repeats (a shared machine's load hits both vocoders alike), and
the HiFi-GAN / Griffin-Lim ratio. The load average printed first says how
busy the machine was.
"""

import argparse
import os
import time

import torch

from speechbrain_probe.data.espeak import Voice, synthesize
from speechbrain_probe.features import HIFIGAN_MEL, LogMelSpectrogram, MelConfig
from speechbrain_probe.hifigan import HifiGanUniversalVocoder, to_sample_rate
from speechbrain_probe.vocoder import GriffinLimVocoder

TEXT = (
    "a large red boat sailed slowly across the quiet harbour at night "
    "while the old men watched from the stone wall"
)


def utterances(n: int, seconds: float):
    """``n`` eSpeak utterances of ``seconds`` at 22,050 Hz (different voices)."""
    wavs = []
    for i in range(n):
        voice = Voice("en-us", f"{'mf'[i % 2]}{1 + i % 4}", rate=130 + 5 * i)
        wav = torch.from_numpy(synthesize(TEXT, voice, 22050)).float()
        wavs.append(wav[: int(seconds * 22050)])
    return wavs


def timed(vocoder, mels):
    """Wall and CPU seconds of decoding every mel, one at a time."""
    wall, cpu = time.perf_counter(), time.process_time()
    for mel in mels:
        vocoder.synthesize(mel)
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    wavs22 = utterances(args.n, args.seconds)
    wavs16 = to_sample_rate(wavs22, 22050, 16000)
    audio = sum(w.shape[0] for w in wavs22) / 22050
    paper = MelConfig()
    mels_hifi = [LogMelSpectrogram(HIFIGAN_MEL)(w.unsqueeze(0)) for w in wavs22]
    mels_gl = [LogMelSpectrogram(paper)(w.unsqueeze(0)) for w in wavs16]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{args.n} eSpeak utterances, {audio:.1f} s of audio; {os.cpu_count()} CPUs, "
        f"load average {load} (other jobs share this machine)"
    )
    print("seconds per second of audio (min of repeats): wall / CPU (all threads)")
    for threads in args.threads:
        torch.set_num_threads(threads)
        vocoders = {
            "HiFi-GAN universal": (
                HifiGanUniversalVocoder(device="cpu", num_threads=threads),
                mels_hifi,
            ),
            "Griffin-Lim 30 it.": (
                GriffinLimVocoder(
                    config=paper,
                    n_iter=30,
                    strategy="per_utterance",
                    device="cpu",
                    num_threads=threads,
                ),
                mels_gl,
            ),
        }
        for vocoder, mels in vocoders.values():  # warm-up: first-call costs
            vocoder.synthesize(mels[0][:, :20])
        results = {name: [] for name in vocoders}
        for rep in range(args.repeats):
            order = list(vocoders) if rep % 2 == 0 else list(reversed(vocoders))
            for name in order:
                results[name].append(timed(*vocoders[name]))
        best = {}
        for name, runs in results.items():
            wall = min(w for w, _ in runs) / audio
            cpu = min(c for _, c in runs) / audio
            best[name] = (wall, cpu)
            print(
                f"  {threads} thread(s)  {name:20s} {wall:6.3f} / {cpu:6.3f}   "
                f"(wall runs: {', '.join(f'{w:.1f}' for w, _ in runs)} s)"
            )
        (hw, hc), (gw, gc) = best.values()
        print(
            f"  {threads} thread(s)  HiFi-GAN / Griffin-Lim = x{hw / gw:.2f} wall, "
            f"x{hc / gc:.2f} CPU"
        )


if __name__ == "__main__":
    main()
