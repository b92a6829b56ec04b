"""Hugging Face speech encoders as a :class:`~speechbrain_probe.frozen.interface.FrozenASR`.

Whisper, wav2vec2, HuBERT, WavLM and data2vec-audio, from a local
``save_pretrained`` directory (``transformers`` is the optional ``hf`` extra):
layers ``cnn`` (convolutional front end) and ``layer1`` .. ``layerN``
(transformer layers).

Whisper's encoder takes a fixed window (30 s for the released models) and was
trained on audio zero-padded to it. ``whisper_window`` chooses how audio is
fed to it:

* ``"full"`` (default, faithful): every window padded to the full length, as
  in training; the frames of the padding are cut off again.
* ``"trim"``: windows shorter than the full length are encoded only as long as
  the audio needs (positional embeddings cut to that length; in a batch, each
  window attends only to its own length, so its frames do not depend on the
  other utterances), which is cheaper for short utterances, but attention then
  no longer sees the padding, so hidden states differ from the faithful ones
  (how much: ``benchmarks/bench_whisper.py``, on random weights). transformers' ``WhisperEncoder`` refuses
  any input but the full window, so this mode runs the encoder's own
  submodules (``conv1``, ``conv2``, ``layers``, ``layer_norm``) itself.

Audio longer than a window is cut into windows; all windows of a batch go
through the encoder in one forward (in ``"trim"`` mode: one forward for the
full windows, one for the shorter rest), and each utterance's frames are
concatenated again.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
from pathlib import Path

import torch

from speechbrain_probe.extras import require_extra
from speechbrain_probe.features import MelConfig
from speechbrain_probe.frozen.interface import FrozenASR, Geometry
from speechbrain_probe.hooks import LayerReport

__all__ = ["HF_MODEL_TYPES", "WHISPER_WINDOWS", "HFEncoderASR", "whisper_encode"]

HF_MODEL_TYPES = ("whisper", "wav2vec2", "hubert", "wavlm", "data2vec-audio")
WHISPER_WINDOWS = ("full", "trim")


def whisper_encode(
    encoder, input_features: torch.Tensor, frames: torch.Tensor | None = None
) -> torch.Tensor:
    """A Whisper encoder's forward on mel input of any length up to its window.

    The same computation as ``WhisperEncoder.forward`` (conv1, conv2 with GELU,
    positional embeddings, layers, final layer norm; eval mode), with the
    positional embeddings cut to the input's length instead of refusing input
    shorter than ``2 * max_source_positions`` mel frames. Runs the encoder's
    own submodules, so forward hooks on them see their outputs.

    Arguments
    ---------
    encoder : transformers WhisperEncoder
        The encoder.
    input_features : torch.Tensor
        ``[B, n_mels, T]`` log-mel frames, ``T <= 2 * max_source_positions``.
    frames : torch.Tensor, optional
        ``[B]`` encoder frames of each item: attention then sees only those
        (each item as if encoded alone at its own length, whatever the batch).

    Returns
    -------
    torch.Tensor
        ``[B, ceil(T / 2), d_model]``.

    Example
    -------
    >>> from transformers import WhisperConfig
    >>> from transformers.models.whisper.modeling_whisper import WhisperEncoder
    >>> cfg = WhisperConfig(d_model=8, encoder_layers=1, encoder_attention_heads=2,
    ...     encoder_ffn_dim=16, num_mel_bins=4, max_source_positions=10)
    >>> enc = WhisperEncoder(cfg).eval()
    >>> feats = torch.randn(1, 4, 20)
    >>> full = enc(feats).last_hidden_state
    >>> torch.allclose(whisper_encode(enc, feats), full, atol=1e-5)
    True
    >>> whisper_encode(enc, feats[..., :6]).shape
    torch.Size([1, 3, 8])
    >>> padded = torch.cat([feats[..., :6], torch.zeros(1, 4, 6)], dim=2)
    >>> two = whisper_encode(enc, torch.cat([feats[..., :12], padded]), torch.tensor([6, 3]))
    >>> torch.allclose(two[1, :3], whisper_encode(enc, padded[..., :6])[0], atol=1e-5)
    True
    """
    gelu = torch.nn.functional.gelu
    h = gelu(encoder.conv2(gelu(encoder.conv1(input_features)))).permute(0, 2, 1)
    if h.shape[1] > encoder.embed_positions.num_embeddings:
        raise ValueError(
            f"{input_features.shape[-1]} mel frames exceed the Whisper window of "
            f"{2 * encoder.embed_positions.num_embeddings}"
        )
    h = h + encoder.embed_positions.weight[: h.shape[1]]
    mask = None
    if frames is not None:
        keep = torch.arange(h.shape[1], device=h.device)[None, :] < frames[:, None].to(
            h.device
        )
        mask = torch.zeros(keep.shape, dtype=h.dtype, device=h.device)
        mask = mask.masked_fill(~keep, torch.finfo(h.dtype).min)[:, None, None, :]
    # transformers 4.x layers also require a head mask (5.x removed it)
    params = inspect.signature(encoder.layers[0].forward).parameters
    extra = {"layer_head_mask": None} if "layer_head_mask" in params else {}
    for layer in encoder.layers:
        out = layer(h, mask, **extra)
        h = out[0] if isinstance(out, tuple) else out
    return encoder.layer_norm(h)


class HFEncoderASR(FrozenASR):
    """A Hugging Face speech encoder from a local ``save_pretrained`` directory.

    Arguments
    ---------
    directory : str or path
        A ``save_pretrained`` directory (``config.json``, weights, optionally
        ``preprocessor_config.json``).
    mel_config : MelConfig, optional
        Settings of the probe target.
    whisper_window : str
        Whisper only: ``"full"`` (default) or ``"trim"``; see the module notes.
    """

    kind = "huggingface"

    def __init__(
        self,
        directory: str | Path,
        mel_config: MelConfig | None = None,
        whisper_window: str = "full",
    ):
        if whisper_window not in WHISPER_WINDOWS:
            raise ValueError(
                f"whisper_window={whisper_window!r}; choose one of "
                f"{' '.join(WHISPER_WINDOWS)} (full: pad to Whisper's 30 s window as "
                "in training; trim: encode only what the audio needs)"
            )
        self.whisper_window = whisper_window
        require_extra("hf")
        import transformers

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
        hop_t, hop = self.mel_config.hop_length, self.hidden_hop
        if self.is_whisper:
            # conv2 (stride 2) and every layer: frame k covers mel frames 2k, 2k+1
            dim = self.config.d_model
            centre0 = self.extractor.hop_length * 0.5
        else:
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
        kind, time_axis = ("conv", 2) if name == "cnn" else ("transformer layer", 1)
        path, downsample = self.layers[name], round(geo.downsample, 3)
        return LayerReport(name, path, kind, (), time_axis, 0, geo.dim, downsample)

    def measure(self, all_modules: bool = False) -> list[LayerReport]:
        """Layer reports, with shapes from a 1 s dummy input."""
        wavs = torch.randn(2, 16000) * 0.1
        states = self.hidden_states(wavs, torch.ones(2), list(self.layers))
        return [
            dataclasses.replace(
                self.report(n), shape=tuple(states[n].shape), time_axis=1
            )
            for n in self.layers
        ]

    @staticmethod
    def _sample_counts(wavs, wav_lens) -> torch.Tensor:
        """Samples of each utterance of a padded batch (relative lengths)."""
        return torch.round(wav_lens.float().cpu() * wavs.shape[1]).long()

    def _window_samples(self) -> int:
        """Samples of Whisper's window (30 s for the released models)."""
        frames = self.config.max_source_positions * 2
        return frames * self.extractor.hop_length

    def _whisper_features(self, arrays, num_samples: int) -> torch.Tensor:
        """Log-mel input of ``arrays`` padded (or cut) to ``num_samples``."""
        kwargs = {}
        if "device" in inspect.signature(self.extractor.__call__).parameters:
            kwargs["device"] = str(self.device)  # its torch STFT on our device
        feats = self.extractor(
            arrays,
            sampling_rate=self.mel_config.sample_rate,
            padding="max_length",
            max_length=num_samples,
            truncation=True,
            return_tensors="pt",
            **kwargs,
        )
        return feats["input_features"].to(self.device)

    def _whisper_run(self, features: torch.Tensor, frames=None):
        if features.shape[-1] == self.config.max_source_positions * 2:
            return self.root(features)
        return whisper_encode(self.root, features, frames)

    def _whisper_length(self, longest: int) -> int:
        """Samples to encode for a window whose longest audio has ``longest``."""
        window = self._window_samples()
        if self.whisper_window == "full":
            return window
        step = self.hidden_hop  # one encoder frame
        # at least half an STFT window of zeros after the audio: the last
        # frames then see zeros, as in a longer (or the full) window
        needed = longest + self.extractor.n_fft // 2
        return min(window, max(1, math.ceil(needed / step)) * step)

    def _whisper_window(self, arrays) -> torch.Tensor:
        """Encoder output of one window per array (each at most a window long):
        trimmed, each attends only to its own length, so its frames do not
        depend on the other utterances of the batch."""
        longest = self._whisper_length(max(len(a) for a in arrays))
        features = self._whisper_features(arrays, longest)
        own = [self._whisper_length(len(a)) // self.hidden_hop for a in arrays]
        return self._whisper_run(features, torch.tensor(own))

    def encode(self, wavs, wav_lens):
        """Run the encoder on one batch (Whisper: the first window of each)."""
        lengths = self._sample_counts(wavs, wav_lens)
        arrays = [w[: int(n)].float().cpu().numpy() for w, n in zip(wavs, lengths)]
        if self.is_whisper:
            return self._whisper_window([a[: self._window_samples()] for a in arrays])
        feats = self.extractor(
            arrays,
            sampling_rate=self.mel_config.sample_rate,
            padding=True,
            return_tensors="pt",
            return_attention_mask=True,
        )
        kwargs = {}
        if getattr(self.config, "feat_extract_norm", "group") == "layer":
            kwargs["attention_mask"] = feats["attention_mask"].to(self.device)
        return self.root(feats["input_values"].to(self.device), **kwargs)

    def _whisper_states(self, wavs, lengths, names) -> dict[str, torch.Tensor]:
        """Every window of every utterance, batched; frames concatenated back."""
        window = self._window_samples()
        hop = self.extractor.hop_length
        chunks = [
            (b, start, min(window, n - start))
            for b, n in enumerate(max(1, int(n)) for n in lengths)
            for start in range(0, n, window)
        ]
        if self.whisper_window == "full":
            groups = [chunks]
        else:  # full windows in one forward, the shorter rest trimmed in another
            groups = [
                [c for c in chunks if c[2] == window],
                [c for c in chunks if c[2] < window],
            ]
        frames: dict[tuple, dict[str, torch.Tensor]] = {}
        for group in (g for g in groups if g):
            arrays = [
                wavs[b, start : start + n].float().cpu().numpy()
                for b, start, n in group
            ]
            cap = self._capture(names, functools.partial(self._whisper_window, arrays))
            for i, (b, start, n) in enumerate(group):
                valid = (n // hop + 1) // 2
                frames[(b, start)] = {
                    name: (
                        cap[name][i].transpose(0, 1) if name == "cnn" else cap[name][i]
                    )[:valid].float()
                    for name in names
                }
        out = {}
        for name in names:
            per_utt = [
                torch.cat([frames[(b, s)][name] for bb, s, _ in chunks if bb == b])
                for b in range(wavs.shape[0])
            ]
            out[name] = torch.nn.utils.rnn.pad_sequence(per_utt, batch_first=True)
        return out

    def hidden_states(self, wavs, wav_lens, names) -> dict[str, torch.Tensor]:
        """``{name: [B, T_h, D]}`` with padding frames (Whisper's window) removed.

        Frames after an utterance's end (shorter utterances of a batch) are
        zeros for Whisper, the model's output on the padding for the others.
        """
        names = self.check_layers(names)
        lengths = self._sample_counts(wavs, wav_lens)
        if self.is_whisper:
            return self._whisper_states(wavs, lengths, names)
        cap = self._capture(names, lambda: self.encode(wavs, wav_lens))
        valid = self.root._get_feat_extract_output_lengths(lengths)
        return {
            # the conv front end's output is [B, C, T]
            n: (h.transpose(1, 2) if n == "cnn" else h)[:, : int(valid.max())].float()
            for n, h in cap.items()
        }
