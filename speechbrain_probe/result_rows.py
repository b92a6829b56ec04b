"""The study's result rows and their files (CSV, one header line, written atomically).

The evaluation writes through this module; the report, the listening test and
the demo read through it. ``metrics.csv``: :class:`MetricRow` (long format:
one number per row with its 95% interval). ``asr_results.csv``:
:class:`AsrResult`. ``samples.csv``: :class:`Sample`. ``paired.csv`` (robust
minus baseline) and ``vocoder_comparison.csv`` (study B minus study A):
:class:`PairedRow`. ``claims.csv``: :class:`ClaimRow`, verdicts on
:data:`CLAIMS`. ``figure3_mels.npz``: the probe mels of Figure 3
(:func:`save_figure3_mels`). Numbers use the units of
:mod:`speechbrain_probe.vocabulary`; a file that lacks a column raises a
``ValueError`` naming the file and the missing columns.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from speechbrain_probe.atomic import atomic_write_bytes, write_csv
from speechbrain_probe.vocabulary import SAMPLE_KINDS, parse_number

__all__ = [
    "MetricRow",
    "AsrResult",
    "Sample",
    "PairedRow",
    "ClaimRow",
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
    "PAIRED_CSV",
    "COMPARISON_CSV",
    "CLAIMS_CSV",
    "CLAIMS",
    "CLAIM_TESTS",
    "VERDICTS",
    "NOT_APPLICABLE",
    "write_paired",
    "read_paired",
    "write_comparison",
    "read_comparison",
    "write_claims",
    "read_claims",
    "FIGURE3_MELS",
    "save_figure3_mels",
    "load_figure3_mels",
]


def _count(text) -> int | None:
    value = parse_number(text)
    return None if value is None else int(value)


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


@dataclass(frozen=True)
class PairedRow:
    """A metric of two cells, A and B, on the same items: both values, and the
    paired difference ``B - A`` with its 95% interval (a bootstrap that
    resamples speakers).

    ``paired.csv`` (:func:`write_paired`): A is an architecture's baseline
    model, B its robust model, in one layer and condition.
    ``vocoder_comparison.csv`` (:func:`write_comparison`): A and B are one
    cell of two studies that differ in the vocoder.

    Attributes
    ----------
    condition, layer, metric : str
        The cell (``layer`` also ``original`` or ``copy_synthesis``) and the
        metric (``eer_<verifier>``, a fraction; ``stoi``; ``pesq``).
    model_a, model_b : str
        The model of each cell (empty for a reference row).
    value_a, value_b : float or None
        The metric of each cell on the items both have.
    diff, ci_low, ci_high : float or None
        ``value_b - value_a`` and its interval.
    n_speakers, n_items : int or None
        Speakers, and trials (EER) or utterances (STOI/PESQ), behind it.
    arch : str
        The architecture (``paired.csv``).
    label_a, label_b : str
        The names of the two studies (``vocoder_comparison.csv``).
    """

    condition: str
    layer: str
    metric: str
    model_a: str
    model_b: str
    value_a: float | None
    value_b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    n_speakers: int | None
    n_items: int | None
    arch: str = ""
    label_a: str = ""
    label_b: str = ""

    @property
    def excludes_zero(self) -> bool:
        """The interval lies entirely above or below 0."""
        return self.ci_low is not None and (self.ci_low > 0 or self.ci_high < 0)


@dataclass(frozen=True)
class ClaimRow:
    """One row of ``claims.csv``: a claim of :data:`CLAIMS` tested on one cell.

    ``diff`` is ``metric`` of (``model_b``, ``layer_b``) minus that of
    (``model_a``, ``layer_a``) in ``condition``: for C1 one model's deepest
    minus its shallowest layer, for C2 and C3 robust minus baseline at one
    layer. ``verdict`` is one of :data:`VERDICTS`; a claim the study cannot
    test has one row with ``verdict`` :data:`NOT_APPLICABLE` and the reason
    in ``note``.
    """

    claim: str
    verdict: str
    arch: str = ""
    model_a: str = ""
    layer_a: str = ""
    model_b: str = ""
    layer_b: str = ""
    metric: str = ""
    condition: str = ""
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_speakers: int | None = None
    n_items: int | None = None
    note: str = ""


#: File names of the paired results in a study folder, and of a comparison.
PAIRED_CSV = "paired.csv"
CLAIMS_CSV = "claims.csv"
COMPARISON_CSV = "vocoder_comparison.csv"
#: Verdicts of a claim on one cell, and of a claim the study cannot test.
VERDICTS = ("holds", "reversed", "cannot tell")
NOT_APPLICABLE = "not applicable"
#: Bootstrap resamples (of the speakers) behind every interval of the paired files.
PAIRED_N_BOOT = 2000
#: Noisy conditions of claims C2 and C3: ``snr<N>`` with N at most this (dB).
NOISY_MAX_SNR_DB = 10.0
#: The paper's claims, as ``claims.csv`` tests them.
CLAIMS = {
    "C1": "Speaker EER grows with depth",
    "C2": "The noise-robust model keeps more speaker information in the middle "
    "layers under noise",
    "C3": "The STOI gap between robust and baseline opens from blstm1 upward",
}
#: How each claim is tested (the difference, and where it must lie).
CLAIM_TESTS = {
    "C1": "per model and verifier, clean input: EER(deepest probed layer) - "
    "EER(shallowest), same trials; holds if the interval is above 0",
    "C2": f"per architecture, verifier, input at {NOISY_MAX_SNR_DB:g} dB SNR or less "
    "and middle layer "
    "(all but the first and last): robust - baseline EER; holds if the interval "
    "is below 0",
    "C3": f"per architecture and input at {NOISY_MAX_SNR_DB:g} dB SNR or less, each "
    "layer from the "
    "first blstm layer upward (other models: the second half of the layers): "
    "robust - baseline STOI; holds if the interval is above 0",
}


def _columns(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name != "file")


METRICS_FIELDS = _columns(MetricRow)
ASR_FIELDS = _columns(AsrResult)
SAMPLES_FIELDS = _columns(Sample)


def _cell(value) -> str:
    return "" if value is None else str(value)


def _write_rows(path, cls, rows, formatters=None, columns=None) -> Path:
    """Rows of ``cls`` as a result CSV, atomically; ``columns`` maps each
    file column to its attribute (default: the fields, same names);
    ``formatters`` turn an attribute's values into text (default: ``str``,
    empty for None)."""
    formatters = formatters or {}
    columns = columns or {c: c for c in _columns(cls)}
    table = (
        {c: formatters.get(a, _cell)(getattr(r, a)) for c, a in columns.items()}
        for r in rows
    )
    return write_csv(path, table, list(columns))


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
    return _read_rows(path, MetricRow, "metrics file")


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
    return _read_rows(path, AsrResult, "ASR results file")


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


#: How the number attributes of the result rows are read (others stay text).
_PARSERS = {
    **dict.fromkeys(("value", "ci_low", "ci_high", "wer", "cer"), parse_number),
    **dict.fromkeys(("value_a", "value_b", "diff"), parse_number),
    **dict.fromkeys(("n", "n_speakers", "n_items"), _count),
}


def _read_rows(path, cls, what: str, columns=None) -> list:
    """Rows of a result CSV as ``cls`` objects (``columns`` as in
    :func:`_write_rows`), numbers parsed by :data:`_PARSERS`; a value that
    does not parse raises a ``ValueError`` naming the line."""
    columns = columns or {c: c for c in _columns(cls)}
    path, raw = _read(path, list(columns), what)
    rows = []
    for line, r in raw:
        try:
            rows.append(
                cls(**{a: _PARSERS.get(a, str)(r[c]) for c, a in columns.items()})
            )
        except ValueError as err:
            raise ValueError(f"{path}, line {line}: {err}") from None
    return rows


_DIFF_COLUMNS = ("diff", "ci_low", "ci_high", "n_speakers", "n_items")
#: ``paired.csv``'s columns -> :class:`PairedRow`'s attributes (A: baseline).
_PAIRED_COLUMNS = {
    "arch": "arch",
    "layer": "layer",
    "condition": "condition",
    "metric": "metric",
    "baseline_model": "model_a",
    "robust_model": "model_b",
    "baseline": "value_a",
    "robust": "value_b",
    **{c: c for c in _DIFF_COLUMNS},
}
_COMPARISON_COLUMNS = {
    c: c
    for c in ("label_a", "label_b", "condition", "model_a", "model_b", "layer")
    + ("metric", "value_a", "value_b", *_DIFF_COLUMNS)
}


def write_paired(path: str | os.PathLike, rows) -> Path:
    """Write :class:`PairedRow` rows as ``paired.csv`` (see :func:`read_paired`)."""
    return _write_rows(path, PairedRow, rows, columns=_PAIRED_COLUMNS)


def read_paired(path: str | os.PathLike) -> list[PairedRow]:
    """Read ``paired.csv``: robust (B) minus baseline (A) per cell and metric.

    Example
    -------
    >>> p = getfixture("tmp_path") / PAIRED_CSV
    >>> row = PairedRow("snr0", "blstm1", "stoi", "b", "r", 0.6, 0.7, 0.1, 0.05,
    ...                 0.15, 8, 32, arch="blstm")
    >>> write_paired(p, [row]).read_text().splitlines()[1]
    'blstm,blstm1,snr0,stoi,b,r,0.6,0.7,0.1,0.05,0.15,8,32'
    >>> read_paired(p) == [row], row.excludes_zero
    (True, True)
    """
    return _read_rows(path, PairedRow, "paired results", _PAIRED_COLUMNS)


def write_comparison(path: str | os.PathLike, rows) -> Path:
    """Write :class:`PairedRow` rows as ``vocoder_comparison.csv``."""
    return _write_rows(path, PairedRow, rows, columns=_COMPARISON_COLUMNS)


def read_comparison(path: str | os.PathLike) -> list[PairedRow]:
    """Read ``vocoder_comparison.csv``: study B minus study A per cell and metric.

    Example
    -------
    >>> p = getfixture("tmp_path") / COMPARISON_CSV
    >>> row = PairedRow("clean", "cnn1", "stoi", "m", "m", 0.8, 0.9, 0.1, None,
    ...                 None, 10, 40, label_a="gl", label_b="hifi")
    >>> write_comparison(p, [row]).read_text().splitlines()[1]
    'gl,hifi,clean,m,m,cnn1,stoi,0.8,0.9,0.1,,,10,40'
    >>> read_comparison(p) == [row]
    True
    """
    return _read_rows(path, PairedRow, "comparison", _COMPARISON_COLUMNS)


def write_claims(path: str | os.PathLike, rows) -> Path:
    """Write :class:`ClaimRow` rows as ``claims.csv``."""
    return _write_rows(path, ClaimRow, rows)


def read_claims(path: str | os.PathLike) -> list[ClaimRow]:
    """Read ``claims.csv``.

    Example
    -------
    >>> p = getfixture("tmp_path") / CLAIMS_CSV
    >>> rows = [ClaimRow("C1", "holds", "", "m", "l1", "m", "l5", "eer_ge2e",
    ...                  "clean", 0.3, 0.2, 0.4, 8, 96),
    ...         ClaimRow("C2", NOT_APPLICABLE, note="no pair")]
    >>> read_claims(write_claims(p, rows)) == rows
    True
    """
    return _read_rows(path, ClaimRow, "claims")


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
