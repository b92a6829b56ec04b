"""Read and write SpeechBrain CSV manifests, never leaving a half-written file.

A manifest is a CSV with an ``ID`` column and one row per utterance, e.g.
``ID,duration,wav,spk_id,wrd``. Writing goes to a temporary file in the same
folder that is renamed into place only once complete, so an interrupted run
never leaves a manifest that looks finished.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "write_manifest",
    "read_manifest",
    "write_csv",
    "atomic_output",
    "atomic_write_text",
    "atomic_write_bytes",
    "UTTERANCE_FIELDS",
]

#: Columns of an utterance manifest (SpeechBrain style).
UTTERANCE_FIELDS = ("ID", "duration", "wav", "spk_id", "wrd")


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` at the end.

    The one way the package writes a file that must never be seen half-written
    (manifests, tables, wavs, ``torch.save`` files, checkpoint markers): write
    to the path this yields with any writer (``open``, ``torch.save``,
    ``soundfile.write``, ...); when the ``with`` block ends normally it replaces
    ``path`` in one ``os.replace`` (atomic on one file system, and the
    temporary file is in the same folder). On an exception, or a
    ``KeyboardInterrupt``, the temporary file is removed and ``path`` is left
    as it was. The name is unique (``mkstemp``), so processes writing the same
    ``path`` at once never share a temporary file; the last rename wins.

    Arguments
    ---------
    path : str or os.PathLike
        The file to (re)place; its folder is created.
    suffix : str
        Suffix of the temporary file, for writers that go by it.

    Example
    -------
    >>> import torch
    >>> out = getfixture("tmp_path") / "sub" / "t.pt"
    >>> with atomic_output(out, suffix=".pt") as tmp:
    ...     torch.save(torch.ones(2), tmp)
    >>> torch.load(out), sorted(p.name for p in out.parent.iterdir())
    (tensor([1., 1.]), ['t.pt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` via :func:`atomic_output`.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> atomic_write_text(tmp / "a.txt", "hello").read_text()
    'hello'
    """
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via :func:`atomic_output`.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> atomic_write_bytes(tmp / "a.bin", b"\\x00\\x01").read_bytes()
    b'\\x00\\x01'
    """
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_csv(path: str | os.PathLike, rows: Iterable[dict], fields: Sequence[str]) -> Path:
    """Write ``rows`` as a CSV table with header ``fields``, atomically.

    For result tables (no ``ID`` column needed); keys outside ``fields`` are
    ignored.

    Example
    -------
    >>> p = write_csv(getfixture("tmp_path") / "t.csv", [dict(a=1, b=2, c=3)], ["a", "b"])
    >>> p.read_text().splitlines()
    ['a,b', '1,2']
    """
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


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
