"""Load a frozen ASR and expose its probe-able layers as frame sequences.

One interface, :class:`FrozenASR`, over three kinds of models:

* SpeechBrain inference models (``EncoderASR``, ``EncoderDecoderASR``), from an
  exported local directory (our own ASR exports) or a hub id when online. An
  exported ``hyperparams.yaml`` may declare ``probe_layers:`` (short name ->
  dotted path under ``mods``) and ``mel_config:`` (the :class:`MelConfig` of its
  features, which the probe target then uses).
* Hugging Face speech encoders (Whisper, wav2vec2, HuBERT, WavLM, data2vec-audio)
  from a local ``save_pretrained`` directory (``transformers`` is the optional
  ``hf`` extra): ``cnn`` (convolutional front end) and ``layer1`` .. ``layerN``
  (transformer layers). Whisper's zero padding to its fixed window is cut off
  again, longer audio is encoded window by window.
* Any ``torch.nn.Module`` taking ``(wavs, wav_lens)``: :class:`ModuleASR`.

A source that looks like a local path (it exists, starts with ``/``, ``.`` or
``~``, has more than one ``/``, or its first component is an existing folder)
and does not exist is an error, never a network call.

:meth:`FrozenASR.hidden_states` returns ``{layer: [B, T_h, D]}`` float tensors
and :meth:`FrozenASR.geometry` each layer's ``(D, downsample)``, where
``downsample`` is the number of 12.5 ms target frames per hidden frame.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

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
from speechbrain_probe.pretrained import resolve_source

__all__ = [
    "Geometry",
    "FrozenASR",
    "ModuleASR",
    "SpeechBrainASR",
    "HFEncoderASR",
    "looks_local",
    "load_asr",
    "model_fingerprint",
]

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
HF_MODEL_TYPES = ("whisper", "wav2vec2", "hubert", "wavlm", "data2vec-audio")


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


def looks_local(source: str | os.PathLike) -> bool:
    """Whether ``source`` should be read from disk rather than from a hub.

    Stricter than :func:`speechbrain_probe.pretrained.resolve_source` in one
    case: ``exported/vgg`` is local when a folder ``exported`` exists here.

    Example
    -------
    >>> looks_local("speechbrain/asr-crdnn-rnnlm-librispeech")
    False
    >>> looks_local("./exported/vgg"), looks_local("results/asr/vgg/export")
    (True, True)
    """
    text = str(source)
    if isinstance(source, os.PathLike) or os.path.exists(os.path.expanduser(text)):
        return True
    if not _HUB_ID.match(text):
        return True
    return os.path.isdir(text.split("/")[0])


def _check_local(source) -> Path:
    if not looks_local(source):
        raise ValueError(f"{source!r} is a hub id, not a local directory")
    path = Path(os.path.expanduser(str(source)))
    if not path.exists():
        raise FileNotFoundError(
            f"asr_source: local directory {str(source)!r} does not exist (nothing was "
            "downloaded); check the path, or train/export the model first"
        )
    resolved, _ = resolve_source(path, what="ASR", needs="")  # refuses files
    return Path(resolved)


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
        """One line: kind, source, layer names."""
        return f"{self.kind} ASR from {self.source}; layers: {' '.join(self.layers)}"

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

    def check_layers(self, names) -> list[str]:
        """Validate layer names; ``"all"`` expands to every declared layer."""
        if names == "all" or names == ["all"]:
            return list(self.layers)
        if isinstance(names, str):
            names = [names]
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
        self.root.eval()
        with (
            torch.no_grad(),
            LayerCapture(self.root, {n: self.layers[n] for n in names}) as cap,
        ):
            self.encode(wavs, wav_lens)
        return {
            n: to_frames(cap[n], r.time_axis, r.batch_axis) for n, r in reports.items()
        }


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
    ...     def forward(self, wavs, lens):
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
        for name, path in self.layers.items():
            try:
                resolve_module(module, path)
            except KeyError as err:
                raise KeyError(f"probe layer {name!r}: {err.args[0]}") from None

    def encode(self, wavs, wav_lens):
        """Call the module."""
        if not self.takes_lengths:
            return self.root(wavs.to(self.device))
        return self.root(wavs.to(self.device), wav_lens.to(self.device))


class SpeechBrainASR(FrozenASR):
    """A SpeechBrain ``EncoderASR`` / ``EncoderDecoderASR`` (hooks on ``mods``)."""

    kind = "speechbrain"

    def __init__(self, pretrained, source: str):
        self.pretrained = pretrained
        hp = vars(pretrained.hparams)
        declared = hp.get("probe_layers")
        mel = hp.get("mel_config")
        if mel is None:
            logger.warning(
                "%s declares no mel_config: the probe target uses the default MelConfig",
                source,
            )
            mel_config = MelConfig()
        else:
            mel_config = (
                mel if isinstance(mel, MelConfig) else MelConfig.from_dict(dict(mel))
            )
        self.declared_info = dict(hp.get("layer_info") or {})
        root = pretrained.mods
        if declared:
            layers = {str(k): str(v) for k, v in dict(declared).items()}
            for name, path in layers.items():
                try:
                    resolve_module(root, path)
                except KeyError as err:
                    raise KeyError(
                        f"probe_layers[{name!r}] of {source}: {err.args[0]}"
                    ) from None
        else:
            layers = {}
        super().__init__(root, layers, mel_config, source)
        self.device = str(pretrained.device)
        if not declared:
            # no declaration: every submodule with a time axis, by its path
            self.layers = {r.name: r.path for r in self.measure(all_modules=True)}
            self._reports.clear()

    def to(self, device):
        """Move the model and tell the interface."""
        super().to(device)
        self.pretrained.device = str(device)
        return self

    def report(self, name: str) -> LayerReport:
        """Measured geometry, cross-checked with a declared ``layer_info``."""
        rep = super().report(name)
        info = self.declared_info.get(name)
        if info and (
            int(info.get("dim", rep.dim)) != rep.dim
            or abs(float(info.get("downsample", rep.downsample)) - rep.downsample)
            > 1e-3
        ):
            raise ValueError(
                f"layer {name!r} of {self.source}: hyperparams.yaml declares {dict(info)}, "
                f"but its output measures dim={rep.dim}, downsample={rep.downsample}; "
                "the export's layer_info or probe_layers path is wrong"
            )
        return rep

    def encode(self, wavs, wav_lens):
        """``encode_batch`` of the SpeechBrain interface."""
        return self.pretrained.encode_batch(
            wavs.to(self.device), wav_lens.to(self.device)
        )


class HFEncoderASR(FrozenASR):
    """A Hugging Face speech encoder from a local ``save_pretrained`` directory.

    Layers: ``cnn`` (convolutional front end) and ``layer1`` .. ``layerN``.
    """

    kind = "huggingface"

    def __init__(self, directory: str | Path, mel_config: MelConfig | None = None):
        try:
            import transformers
        except ImportError as err:  # pragma: no cover - depends on the extra
            raise ImportError(
                "Hugging Face encoders need transformers: pip install "
                "'speechbrain-probe[hf]'"
            ) from err
        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text())
        self.model_type = config.get("model_type", "")
        if self.model_type not in HF_MODEL_TYPES:
            raise ValueError(
                f"{directory}: model_type {self.model_type!r} is not a supported speech "
                f"encoder; supported: {' '.join(HF_MODEL_TYPES)}"
            )
        model = transformers.AutoModel.from_pretrained(str(directory))
        self.is_whisper = self.model_type == "whisper"
        encoder = model.get_encoder() if self.is_whisper else model
        self.extractor = self._feature_extractor(transformers, directory, model.config)
        if self.is_whisper:
            n_layers = len(encoder.layers)
            layers = {"cnn": "conv2"}
            layers.update({f"layer{i + 1}": f"layers.{i}" for i in range(n_layers)})
        else:
            n_layers = len(encoder.encoder.layers)
            layers = {"cnn": "feature_extractor"}
            layers.update(
                {f"layer{i + 1}": f"encoder.layers.{i}" for i in range(n_layers)}
            )
        super().__init__(encoder, layers, mel_config or MelConfig(), str(directory))
        self.config = model.config

    # -- front-end --------------------------------------------------------
    def _feature_extractor(self, transformers, directory, config):
        if (directory / "preprocessor_config.json").exists():
            return transformers.AutoFeatureExtractor.from_pretrained(str(directory))
        if self.is_whisper:
            return transformers.WhisperFeatureExtractor(
                feature_size=config.num_mel_bins
            )
        return transformers.Wav2Vec2FeatureExtractor(
            do_normalize=True,
            return_attention_mask=getattr(config, "feat_extract_norm", "group")
            == "layer",
        )

    @property
    def hidden_hop(self) -> int:
        """Samples per transformer frame (320 for all supported encoders)."""
        if self.is_whisper:
            return self.extractor.hop_length * 2
        return math.prod(self.config.conv_stride)

    def geometry(self, name: str) -> Geometry:
        """Dim from the config; downsampling from the hop sizes, not measured."""
        self.check_layers([name])
        hop_t = self.mel_config.hop_length
        if self.is_whisper:
            # conv2 (stride 2) and every layer: frame k covers mel frames 2k, 2k+1
            hop = self.extractor.hop_length * 2
            dim = self.config.d_model
            centre0 = self.extractor.hop_length * 0.5
        else:
            hop = self.hidden_hop
            dim = self.config.conv_dim[-1] if name == "cnn" else self.config.hidden_size
            rf = 1
            for k, s in reversed(
                list(zip(self.config.conv_kernel, self.config.conv_stride))
            ):
                rf = (rf - 1) * s + k
            centre0 = rf / 2
        return Geometry(dim, hop / hop_t, (centre0 - hop / 2) / hop_t)

    def report(self, name: str) -> LayerReport:
        """Geometry as a :class:`LayerReport` (time axis 2 for ``cnn``)."""
        geo = self.geometry(name)
        conv_first = name == "cnn"
        return LayerReport(
            name,
            self.layers[name],
            "conv" if conv_first else "transformer layer",
            (),
            2 if conv_first else 1,
            0,
            geo.dim,
            round(geo.downsample, 3),
        )

    def measure(self, all_modules: bool = False) -> list[LayerReport]:
        """Layer reports, with shapes from a 1 s dummy input."""
        wavs = torch.randn(2, 16000) * 0.1
        states = self.hidden_states(wavs, torch.ones(2), list(self.layers))
        return [
            LayerReport(
                r.name,
                r.path,
                r.kind,
                tuple(states[r.name].shape),
                1,
                0,
                r.dim,
                r.downsample,
            )
            for r in (self.report(n) for n in self.layers)
        ]

    def _valid_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        if self.is_whisper:
            return (num_samples // self.extractor.hop_length + 1) // 2
        return self.root._get_feat_extract_output_lengths(num_samples).long()

    def _window_samples(self) -> int:
        if not self.is_whisper:
            return 0
        frames = self.config.max_source_positions * 2
        return frames * self.extractor.hop_length

    def encode(self, wavs, wav_lens):
        """Run the encoder on one batch (one window for Whisper)."""
        sr = self.mel_config.sample_rate
        lengths = torch.round(wav_lens.float().cpu() * wavs.shape[1]).long()
        arrays = [w[: int(n)].float().cpu().numpy() for w, n in zip(wavs, lengths)]
        if self.is_whisper:
            window = self._window_samples()
            feats = self.extractor(
                arrays,
                sampling_rate=sr,
                padding="max_length",
                max_length=window,
                truncation=True,
                return_tensors="pt",
            )
            return self.root(feats["input_features"].to(self.device))
        feats = self.extractor(
            arrays,
            sampling_rate=sr,
            padding=True,
            return_tensors="pt",
            return_attention_mask=True,
        )
        kwargs = {}
        if getattr(self.config, "feat_extract_norm", "group") == "layer":
            kwargs["attention_mask"] = feats["attention_mask"].to(self.device)
        return self.root(feats["input_values"].to(self.device), **kwargs)

    def hidden_states(self, wavs, wav_lens, names) -> dict[str, torch.Tensor]:
        """``{name: [B, T_h, D]}`` with padding frames (Whisper's window) removed."""
        names = self.check_layers(names)
        lengths = torch.round(wav_lens.float().cpu() * wavs.shape[1]).long()
        window = self._window_samples()
        if self.is_whisper and wavs.shape[1] > window:
            # window by window, then concatenated per utterance
            pieces: dict[str, list] = {n: [] for n in names}
            for start in range(0, wavs.shape[1], window):
                chunk = wavs[:, start : start + window]
                chunk_len = (lengths - start).clamp(min=1, max=chunk.shape[1])
                part = self.hidden_states(
                    chunk, chunk_len.float() / chunk.shape[1], names
                )
                for n in names:
                    pieces[n].append(part[n])
            return {n: torch.cat(pieces[n], dim=1) for n in names}
        self.root.eval()
        with (
            torch.no_grad(),
            LayerCapture(self.root, {n: self.layers[n] for n in names}) as cap,
        ):
            self.encode(wavs, wav_lens)
        max_frames = int(self._valid_frames(lengths).max())
        out = {}
        for n in names:
            h = cap[n]
            if n == "cnn":  # conv output is [B, C, T]
                h = h.transpose(1, 2)
            out[n] = h[:, :max_frames].float()
        return out


def _read_yaml_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def load_asr(
    source: str | os.PathLike,
    savedir: str | os.PathLike | None = None,
    device: str = "cpu",
    interface: str = "auto",
) -> FrozenASR:
    """Load a frozen ASR from a local directory or a hub id.

    Arguments
    ---------
    source : str or path
        Exported SpeechBrain model directory (``hyperparams.yaml``), Hugging Face
        model directory (``config.json``), or a SpeechBrain hub id (online only).
    savedir : str or path, optional
        Where SpeechBrain collects the files (default: the directory itself for a
        local source, ``pretrained_models/<name>`` for a hub id).
    device : str
        ``cpu``, ``cuda:0``, ...
    interface : str
        ``auto``, ``EncoderASR`` or ``EncoderDecoderASR``.

    Returns
    -------
    FrozenASR

    Example
    -------
    >>> load_asr("./no/such/model")
    Traceback (most recent call last):
    ...
    FileNotFoundError: asr_source: local directory './no/such/model' does not exist ...
    """
    from speechbrain.inference.ASR import EncoderASR, EncoderDecoderASR

    text = str(source)
    if looks_local(text):
        path = _check_local(text)
        if (path / "config.json").exists() and not (path / "hyperparams.yaml").exists():
            return HFEncoderASR(path).to(device)
        if not (path / "hyperparams.yaml").exists():
            raise FileNotFoundError(
                f"{path} has neither hyperparams.yaml (SpeechBrain export) nor "
                "config.json (Hugging Face save_pretrained); is it a model directory?"
            )
        src, save = str(path.resolve()), str(savedir or path.resolve())
        yaml_text = _read_yaml_text(path / "hyperparams.yaml")
    else:
        src = text
        save = str(savedir or Path("pretrained_models") / text.replace("/", "--"))
        from speechbrain.utils.fetching import fetch

        yaml_text = Path(
            fetch("hyperparams.yaml", source=src, savedir=save)
        ).read_text()
    if interface == "auto":
        interface = (
            "EncoderASR" if "decoding_function" in yaml_text else "EncoderDecoderASR"
        )
    classes = {"EncoderASR": EncoderASR, "EncoderDecoderASR": EncoderDecoderASR}
    if interface not in classes:
        raise ValueError(f"interface {interface!r}; choose one of {' '.join(classes)}")
    pretrained = classes[interface].from_hparams(
        source=src, savedir=save, run_opts={"device": device}
    )
    return SpeechBrainASR(pretrained, src)
