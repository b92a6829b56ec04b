"""Checkpoints that survive ``kill -9``: SpeechBrain Brains resume only from whole ones.

SpeechBrain's ``Checkpointer`` writes ``CKPT.yaml`` before the parameter files,
so a run killed while saving leaves a folder that looks like a checkpoint but
cannot be loaded (seen: ``EOFError`` on resume, 1 in 5 real SIGKILL runs).
:class:`KillSafeCheckpoints` marks every finished checkpoint with a size list
written last, and sets unmarked ``CKPT+*`` folders aside as ``incomplete-*``
(kept, never loaded) before SpeechBrain looks for one to recover.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import speechbrain as sb

__all__ = [
    "KillSafeCheckpoints",
    "checkpoint_is_complete",
    "mark_checkpoint_complete",
    "quarantine_incomplete_checkpoints",
]

logger = logging.getLogger(__name__)


COMPLETE_MARKER = "PROBE_COMPLETE.json"  # name kept: earlier probe runs wrote it


def mark_checkpoint_complete(ckpt_dir) -> None:
    """Record every file of a fully written checkpoint with its size.

    SpeechBrain writes ``CKPT.yaml`` BEFORE the parameter files, and deletes old
    checkpoints file by file: a kill at the wrong moment leaves a directory that
    looks like a checkpoint but is truncated. This marker is written last.
    """
    folder = Path(ckpt_dir)
    files = {
        f.name: f.stat().st_size
        for f in sorted(folder.iterdir())
        if f.is_file() and f.name != COMPLETE_MARKER
    }
    tmp = folder / (COMPLETE_MARKER + ".tmp")
    tmp.write_text(json.dumps(files, indent=1))
    os.replace(tmp, folder / COMPLETE_MARKER)


def checkpoint_is_complete(ckpt_dir) -> bool:
    """True when the marker exists and every file it lists has its size.

    Example
    -------
    >>> d = getfixture("tmp_path")
    >>> _ = (d / "probes.ckpt").write_bytes(b"12345")
    >>> checkpoint_is_complete(d)
    False
    >>> mark_checkpoint_complete(d); checkpoint_is_complete(d)
    True
    >>> _ = (d / "probes.ckpt").write_bytes(b"12")  # truncated by a kill
    >>> checkpoint_is_complete(d)
    False
    """
    folder = Path(ckpt_dir)
    marker = folder / COMPLETE_MARKER
    if not marker.exists():
        return False
    try:
        files = json.loads(marker.read_text())
    except ValueError:
        return False
    return all(
        (folder / n).is_file() and (folder / n).stat().st_size == size
        for n, size in files.items()
    )


def quarantine_incomplete_checkpoints(checkpoints_dir) -> list[Path]:
    """Rename half-written ``CKPT+*`` folders to ``incomplete-CKPT+*`` (kept, ignored)."""
    moved = []
    folder = Path(checkpoints_dir)
    if not folder.is_dir():
        return moved
    for ckpt in sorted(folder.glob("CKPT+*")):
        if ckpt.is_dir() and not checkpoint_is_complete(ckpt):
            target = folder / f"incomplete-{ckpt.name}"
            n = 1
            while target.exists():
                target = folder / f"incomplete-{ckpt.name}.{n}"
                n += 1
            os.replace(ckpt, target)
            logger.warning(
                "checkpoint %s was cut short (killed while saving or deleting); "
                "ignored and kept as %s",
                ckpt,
                target.name,
            )
            moved.append(target)
    return moved


class KillSafeCheckpoints:
    """Mixin for ``sb.Brain`` subclasses: ``class MyBrain(KillSafeCheckpoints, sb.Brain)``.

    Every checkpoint the Brain's checkpointer saves is marked complete once
    written; half-written ones are set aside before fitting or evaluating.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if getattr(self, "checkpointer", None) is not None:
            self._mark_checkpoints_complete(self.checkpointer)

    @staticmethod
    def _mark_checkpoints_complete(checkpointer) -> None:
        save = checkpointer.save_checkpoint

        def save_checkpoint(*args, **kwargs):
            ckpt = save(*args, **kwargs)
            if ckpt is not None:  # main process
                mark_checkpoint_complete(ckpt.path)
            return ckpt

        checkpointer.save_checkpoint = save_checkpoint

    def _quarantine(self) -> None:
        if self.checkpointer is not None:
            sb.utils.distributed.run_on_main(
                quarantine_incomplete_checkpoints,
                args=[self.checkpointer.checkpoints_dir],
            )

    def on_fit_start(self):
        """Set broken checkpoints aside, then SpeechBrain's start (recovery)."""
        self._quarantine()
        super().on_fit_start()

    def on_evaluate_start(self, max_key=None, min_key=None):
        """Set broken checkpoints aside, then load the best one."""
        self._quarantine()
        super().on_evaluate_start(max_key=max_key, min_key=min_key)
