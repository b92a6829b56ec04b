"""``python -m speechbrain_probe.demo [--quick] [--data-dir data]``: the study on
the built-in corpus.

For now it builds (or reuses) the built-in corpus and prints where it is and
its size; the later stages (ASR training, probes, evaluation) are not wired
into the demo yet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .data.synthetic import build_corpus

__all__ = ["main", "format_sizes"]


def format_sizes(sizes: dict) -> str:
    """A small table of speakers, utterances and minutes per split.

    Example
    -------
    >>> print(format_sizes({"train": {"speakers": 2, "utterances": 4, "minutes": 0.3}}))
    split          speakers  utterances  minutes
    train                 2           4      0.3
    """
    lines = [f"{'split':<12} {'speakers':>10} {'utterances':>11} {'minutes':>8}"]
    for split, size in sizes.items():
        if split == "noise":
            continue
        lines.append(
            f"{split:<12} {size['speakers']:>10} {size['utterances']:>11} "
            f"{size['minutes']:>8}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the corpus and report it (the later stages come later)."""
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_probe.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="small corpus: a few minutes in all"
    )
    parser.add_argument(
        "--data-dir", default="data", help="folder of the corpora (default: data)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    preset = "quick" if args.quick else "default"
    corpus_dir = Path(args.data_dir) / (
        "synthetic_quick" if args.quick else "synthetic"
    )
    print(f"[1/1] built-in corpus ({preset}) in {corpus_dir.resolve()}")
    info = build_corpus(corpus_dir, seed=args.seed, preset=preset)
    print(format_sizes(info["sizes"]))
    noise = info["sizes"].get("noise", {})
    for split, counts in noise.items():
        text = ", ".join(f"{n} {cat}" for cat, n in counts.items())
        print(f"noise bank {split}: {text}")
    print(
        f"vocabulary of the training transcripts: {info['vocabulary']} words; "
        f"built in {info['build_seconds']} s (seed {info['seed']})"
    )
    print(
        "Not wired into the demo yet: ASR training, probes, evaluation. "
        "Only the corpus stage ran."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
