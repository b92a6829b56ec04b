"""Shared set-up of the probing benchmarks: an ASR and a batch of speech-like audio."""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from speechbrain_probe.features import ASRFeatures
from speechbrain_probe.frozen.interface import FrozenASR, ModuleASR
from speechbrain_probe.frozen.load import load_asr

# the recipe's sizes (recipes/Synthetic/ASR/CTC/hparams/vgg_lstm.yaml, blstm.yaml),
# the smaller ones the recipes used before commit fbd03e0, and the paper's
SIZES = {
    "recipe": {
        "vgg_lstm": dict(cnn_channels=(16, 32), hidden_size=160),
        "blstm": dict(hidden_size=128),
    },
    "small": {
        "vgg_lstm": dict(cnn_channels=(8, 16), hidden_size=96),
        "blstm": dict(hidden_size=96),
    },
    "paper": {
        "vgg_lstm": dict(cnn_channels=(64, 128), hidden_size=320),
        "blstm": dict(hidden_size=320),
    },
}


class WaveEncoder(nn.Module):
    """Features + a team encoder, called as ``(wavs, wav_lens)`` like an export."""

    def __init__(self, model):
        super().__init__()
        self.compute_features = ASRFeatures()
        self.model = model

    def forward(self, wavs, wav_lens):
        return self.model(self.compute_features(wavs), wav_lens)


def make_asr(source: str | None, arch: str, size: str) -> FrozenASR:
    """An exported ASR (``source``) or a randomly initialised team model."""
    if source:
        return load_asr(source)
    from speechbrain_probe.asr.models import build_encoder

    torch.manual_seed(0)
    model = build_encoder(arch, **SIZES[size][arch])
    layers = {name: f"model.{name}" for name in model.layer_names}
    return ModuleASR(WaveEncoder(model), layers, source=f"random {arch} ({size} size)")


def speech_batch(batch: int, seconds: float, seed: int = 0):
    """Harmonic tones with a syllable-rate envelope (relative lengths 1 .. 0.7)."""
    gen = torch.Generator().manual_seed(seed)
    n = int(seconds * 16000)
    t = torch.arange(n) / 16000
    wavs = []
    for i in range(batch):
        f0 = 90 + 25 * i
        env = torch.sin(math.pi * 4 * t + i).abs()
        sig = (
            sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 6))
            * env
            * 0.1
        )
        wavs.append(sig + 0.003 * torch.randn(n, generator=gen))
    lens = torch.linspace(1.0, 0.7, batch)
    wavs = torch.stack(wavs) * (torch.arange(n)[None] < (lens[:, None] * n))
    return wavs, lens


def threads_note() -> str:
    return (
        f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
        f"load avg {os.getloadavg()[0]:.1f}"
    )
