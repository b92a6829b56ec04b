"""LibriSpeech preparation: one SpeechBrain CSV per split.

Expects the layout of the OpenSLR archives (resource 12)::

    <data_folder>/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    <data_folder>/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac

and writes ``<save_folder>/<split>.csv`` with ``ID,duration,wav,spk_id,wrd``
(``spk_id`` is the speaker without the chapter part, as speaker verification
needs). A transcript line whose audio is missing, unreadable or empty is
skipped, and all skipped files are listed in one warning; audio that is not
16 kHz mono stops the preparation with the file and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm

from .audio import usable_duration, warn_skipped
from .manifest import write_manifest

__all__ = ["prepare_librispeech", "DEFAULT_SPLITS"]

DEFAULT_SPLITS = ("train-clean-100", "dev-clean", "test-clean")

_LAYOUT = (
    "<data_folder>/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt with "
    "<speaker>-<chapter>-<utt>.flac next to it"
)


def _read_transcripts(trans: Path) -> list[tuple[str, str]]:
    out = []
    for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(" ", 1)
        if len(parts) != 2 or not parts[1].strip():
            raise ValueError(
                f"{trans}:{n}: expected '<utterance-id> <TRANSCRIPT>', got {line!r}; "
                "fix or re-extract the file"
            )
        out.append((parts[0], " ".join(parts[1].split()).upper()))
    return out


def prepare_librispeech(
    data_folder: str | os.PathLike,
    save_folder: str | os.PathLike,
    splits=DEFAULT_SPLITS,
    skip_prep: bool = False,
    overwrite: bool = False,
    sample_rate: int = 16000,
    progress: bool = True,
) -> dict[str, Path]:
    """Write ``<save_folder>/<split>.csv`` for every split of LibriSpeech.

    Arguments
    ---------
    data_folder : path
        Folder that holds the extracted splits (``LibriSpeech/``).
    save_folder : path
        Where the CSVs go.
    splits : sequence of str
        Split folder names, e.g. ``train-clean-100``, ``dev-clean``.
    skip_prep : bool
        Do nothing (recipes pass their ``skip_prep`` hparam).
    overwrite : bool
        Rewrite CSVs that already exist (otherwise they are reused).
    sample_rate : int
        Required sample rate.
    progress : bool
        Show tqdm bars.

    Returns
    -------
    dict
        Split name -> CSV path.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> root = getfixture("tmp_path") / "LibriSpeech"
    >>> chap = root / "dev-clean" / "84" / "121123"
    >>> chap.mkdir(parents=True)
    >>> sf.write(chap / "84-121123-0000.flac", np.zeros(1600), 16000)
    >>> _ = (chap / "84-121123.trans.txt").write_text("84-121123-0000 GO DO YOU HEAR\\n")
    >>> out = prepare_librispeech(root, root / "csv", ["dev-clean"], progress=False)
    >>> open(out["dev-clean"]).read().splitlines()[1].split(",")[3:]
    ['84', 'GO DO YOU HEAR']
    """
    save_folder = Path(save_folder)
    outputs = {split: save_folder / f"{split}.csv" for split in splits}
    if skip_prep:
        return outputs
    data_folder = Path(data_folder)
    if not data_folder.is_dir():
        raise FileNotFoundError(
            f"LibriSpeech folder {data_folder} does not exist; download the splits "
            "from https://www.openslr.org/12 and extract them, then pass the folder "
            "that holds e.g. train-clean-100/ as data_folder"
        )
    for split in splits:
        out = outputs[split]
        if out.is_file() and not overwrite:
            continue
        split_dir = data_folder / split
        if not split_dir.is_dir():
            present = sorted(p.name for p in data_folder.iterdir() if p.is_dir())
            raise FileNotFoundError(
                f"split folder {split_dir} does not exist (found: {present or 'nothing'}); "
                f"extract {split}.tar.gz into {data_folder} or fix `splits`"
            )
        transcripts = sorted(split_dir.glob("*/*/*.trans.txt"))
        if not transcripts:
            raise FileNotFoundError(
                f"no transcript files in {split_dir}; expected the layout {_LAYOUT}"
            )
        rows, skipped = [], []
        for trans in tqdm(transcripts, desc=f"preparing {split}", disable=not progress):
            spk = trans.parent.parent.name
            for utt_id, words in _read_transcripts(trans):
                flac = trans.parent / f"{utt_id}.flac"
                if not flac.is_file():
                    skipped.append(f"{flac} (listed in {trans.name}, file missing)")
                    continue
                duration = usable_duration(flac, sample_rate, skipped)
                if duration is None:
                    continue
                rows.append(
                    {
                        "ID": utt_id,
                        "duration": f"{duration:.4f}",
                        "wav": str(flac.resolve()),
                        "spk_id": spk,
                        "wrd": words,
                    }
                )
        warn_skipped(f"{split}: skipped {{}} utterance(s)", skipped)
        if not rows:
            raise ValueError(
                f"no usable utterances in {split_dir}; check the files above"
            )
        write_manifest(out, rows)
    return outputs
