"""Read and write SpeechBrain CSV manifests, never leaving a half-written file.

A manifest is a CSV with an ``ID`` column and one row per utterance, e.g.
``ID,duration,wav,spk_id,wrd``. Writing goes to a temporary file in the same
folder that is renamed into place only once complete, so an interrupted run
never leaves a manifest that looks finished.

The atomic writing itself is :mod:`speechbrain_probe.atomic`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from speechbrain_probe.atomic import atomic_output

__all__ = [
    "write_manifest",
    "read_manifest",
    "UTTERANCE_FIELDS",
]

#: Columns of an utterance manifest (SpeechBrain style).
UTTERANCE_FIELDS = ("ID", "duration", "wav", "spk_id", "wrd")


def write_manifest(
    path: str | os.PathLike,
    rows: Iterable[dict],
    fields: Sequence[str] = UTTERANCE_FIELDS,
) -> Path:
    """Write ``rows`` (dicts keyed by ``fields``) as a CSV manifest, atomically.

    Raises ``ValueError`` naming the row and column when a row lacks a field or
    two rows share an ID.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> rows = [dict(ID="u1", duration=1.5, wav="a.wav", spk_id="s1", wrd="HI")]
    >>> p = write_manifest(tmp / "train.csv", rows)
    >>> read_manifest(p)[0]["wrd"]
    'HI'
    """
    path = Path(path)
    seen = set()
    with (
        atomic_output(path) as tmp,
        open(tmp, "w", encoding="utf-8", newline="") as handle,
    ):
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            missing = [f for f in fields if f not in row]
            if missing:
                raise ValueError(f"manifest row {row.get('ID')!r} lacks {missing}")
            if row["ID"] in seen:
                raise ValueError(f"duplicate utterance ID {row['ID']!r} in {path}")
            seen.add(row["ID"])
            writer.writerow(row)
    return path


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Read a CSV manifest into a list of dicts (values as strings).

    Raises ``FileNotFoundError`` with a hint when the file is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"manifest {path} does not exist; run the data preparation step first "
            "(e.g. `make demo`, or the prepare function of your corpus)"
        )
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))
