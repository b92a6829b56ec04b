"""The paper's non-contextual probe and the alignment of its frames to the target.

A hidden frame of a layer that runs at ``1/d`` of the target frame rate covers
``d`` target frames. :class:`HighwayProbe` maps ONE hidden frame to
``r = ceil(d)`` target frames (Linear(in -> 80*r), 3 Highway layers with gate
bias -1, Linear(80*r -> 80*r), reshape to ``r`` frames), so it never sees
context. :class:`FrameAligner` then picks, for every target frame ``t``, the
hidden frame ``k`` whose span contains it and the sub-frame ``j`` of its
position inside that span. For a whole-number ``d`` this is exactly
``t = k*r + j``; for rates that are not a whole multiple of the target's
(wav2vec2 and Whisper: 20 ms vs 12.5 ms, ``d = 1.6``) each target frame still
comes from one hidden frame only. :func:`build_probes` sizes one probe per
layer of a frozen ASR, :func:`aligner_for` gives a layer's aligner.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from speechbrain_probe.features import MelConfig
from speechbrain_probe.probe.target import (
    resolve_target_mel,
    target_geometry,
    target_mel_name,
)

__all__ = [
    "Highway",
    "HighwayProbe",
    "FrameAligner",
    "frames_per_hidden",
    "build_probes",
    "aligner_for",
]


def frames_per_hidden(downsample: float) -> int:
    """Sub-frames ``r`` a probe predicts per hidden frame: ``ceil(d)``.

    Example
    -------
    >>> frames_per_hidden(4), frames_per_hidden(1.6), frames_per_hidden(1.0)
    (4, 2, 1)
    """
    if downsample <= 0:
        raise ValueError(f"time downsampling must be > 0, got {downsample}")
    return max(1, math.ceil(round(downsample, 6)))


class Highway(nn.Module):
    """One highway layer: ``T * relu(W_h x) + (1 - T) * x``, ``T = sigmoid(W_t x)``.

    Arguments
    ---------
    size : int
        Input and output size.
    gate_bias : float
        Initial bias of the transform gate (negative: start close to identity).

    Example
    -------
    >>> layer = Highway(6)
    >>> layer(torch.randn(2, 6)).shape, float(layer.gate.bias[0])
    (torch.Size([2, 6]), -1.0)
    """

    def __init__(self, size: int, gate_bias: float = -1.0):
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)
        nn.init.constant_(self.gate.bias, gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to the last axis."""
        gate = torch.sigmoid(self.gate(x))
        # = gate * relu(W_h x) + (1 - gate) * x, in fewer elementwise ops
        return x + gate * (torch.relu(self.transform(x)) - x)


class HighwayProbe(nn.Module):
    """Reconstruct ``r`` mel frames from each hidden frame, independently.

    Arguments
    ---------
    input_dim : int
        Features per hidden frame.
    r : int
        Target frames per hidden frame (the layer's time downsampling, rounded up).
    n_mels : int
        Mel bands of the target.
    n_highway : int
        Highway layers (3 in the paper).
    gate_bias : float
        Initial gate bias of the highway layers (-1 in the paper).

    Example
    -------
    >>> probe = HighwayProbe(input_dim=640, r=4)
    >>> probe(torch.randn(2, 10, 640)).shape
    torch.Size([2, 40, 80])
    """

    def __init__(
        self,
        input_dim: int,
        r: int = 1,
        n_mels: int = 80,
        n_highway: int = 3,
        gate_bias: float = -1.0,
    ):
        super().__init__()
        if r < 1:
            raise ValueError(f"r must be >= 1, got {r}")
        self.input_dim = input_dim
        self.r = r
        self.n_mels = n_mels
        width = n_mels * r
        self.pre = nn.Linear(input_dim, width)
        self.highways = nn.Sequential(
            *[Highway(width, gate_bias) for _ in range(n_highway)]
        )
        self.post = nn.Linear(width, width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[B, T_h, input_dim]`` -> ``[B, T_h * r, n_mels]`` (frame ``k*r+j``)."""
        if hidden.shape[-1] != self.input_dim:
            raise ValueError(
                f"probe expects {self.input_dim} features per hidden frame, got "
                f"{hidden.shape[-1]}: was it trained for another layer or ASR?"
            )
        b, t, _ = hidden.shape
        out = self.post(self.highways(self.pre(hidden)))
        return out.reshape(b, t * self.r, self.n_mels)


class FrameAligner:
    """Map probe outputs (``r`` sub-frames per hidden frame) onto target frames.

    Arguments
    ---------
    downsample : float
        Target frames per hidden frame ``d`` (need not be whole).
    offset : float
        Target frames before hidden frame 0 starts (default 0).

    Example
    -------
    >>> FrameAligner(4).indices(10, num_hidden=3).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    >>> al = FrameAligner(1.6)
    >>> al.r, al.source(6, num_hidden=4).tolist()
    (2, [0, 0, 1, 1, 2, 3])
    """

    def __init__(self, downsample: float, offset: float = 0.0):
        self.downsample = float(downsample)
        self.offset = float(offset)
        self.r = frames_per_hidden(downsample)
        self._cache: dict[tuple, torch.Tensor] = {}

    def _positions(self, num_target: int) -> torch.Tensor:
        t = torch.arange(num_target, dtype=torch.float64)
        return ((t - self.offset) / self.downsample).clamp(min=0.0)

    def source(self, num_target: int, num_hidden: int) -> torch.Tensor:
        """Hidden frame that each target frame comes from."""
        pos = self._positions(num_target)
        return torch.floor(pos + 1e-6).long().clamp(max=max(num_hidden - 1, 0))

    def indices(self, num_target: int, num_hidden: int) -> torch.Tensor:
        """Index into the probe's ``T_h * r`` output for each target frame."""
        pos = self._positions(num_target)
        k = torch.floor(pos + 1e-6)
        j = torch.floor((pos - k) * self.r + 1e-6).clamp(0, self.r - 1)
        k = k.long()
        beyond = k > num_hidden - 1
        k = k.clamp(max=max(num_hidden - 1, 0))
        j = torch.where(beyond, torch.full_like(j, self.r - 1), j).long()
        return k * self.r + j

    def __call__(self, probe_out: torch.Tensor, num_target: int) -> torch.Tensor:
        """``[B, T_h * r, M]`` -> ``[B, num_target, M]``."""
        num_hidden = probe_out.shape[1] // self.r
        key = (num_target, num_hidden, probe_out.device)
        idx = self._cache.get(key)
        if idx is None:
            if len(self._cache) > 256:  # batches of many lengths: start afresh
                self._cache.clear()
            idx = self.indices(num_target, num_hidden).to(probe_out.device)
            self._cache[key] = idx
        return probe_out.index_select(1, idx)


def build_probes(
    asr, layers, n_highway: int = 3, gate_bias: float = -1.0, target_mel=None
) -> nn.ModuleDict:
    """One :class:`HighwayProbe` per layer, sized from the ASR's geometry.

    Arguments
    ---------
    asr : FrozenASR
        The probed model.
    layers : list of str
        Its layers to probe.
    n_highway : int
        Highway layers per probe.
    gate_bias : float
        Initial gate bias of the highway layers.
    target_mel : str, MelConfig or dict, optional
        The mel to reconstruct (default: the ASR's own); each probe predicts
        ``r = ceil(d)`` of its frames per hidden frame, ``d`` the layer's
        frame length in target frames. Kept as the ``target_mel`` attribute
        (a :class:`MelConfig`) of the returned dict.

    Returns
    -------
    torch.nn.ModuleDict

    Example
    -------
    >>> from speechbrain_probe.frozen.interface import ModuleASR
    >>> asr = ModuleASR(nn.Sequential(nn.Unflatten(1, (1, -1)), nn.Conv1d(1, 4, 800, 800)), {"c": "1"},
    ...     takes_lengths=False)
    >>> probes = build_probes(asr, ["c"])
    >>> probes["c"].input_dim, probes["c"].r
    (4, 4)
    >>> build_probes(asr, ["c"], target_mel="hifigan")["c"].r  # 50 ms = 4.3 hops of 11.6 ms
    5
    """
    layers = asr.check_layers(layers)
    target = resolve_target_mel(target_mel, asr)
    probes = nn.ModuleDict()
    for name in layers:
        geo = target_geometry(asr, name, target)
        probes[name] = HighwayProbe(
            geo.dim,
            r=frames_per_hidden(geo.downsample),
            n_mels=target.n_mels,
            n_highway=n_highway,
            gate_bias=gate_bias,
        )
    probes.target_mel = target
    return probes


def aligner_for(asr, name: str, probe, target: MelConfig) -> FrameAligner:
    """The :class:`FrameAligner` of layer ``name`` in frames of the target mel,
    checked against the layer's probe (a DDP-wrapped one too).

    Example
    -------
    >>> from speechbrain_probe.frozen.interface import ModuleASR
    >>> asr = ModuleASR(nn.Sequential(nn.Unflatten(1, (1, -1)), nn.Conv1d(1, 4, 800, 800)), {"c": "1"},
    ...     takes_lengths=False)
    >>> aligner_for(asr, "c", build_probes(asr, ["c"])["c"], asr.mel_config).r
    4
    >>> aligner_for(asr, "c", HighwayProbe(4, r=1), asr.mel_config)
    Traceback (most recent call last):
    ...
    ValueError: the probe of layer 'c' predicts 1 frame(s) of 80 mels per hidden frame, ...
    """
    geo = target_geometry(asr, name, target)
    aligner = FrameAligner(geo.downsample, geo.offset)
    probe = getattr(probe, "module", probe)
    if (probe.r, probe.n_mels) != (aligner.r, target.n_mels):
        raise ValueError(
            f"the probe of layer {name!r} predicts {probe.r} frame(s) of "
            f"{probe.n_mels} mels per hidden frame, but the target mel "
            f"{target_mel_name(target)} needs {aligner.r} of {target.n_mels}; build "
            "the probes with build_probes(..., target_mel=) of the same target"
        )
    return aligner
