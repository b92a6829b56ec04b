"""Generated stimuli for trying out and testing the listening test.

Each speaker is a harmonic "voice" (its own pitch and spectral tilt), each
utterance a different pitch contour and syllable rhythm, and deeper "layers" add
more noise, so speaker identity fades with depth as it does in the paper. This is
not speech; it exists so that the app can be run and tested without the rest
of the pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbrain_probe.result_rows import Sample, write_samples

__all__ = ["write_demo_stimuli"]


def _voice(rng, noise_rng, f0, tilt, duration_s, sr, snr_db):
    t = np.arange(int(duration_s * sr)) / sr
    contour = f0 * (
        1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t + rng.uniform(0, 6))
    )
    phase = 2 * np.pi * np.cumsum(contour) / sr
    wave = sum((k**-tilt) * np.sin(k * phase) for k in range(1, 12))
    rate = rng.uniform(3, 6)  # syllables per second
    envelope = 0.5 * (1 - np.cos(2 * np.pi * rate * t)) ** 2
    signal = wave * envelope
    signal /= np.sqrt(np.mean(signal**2)) + 1e-9
    noise = noise_rng.standard_normal(len(t)) * 10 ** (-snr_db / 20)
    out = signal + noise
    return (0.3 * out / np.max(np.abs(out))).astype(np.float32)


def write_demo_stimuli(
    out_dir: str | os.PathLike,
    n_speakers: int = 4,
    n_utts: int = 3,
    layers: tuple[str, ...] = ("cnn1", "blstm1", "blstm3"),
    model: str = "demo_model",
    condition: str = "clean",
    duration_s: float = 0.5,
    sample_rate: int = 16000,
    seed: int = 0,
) -> Path:
    """Write generated 16 kHz wavs and a ``samples.csv`` indexing them.

    Noise grows with depth: SNR falls linearly from 20 dB at the first layer to
    -20 dB at the last.

    Returns
    -------
    Path
        The ``samples.csv`` (paths relative to its folder, kind ``reconstruction``).

    Example
    -------
    >>> p = write_demo_stimuli(getfixture("tmp_path"), n_speakers=2, n_utts=2,
    ...                        layers=("cnn1",), duration_s=0.1)
    >>> p.read_text().splitlines()[1]
    'spk0_u0,spk0,demo_model,cnn1,clean,reconstruction,wav/demo_model/clean/cnn1/spk0_u0.wav'
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    voices = [(rng.uniform(90, 260), rng.uniform(0.6, 2.0)) for _ in range(n_speakers)]
    rows = []
    for li, layer in enumerate(layers):
        for s, (f0, tilt) in enumerate(voices):
            for u in range(n_utts):
                utt_id = f"spk{s}_u{u}"
                # same utterance content in every layer; only the noise differs
                utt_rng = np.random.default_rng([seed, s, u])
                noise_rng = np.random.default_rng([seed, s, u, li])
                rel = Path("wav") / model / condition / layer / f"{utt_id}.wav"
                path = out_dir / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                snr_db = 20 - 40 * li / max(1, len(layers) - 1)
                wave = _voice(
                    utt_rng, noise_rng, f0, tilt, duration_s, sample_rate, snr_db
                )
                sf.write(path, wave, sample_rate, subtype="PCM_16")
                rows.append((utt_id, f"spk{s}", layer, rel.as_posix()))
    kind = "reconstruction"
    return write_samples(
        out_dir / "samples.csv",
        [
            Sample(u, spk, model, layer, condition, kind, rel)
            for u, spk, layer, rel in rows
        ],
    )
