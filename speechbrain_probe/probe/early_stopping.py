"""Early stopping of each probe on its own validation L1, kept in checkpoints.

The probes of one pass are separate models that share an ASR forward, so each
stops on its own: after every validation, a layer whose L1 did not improve on
its best by more than ``min_delta`` for ``patience`` validations in a row
stops (:class:`~speechbrain_probe.probe.brain.ProbeBrain` then leaves it out
of the forward, the loss and the optimizer). Each layer's best parameters
(lowest validation L1) are kept, and are what the final checkpoint holds.

:class:`LayerEarlyStopping` is a SpeechBrain recoverable: the best states,
best losses, bad-validation counts and stopped flags travel in every
checkpoint (``early_stopping.ckpt``), so a killed run resumes exactly where
it was.
"""

from __future__ import annotations

import math

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

__all__ = ["LayerEarlyStopping"]


def _bare(module):
    """The module itself, not its DDP/DP wrapper."""
    return getattr(module, "module", module)


@register_checkpoint_hooks
class LayerEarlyStopping:
    """Per-layer early stopping on validation loss, with each layer's best state.

    Arguments
    ---------
    layers : list of str
        The probed layers.
    patience : int
        Validations without an improvement of more than ``min_delta`` after
        which a layer stops (>= 1).
    min_delta : float
        Smallest decrease of the loss that counts as an improvement.

    Example
    -------
    >>> probes = {"a": torch.nn.Linear(2, 2), "b": torch.nn.Linear(2, 2)}
    >>> stopper = LayerEarlyStopping(["a", "b"], patience=2, min_delta=0.01)
    >>> for step, losses in enumerate([{"a": 0.5, "b": 0.5}, {"a": 0.3, "b": 0.495},
    ...                                {"a": 0.2, "b": 0.6}]):
    ...     stopper.update(losses, probes, epoch=step + 1, step=10 * (step + 1))
    []
    []
    ['b']
    >>> stopper.active, stopper.best_loss["b"], stopper.best_epoch["b"]
    (['a'], 0.5, 1)
    """

    def __init__(self, layers, patience: int, min_delta: float = 0.0):
        if patience is None or int(patience) < 1:
            raise ValueError(
                f"early stopping needs patience >= 1, got {patience!r} "
                "(null or 0 turns early stopping off)"
            )
        if min_delta is None or float(min_delta) < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        self.layers = list(layers)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best_loss = {n: math.inf for n in self.layers}
        self.best_epoch: dict[str, int | None] = {n: None for n in self.layers}
        self.best_step: dict[str, int | None] = {n: None for n in self.layers}
        self.bad_validations = {n: 0 for n in self.layers}
        self.stopped = {n: False for n in self.layers}
        self.best_state: dict[str, dict | None] = {n: None for n in self.layers}
        # True once the best states are in the modules and a checkpoint holds them
        self.finished = False

    @property
    def active(self) -> list[str]:
        """Layers still training, in their order."""
        return [n for n in self.layers if not self.stopped[n]]

    @property
    def all_stopped(self) -> bool:
        """Every layer has stopped early."""
        return not self.active

    @property
    def validated(self) -> bool:
        """At least one validation has been recorded."""
        return any(s is not None for s in self.best_state.values())

    def update(self, losses: dict, modules, epoch: int, step: int) -> list[str]:
        """Record one validation; returns the layers that stop now.

        Arguments
        ---------
        losses : dict
            Layer -> validation loss, for (some of) the active layers.
        modules : mapping
            Layer -> probe module (a DDP wrapper is looked through); the
            state of a layer that improves is copied (to the CPU).
        epoch : int
            The epoch of this validation.
        step : int
            The optimizer steps taken so far.

        Returns
        -------
        list of str
        """
        newly = []
        for name in self.active:
            if name not in losses or not math.isfinite(losses[name]):
                continue
            loss = float(losses[name])
            if (
                self.best_state[name] is None
                or loss < self.best_loss[name] - self.min_delta
            ):
                self.best_loss[name] = loss
                self.best_epoch[name] = epoch
                self.best_step[name] = step
                self.bad_validations[name] = 0
                self.best_state[name] = {
                    k: v.detach().to("cpu", copy=True)
                    for k, v in _bare(modules[name]).state_dict().items()
                }
            else:
                self.bad_validations[name] += 1
                if self.bad_validations[name] >= self.patience:
                    self.stopped[name] = True
                    newly.append(name)
        self.finished = False
        return newly

    def restore_best(self, modules, layers=None) -> None:
        """Load each layer's best state into its module (all layers by default)."""
        for name in self.layers if layers is None else layers:
            state = self.best_state[name]
            if state is not None:
                _bare(modules[name]).load_state_dict(state)

    def summary(self) -> dict[str, dict]:
        """Layer -> ``best_epoch``, ``best_step``, ``best_loss``, ``stopped_early``.

        Example
        -------
        >>> stopper = LayerEarlyStopping(["a"], patience=1)
        >>> stopper.update({"a": 0.3}, {"a": torch.nn.Linear(1, 1)}, epoch=1, step=5)
        []
        >>> stopper.summary()
        {'a': {'best_epoch': 1, 'best_step': 5, 'best_loss': 0.3, 'stopped_early': False}}
        """
        return {
            n: {
                "best_epoch": self.best_epoch[n],
                "best_step": self.best_step[n],
                "best_loss": self.best_loss[n],
                "stopped_early": self.stopped[n],
            }
            for n in self.layers
        }

    @mark_as_saver
    def save(self, path):
        """Write the per-layer state (with the best parameters) to ``path``."""
        torch.save(
            {
                "layers": self.layers,
                "patience": self.patience,
                "min_delta": self.min_delta,
                "best_loss": self.best_loss,
                "best_epoch": self.best_epoch,
                "best_step": self.best_step,
                "bad_validations": self.bad_validations,
                "stopped": self.stopped,
                "best_state": self.best_state,
                "finished": self.finished,
            },
            path,
        )

    @mark_as_loader
    def load(self, path, end_of_epoch=True):
        """Restore the per-layer state; the patience and min_delta of THIS run apply.

        A layer that stopped under a smaller patience stays stopped; one that
        was counting goes on counting towards the new patience.
        """
        del end_of_epoch
        saved = torch.load(path, map_location="cpu")
        if list(saved["layers"]) != self.layers:
            raise ValueError(
                f"early-stopping state {path} is for layers {saved['layers']}, "
                f"this run trains {self.layers}; use a fresh output folder"
            )
        for key in (
            "best_loss",
            "best_epoch",
            "best_step",
            "bad_validations",
            "stopped",
            "best_state",
        ):
            setattr(self, key, dict(saved[key]))
        self.finished = bool(saved.get("finished", False))
