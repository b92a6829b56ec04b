"""The study's vocabulary: models, layers, conditions, units.

A probed ASR model is an architecture x a training (:class:`ModelId`, named
e.g. ``vgg_lstm_baseline``); each architecture has its paper layers in order
(:data:`ARCH_LAYERS`); the input conditions are clean and four SNRs
(:data:`CONDITIONS`, :func:`condition_snr_db`); the reference rows of every
table are the input audio and its copy synthesis (:data:`REFERENCE_LAYERS`);
layers sort with :func:`layer_sort_key`. Any condition ``snr<N>`` (e.g.
``snr5``, ``snr-5``) is input mixed with noise at N dB
(:func:`condition_snr_db`, :func:`condition_label`).

Units: EER (``eer_*``) is a **fraction** in [0, 1] in files and in memory;
only display (:func:`display_scale`) shows it in percent. minDCF and STOI are
unitless, PESQ is on its MOS-like scale. WER and CER are in **percent**
(SpeechBrain's ``ErrorRateStats``). SNRs are in dB. A reader turns an empty,
``nan`` or infinite number into ``None`` (:func:`parse_number`: a missing cell,
never a NaN).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "ARCH_LAYERS",
    "ARCH_NAMES",
    "TRAININGS",
    "ModelId",
    "CONDITIONS",
    "PAPER_CONDITIONS",
    "CONDITION_NAMES",
    "NOISE_SNR_RANGES",
    "condition_snr_db",
    "condition_label",
    "condition_sort_key",
    "REFERENCE_LAYERS",
    "REFERENCE_NAMES",
    "SAMPLE_KINDS",
    "layer_sort_key",
    "ordered",
    "display_scale",
    "parse_number",
]

#: The probed layers of each architecture, in the paper's order (Table 2).
ARCH_LAYERS = {
    "vgg_lstm": ("cnn1", "cnn2", "cnn4", "blstm1", "blstm3", "blstm5"),
    "blstm": ("blstm1", "blstm2", "blstm3", "blstm4", "blstm5"),
}
#: Display names of the architectures.
ARCH_NAMES = {"vgg_lstm": "VGG-LSTM", "blstm": "pure-LSTM"}
#: Training regimes, in the order of the paper's Table 2 rows.
TRAININGS = ("robust", "baseline")


@dataclass(frozen=True)
class ModelId:
    """A probed ASR model: an architecture trained one way.

    Example
    -------
    >>> ModelId("vgg_lstm", "baseline").name
    'vgg_lstm_baseline'
    >>> ModelId.parse("blstm_robust")
    ModelId(arch='blstm', training='robust')
    >>> ModelId.parse("vgg_lstm")
    Traceback (most recent call last):
    ...
    ValueError: model id 'vgg_lstm' is not <arch>_<training> with training one of robust, baseline
    """

    arch: str
    training: str

    @property
    def name(self) -> str:
        """``<arch>_<training>``, the model's folder and row name."""
        return f"{self.arch}_{self.training}"

    @classmethod
    def parse(cls, name: str) -> ModelId:
        """The model id of a name ``<arch>_<training>``; ``ValueError`` otherwise."""
        arch, _, training = name.rpartition("_")
        if not arch or training not in TRAININGS:
            raise ValueError(
                f"model id {name!r} is not <arch>_<training> with training one of "
                f"{', '.join(TRAININGS)}"
            )
        return cls(arch, training)


#: Input conditions, clean first, then falling SNR.
CONDITIONS = ("clean", "snr20", "snr10", "snr5", "snr0")
#: The paper's Table 2 conditions (5 dB is this project's addition): the rows
#: a Table 2 layout shows even where a study has no value.
PAPER_CONDITIONS = ("clean", "snr20", "snr10", "snr0")
#: Display names of the conditions.
CONDITION_NAMES = {
    "clean": "clean",
    "snr20": "20 dB",
    "snr10": "10 dB",
    "snr5": "5 dB",
    "snr0": "0 dB",
}
_SNR_CONDITION = re.compile(r"snr(-?\d+(?:\.\d+)?)")


def condition_snr_db(condition: str) -> float | None:
    """SNR in dB of a condition: ``None`` for ``clean``, N for ``snr<N>``.

    N is any number (``snr20``, ``snr5``, ``snr-5``, ``snr2.5``); another
    name raises a ``ValueError``.

    Example
    -------
    >>> condition_snr_db("clean"), condition_snr_db("snr5"), condition_snr_db("snr-5")
    (None, 5.0, -5.0)
    >>> condition_snr_db("noisy")
    Traceback (most recent call last):
    ...
    ValueError: condition 'noisy' is not clean or snr<N> (N in dB, e.g. snr20, snr5, snr-5)
    """
    if condition == "clean":
        return None
    match = _SNR_CONDITION.fullmatch(str(condition))
    if match is None:
        raise ValueError(
            f"condition {condition!r} is not clean or snr<N> (N in dB, e.g. snr20, "
            "snr5, snr-5)"
        )
    return float(match.group(1))


def condition_label(condition: str) -> str:
    """How a condition is shown: ``clean``, or ``N dB`` for ``snr<N>``;
    any other name as it is.

    Example
    -------
    >>> [condition_label(c) for c in ("clean", "snr20", "snr5", "snr-5", "snr2.5", "x")]
    ['clean', '20 dB', '5 dB', '-5 dB', '2.5 dB', 'x']
    """
    if condition in CONDITION_NAMES:
        return CONDITION_NAMES[condition]
    match = _SNR_CONDITION.fullmatch(str(condition))
    return f"{match.group(1)} dB" if match else str(condition)


def condition_sort_key(condition: str) -> tuple:
    """Order conditions as the paper does: clean first, then falling SNR,
    then any other name (alphabetically).

    Example
    -------
    >>> sorted(["snr0", "snr-5", "snr5", "clean", "snr20", "x"], key=condition_sort_key)
    ['clean', 'snr20', 'snr5', 'snr0', 'snr-5', 'x']
    """
    if condition == "clean":
        return (0, 0.0, "")
    try:
        return (1, -condition_snr_db(condition), "")
    except ValueError:
        return (2, 0.0, str(condition))


#: SNR ranges in dB (low, high) of the noise mixed into training audio, by
#: noise category (the paper's, Kaldi x-vector style): the noise-robust ASR
#: training and the probes' noisy training both draw from them.
NOISE_SNR_RANGES = {"noise": (0.0, 15.0), "music": (5.0, 15.0), "speech": (13.0, 20.0)}
#: Reference rows of every table: the input audio itself (under noise, the
#: mixture the ASR heard) and Griffin-Lim copy synthesis of its true mel.
REFERENCE_LAYERS = ("original", "copy_synthesis")
#: Display names of the reference rows.
REFERENCE_NAMES = {"original": "original", "copy_synthesis": "copy synthesis"}
#: Kinds of audio listed in ``samples.csv``.
SAMPLE_KINDS = ("original", "noise", "mixture", "copy_synthesis", "reconstruction")

_LAYER = re.compile(r"([A-Za-z_]*?)(\d+)")
_FAMILY_RANK = {"cnn": 1, "conv": 1, "blstm": 2, "lstm": 2}


def layer_sort_key(layer: str) -> tuple:
    """Order layers as the paper does: references, CNN layers, then (B)LSTM
    layers, then others; numbers compare as numbers.

    Example
    -------
    >>> sorted(["blstm3", "cnn2", "blstm10", "copy_synthesis", "enc1", "original",
    ...         "cnn1"], key=layer_sort_key)
    ['original', 'copy_synthesis', 'cnn1', 'cnn2', 'blstm3', 'blstm10', 'enc1']
    """
    if layer in REFERENCE_LAYERS:
        return (0, REFERENCE_LAYERS.index(layer), "", 0)
    match = _LAYER.fullmatch(layer)
    family = match.group(1) if match else layer
    number = int(match.group(2)) if match else -1
    return (_FAMILY_RANK.get(family.lower(), 3), 0, family, number)


def ordered(values, preferred) -> list:
    """Distinct ``values`` with those in ``preferred`` first (in its order).

    Others follow sorted, so that nothing found in the data is dropped.

    Example
    -------
    >>> ordered(["snr0", "clean", "snr5", "clean"], CONDITIONS)
    ['clean', 'snr5', 'snr0']
    >>> ordered(["b", "snr0", "a"], CONDITIONS)
    ['snr0', 'a', 'b']
    >>> ordered(["snr0", "x"], ("x", *CONDITIONS, "x"))  # a repeat counts once
    ['x', 'snr0']
    """
    present = set(values)
    first = [v for v in dict.fromkeys(preferred) if v in present]
    return first + sorted(present - set(first))


# --- units --------------------------------------------------------------------


def display_scale(metric: str) -> float:
    """Factor from the stored value of ``metric`` to its display: 100 for an
    EER (a fraction shown in percent), else 1 (WER/CER are stored in percent).

    Example
    -------
    >>> display_scale("eer_ge2e"), display_scale("stoi"), display_scale("wer")
    (100.0, 1.0, 1.0)
    """
    return 100.0 if metric.startswith("eer") else 1.0


def parse_number(text) -> float | None:
    """Parse a CSV number; empty, ``nan`` and infinite values give ``None``.

    Example
    -------
    >>> parse_number("0.25"), parse_number(""), parse_number("nan"), parse_number("inf")
    (0.25, None, None, None)
    """
    if text is None:
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        text = str(text).strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None
    return value if math.isfinite(value) else None
