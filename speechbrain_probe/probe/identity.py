"""What identifies a set of trained probes: :class:`ProbeIdentity`.

A :class:`ProbeIdentity` travels in every probe checkpoint (the ASR's weight
hash, the layers with their paths, dims and downsampling, the target mel
settings) and is loaded FIRST, so a checkpoint made for another ASR, layer or
target mel is refused with a message saying what differs, before any weight
is loaded. :func:`stored_identity` finds a checkpoint and reads its identity;
:func:`probe_target_config` tells which mel its probes reconstruct.
"""

from __future__ import annotations

import json
from pathlib import Path

from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from speechbrain_probe.checkpoints import find_complete_checkpoint
from speechbrain_probe.features import MelConfig
from speechbrain_probe.probe.model import frames_per_hidden
from speechbrain_probe.probe.target import (
    resolve_target_mel,
    target_geometry,
    target_mel_name,
)

__all__ = [
    "ProbeMismatchError",
    "ProbeIdentity",
    "stored_identity",
    "probe_target_config",
]

#: The identity's file name inside a ``CKPT+...`` folder.
_IDENTITY_FILE = "probe_identity.ckpt"


class ProbeMismatchError(RuntimeError):
    """A probe checkpoint belongs to another ASR, layer set or target mel."""


def _layer_entry(asr, name: str, target: MelConfig) -> dict:
    """A layer's path, dim and geometry in frames of the target mel."""
    geo = target_geometry(asr, name, target)
    return {
        "path": asr.layers[name],
        "dim": int(geo.dim),
        "downsample": float(geo.downsample),
        "offset": float(geo.offset),
        "r": frames_per_hidden(geo.downsample),
    }


def _mel_mismatch(where: str, trained: dict, now: dict) -> str:
    """The message of a checkpoint trained on another target mel than asked for."""
    was, is_ = target_mel_name(trained), target_mel_name(now)
    if was == is_:  # two custom mels that differ
        was, is_ = f"{was} {trained}", f"{is_} {now}"
    else:
        was, is_ = f"{was!r} ({trained})", f"{is_!r} ({now})"
    hint = (
        f"set target_mel: {target_mel_name(trained)}"
        if target_mel_name(trained) in ("paper", "hifigan")
        else "use the mel settings it was trained on"
    )
    return (
        f"the probe {where} was trained on the target mel {was}, but the target "
        f"mel is now {is_}; {hint} to resume or load it, or train new probes in "
        "a fresh output folder"
    )


@register_checkpoint_hooks
class ProbeIdentity:
    """What a set of probes was trained on; refuses mismatched checkpoints.

    Arguments
    ---------
    asr : FrozenASR
        The frozen ASR (its weight hash and layer geometry are recorded).
    layers : list of str
        The probed layers.
    probe_kwargs : dict
        Extra probe settings (``n_highway``, ``n_mels``).
    target_mel : str, MelConfig or dict, optional
        The mel the probes reconstruct (:func:`~speechbrain_probe.probe.target.resolve_target_mel`;
        default: the ASR's own). Stored as ``mel_config``, and the layers'
        geometry is in its frames.

    Example
    -------
    >>> from torch import nn
    >>> from speechbrain_probe.frozen.interface import ModuleASR
    >>> asr = ModuleASR(nn.Sequential(nn.Unflatten(1, (1, -1)), nn.Conv1d(1, 4, 200, 200)), {"c": "1"},
    ...     takes_lengths=False)
    >>> ident = ProbeIdentity(asr, ["c"])
    >>> ident.data["layers"]["c"]["dim"], ident.data["layers"]["c"]["r"]
    (4, 1)
    >>> ident.check(ProbeIdentity(asr, ["c"], target_mel="hifigan").data)
    Traceback (most recent call last):
    ...
    speechbrain_probe.probe.identity.ProbeMismatchError: the probe checkpoint was trained on the target mel 'hifigan' ...
    """

    def __init__(self, asr, layers, probe_kwargs: dict | None = None, target_mel=None):
        target = resolve_target_mel(target_mel, asr)
        self.data = {
            "asr_fingerprint": asr.fingerprint,
            "asr_source": asr.source,
            "layers": {name: _layer_entry(asr, name, target) for name in layers},
            "mel_config": target.to_dict(),
            "probe_kwargs": dict(probe_kwargs or {}),
        }

    @mark_as_saver
    def save(self, path):
        """Write the identity as JSON."""
        Path(path).write_text(json.dumps(self.data, indent=1, sort_keys=True))

    def check(self, stored: dict, where: str = "checkpoint") -> None:
        """Raise :class:`ProbeMismatchError` naming what differs from ``stored``."""
        if stored["asr_fingerprint"] != self.data["asr_fingerprint"]:
            raise ProbeMismatchError(
                f"the probe {where} was trained on another ASR ({stored['asr_source']}, "
                f"weights {stored['asr_fingerprint'][:12]}) than the one loaded now "
                f"({self.data['asr_source']}, weights "
                f"{self.data['asr_fingerprint'][:12]}); use that ASR, or train new probes "
                "in a fresh output folder"
            )
        mine, theirs = set(self.data["layers"]), set(stored["layers"])
        if mine != theirs:
            raise ProbeMismatchError(
                f"the probe {where} holds layers {sorted(theirs)} but layers "
                f"{sorted(mine)} were asked for; pick the layers it was trained for, "
                "or train new probes in a fresh output folder"
            )
        # before the layers: their geometry is in frames of the target mel
        if stored["mel_config"] != self.data["mel_config"]:
            raise ProbeMismatchError(
                _mel_mismatch(where, stored["mel_config"], self.data["mel_config"])
            )
        for name in sorted(mine):
            if stored["layers"][name] != self.data["layers"][name]:
                raise ProbeMismatchError(
                    f"layer {name!r} of the probe {where} was "
                    f"{stored['layers'][name]} but is now {self.data['layers'][name]}"
                )

    @mark_as_loader
    def load(self, path, end_of_epoch=True):
        """Compare the stored identity with this one (never overwrites it)."""
        self.check(json.loads(Path(path).read_text()), where=str(Path(path).parent))


def stored_identity(checkpoint_dir) -> tuple[Path, dict]:
    """A probe checkpoint's folder and the identity stored in it.

    Arguments
    ---------
    checkpoint_dir : str or path
        The ``CKPT+...`` folder, or the save folder holding them (the best
        complete one by validation loss is read).

    Returns
    -------
    folder : Path
        The ``CKPT+...`` folder.
    identity : dict
        The ``data`` of the :class:`ProbeIdentity` the probes were trained with.

    Example
    -------
    >>> save = getfixture("tmp_path")
    >>> stored_identity(save)
    Traceback (most recent call last):
    ...
    FileNotFoundError: no probe checkpoint in ...; train probes with train_probe.py first
    """
    folder = Path(checkpoint_dir)
    if not (folder / _IDENTITY_FILE).exists():
        best = find_complete_checkpoint(folder, min_key="loss")
        if best is None:
            raise FileNotFoundError(
                f"no probe checkpoint in {folder}; train probes with train_probe.py first"
            )
        folder = best.path
    return folder, json.loads((folder / _IDENTITY_FILE).read_text())


def probe_target_config(checkpoint_dir) -> MelConfig:
    """The target mel a probe checkpoint was trained on (what its vocoder needs).

    Arguments
    ---------
    checkpoint_dir : str or path
        The ``CKPT+...`` folder, or the save folder holding them (the best by
        validation loss is read).

    Returns
    -------
    MelConfig

    Example
    -------
    >>> ckpt = getfixture("tmp_path")
    >>> _ = (ckpt / _IDENTITY_FILE).write_text(json.dumps({"mel_config": MelConfig().to_dict()}))
    >>> probe_target_config(ckpt) == MelConfig()
    True
    """
    _, stored = stored_identity(checkpoint_dir)
    return MelConfig.from_dict(stored["mel_config"])
