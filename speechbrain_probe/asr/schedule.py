"""A per-step learning-rate schedule for short CPU training budgets.

On a few-minute budget the ASR models never reach the plateau that an
epoch-level, valid-loss-driven decay (NewBob) waits for; a linear warm-up
followed by a linear decay over the planned number of updates spends the
budget better (measured in the closing note of the ASR issue).
"""

from __future__ import annotations

import math

from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

__all__ = ["CheckpointedNumber", "WarmupLinearDecay", "planned_steps"]


def planned_steps(
    num_items: int, batch_size: int, epochs: int, world_size: int = 1
) -> int:
    """Optimiser updates of a run: batches per process per epoch x epochs.

    Example
    -------
    >>> planned_steps(3000, 8, 3)
    1125
    >>> planned_steps(3000, 8, 3, world_size=2)
    564
    """
    per_process = math.ceil(num_items / max(1, world_size))
    return math.ceil(per_process / batch_size) * epochs


@register_checkpoint_hooks
class CheckpointedNumber:
    """A run's counter that its checkpoints keep: the attribute ``field``,
    written as text and read back as ``kind``.

    Example
    -------
    >>> class Steps(CheckpointedNumber):
    ...     field, kind = "step", int
    >>> saved, loaded, path = Steps(), Steps(), getfixture("tmp_path") / "steps"
    >>> saved.step = 7
    >>> saved._save(path); loaded._load(path)
    >>> loaded.step, path.read_text().strip()
    (7, '7')
    """

    field, kind = "value", float

    @mark_as_saver
    def _save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"{getattr(self, self.field)}\n")

    @mark_as_loader
    def _load(self, path, end_of_epoch=False):
        with open(path, encoding="utf-8") as f:
            setattr(self, self.field, self.kind(f.read().strip()))


class WarmupLinearDecay(CheckpointedNumber):
    """Linear warm-up to ``lr`` over ``warmup_steps``, then a linear decay to
    ``final_ratio * lr`` at ``total_steps`` (held there afterwards).

    Only the step count is checkpointed: a run resumed with more epochs
    decays over its new length instead of the old one.

    Arguments
    ---------
    lr : float
        Peak learning rate.
    warmup_steps : int
        Updates of the warm-up.
    total_steps : int
        Updates of the whole run (see :func:`planned_steps`); may be set
        after construction, once the training set is known.
    final_ratio : float
        Learning rate at the end, relative to ``lr``.

    Example
    -------
    >>> s = WarmupLinearDecay(1.0, warmup_steps=2, total_steps=12, final_ratio=0.0)
    >>> [round(s.lr_at(n), 2) for n in (0, 1, 2, 7, 12, 20)]
    [0.5, 1.0, 1.0, 0.5, 0.0, 0.0]
    """

    field, kind = "step", int

    def __init__(
        self,
        lr: float,
        warmup_steps: int = 0,
        total_steps: int = 0,
        final_ratio: float = 0.05,
    ):
        self.lr = float(lr)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.final_ratio = float(final_ratio)
        self.step = 0

    def lr_at(self, step: int) -> float:
        """The learning rate of update number ``step`` (counted from 0)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        done = min(1.0, (step - self.warmup_steps) / span)
        return self.lr * (1.0 - (1.0 - self.final_ratio) * done)

    def __call__(self, optimizer) -> float:
        """Set the learning rate of the next update; returns it."""
        if self.total_steps <= 0:
            raise ValueError(
                "WarmupLinearDecay.total_steps is not set; the recipe sets it from "
                "the training set size (planned_steps)"
            )
        lr = self.lr_at(self.step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.step += 1
        return lr
