"""Audio file helpers of the data modules: atomic writes and checked reads.

Reads use ``soundfile`` (never ``torchaudio.load``). :func:`read_checked`
raises :class:`AudioError` naming the file and the fix when a file is
unreadable, empty, not mono or not at the expected rate. Corpus preparation
skips the unreadable or empty files of a corpus (:func:`usable_duration`, then
one warning listing them all, :func:`warn_skipped`) but stops at one in the
wrong format: the whole corpus then needs converting.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbrain_probe.atomic import atomic_output

__all__ = [
    "AudioError",
    "AudioFormatError",
    "write_wav",
    "read_checked",
    "check_audio_info",
    "usable_duration",
    "warn_skipped",
]


class AudioError(ValueError):
    """A bad audio file (unreadable, empty); the message names the file and the fix."""


class AudioFormatError(AudioError):
    """Readable audio in the wrong format (not mono, wrong sample rate)."""


def write_wav(
    path: str | os.PathLike, wav: np.ndarray, sample_rate: int = 16000
) -> Path:
    """Write mono 16-bit PCM ``path`` through a temporary file and a rename,
    so that a killed run never leaves a truncated file behind.

    Example
    -------
    >>> p = write_wav(getfixture("tmp_path") / "a.wav", np.zeros(160, dtype="float32"))
    >>> sf.info(str(p)).frames
    160
    """
    path = Path(path)
    with atomic_output(path, suffix=".wav") as tmp:
        sf.write(
            tmp, np.clip(wav, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV"
        )
    return path


def check_audio_info(path: str | os.PathLike, sample_rate: int = 16000) -> float:
    """Check ``path`` without decoding it; return its duration in seconds.

    Raises :class:`AudioError` when the file is unreadable, empty, not mono or
    not at ``sample_rate``.

    Example
    -------
    >>> p = write_wav(getfixture("tmp_path") / "b.wav", np.zeros(8000))
    >>> check_audio_info(p)
    0.5
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises several types
        raise AudioError(
            f"cannot read audio file {path}: {err}; replace or re-extract the file"
        ) from err
    if info.frames == 0:
        raise AudioError(f"audio file {path} is empty (0 samples); replace the file")
    if info.channels != 1:
        raise AudioFormatError(
            f"audio file {path} has {info.channels} channels; the project needs mono: "
            f"convert it, e.g. `sox {path.name} -c 1 out.wav` or `ffmpeg -i IN -ac 1 OUT`"
        )
    if info.samplerate != sample_rate:
        raise AudioFormatError(
            f"audio file {path} is at {info.samplerate} Hz; the project needs "
            f"{sample_rate} Hz: resample it, e.g. `sox IN -r {sample_rate} OUT` or "
            f"`ffmpeg -i IN -ar {sample_rate} OUT`"
        )
    return info.frames / info.samplerate


def read_checked(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray:
    """Read mono float32 audio at ``sample_rate`` or raise :class:`AudioError`.

    Example
    -------
    >>> p = write_wav(getfixture("tmp_path") / "c.wav", np.full(100, 0.5))
    >>> float(read_checked(p)[0])
    0.5
    """
    check_audio_info(path, sample_rate)
    try:
        wav, _ = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as err:
        raise AudioError(
            f"cannot decode audio file {path}: {err}; replace or re-extract the file"
        ) from err
    return wav


def usable_duration(path, sample_rate: int, skipped: list[str]) -> float | None:
    """The duration of ``path``, or None for an unreadable or empty file (its
    reason then goes to ``skipped``); audio in the wrong format raises
    :class:`AudioFormatError` (fix the corpus, do not skip it).

    Example
    -------
    >>> tmp, skipped = getfixture("tmp_path"), []
    >>> usable_duration(write_wav(tmp / "ok.wav", np.zeros(800)), 16000, skipped)
    0.05
    >>> _ = (tmp / "bad.wav").write_bytes(b"not audio")
    >>> usable_duration(tmp / "bad.wav", 16000, skipped), len(skipped)
    (None, 1)
    >>> skipped[0].startswith(f"{tmp / 'bad.wav'} (cannot read audio file")
    True
    """
    try:
        return check_audio_info(path, sample_rate)
    except AudioFormatError:
        raise
    except AudioError as err:
        skipped.append(f"{path} ({str(err).split(';')[0]})")
        return None


def warn_skipped(what: str, skipped: list[str]) -> None:
    """One warning listing every skipped file (none without any).

    Example
    -------
    >>> import pytest
    >>> with pytest.warns(UserWarning, match="MUSAN: skipped 1 file.*\\n  a.wav"):
    ...     warn_skipped("MUSAN: skipped {} file(s)", ["a.wav (empty)"])
    """
    if skipped:
        message = what.format(len(skipped)) + ":\n  " + "\n  ".join(skipped)
        warnings.warn(message, stacklevel=3)
