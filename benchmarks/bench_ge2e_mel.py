#!/usr/bin/env python3
"""First GE2E embeddings in a fresh install: the mel from resemblyzer's
``wav_to_mel_spectrogram`` (librosa) before, from ``ge2e_mel`` (NumPy) now.

    python benchmarks/bench_ge2e_mel.py [--rounds 3] [--utts 48]

Each round starts two fresh Python processes in turn, each with an empty numba
cache folder (as a fresh install has: importing librosa's utilities compiles
its numba functions, and only later processes find them cached). Each builds
a :class:`GE2EVerifier`, puts back resemblyzer's mel for "librosa", and embeds
``--utts`` seconds-long speech-like signals. Printed: seconds per process (best
of the rounds), the ratio, and the largest difference between the two
processes' embeddings.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import sys
import numpy as np
import speechbrain_probe.metrics.speaker as speaker
v = speaker.GE2EVerifier(device="cpu")
if sys.argv[1] == "librosa":
    from resemblyzer.audio import wav_to_mel_spectrogram
    speaker.ge2e_mel = wav_to_mel_spectrogram
rng = np.random.default_rng(0)
t = np.arange(40000) / 16000
wavs = [
    (0.1 * np.sin(2 * np.pi * f * t) * (1 + np.sin(2 * np.pi * 3 * t))
     + 0.003 * rng.standard_normal(t.shape)).astype(np.float32)
    for f in rng.uniform(90, 300, int(sys.argv[2]))
]
np.save(sys.argv[3], v._embed(wavs).numpy())
"""


def run(mode: str, utts: int, out: str) -> float:
    """Seconds of one fresh process in ``mode`` with an empty numba cache."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba"))
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(utts), out], env=env, check=True
        )
        return time.perf_counter() - start


def main() -> None:
    """Alternate the two mels; print the times, the ratio and the difference."""
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--utts", type=int, default=48)
    args = parser.parse_args()
    best = {"librosa": float("inf"), "numpy": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        outs = {mode: os.path.join(tmp, f"{mode}.npy") for mode in best}
        for r in range(args.rounds):
            for mode in best if r % 2 == 0 else list(best)[::-1]:
                best[mode] = min(best[mode], run(mode, args.utts, outs[mode]))
            print(
                f"round {r + 1}: "
                + ", ".join(f"{m} {s:.1f} s" for m, s in best.items())
            )
        diff = np.abs(np.load(outs["librosa"]) - np.load(outs["numpy"])).max()
    print(
        f"\nfresh process, empty numba cache, {args.utts} utterances, best of "
        f"{args.rounds}: librosa mel {best['librosa']:.1f} s, ge2e_mel "
        f"{best['numpy']:.1f} s, {best['librosa'] / best['numpy']:.2f}x; largest "
        f"embedding difference {diff:.1e}"
    )


if __name__ == "__main__":
    main()
