"""Exact-SNR mixing and an offline noise bank in MUSAN's three categories.

:func:`mix_at_snr` is the one mixing rule of the project (noisy test sets and
noise-robust ASR training both use it): the noise is scaled so that
``10 log10(sum(clean**2) / sum(noise**2))`` equals the requested SNR exactly,
and the clean signal is left untouched.

The generators build MUSAN-like noises without any download:

- ``noise``: coloured noise (white, pink, brown, blue) and machine-like sounds
  (mains hum, engine rumble, fan, ticking, alarm beeps);
- ``music``: synthesised multi-instrument pieces (bass, chords, melody with
  several timbres, drum patterns) at random tempo and key;
- ``speech``: babble of 3-7 overlapping utterances (the corpus builder passes
  utterances of speakers outside the test set).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "mix_at_snr",
    "fit_length",
    "measure_snr",
    "coloured_noise",
    "machine_noise",
    "make_noise",
    "make_music",
    "make_babble",
    "NOISE_CATEGORIES",
    "NOISE_FIELDS",
]

#: The three categories of MUSAN.
NOISE_CATEGORIES = ("noise", "music", "speech")

#: Columns of a noise manifest.
NOISE_FIELDS = ("ID", "duration", "wav", "category")

_EPS = 1e-12


def _energy(x, axis=-1):
    if hasattr(x, "detach"):  # torch tensor
        return (x.float() ** 2).sum(dim=axis, keepdim=True)
    return (np.asarray(x, dtype=np.float64) ** 2).sum(axis=axis, keepdims=True)


def fit_length(noise, length: int, rng: np.random.Generator | None = None, offset=None):
    """Crop or loop ``noise`` (last axis) to ``length`` samples.

    A random start is drawn from ``rng`` unless ``offset`` is given (0 when
    neither is given). Works on NumPy arrays and torch tensors.

    Example
    -------
    >>> fit_length(np.arange(5.0), 7).tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 0.0, 1.0]
    >>> fit_length(np.arange(5.0), 2, offset=3).tolist()
    [3.0, 4.0]
    """
    n = noise.shape[-1]
    if n == 0:
        raise ValueError("the noise signal is empty; check the noise file")
    if offset is None:
        offset = int(rng.integers(n)) if rng is not None else 0
    idx = (np.arange(length) + int(offset)) % n
    if hasattr(noise, "detach"):
        import torch

        return noise[..., torch.as_tensor(idx, device=noise.device)]
    return noise[..., idx]


def mix_at_snr(clean, noise, snr_db):
    """Add ``noise`` to ``clean`` at exactly ``snr_db`` dB SNR.

    The SNR is measured over the whole signal,
    ``10 log10(sum(clean**2) / sum(scaled_noise**2))``. The clean signal is
    not scaled; only the noise is. Inputs may be NumPy arrays or torch tensors,
    1-D ``[time]`` or batched ``[batch, time]``; ``snr_db`` a number or one
    value per row. ``noise`` must already have ``clean``'s shape (see
    :func:`fit_length`). The result may exceed [-1, 1]: rescale mixture and
    reference together when you store it (as :mod:`.noisy` does).

    Arguments
    ---------
    clean : array or tensor
        The speech.
    noise : array or tensor
        The noise, same shape as ``clean``.
    snr_db : float or sequence of float
        Target SNR in dB.

    Returns
    -------
    array or tensor
        ``clean + g * noise`` with ``g`` chosen for the exact SNR.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> clean, noise = rng.standard_normal(16000), rng.standard_normal(16000)
    >>> mix = mix_at_snr(clean, noise, 10.0)
    >>> round(float(measure_snr(clean, mix)), 6)
    10.0
    >>> import torch
    >>> c, n = torch.randn(2, 800), torch.randn(2, 800)
    >>> m = mix_at_snr(c, n, torch.tensor([0.0, 5.0]))
    >>> [round(float(v), 3) for v in measure_snr(c, m)]
    [0.0, 5.0]
    """
    if tuple(clean.shape) != tuple(noise.shape):
        raise ValueError(
            f"clean {tuple(clean.shape)} and noise {tuple(noise.shape)} differ in "
            "shape; crop or loop the noise first with fit_length(noise, length)"
        )
    e_clean, e_noise = _energy(clean), _energy(noise)
    if hasattr(clean, "detach"):
        import torch

        snr = torch.as_tensor(snr_db, dtype=torch.float32, device=clean.device)
        if snr.dim() == 1:
            snr = snr.unsqueeze(-1)
        gain = torch.sqrt(e_clean / (e_noise.clamp(min=_EPS) * 10 ** (snr / 10)))
        return clean + (gain * noise.float()).to(clean.dtype)
    snr = np.asarray(snr_db, dtype=np.float64)
    if snr.ndim == 1:
        snr = snr[:, None]
    if np.any(e_noise <= _EPS):
        raise ValueError("the noise is silent (zero energy); it cannot set an SNR")
    gain = np.sqrt(e_clean / (e_noise * 10 ** (snr / 10)))
    return (clean + gain * noise).astype(np.result_type(clean, np.float32))


def measure_snr(clean, mixture):
    """SNR in dB of ``mixture`` against its exact clean reference.

    Example
    -------
    >>> x = np.ones(100)
    >>> round(float(measure_snr(x, x + 0.1)), 3)
    20.0
    """
    if hasattr(clean, "detach"):
        import torch

        num = (clean.double() ** 2).sum(-1)
        den = ((mixture.double() - clean.double()) ** 2).sum(-1)
        return 10 * torch.log10(num / den)
    clean = np.asarray(clean, dtype=np.float64)
    mixture = np.asarray(mixture, dtype=np.float64)
    num = (clean**2).sum(-1)
    den = ((mixture - clean) ** 2).sum(-1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(num / den)


def _normalize(x: np.ndarray, peak: float = 0.5) -> np.ndarray:
    m = float(np.max(np.abs(x)))
    return (x * (peak / m)).astype(np.float32) if m > 0 else x.astype(np.float32)


def coloured_noise(
    num_samples: int, exponent: float, rng: np.random.Generator
) -> np.ndarray:
    """Noise with power spectrum ``~ 1 / f**exponent`` (0 white, 1 pink,
    2 brown, -1 blue), peak-normalised to 0.5.

    Example
    -------
    >>> x = coloured_noise(16000, 1.0, np.random.default_rng(0))
    >>> x.shape, float(np.abs(x).max())
    ((16000,), 0.5)
    """
    spec = np.fft.rfft(rng.standard_normal(num_samples))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (-exponent / 2)
    return _normalize(np.fft.irfft(spec, n=num_samples))


def _bandpass(x: np.ndarray, lo: float, hi: float, sr: int) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sr)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, n=len(x))


def machine_noise(
    num_samples: int, kind: str, rng: np.random.Generator, sr: int = 16000
) -> np.ndarray:
    """A machine-like noise: ``hum``, ``engine``, ``fan``, ``ticking`` or ``beeps``.

    Example
    -------
    >>> machine_noise(8000, "engine", np.random.default_rng(0)).shape
    (8000,)
    """
    t = np.arange(num_samples) / sr
    if kind == "hum":
        f0 = rng.choice([50.0, 60.0]) * rng.uniform(0.98, 1.02)
        x = sum(
            rng.uniform(0.2, 1)
            / k
            * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3))
            for k in range(1, 12)
        )
        x = x + 0.05 * rng.standard_normal(num_samples)
    elif kind == "engine":
        rpm_hz = rng.uniform(15, 60) * (
            1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t)
        )
        phase = 2 * np.pi * np.cumsum(rpm_hz) / sr
        rumble = _bandpass(
            rng.standard_normal(num_samples), 20, rng.uniform(300, 1200), sr
        )
        x = (1 + 0.8 * np.sin(phase)) * rumble / (np.std(rumble) + _EPS)
        x = x + 0.3 * np.sin(2 * phase)
    elif kind == "fan":
        lo = rng.uniform(100, 600)
        x = _bandpass(
            rng.standard_normal(num_samples), lo, lo + rng.uniform(500, 4000), sr
        )
        x = x / (np.std(x) + _EPS) + 0.3 * np.sin(2 * np.pi * rng.uniform(80, 400) * t)
    elif kind == "ticking":
        x = 0.02 * rng.standard_normal(num_samples)
        period = int(sr * rng.uniform(0.08, 0.6))
        click = np.exp(-np.arange(400) / rng.uniform(20, 120)) * rng.standard_normal(
            400
        )
        for start in range(int(rng.integers(period)), num_samples - 400, period):
            x[start : start + 400] += click
    elif kind == "beeps":
        freq = rng.uniform(500, 3000)
        gate = (np.sin(2 * np.pi * rng.uniform(0.5, 4) * t) > 0).astype(float)
        x = gate * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(
            num_samples
        )
    else:
        raise ValueError(
            f"unknown machine noise {kind!r}; use hum, engine, fan, ticking or beeps"
        )
    return _normalize(np.asarray(x, dtype=np.float64))


def make_noise(
    num_samples: int, rng: np.random.Generator, sr: int = 16000
) -> tuple[np.ndarray, str]:
    """One random ``noise``-category signal and a short description of it.

    Example
    -------
    >>> x, what = make_noise(16000, np.random.default_rng(2))
    >>> x.shape, isinstance(what, str)
    ((16000,), True)
    """
    kinds = "white pink brown blue hum engine fan ticking beeps".split()
    kind = kinds[int(rng.integers(len(kinds)))]
    exps = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0}
    if kind in exps:
        x = coloured_noise(num_samples, exps[kind] + rng.uniform(-0.2, 0.2), rng)
    else:
        x = machine_noise(num_samples, kind, rng, sr)
    # a second, quieter layer makes the background less stationary
    if rng.random() < 0.5:
        x = _normalize(
            x
            + rng.uniform(0.1, 0.4)
            * coloured_noise(num_samples, rng.uniform(0, 2), rng)
        )
    return x, kind


def _tone(freq, dur, sr, timbre, rng):
    t = np.arange(int(dur * sr)) / sr
    if timbre == "flute":
        harmonics = [1.0, 0.1, 0.05]
    elif timbre == "organ":
        harmonics = [1.0, 0.0, 0.33, 0.0, 0.2, 0.0, 0.14]
    elif timbre == "string":
        harmonics = [1.0 / k for k in range(1, 9)]
    else:  # "bell"
        harmonics = [1.0, 0.0, 0.6, 0.0, 0.0, 0.4]
    x = sum(
        a * np.sin(2 * np.pi * freq * k * t) for k, a in enumerate(harmonics, 1) if a
    )
    if timbre in ("string", "bell"):
        env = np.exp(-t * rng.uniform(2, 6))
    else:
        env = np.minimum(1, t / 0.03) * np.minimum(1, (t[-1] - t + 1e-3) / 0.05)
    return x * env


def make_music(
    num_samples: int, rng: np.random.Generator, sr: int = 16000
) -> tuple[np.ndarray, str]:
    """Synthesised multi-instrument music: bass, chords, a melody, drums.

    Example
    -------
    >>> x, what = make_music(16000, np.random.default_rng(0))
    >>> x.shape, float(np.abs(x).max()) <= 0.5 + 1e-6
    ((16000,), True)
    """
    bpm = rng.uniform(70, 160)
    beat = 60.0 / bpm
    root = 110.0 * 2 ** (int(rng.integers(0, 12)) / 12)
    minor = rng.random() < 0.5
    scale = [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]
    progression = [[0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 4, 4], [5, 3, 0, 4]][
        int(rng.integers(4))
    ]
    timbres = ["flute", "organ", "string", "bell"]
    chord_t, melody_t = rng.choice(timbres, size=2, replace=True)
    out = np.zeros(num_samples + sr)
    bar = 4 * beat
    drums = rng.random() < 0.8
    n_bars = int(num_samples / sr / bar) + 1

    def note(deg, octave=0):
        semis = scale[deg % 7] + 12 * (deg // 7 + octave)
        return root * 2 ** (semis / 12)

    def add(sig, start):
        i = int(start * sr)
        j = min(len(out), i + len(sig))
        if i < len(out):
            out[i:j] += sig[: j - i]

    for b in range(n_bars):
        deg = progression[b % len(progression)]
        t0 = b * bar
        add(0.5 * _tone(note(deg, -1), bar * 0.95, sr, "string", rng), t0)
        chord = sum(
            _tone(note(deg + k, 1), bar * 0.9, sr, chord_t, rng) for k in (0, 2, 4)
        )
        add(0.2 * chord, t0)
        step = beat / rng.choice([1, 2])
        for k in range(int(bar / step)):
            if rng.random() < 0.75:
                add(
                    0.35
                    * _tone(
                        note(deg + int(rng.integers(-2, 6)), 2),
                        step * 0.9,
                        sr,
                        melody_t,
                        rng,
                    ),
                    t0 + k * step,
                )
        if drums:
            for k in range(4):
                tk = np.arange(int(0.15 * sr)) / sr
                if k % 2 == 0:
                    kick = np.sin(
                        2 * np.pi * (60 + 90 * np.exp(-tk * 30)) * tk
                    ) * np.exp(-tk * 20)
                    add(0.8 * kick, t0 + k * beat)
                else:
                    snare = rng.standard_normal(len(tk)) * np.exp(-tk * 25)
                    add(0.4 * snare, t0 + k * beat)
                hat = _bandpass(
                    rng.standard_normal(int(0.05 * sr)), 6000, 8000, sr
                ) * np.exp(-np.arange(int(0.05 * sr)) / 200)
                add(0.3 * hat, t0 + (k + 0.5) * beat)
    desc = f"{'minor' if minor else 'major'} {bpm:.0f}bpm {chord_t}+{melody_t}{'+drums' if drums else ''}"
    return _normalize(out[:num_samples]), desc


def make_babble(
    utterances: list[np.ndarray], num_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Overlap several utterances (each at equal RMS, looped to fill
    ``num_samples``, at a random offset) into babble, peak-normalised to 0.5.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> b = make_babble([rng.standard_normal(4000) for _ in range(3)], 8000, rng)
    >>> b.shape
    (8000,)
    """
    if len(utterances) < 2:
        raise ValueError("babble needs at least two utterances")
    out = np.zeros(num_samples)
    for utt in utterances:
        utt = np.asarray(utt, dtype=np.float64)
        utt = utt / (np.sqrt(np.mean(utt**2)) + _EPS)
        # a short pause between repetitions, like a talker taking a breath
        utt = np.concatenate([utt, np.zeros(int(rng.integers(800, 8000)))])
        out += fit_length(utt, num_samples, rng)
    return _normalize(out)
