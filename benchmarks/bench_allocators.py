#!/usr/bin/env python3
"""One ASR training under each malloc, side by side: peak memory and time.

    python benchmarks/bench_allocators.py [--data data/synthetic_quick] [--epochs 1]

Runs the ASR recipe (robust VGG-LSTM: every utterance clean and noisy, the
demo's heaviest stage per utterance) for ``--epochs`` on one thread, once per
allocator: glibc's defaults, glibc with the demo's tunables, the mimalloc that
the project installs (``cmeel-mimalloc``), and jemalloc when the system has
it. Each run is a fresh process into its own output folder, measured with
``/usr/bin/time`` (peak resident memory) and the recipe's own training
minutes; the ratios are against glibc's defaults. Build the corpus first:
``python -m speechbrain_probe.demo --quick --corpus-only``.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from speechbrain_probe.demo import (
    GLIBC_TUNABLES,
    JEMALLOC_CONF,
    JEMALLOC_PATHS,
    shipped_mimalloc,
)

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "Synthetic" / "ASR" / "CTC"


def allocators() -> dict[str, dict]:
    """name -> extra environment of the run."""
    runs = {
        "glibc defaults": {},
        "glibc tunables": {"GLIBC_TUNABLES": GLIBC_TUNABLES},
    }
    mimalloc = shipped_mimalloc()
    if mimalloc:
        runs["mimalloc (wheel)"] = {"LD_PRELOAD": mimalloc}
    jemalloc = next((p for p in JEMALLOC_PATHS if Path(p).is_file()), None)
    if jemalloc:
        runs["jemalloc (system)"] = {
            "LD_PRELOAD": jemalloc,
            "MALLOC_CONF": JEMALLOC_CONF,
        }
    return runs


def run_once(name: str, extra: dict, args, out: Path) -> tuple[float, float, float]:
    """(peak GB, wall s, training minutes) of one recipe run."""
    time_bin = shutil.which("time") or "/usr/bin/time"
    command = [
        time_bin,
        "-f",
        "peak_kb=%M wall_s=%e",
        sys.executable,
        str(RECIPE / "train_asr.py"),
        str(RECIPE / "hparams" / "vgg_lstm.yaml"),
        "--training=robust",
        f"--data_folder={args.data}",
        "--skip_prep=True",
        f"--output_root={out}",
        f"--number_of_epochs={args.epochs}",
        "--num_threads=1",
    ]
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env.update(OMP_NUM_THREADS="1", **extra)
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    found = re.search(r"peak_kb=(\d+) wall_s=([\d.]+)", run.stderr)
    if run.returncode != 0 or not found:
        tail = "\n".join(run.stderr.splitlines()[-15:])
        raise SystemExit(f"{name}: the recipe failed (exit {run.returncode}):\n{tail}")
    minutes = json.loads((out / "vgg_lstm_robust" / "train_time.json").read_text())
    return int(found.group(1)) / 1e6, float(found.group(2)), minutes["train_minutes"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/synthetic_quick"))
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    if not (args.data / "train.csv").is_file():
        raise SystemExit(
            f"{args.data}/train.csv not found: build the corpus first "
            "(python -m speechbrain_probe.demo --quick --corpus-only) or pass --data"
        )
    if not Path("/usr/bin/time").exists() and not shutil.which("time"):
        raise SystemExit("needs GNU time (/usr/bin/time) for the peak memory")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, extra) in enumerate(allocators().items()):
            results[name] = run_once(name, extra, args, Path(tmp) / str(i))
            peak, wall, train = results[name]
            print(
                f"{name:<18} peak {peak:5.2f} GB  wall {wall:6.1f} s  training {train:5.2f} min",
                flush=True,
            )
    base_peak, _, base_train = results["glibc defaults"]
    print("\nratios to glibc's defaults (peak memory, training time):")
    for name, (peak, _, train) in results.items():
        print(f"  {name:<18} {peak / base_peak:5.2f}x  {train / base_train:5.2f}x")


if __name__ == "__main__":
    main()
