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

from filelock import FileLock, Timeout

__all__ = ["folder_lock", "FolderBusy"]


class FolderBusy(RuntimeError):
    """Another process holds the folder's lock (and we were told not to wait)."""


@contextlib.contextmanager
def folder_lock(folder, what: str = "files", echo=print, wait: bool = True):
    """Hold an exclusive lock on ``folder/.lock`` (created if needed).

    The lock is the ``filelock`` package's ``FileLock`` (``fcntl.flock`` on
    Unix, as this function used before it, so a process of either version
    waits for the other; ``msvcrt`` locking on Windows). What stays here is
    the project's side: the folder is created, a wait is announced through
    ``echo`` with the seconds it took, and ``wait=False`` raises
    :class:`FolderBusy` naming the folder and the lock file. Inside a
    multi-process (DDP) job only one process should take it (the one that
    builds).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> with folder_lock(tmp / "cache", "the cache"):
    ...     (tmp / "cache" / "built").touch()
    >>> sorted(p.name for p in (tmp / "cache").iterdir())
    ['.lock', 'built']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise FolderBusy(
                f"another process is using {folder} for {what} (it holds "
                f"{folder / '.lock'}); wait for it to finish or stop it"
            ) from None
        echo(f"waiting for another process preparing {what} in {folder} ...")
        started = time.time()
        lock.acquire()
        echo(f"... done after {time.time() - started:.0f} s")
    try:
        yield
    finally:
        lock.release()
