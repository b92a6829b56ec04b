"""Write files that are never seen half-written.

Every file the package writes that a reader (a later stage, a resumed run, the
report, another process) may open goes through :func:`atomic_output`: the
content goes to a temporary file beside the target, renamed onto it in one
``os.replace`` once complete. A leaf module: it imports nothing of the package.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output", "atomic_write_text", "atomic_write_bytes", "write_csv"]


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


def write_csv(
    path: str | os.PathLike, rows: Iterable[dict], fields: Sequence[str]
) -> Path:
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
