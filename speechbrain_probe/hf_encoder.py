"""Hugging Face speech encoders as a :class:`~speechbrain_probe.asr_interface.FrozenASR`.

Whisper, wav2vec2, HuBERT, WavLM and data2vec-audio, from a local
``save_pretrained`` directory (``transformers`` is the optional ``hf`` extra):
layers ``cnn`` (convolutional front end) and ``layer1`` .. ``layerN``
(transformer layers). Whisper's zero padding to its fixed window is cut off
again; longer audio is encoded window by window.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from speechbrain_probe.asr_interface import FrozenASR, Geometry
from speechbrain_probe.features import MelConfig
from speechbrain_probe.hooks import LayerCapture, LayerReport

__all__ = ["HF_MODEL_TYPES", "HFEncoderASR"]

HF_MODEL_TYPES = ("whisper", "wav2vec2", "hubert", "wavlm", "data2vec-audio")


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
