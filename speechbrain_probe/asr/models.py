"""CTC acoustic encoders whose every probe-able layer is its own named module.

Two architectures follow the paper (Li, Yuan, Lee, ICASSP 2020):

* :class:`VGGLSTM`: ``cnn1`` .. ``cnn4`` (3x3 convolutions with ReLU, 2x2
  max-pooling after ``cnn2`` and ``cnn4``) then ``blstm1`` .. ``blstm5``, each a
  bidirectional LSTM followed by a projection and tanh;
* :class:`PureBLSTM`: ``blstm1`` .. ``blstm5`` on the 240-dim features, time
  halved (by stacking frame pairs) at the input of ``blstm3``, ``blstm4`` and
  ``blstm5``, so the top layer runs at 1/8 of the frame rate.

Every named layer takes and returns a frame-major tensor ``[B, T, D]``, so a
forward hook on ``model.<name>`` sees exactly that layer's output, already
flattened per frame (convolution maps are flattened channel-major:
``D = channels * freq_bins``). :meth:`CTCEncoder.layer_info` reports ``D`` and the
time downsampling of each layer relative to the input frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "LayerInfo",
    "ConvBlock",
    "BLSTMLayer",
    "CTCEncoder",
    "VGGLSTM",
    "PureBLSTM",
    "ARCHITECTURES",
    "build_encoder",
]


@dataclass(frozen=True)
class LayerInfo:
    """Output size of one named layer.

    Arguments
    ---------
    dim : int
        Feature dimension per output frame.
    downsample : int
        Input frames per output frame (1 = full frame rate).
    """

    dim: int
    downsample: int


def _abs_lengths(lengths: torch.Tensor | None, batch: int, time: int) -> torch.Tensor:
    """Absolute frame counts (>= 1) from SpeechBrain's relative lengths."""
    if lengths is None:
        return torch.full((batch,), time, dtype=torch.long)
    return torch.round(lengths.detach().float().cpu() * time).long().clamp(1, time)


def _reverse_index(lens: torch.Tensor, time: int) -> torch.Tensor:
    """``[B, T]`` index that reverses frames ``0..len-1`` of each row in place.

    Example
    -------
    >>> _reverse_index(torch.tensor([3, 1]), 4).tolist()
    [[2, 1, 0, 3], [0, 1, 2, 3]]
    """
    t = torch.arange(time, device=lens.device).unsqueeze(0)
    lens = lens.unsqueeze(1)
    return torch.where(t < lens, lens - 1 - t, t)


def _gather_time(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class ConvBlock(nn.Module):
    """A 3x3 convolution + ReLU (+ optional 2x2 max-pooling) on ``[B, T, C*F]``.

    Arguments
    ---------
    in_channels : int
        Channels of the input map (the input's last dim is ``in_channels * in_freq``).
    out_channels : int
        Convolution filters.
    in_freq : int
        Frequency bins of the input map.
    pool : bool
        Halve time and frequency with 2x2 max-pooling after the ReLU.

    Example
    -------
    >>> block = ConvBlock(3, 8, in_freq=80, pool=True)
    >>> block(torch.randn(2, 11, 240)).shape
    torch.Size([2, 5, 320])
    >>> block.out_freq, block.output_dim
    (40, 320)
    """

    def __init__(self, in_channels: int, out_channels: int, in_freq: int, pool: bool):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_freq = in_freq
        self.pool = pool
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.out_freq = in_freq // 2 if pool else in_freq

    @property
    def output_dim(self) -> int:
        """Flattened feature size per output frame."""
        return self.out_channels * self.out_freq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[B, T, in_channels*in_freq]`` to ``[B, T', out_channels*out_freq]``."""
        b, t, d = x.shape
        if d != self.in_channels * self.in_freq:
            raise ValueError(
                f"ConvBlock expects {self.in_channels}x{self.in_freq}="
                f"{self.in_channels * self.in_freq} features per frame, got {d}"
            )
        x = x.reshape(b, t, self.in_channels, self.in_freq).permute(0, 2, 1, 3)
        # channels_last runs these narrow convolutions ~3x faster on CPU
        x = torch.relu(self.conv(x.contiguous(memory_format=torch.channels_last)))
        if self.pool:
            x = torch.nn.functional.max_pool2d(x, kernel_size=2)
        return x.permute(0, 2, 1, 3).reshape(b, x.shape[2], self.output_dim)


def _init_lstm(lstm: nn.LSTM):
    """Orthogonal recurrent weights and forget-gate bias 1 (Jozefowicz et al.
    2015): a deep CTC stack then passes signal through its layers from the
    first steps instead of waiting on the blank plateau.

    Example
    -------
    >>> lstm = nn.LSTM(4, 3)
    >>> _init_lstm(lstm)
    >>> lstm.bias_ih_l0[3:6].tolist(), lstm.bias_hh_l0[3:6].tolist()
    ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    """
    h = lstm.hidden_size
    with torch.no_grad():
        for name, param in lstm.named_parameters():
            if name.startswith("weight_hh"):
                for k in range(4):
                    nn.init.orthogonal_(param[k * h : (k + 1) * h])
            elif name.startswith("weight_ih"):
                nn.init.xavier_uniform_(param)
            elif name.startswith("bias"):
                param.zero_()
                if name.startswith("bias_ih"):
                    param[h : 2 * h] = 1.0


class BLSTMLayer(nn.Module):
    """One bidirectional LSTM layer, optionally time-subsampled and projected.

    Arguments
    ---------
    input_size : int
        Feature size of the input frames.
    hidden_size : int
        LSTM units per direction.
    projection : bool
        Follow the LSTM by ``Linear(2H -> 2H)`` and tanh (the VGG-LSTM's layers).
    subsample : int
        Stack this many consecutive input frames into one before the LSTM
        (the pure-LSTM's time reduction; 1 = none).
    dropout : float
        Dropout on the layer's input during training.
    layer_norm : bool
        Layer-normalise each input frame before the LSTM (a per-frame
        operation, so no context leaks in). Not in the paper: without it a
        5-deep stack sits on the CTC blank plateau several times longer, which
        a few-minute CPU budget cannot afford.

    Example
    -------
    >>> layer = BLSTMLayer(40, 16, projection=True, subsample=2)
    >>> out = layer(torch.randn(3, 9, 40), lengths=torch.tensor([1.0, 0.5, 0.3]))
    >>> out.shape, layer.output_dim
    (torch.Size([3, 4, 32]), 32)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        projection: bool = False,
        subsample: int = 1,
        dropout: float = 0.0,
        layer_norm: bool = True,
    ):
        super().__init__()
        if subsample < 1:
            raise ValueError(f"subsample must be >= 1, got {subsample}")
        self.subsample = subsample
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(input_size * subsample) if layer_norm else None
        # two unidirectional LSTMs instead of one bidirectional LSTM on a packed
        # sequence: packing is ~4x slower on CPU; the backward LSTM runs on each
        # sequence reversed within its own length, so padding never leaks in.
        self.lstm_fwd = nn.LSTM(input_size * subsample, hidden_size, batch_first=True)
        self.lstm_bwd = nn.LSTM(input_size * subsample, hidden_size, batch_first=True)
        self.proj = nn.Linear(2 * hidden_size, 2 * hidden_size) if projection else None
        self.output_dim = 2 * hidden_size
        for lstm in (self.lstm_fwd, self.lstm_bwd):
            _init_lstm(lstm)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        """``[B, T, D]`` -> ``[B, T // subsample, 2H]``; ``lengths`` are relative."""
        if self.subsample > 1:
            b, t, d = x.shape
            t2 = t // self.subsample
            x = x[:, : t2 * self.subsample].reshape(b, t2, d * self.subsample)
        if self.norm is not None:
            x = self.norm(x)
        x = self.drop(x)
        b, t, _ = x.shape
        fwd, _ = self.lstm_fwd(x)
        if lengths is None:
            bwd, _ = self.lstm_bwd(x.flip(1))
            bwd = bwd.flip(1)
        else:
            lens = _abs_lengths(lengths, b, t).to(x.device)
            idx = _reverse_index(lens, t)
            bwd, _ = self.lstm_bwd(_gather_time(x, idx))
            bwd = _gather_time(bwd, idx)
        out = torch.cat([fwd, bwd], dim=-1)
        if self.proj is not None:
            out = torch.tanh(self.proj(out))
        return out


class CTCEncoder(nn.Module):
    """Base class: a stack of named layers, each taking ``[B, T, D]``.

    Subclasses fill ``self.layer_names`` (in order) and register one module per
    name. ``forward(x, lengths)`` runs them in order; layers whose forward takes
    ``lengths`` receive the relative lengths.
    """

    arch: str = ""

    def __init__(self, input_dim: int):
        super().__init__()
        self.input_dim = input_dim
        self.layer_names: list[str] = []
        self._info: dict[str, LayerInfo] = {}

    def _add(self, name: str, module: nn.Module, dim: int, downsample: int):
        self.add_module(name, module)
        self.layer_names.append(name)
        self._info[name] = LayerInfo(dim, downsample)

    @property
    def output_dim(self) -> int:
        """Feature size of the top layer."""
        return self._info[self.layer_names[-1]].dim

    @property
    def downsample(self) -> int:
        """Time reduction of the top layer."""
        return self._info[self.layer_names[-1]].downsample

    def layer_info(self) -> dict[str, LayerInfo]:
        """Per named layer: output dim and time downsampling (input frames/frame)."""
        return dict(self._info)

    def layer(self, name: str) -> nn.Module:
        """The module of a named layer; a clear error for unknown names."""
        if name not in self._info:
            raise KeyError(
                f"unknown layer {name!r} for {self.arch}; available: "
                + " ".join(self.layer_names)
            )
        return getattr(self, name)

    def output_frames(self, num_frames: int) -> int:
        """Output frames of the top layer for ``num_frames`` input frames."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        """Run all layers: ``[B, T, input_dim]`` -> ``[B, T', output_dim]``."""
        if x.dim() != 3 or x.shape[-1] != self.input_dim:
            raise ValueError(
                f"{type(self).__name__} expects [batch, time, {self.input_dim}] "
                f"features, got shape {tuple(x.shape)}"
            )
        if x.shape[1] < self.downsample:
            raise ValueError(
                f"input of {x.shape[1]} frames is shorter than the model's time "
                f"reduction ({self.downsample}); skip such short utterances"
            )
        for name in self.layer_names:
            module = getattr(self, name)
            if isinstance(module, BLSTMLayer):
                x = module(x, lengths)
            else:
                x = module(x)
        return x


class VGGLSTM(CTCEncoder):
    """VGG front end (cnn1..cnn4) + 5 projected BLSTM layers (blstm1..blstm5).

    Arguments
    ---------
    n_mels : int
        Mel bands per feature channel.
    in_channels : int
        Feature channels (3: static, delta, delta-delta).
    cnn_channels : list of int
        Filters of (cnn1, cnn2) and (cnn3, cnn4): the paper uses ``[64, 128]``.
    hidden_size : int
        BLSTM units per direction (paper: 320).
    num_blstm : int
        BLSTM layers (paper: 5).
    dropout : float
        Dropout on the input of each BLSTM layer.
    layer_norm : bool
        Layer-normalise the input frames of each BLSTM layer (see BLSTMLayer).

    Example
    -------
    >>> model = VGGLSTM(n_mels=80, cnn_channels=[4, 8], hidden_size=16)
    >>> model(torch.randn(2, 50, 240)).shape
    torch.Size([2, 12, 32])
    >>> info = model.layer_info()
    >>> [(n, info[n].dim, info[n].downsample) for n in ("cnn1", "cnn2", "cnn4", "blstm5")]
    [('cnn1', 320, 1), ('cnn2', 160, 2), ('cnn4', 160, 4), ('blstm5', 32, 4)]
    """

    arch = "vgg_lstm"

    def __init__(
        self,
        n_mels: int = 80,
        in_channels: int = 3,
        cnn_channels: tuple | list = (64, 128),
        hidden_size: int = 320,
        num_blstm: int = 5,
        dropout: float = 0.0,
        layer_norm: bool = True,
    ):
        super().__init__(input_dim=n_mels * in_channels)
        c1, c2 = cnn_channels
        self.config = dict(
            n_mels=n_mels,
            in_channels=in_channels,
            cnn_channels=[c1, c2],
            hidden_size=hidden_size,
            num_blstm=num_blstm,
            dropout=dropout,
            layer_norm=layer_norm,
        )
        specs = [
            (in_channels, c1, False),
            (c1, c1, True),
            (c1, c2, False),
            (c2, c2, True),
        ]
        freq, down = n_mels, 1
        for i, (cin, cout, pool) in enumerate(specs, start=1):
            block = ConvBlock(cin, cout, in_freq=freq, pool=pool)
            freq = block.out_freq
            down *= 2 if pool else 1
            self._add(f"cnn{i}", block, block.output_dim, down)
        dim = c2 * freq
        for i in range(1, num_blstm + 1):
            layer = BLSTMLayer(
                dim,
                hidden_size,
                projection=True,
                dropout=dropout,
                layer_norm=layer_norm,
            )
            dim = layer.output_dim
            self._add(f"blstm{i}", layer, dim, down)

    def output_frames(self, num_frames: int) -> int:
        """Frames after the two 2x pooling steps.

        Example
        -------
        >>> VGGLSTM(cnn_channels=[2, 2], hidden_size=4).output_frames(81)
        20
        """
        return num_frames // 2 // 2


class PureBLSTM(CTCEncoder):
    """Five BLSTM layers; time halved at the input of blstm3, blstm4, blstm5.

    Arguments
    ---------
    input_dim : int
        Feature size per frame (240 = mel + deltas).
    hidden_size : int
        Units per direction (paper: 320).
    num_blstm : int
        Number of layers (paper: 5).
    subsample_layers : list of int
        1-based layers whose input is time-halved by stacking frame pairs
        (paper: after blstm2, blstm3 and blstm4, i.e. ``[3, 4, 5]``).
    dropout : float
        Dropout on the input of each layer.
    layer_norm : bool
        Layer-normalise the input frames of each layer (see BLSTMLayer).

    Example
    -------
    >>> model = PureBLSTM(input_dim=240, hidden_size=8)
    >>> model(torch.randn(2, 50, 240)).shape
    torch.Size([2, 6, 16])
    >>> [(n, i.downsample) for n, i in model.layer_info().items()]
    [('blstm1', 1), ('blstm2', 1), ('blstm3', 2), ('blstm4', 4), ('blstm5', 8)]
    """

    arch = "blstm"

    def __init__(
        self,
        input_dim: int = 240,
        hidden_size: int = 320,
        num_blstm: int = 5,
        subsample_layers: tuple | list = (3, 4, 5),
        dropout: float = 0.0,
        layer_norm: bool = True,
    ):
        super().__init__(input_dim=input_dim)
        self.config = dict(
            input_dim=input_dim,
            hidden_size=hidden_size,
            num_blstm=num_blstm,
            subsample_layers=list(subsample_layers),
            dropout=dropout,
            layer_norm=layer_norm,
        )
        self._subsample = [
            2 if i in subsample_layers else 1 for i in range(1, num_blstm + 1)
        ]
        dim, down = input_dim, 1
        for i, sub in enumerate(self._subsample, start=1):
            layer = BLSTMLayer(
                dim, hidden_size, subsample=sub, dropout=dropout, layer_norm=layer_norm
            )
            dim, down = layer.output_dim, down * sub
            self._add(f"blstm{i}", layer, dim, down)

    def output_frames(self, num_frames: int) -> int:
        """Frames after the pairwise stacking steps.

        Example
        -------
        >>> PureBLSTM(hidden_size=4).output_frames(81)
        10
        """
        for sub in self._subsample:
            num_frames //= sub
        return num_frames


ARCHITECTURES = {"vgg_lstm": VGGLSTM, "blstm": PureBLSTM}


def build_encoder(arch: str, **kwargs) -> CTCEncoder:
    """Build an encoder by architecture name (``vgg_lstm`` or ``blstm``).

    Example
    -------
    >>> build_encoder("blstm", hidden_size=4).layer_names[-1]
    'blstm5'
    >>> build_encoder("transformer")
    Traceback (most recent call last):
    ...
    ValueError: unknown ASR architecture 'transformer'; available: vgg_lstm, blstm
    """
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"unknown ASR architecture {arch!r}; available: " + ", ".join(ARCHITECTURES)
        )
    return ARCHITECTURES[arch](**kwargs)
