"""Offline speech synthesis: a ctypes driver of the ``libespeak-ng`` that the
``espeakng-loader`` wheel ships (library and voice data, no system install).

eSpeak keeps one global synthesiser per process, so :class:`ESpeak` is a
process-wide singleton (:func:`get_espeak`). It synthesises synchronously,
collecting 16-bit samples at 22050 Hz through the synth callback, and returns
float32 audio resampled to the requested rate (16 kHz by default).
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from ..extras import require_extra

__all__ = ["Voice", "ESpeak", "get_espeak", "synthesize", "to_rate"]

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@dataclass(frozen=True)
class Voice:
    """One eSpeak voice setting: language/dialect, voice variant and prosody.

    Arguments
    ---------
    language : str
        eSpeak language name, e.g. ``en-us``, ``en``, ``en-gb-scotland``.
    variant : str
        Voice variant from ``espeak-ng-data/voices/!v`` (e.g. ``f3``, ``m2``).
    rate : int
        Speaking rate in words per minute (eSpeak: 80-450).
    pitch, pitch_range : int
        Base pitch and pitch range, 0-100 (eSpeak default 50).
    volume : int
        Amplitude, 0-200 (100 is eSpeak's default; lower avoids clipping).

    Example
    -------
    >>> Voice("en-us", "f3", rate=120).name
    'en-us+f3'
    """

    language: str = "en-us"
    variant: str = ""
    rate: int = 120
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 70

    @property
    def name(self) -> str:
        """The name ``espeak_SetVoiceByName`` takes."""
        return f"{self.language}+{self.variant}" if self.variant else self.language


class ESpeak:
    """The eSpeak-NG synthesiser of this process (use :func:`get_espeak`).

    Raises ``RuntimeError`` with the fix when the library or its data cannot be
    loaded.
    """

    def __init__(self):
        require_extra("corpus")  # espeakng-loader ships libespeak-ng and its data
        import espeakng_loader

        lib_path = espeakng_loader.get_library_path()
        data_path = espeakng_loader.get_data_path()
        try:
            self._lib = ctypes.CDLL(lib_path)
        except OSError as err:  # pragma: no cover
            raise RuntimeError(
                f"cannot load {lib_path}: {err}; reinstall espeakng-loader"
            ) from err
        lib = self._lib
        lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0
        )
        if rate <= 0:  # pragma: no cover
            raise RuntimeError(
                f"espeak_Initialize failed with data at {data_path}; reinstall "
                "espeakng-loader"
            )
        self.native_rate = int(rate)
        self.seed(0)
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference alive
        lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    def seed(self, value: int) -> None:
        """Seed eSpeak's random generators (its own and libc's, which it also
        uses; ``espeak_Initialize`` seeds them from the clock).

        eSpeak also keeps a pitch-flutter phase from utterance to utterance, so
        identical output needs the same sequence of utterances in a fresh
        process (see :func:`speechbrain_probe.data.synthetic.build_corpus`).
        """
        if hasattr(self._lib, "espeak_ng_SetRandSeed"):
            self._lib.espeak_ng_SetRandSeed(ctypes.c_long(value))
        try:
            ctypes.CDLL(None).srand(ctypes.c_uint(value))
        except (OSError, AttributeError):  # pragma: no cover - non-POSIX libc
            pass

    def _collect(self, wav, num_samples, _events) -> int:
        if num_samples > 0:
            self._chunks.append(
                np.ctypeslib.as_array(wav, shape=(num_samples,)).astype(np.int16)
            )
        return 0

    def synthesize(
        self, text: str, voice: Voice, sample_rate: int = 16000
    ) -> np.ndarray:
        """Speak ``text`` with ``voice``; float32 mono in [-1, 1] at ``sample_rate``.

        Raises ``ValueError`` naming the voice when eSpeak does not know it, and
        ``RuntimeError`` when eSpeak returns no audio.

        Example
        -------
        >>> wav = get_espeak().synthesize("hello world", Voice("en-us", "m3"))
        >>> wav.dtype.name, 0.3 < len(wav) / 16000 < 3
        ('float32', True)
        """
        return to_rate(self.speak(text, voice), self.native_rate, sample_rate)

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        """Speak ``text`` with ``voice`` at eSpeak's own rate
        (:attr:`native_rate`), as int16 samples. :func:`to_rate` makes the
        float audio of :meth:`synthesize` from it: the two steps apart let
        a caller resample one utterance while eSpeak speaks the next.

        Example
        -------
        >>> es = get_espeak()
        >>> native = es.speak("hello world", Voice("en-us", "m3"))
        >>> native.dtype.name, 0.3 < len(native) / es.native_rate < 3
        ('int16', True)
        """
        if not text.strip():
            raise ValueError("nothing to say: the text is empty")
        data = text.encode("utf-8")
        with self._lock:
            lib = self._lib
            if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise ValueError(
                    f"eSpeak has no voice {voice.name!r}; languages are files under "
                    "espeak-ng-data/lang, variants under espeak-ng-data/voices/!v"
                )
            # the voice first, then its parameters (SetVoiceByName resets them)
            lib.espeak_SetParameter(_PARAM_RATE, int(voice.rate), 0)
            lib.espeak_SetParameter(_PARAM_VOLUME, int(voice.volume), 0)
            lib.espeak_SetParameter(_PARAM_PITCH, int(voice.pitch), 0)
            lib.espeak_SetParameter(_PARAM_RANGE, int(voice.pitch_range), 0)
            self._chunks = []
            lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            raise RuntimeError(f"eSpeak produced no audio for {text!r} ({voice.name})")
        return np.concatenate(chunks)


def to_rate(native: np.ndarray, native_rate: int, sample_rate: int) -> np.ndarray:
    """eSpeak's int16 samples as float32 in [-1, 1] at ``sample_rate``
    (polyphase resampling).

    Example
    -------
    >>> to_rate(np.full(441, 16384, np.int16), 22050, 16000).shape
    (320,)
    """
    wav = native.astype(np.float32) / 32768.0
    if sample_rate != native_rate:
        g = np.gcd(int(sample_rate), native_rate)
        wav = resample_poly(wav, sample_rate // g, native_rate // g)
    return wav.astype(np.float32)


_INSTANCE: ESpeak | None = None


def get_espeak() -> ESpeak:
    """The process-wide :class:`ESpeak` (created on first use).

    Example
    -------
    >>> get_espeak() is get_espeak()
    True
    """
    global _INSTANCE
    if _INSTANCE is None:
        _INSTANCE = ESpeak()
    return _INSTANCE


def synthesize(text: str, voice: Voice, sample_rate: int = 16000) -> np.ndarray:
    """Shortcut for ``get_espeak().synthesize(text, voice, sample_rate)``.

    Example
    -------
    >>> synthesize("good morning", Voice("en", "f2", rate=100)).ndim
    1
    """
    return get_espeak().synthesize(text, voice, sample_rate)
