"""Checkpoints that survive ``kill -9``: SpeechBrain Brains resume only from whole ones.

SpeechBrain's ``Checkpointer`` writes ``CKPT.yaml`` before the parameter files,
so a run killed while saving leaves a folder that looks like a checkpoint but
cannot be loaded (seen: ``EOFError`` on resume, 1 in 5 real SIGKILL runs).
:class:`KillSafeCheckpoints` marks every finished checkpoint with a size list
written last, and sets unmarked ``CKPT+*`` folders aside as ``incomplete-*``
(kept, never loaded) before SpeechBrain looks for one to recover.
:func:`find_complete_checkpoint` picks among the complete ones with
SpeechBrain's own ``Checkpointer.find_checkpoint``.

SpeechBrain 1.1.2 (``speechbrain/utils/checkpoints.py``) has no notion of an
incomplete checkpoint: ``save_checkpoint`` writes ``CKPT.yaml`` first, and
``_is_checkpoint_dir`` accepts any ``CKPT*`` folder holding a ``CKPT.yaml``, so
``recover_if_possible`` (called by ``Brain.on_fit_start`` without a predicate)
would load the half-written one. That is why the marker and the quarantine
stay the project's own.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import speechbrain as sb
from speechbrain.utils.checkpoints import Checkpoint, Checkpointer

from speechbrain_probe.atomic import atomic_write_text

__all__ = [
    "KillSafeCheckpoints",
    "checkpoint_is_complete",
    "find_complete_checkpoint",
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
    atomic_write_text(folder / COMPLETE_MARKER, json.dumps(files, indent=1))


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


def find_complete_checkpoint(checkpoints_dir, min_key: str) -> Checkpoint | None:
    """The complete checkpoint with the lowest ``meta[min_key]``; None if none.

    SpeechBrain's ``Checkpointer.find_checkpoint`` does the choosing, with
    :func:`checkpoint_is_complete` as its predicate (half-written ones are
    never picked, even when set aside by no one). Unlike its ``min_key``
    argument, a complete checkpoint without ``min_key`` in its meta (an
    intra-epoch one) is not dropped but ranks after every one that has it.
    Among equal values the most recent wins. A missing folder gives None (and
    is not created).

    Example
    -------
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> ckpter = Checkpointer(getfixture("tmp_path"))
    >>> for loss in (0.5, 0.2, 0.9):
    ...     mark_checkpoint_complete(ckpter.save_checkpoint(meta={"loss": loss}).path)
    >>> find_complete_checkpoint(ckpter.checkpoints_dir, "loss").meta["loss"]
    0.2
    """
    folder = Path(checkpoints_dir)
    if not folder.is_dir():
        return None
    return Checkpointer(folder).find_checkpoint(
        importance_key=lambda ckpt: -float(ckpt.meta.get(min_key, math.inf)),
        ckpt_predicate=lambda ckpt: checkpoint_is_complete(ckpt.path),
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
