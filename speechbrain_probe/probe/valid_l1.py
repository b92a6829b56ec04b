"""``valid_l1.csv``: each probe's validation L1, with its layer's geometry.

Every probe recipe writes it next to the probes' checkpoints, one row per
layer: the ASR source, the layer's name and module path, its features per
frame (``dim``), its time downsampling (target mel frames per hidden frame)
and the validation L1 of the best checkpoint on ``n_utts`` utterances.
"""

from __future__ import annotations

import os
from pathlib import Path

from speechbrain_probe.data.manifest import write_csv

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
)


def write_valid_l1(
    path: str | os.PathLike, asr, losses: dict, n_utts: int, model: str | None = None
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

    Returns
    -------
    Path

    Example
    -------
    >>> import torch
    >>> from speechbrain_probe.asr_interface import ModuleASR
    >>> class Net(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.frames = torch.nn.Conv1d(1, 8, 400, stride=200, padding=200)
    ...     def forward(self, wavs, lens):
    ...         return self.frames(wavs.unsqueeze(1))
    >>> asr = ModuleASR(Net(), {"conv": "frames"}, source="net")
    >>> out = write_valid_l1(getfixture("tmp_path") / "valid_l1.csv", asr, {"conv": 0.1234567}, 4)
    >>> out.read_text().splitlines()
    ['asr_source,layer,path,dim,downsample,valid_l1,n_utts', 'net,conv,frames,8,1.0,0.12346,4']
    """
    rows = []
    for name, value in losses.items():
        geometry = asr.geometry(name)
        row = {} if model is None else {"model": model}
        row.update(
            asr_source=asr.source,
            layer=name,
            path=asr.layers[name],
            dim=geometry.dim,
            downsample=geometry.downsample,
            valid_l1=f"{value:.5f}",
            n_utts=n_utts,
        )
        rows.append(row)
    fields = VALID_L1_FIELDS if model is None else ("model", *VALID_L1_FIELDS)
    return write_csv(path, rows, fields)
