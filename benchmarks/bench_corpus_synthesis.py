#!/usr/bin/env python3
"""The built-in corpus' speech synthesis: every step of an utterance in one
thread (before), or eSpeak in one thread while a second resamples, levels and
writes the utterances it has spoken (after, ``_synthesis_worker``).

    python benchmarks/bench_corpus_synthesis.py [--utts 400] [--rounds 3]

Each round synthesises the same ``--utts`` sentences (the corpus' own
sentence generator and voices) both ways, each in a fresh process (eSpeak's
output depends on the utterances it spoke before in its process) and into its
own temporary folder, alternating which goes first. Printed: seconds per way
(best of the rounds, imports excluded), the ratio, and whether the two folders
hold the same bytes (they must: the pipeline changes when the work is done,
not what it computes).
"""

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from speechbrain_probe.data.espeak import Voice, get_espeak
from speechbrain_probe.data.synthetic import (
    SentenceGenerator,
    _finish_utterance,
    _Job,
    _synthesis_worker,
)

RATE = 16000
VOICES = [Voice("en-us", v) for v in ("m3", "f2", "m7", "f4")]


def jobs_in(folder: Path, sentences) -> list:
    """One job per sentence, voices in turn, written under ``folder``."""
    return [
        _Job(text, VOICES[i % len(VOICES)], (0, i), str(folder / f"{i:05d}.wav"))
        for i, text in enumerate(sentences)
    ]


def one_thread(jobs) -> None:
    """The synthesis loop before: speak, resample, level, write, in turn."""
    espeak = get_espeak()
    for job in jobs:
        native = espeak.speak(job.text, job.voice)
        _finish_utterance(native, espeak.native_rate, job, RATE)


def digest(folder: Path) -> str:
    """A hash of the folder's wav files, in name order."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.wav")):
        h.update(path.read_bytes())
    return h.hexdigest()


WAYS = {
    "one thread": one_thread,
    "pipelined": lambda jobs: _synthesis_worker(jobs, RATE, progress=False),
}


def child(way: str, folder: str, utts: int) -> None:
    """Synthesise in this (fresh) process; print the seconds it took."""
    jobs = jobs_in(Path(folder), SentenceGenerator(0, 8, 20).sentences(utts))
    get_espeak().seed(0)
    start = time.perf_counter()
    WAYS[way](jobs)
    print(time.perf_counter() - start)


def main() -> None:
    """Alternate both ways; print the best times, the ratio and the check."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("WAY", "FOLDER"))
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.utts)
    best = dict.fromkeys(WAYS, float("inf"))
    same = True
    for r in range(args.rounds):
        digests = {}
        for name in list(WAYS) if r % 2 == 0 else list(WAYS)[::-1]:
            with tempfile.TemporaryDirectory() as tmp:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        f"--utts={args.utts}",
                        "--child",
                        name,
                        tmp,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                best[name] = min(best[name], float(out.split()[-1]))
                digests[name] = digest(Path(tmp))
        same = same and len(set(digests.values())) == 1
    for name, seconds in best.items():
        print(f"{name:>10}: {seconds:6.2f} s for {args.utts} utterances (best)")
    print(f"pipelined / one thread: {best['pipelined'] / best['one thread']:.2f}x")
    print(f"identical files: {same}")


if __name__ == "__main__":
    main()
