"""The interface every probed ASR offers: named layers read as frame sequences.

:class:`FrozenASR` is the common base: :meth:`~FrozenASR.default_layers` (a
model's top-level probe layers), :meth:`~FrozenASR.validate_layers` (names
and geometry checked up front), :meth:`~FrozenASR.hidden_states`
(``{layer: [B, T_h, D]}`` float tensors) and :meth:`~FrozenASR.geometry`
(``D``, and ``downsample``: probe-target frames per hidden frame).
:class:`ModuleASR` wraps any ``torch.nn.Module`` called as
``module(wavs, wav_lens)``; the SpeechBrain and Hugging Face wrappers live in
:mod:`speechbrain_probe.frozen.sb_inference` and
:mod:`speechbrain_probe.frozen.hf_encoder`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import nn

from speechbrain_probe.features import MelConfig
from speechbrain_probe.hooks import (
    LayerCapture,
    LayerReport,
    candidate_paths,
    measure_layers,
    resolve_module,
    to_frames,
)

__all__ = [
    "Geometry",
    "FrozenASR",
    "ModuleASR",
    "model_fingerprint",
]


@dataclass(frozen=True)
class Geometry:
    """Where a layer's frames lie in time.

    Attributes
    ----------
    dim : int
        Features per hidden frame.
    downsample : float
        Target frames per hidden frame.
    offset : float
        Target frames before hidden frame 0 starts (0 for our own models).
    """

    dim: int
    downsample: float
    offset: float = 0.0


def model_fingerprint(module: nn.Module) -> str:
    """A hash of a model's parameter and buffer values (names, shapes, bytes).

    Example
    -------
    >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    >>> model_fingerprint(a) == model_fingerprint(a), model_fingerprint(a) == model_fingerprint(b)
    (True, False)
    """
    digest = hashlib.blake2b(digest_size=16)
    for name, value in sorted(module.state_dict().items()):
        if not isinstance(value, torch.Tensor):
            continue
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        tensor = value.detach().to("cpu").contiguous()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


class FrozenASR:
    """A frozen ASR whose named layers can be read as ``[B, T_h, D]`` frames.

    Subclasses set ``root`` (the module the layer paths are relative to),
    ``layers`` (short name -> dotted path), ``mel_config`` and implement
    :meth:`encode`.
    """

    kind = "module"

    def __init__(
        self,
        root: nn.Module,
        layers: dict[str, str],
        mel_config: MelConfig,
        source: str,
    ):
        self.root = root
        self.layers = dict(layers)
        for name, path in self.layers.items():
            try:
                resolve_module(root, path)
            except KeyError as err:
                raise KeyError(
                    f"probe layer {name!r} of {source}: {err.args[0]}"
                ) from None
        self.mel_config = mel_config
        self.source = str(source)
        self.device = "cpu"
        self._reports: dict[str, LayerReport] = {}
        self._fingerprint: str | None = None
        self.freeze()

    # -- identity -------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """Hash of the weights (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.root)
        return self._fingerprint

    def describe(self) -> str:
        """One line: kind, source, layer names (the defaults when there are many)."""
        if len(self.layers) <= 16:
            return (
                f"{self.kind} ASR from {self.source}; layers: {' '.join(self.layers)}"
            )
        return (
            f"{self.kind} ASR from {self.source}; {len(self.layers)} probe-able layers "
            f"(list_layers --all); default layers: {' '.join(self.default_layers())}"
        )

    # -- state ------------------------------------------------------------
    def freeze(self) -> FrozenASR:
        """Eval mode and no gradients, for good."""
        self.root.eval()
        for param in self.root.parameters():
            param.requires_grad_(False)
        return self

    def to(self, device) -> FrozenASR:
        """Move the model (``cpu``, ``cuda:0``, ...)."""
        self.root.to(device)
        self.device = str(device)
        return self

    def default_layers(self) -> list[str]:
        """The model's top-level probe layers, input side first.

        The declared layers (an export's ``probe_layers``, a Hugging Face
        encoder's ``cnn``, ``layer1`` .. ``layerN``) in their order; wrappers
        without a declaration choose (see
        :meth:`speechbrain_probe.frozen.sb_inference.SpeechBrainASR.default_layers`).

        Example
        -------
        >>> net = nn.Sequential(nn.Conv1d(1, 4, 400, stride=200), nn.Conv1d(4, 4, 1))
        >>> ModuleASR(net, {"c1": "0", "c2": "1"}, takes_lengths=False).default_layers()
        ['c1', 'c2']
        """
        return list(self.layers)

    def validate_layers(self, names=None) -> list[str]:
        """Check layer names and their geometry before any long work.

        Arguments
        ---------
        names : str or list of str, optional
            Layer names (``"all"``: every declared layer); None: the
            :meth:`default_layers`.

        Returns
        -------
        list of str
            The names, in the order given.

        Raises
        ------
        KeyError
            An unknown name (the available ones are listed).
        ValueError
            A layer without a time axis, or whose frames are finer than the
            probe target's mel hop (downsample < 1): a one-frame-in probe
            would have to predict less than one mel frame per hidden frame.

        Example
        -------
        >>> fine = nn.Conv1d(1, 4, 160, stride=80, padding=80)
        >>> coarse = nn.Conv1d(4, 4, 4, stride=4)
        >>> net = nn.Sequential(nn.Unflatten(1, (1, -1)), fine, coarse)
        >>> asr = ModuleASR(net, {"fine": "1", "coarse": "2"}, takes_lengths=False)
        >>> asr.validate_layers(["coarse"])
        ['coarse']
        >>> asr.validate_layers(["fine"])
        Traceback (most recent call last):
        ...
        ValueError: layer 'fine' has a frame every 5 ms, finer than the probe target's mel hop of 12.5 ms ...
        """
        names = self.default_layers() if names is None else self.check_layers(names)
        cfg = self.mel_config
        hop_ms = 1000.0 * cfg.hop_length / cfg.sample_rate
        for name in names:
            geo = self.geometry(name)
            if geo.downsample < 1 - 1e-6:
                frame_ms = geo.downsample * hop_ms
                coarser = [
                    n
                    for n in self.layers
                    if n != name
                    and n in self._reports
                    and self._reports[n].downsample >= 1 - 1e-6
                ]
                hint = f" (e.g. {coarser[0]})" if coarser else ""
                raise ValueError(
                    f"layer {name!r} has a frame every {frame_ms:g} ms, finer than "
                    f"the probe target's mel hop of {hop_ms:g} ms (downsample "
                    f"{geo.downsample:g} < 1): the probe maps one hidden frame to at "
                    f"least one mel frame. Probe a coarser layer{hint}, or use a "
                    f"mel_config with a hop of at most {frame_ms:g} ms "
                    f"(hop_length_ms <= {frame_ms:g})"
                )
        return names

    def check_layers(self, names) -> list[str]:
        """Validate layer names; ``"all"`` expands to every declared layer.

        A layer's module path (``encoder.rnn.rnn.l0``) stands for its name.
        """
        if names == "all" or names == ["all"]:
            return list(self.layers)
        if isinstance(names, str):
            names = [names]
        # a layer's dotted module path names it too
        by_path = {path: name for name, path in self.layers.items()}
        names = [n if n in self.layers else by_path.get(n, n) for n in names]
        unknown = [n for n in names if n not in self.layers]
        if unknown:
            raise KeyError(
                f"unknown layer {unknown[0]!r}; available: {' '.join(self.layers)}"
            )
        return list(names)

    # -- running --------------------------------------------------------
    def encode(self, wavs: torch.Tensor, wav_lens: torch.Tensor):
        """Run the model's encoder on ``wavs`` ``[B, S]`` (relative lengths)."""
        raise NotImplementedError

    def _dummy_run(self, batch: int, num_samples: int):
        wavs = torch.randn(batch, num_samples, device=self.device) * 0.1
        self.encode(wavs, torch.ones(batch, device=self.device))

    def measure(self, all_modules: bool = False) -> list[LayerReport]:
        """Measure shape and time downsampling of the declared (or all) layers."""
        hop = self.mel_config.hop_length
        # two lengths whose frame counts differ by a multiple of 64
        lengths = (80 * hop, 208 * hop)
        paths = candidate_paths(self.root) if all_modules else self.layers
        self.root.eval()
        with torch.no_grad():
            reports = measure_layers(
                self.root,
                self._dummy_run,
                lengths=lengths,
                units_per_frame=hop,
                layers=paths,
            )
        if not all_modules:
            self._reports.update({r.name: r for r in reports})
        return reports

    def report(self, name: str) -> LayerReport:
        """The measured :class:`LayerReport` of a declared layer."""
        self.check_layers([name])
        if name not in self._reports:
            self.measure()
        if name not in self._reports:
            raise ValueError(
                f"layer {name!r} ({self.layers[name]}) has no output that follows the "
                "input length (pooled or fixed-size output): it cannot be probed frame "
                "by frame"
            )
        return self._reports[name]

    def geometry(self, name: str) -> Geometry:
        """Features per frame and downsampling of a layer."""
        rep = self.report(name)
        return Geometry(rep.dim, rep.downsample)

    def hidden_states(self, wavs, wav_lens, names) -> dict[str, torch.Tensor]:
        """``{name: [B, T_h, D]}`` of one forward pass (no gradients)."""
        names = self.check_layers(names)
        reports = {n: self.report(n) for n in names}
        outputs = self._capture(names, lambda: self.encode(wavs, wav_lens))
        return {
            n: to_frames(outputs[n], r.time_axis, r.batch_axis)
            for n, r in reports.items()
        }

    def _capture(self, names, run) -> dict[str, torch.Tensor]:
        """Outputs of the layers ``names`` in ``run()`` (eval mode, no gradients)."""
        self.root.eval()
        paths = {n: self.layers[n] for n in names}
        with torch.no_grad(), LayerCapture(self.root, paths) as cap:
            run()
        return {n: cap[n] for n in names}


class ModuleASR(FrozenASR):
    """Any module called as ``module(wavs, wav_lens)``.

    Arguments
    ---------
    module : torch.nn.Module
        The model (features included).
    layers : dict
        Short name -> dotted path inside ``module``.
    mel_config : MelConfig, optional
        Settings of the probe target.
    source : str
        A label for messages and checkpoints.
    takes_lengths : bool
        Call ``module(wavs, wav_lens)`` (True) or ``module(wavs)``.

    Example
    -------
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.frames = nn.Conv1d(1, 8, 400, stride=200, padding=200)
    ...     def forward(self, wavs, lens):  # lengths unused here
    ...         return self.frames(wavs.unsqueeze(1))
    >>> asr = ModuleASR(Net(), {"conv": "frames"})
    >>> asr.geometry("conv")
    Geometry(dim=8, downsample=1.0, offset=0.0)
    >>> asr.hidden_states(torch.randn(2, 16000), torch.ones(2), ["conv"])["conv"].shape
    torch.Size([2, 81, 8])
    """

    kind = "module"

    def __init__(
        self, module, layers, mel_config=None, source="<module>", takes_lengths=True
    ):
        self.takes_lengths = takes_lengths
        super().__init__(module, layers, mel_config or MelConfig(), source)

    def encode(self, wavs, wav_lens):
        """Call the module."""
        if not self.takes_lengths:
            return self.root(wavs.to(self.device))
        return self.root(wavs.to(self.device), wav_lens.to(self.device))
