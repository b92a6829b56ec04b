"""``valid_l1.csv``: each probe's validation L1, with its layer's geometry.

Every probe recipe writes it next to the probes' checkpoints, one row per
layer: the ASR source, the layer's name and module path, its features per
frame (``dim``), its time downsampling (target mel frames per hidden frame),
the validation L1 of the probe kept on ``n_utts`` utterances, when the kept
probe was validated (``best_epoch``, ``best_step``: optimizer steps so far),
whether it stopped early, and the target mel it reconstructs (L1 values of
different targets are not comparable).
"""

from __future__ import annotations

import os
from pathlib import Path

from speechbrain_probe.atomic import write_csv
from speechbrain_probe.probe.target import (
    resolve_target_mel,
    target_geometry,
    target_mel_name,
)

__all__ = ["VALID_L1_FIELDS", "write_valid_l1"]

#: Columns of ``valid_l1.csv`` (``model`` first when a study names its models).
VALID_L1_FIELDS = (
    "asr_source",
    "layer",
    "path",
    "dim",
    "downsample",
    "valid_l1",
    "n_utts",
    "best_epoch",
    "best_step",
    "stopped_early",
    "target_mel",
)


def _blank(value):
    return "" if value is None else value


def write_valid_l1(
    path: str | os.PathLike,
    asr,
    losses: dict,
    n_utts: int,
    model: str | None = None,
    best: dict | None = None,
    target_mel=None,
) -> Path:
    """Write the validation L1 of each probed layer (atomically).

    Arguments
    ---------
    path : str or path
        The CSV to write.
    asr : FrozenASR
        The probed model (its source, layer paths and geometry).
    losses : dict
        Layer -> validation L1 (``ProbeBrain.layer_losses()``).
    n_utts : int
        Validation utterances the losses are over.
    model : str, optional
        The model's name in a study of several (a first ``model`` column).
    best : dict, optional
        Layer -> ``best_epoch``, ``best_step``, ``stopped_early``
        (``ProbeBrain.best_validation()``); missing values stay empty.
    target_mel : str, MelConfig or dict, optional
        The probes' target mel (``ProbeBrain.target_mel``; default: the ASR's
        own); ``downsample`` is in its frames.

    Returns
    -------
    Path

    Example
    -------
    >>> import torch
    >>> from speechbrain_probe.frozen.interface import ModuleASR
    >>> class Net(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.frames = torch.nn.Conv1d(1, 8, 400, stride=200, padding=200)
    ...     def forward(self, wavs, lens):
    ...         return self.frames(wavs.unsqueeze(1))
    >>> asr = ModuleASR(Net(), {"conv": "frames"}, source="net")
    >>> best = {"conv": {"best_epoch": 3, "best_step": 120, "stopped_early": True}}
    >>> out = write_valid_l1(getfixture("tmp_path") / "valid_l1.csv", asr, {"conv": 0.1234567}, 4, best=best)
    >>> out.read_text().splitlines()  # doctest: +NORMALIZE_WHITESPACE
    ['asr_source,layer,path,dim,downsample,valid_l1,n_utts,best_epoch,best_step,stopped_early,target_mel',
     'net,conv,frames,8,1.0,0.12346,4,3,120,True,paper']
    """
    target = resolve_target_mel(target_mel, asr)
    best = best or {}
    rows = []
    for name, value in losses.items():
        geometry = target_geometry(asr, name, target)
        kept = best.get(name, {})
        row = {} if model is None else {"model": model}
        row.update(
            asr_source=asr.source,
            layer=name,
            path=asr.layers[name],
            dim=geometry.dim,
            downsample=geometry.downsample,
            valid_l1=f"{value:.5f}",
            n_utts=n_utts,
            best_epoch=_blank(kept.get("best_epoch")),
            best_step=_blank(kept.get("best_step")),
            stopped_early=_blank(kept.get("stopped_early")),
            target_mel=target_mel_name(target),
        )
        rows.append(row)
    fields = VALID_L1_FIELDS if model is None else ("model", *VALID_L1_FIELDS)
    return write_csv(path, rows, fields)
