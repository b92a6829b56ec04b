#!/usr/bin/env python3
"""First GE2E embeddings in a fresh process under a recipe's DEBUG log file:
numba's compilation log kept, or quieted as ``GE2EVerifier`` now does.

    python benchmarks/bench_numba_logging.py [--rounds 3]

Each round starts two fresh Python processes in turn, each with an empty numba
cache folder (as a fresh clone has) and the root logger writing DEBUG records
to a file (as ``speechbrain.core.create_experiment_directory`` sets up every
recipe's ``log.txt``). Each builds a :class:`GE2EVerifier` and embeds two
seconds of audio, which makes librosa (inside resemblyzer's preprocessing)
compile its numba functions; the "kept" process sets the ``numba`` logger
back to DEBUG after building the verifier. Printed: seconds and log size per
process (best of the rounds) and kept/quieted.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import logging, sys
import numpy as np
logging.basicConfig(filename=sys.argv[1], level=logging.DEBUG)
from speechbrain_probe.metrics.speaker import GE2EVerifier
v = GE2EVerifier(device="cpu")
if sys.argv[2] == "kept":
    logging.getLogger("numba").setLevel(logging.DEBUG)
t = np.arange(32000) / 16000
v.embed([0.1 * np.sin(2 * np.pi * 180 * t), 0.1 * np.sin(2 * np.pi * 240 * t)])
"""


def run(mode: str) -> tuple[float, int]:
    """Seconds and log bytes of one fresh process in ``mode``."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "log.txt")
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba"))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", CHILD, log, mode], env=env, check=True)
        return time.perf_counter() - start, os.path.getsize(log)


def main() -> None:
    """Alternate the two modes; print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best = {"kept": (float("inf"), 0), "quieted": (float("inf"), 0)}
    for r in range(args.rounds):
        for mode in best:
            seconds, size = run(mode)
            if seconds < best[mode][0]:
                best[mode] = (seconds, size)
        print(
            f"round {r + 1}: "
            + ", ".join(f"{m} {s:.1f} s" for m, (s, _) in best.items())
        )
    (kept, kept_log), (quiet, quiet_log) = best["kept"], best["quieted"]
    print(
        f"\nfresh process, empty numba cache, best of {args.rounds}: numba log kept "
        f"{kept:.1f} s ({kept_log / 1e6:.1f} MB of log), quieted {quiet:.1f} s "
        f"({quiet_log / 1e6:.2f} MB), {kept / quiet:.2f}x"
    )


if __name__ == "__main__":
    main()
