"""MUSAN preparation: noise CSVs per category with a train/test split of files.

Expects the layout of the OpenSLR archive (resource 17)::

    <musan_folder>/{music,noise,speech}/<source>/*.wav

(``musan_folder`` may also be the folder that contains ``musan/``), and
writes into ``save_folder``:

- ``noise_train.csv``, ``noise_test.csv`` (``ID,duration,wav,category``);
- ``noise_train_<category>.csv``, ``noise_test_<category>.csv`` per category
  (noise-robust training mixes each category at its own SNR range).

Each category's files are split at random (seeded) into training noises and
held-out test noises. MUSAN's ``speech`` files are single talkers; with
``num_babble > 0`` the ``speech`` category instead lists babble files of 3-7
talkers each, made from that split's speech files (Kaldi x-vector style).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .audio import read_checked, usable_duration, warn_skipped, write_wav
from .manifest import write_manifest
from .noise import NOISE_CATEGORIES, NOISE_FIELDS, make_babble

__all__ = ["prepare_musan", "NOISE_FIELDS"]


def _find_root(musan_folder: Path) -> Path:
    if not musan_folder.is_dir():
        raise FileNotFoundError(
            f"MUSAN folder {musan_folder} does not exist; download musan.tar.gz from "
            "https://www.openslr.org/17, extract it and pass the musan/ folder"
        )
    if not any((musan_folder / c).is_dir() for c in NOISE_CATEGORIES):
        if (musan_folder / "musan").is_dir():
            return _find_root(musan_folder / "musan")
        found = sorted(p.name for p in musan_folder.iterdir())[:10]
        raise FileNotFoundError(
            f"{musan_folder} is not a MUSAN folder: expected sub-folders "
            f"{', '.join(NOISE_CATEGORIES)} (found: {found or 'nothing'}); pass the "
            "extracted musan/ folder"
        )
    return musan_folder


def _split_category(root, cat, rng, test_fraction, sample_rate, skipped, progress):
    """The rows of one category's usable files, by split (train, test)."""
    cat_dir = root / cat
    files = sorted(cat_dir.rglob("*.wav")) if cat_dir.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"no .wav files under {cat_dir}; expected {root}/{cat}/<source>/*.wav "
            "(re-extract musan.tar.gz or drop the category from `categories`)"
        )
    good = []
    for path in tqdm(files, desc=f"checking musan/{cat}", disable=not progress):
        duration = usable_duration(path, sample_rate, skipped)
        if duration is not None:
            good.append((path, duration))
    if not good:
        raise ValueError(f"no readable audio under {cat_dir}; see the warning above")
    order = rng.permutation(len(good))
    n_test = max(1, math.ceil(test_fraction * len(good))) if len(good) > 1 else 0
    split_of = {
        int(i): ("test" if k < n_test else "train") for k, i in enumerate(order)
    }
    rows = {"train": [], "test": []}
    for i, (path, duration) in enumerate(good):
        rel = path.relative_to(root).with_suffix("")
        rows[split_of[i]].append(
            {
                "ID": "musan_" + "_".join(rel.parts),
                "duration": f"{duration:.4f}",
                "wav": str(path.resolve()),
                "category": cat,
            }
        )
    return rows


def _babble_rows(speech, split, save_folder, num_babble, seconds, seed, sr, progress):
    """Rows of ``num_babble`` babble files of 3-7 of a split's ``speech`` rows."""
    if len(speech) < 2:
        raise ValueError(
            f"babble for {split} needs at least 2 speech files, found "
            f"{len(speech)}; lower test_fraction or set num_babble=0"
        )
    babble = []
    n = int(seconds * sr)
    for k in tqdm(range(num_babble), desc=f"babble {split}", disable=not progress):
        path = save_folder / "babble" / f"{split}_babble_{k:04d}.wav"
        b_rng = np.random.default_rng([seed, k, 0 if split == "train" else 1])
        if not path.is_file():
            count = min(len(speech), int(b_rng.integers(3, 8)))
            picks = b_rng.permutation(len(speech))[:count]
            utts = [read_checked(speech[j]["wav"], sr) for j in picks]
            write_wav(path, make_babble(utts, n, b_rng), sr)
        babble.append(
            {
                "ID": f"musan_babble_{split}_{k:04d}",
                "duration": f"{n / sr:.4f}",
                "wav": str(path.resolve()),
                "category": "speech",
            }
        )
    return babble


def prepare_musan(
    musan_folder: str | os.PathLike,
    save_folder: str | os.PathLike,
    test_fraction: float = 0.2,
    seed: int = 0,
    categories=NOISE_CATEGORIES,
    num_babble: int = 0,
    babble_seconds: float = 12.0,
    overwrite: bool = False,
    sample_rate: int = 16000,
    progress: bool = True,
) -> dict[str, Path]:
    """Write MUSAN noise manifests with a train/test split of files per category.

    Arguments
    ---------
    musan_folder : path
        The extracted ``musan/`` folder (or its parent).
    save_folder : path
        Where the CSVs (and babble files) go.
    test_fraction : float
        Share of each category's files held out for the noisy test sets
        (at least one file when a category has two or more).
    seed : int
        Seed of the split (and of the babble).
    categories : sequence of str
        Categories to prepare (all three by default).
    num_babble : int
        If > 0, build this many babble files per split from the ``speech``
        files of that split and list them as the ``speech`` category.
    babble_seconds : float
        Length of each babble file.
    overwrite : bool
        Rebuild manifests that exist (otherwise they are reused).
    sample_rate : int
        Required sample rate (MUSAN is 16 kHz mono).
    progress : bool
        Show tqdm bars.

    Returns
    -------
    dict
        Manifest name (``noise_train``, ``noise_test_music``, ...) -> path.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> root = getfixture("tmp_path") / "musan"
    >>> for cat in ("music", "noise", "speech"):
    ...     (root / cat / "src").mkdir(parents=True)
    ...     for i in range(5):
    ...         sf.write(root / cat / "src" / f"{cat}-{i}.wav", np.full(1600, 0.1), 16000)
    >>> out = prepare_musan(root, root.parent / "csv", progress=False)
    >>> from speechbrain_probe.data.manifest import read_manifest
    >>> len(read_manifest(out["noise_train"])), len(read_manifest(out["noise_test_music"]))
    (12, 1)
    """
    save_folder = Path(save_folder)
    names = ["noise_train", "noise_test"] + [
        f"noise_{s}_{c}" for s in ("train", "test") for c in categories
    ]
    outputs = {n: save_folder / f"{n}.csv" for n in names}
    if not overwrite and all(p.is_file() for p in outputs.values()):
        return outputs
    unknown = sorted(set(categories) - set(NOISE_CATEGORIES))
    if unknown:
        raise ValueError(f"unknown MUSAN categories {unknown}; use {NOISE_CATEGORIES}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    root = _find_root(Path(musan_folder))
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = {"train": [], "test": []}
    skipped: list[str] = []
    for cat in categories:
        split = _split_category(
            root, cat, rng, test_fraction, sample_rate, skipped, progress
        )
        for name in rows:
            rows[name] += split[name]
    warn_skipped("MUSAN: skipped {} file(s)", skipped)
    if num_babble > 0 and "speech" in categories:
        for split in ("train", "test"):
            speech = [r for r in rows[split] if r["category"] == "speech"]
            babble = _babble_rows(
                speech,
                split,
                save_folder,
                num_babble,
                babble_seconds,
                seed,
                sample_rate,
                progress,
            )
            rows[split] = [r for r in rows[split] if r["category"] != "speech"] + babble
    for split in ("train", "test"):
        write_manifest(outputs[f"noise_{split}"], rows[split], NOISE_FIELDS)
        for cat in categories:
            write_manifest(
                outputs[f"noise_{split}_{cat}"],
                [r for r in rows[split] if r["category"] == cat],
                NOISE_FIELDS,
            )
    return outputs
