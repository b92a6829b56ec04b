"""A lock on a shared output folder, held by one process at a time.

Two recipe processes that share a prepared artifact (the ASR recipes'
tokenizer and feature caches, under one ``output_root``) may start at the same
time, as the demo's parallel stages do. The first takes the folder's lock and
builds the artifact; the second waits, then finds it built and loads it,
instead of writing the same files at the same moment.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

__all__ = ["folder_lock", "FolderBusy"]


class FolderBusy(RuntimeError):
    """Another process holds the folder's lock (and we were told not to wait)."""


@contextlib.contextmanager
def folder_lock(folder, what: str = "files", echo=print, wait: bool = True):
    """Hold an exclusive lock on ``folder/.lock`` (created if needed).

    A no-op where ``fcntl`` is missing (Windows). Inside a multi-process
    (DDP) job only one process should take it (the one that builds).
    With ``wait=False`` a lock held elsewhere raises :class:`FolderBusy`.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> with folder_lock(tmp / "cache", "the cache"):
    ...     (tmp / "cache" / "built").touch()
    >>> sorted(p.name for p in (tmp / "cache").iterdir())
    ['.lock', 'built']
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise FolderBusy(
                    f"another process is using {folder} for {what} (it holds "
                    f"{folder / '.lock'}); wait for it to finish or stop it"
                ) from None
            echo(f"waiting for another process preparing {what} in {folder} ...")
            started = time.time()
            fcntl.flock(handle, fcntl.LOCK_EX)
            echo(f"... done after {time.time() - started:.0f} s")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
