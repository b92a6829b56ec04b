"""Read and check the evaluation's result files (formats of TEAM.md).

Three CSV files make up the results of an evaluation run:

``metrics.csv``
    ``model,arch,training,layer,condition,metric,value,ci_low,ci_high,n``
    (long format: one number per row, with its 95% interval when known).
``asr_results.csv``
    ``model,arch,training,condition,wer,cer,n``.
``samples.csv``
    ``utt_id,spk_id,model,layer,condition,kind,path``; ``path`` is relative
    to the folder of ``samples.csv``.

Readers return lists of dicts with numbers parsed: an empty, ``nan`` or
infinite number becomes ``None`` (a missing cell), never a NaN. A file that
lacks a column raises a ``ValueError`` naming the file, the missing columns
and the expected header.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

__all__ = [
    "ARCH_LAYERS",
    "ARCH_NAMES",
    "CONDITIONS",
    "CONDITION_NAMES",
    "TRAININGS",
    "REFERENCE_LAYERS",
    "METRICS_FIELDS",
    "ASR_FIELDS",
    "SAMPLES_FIELDS",
    "SAMPLE_KINDS",
    "parse_number",
    "read_metrics",
    "read_asr_results",
    "read_samples",
    "ordered",
]

#: The probed layers of each architecture, in the paper's order (Table 2).
ARCH_LAYERS = {
    "vgg_lstm": ("cnn1", "cnn2", "cnn4", "blstm1", "blstm3", "blstm5"),
    "blstm": ("blstm1", "blstm2", "blstm3", "blstm4", "blstm5"),
}
#: Display names of the architectures.
ARCH_NAMES = {"vgg_lstm": "VGG-LSTM", "blstm": "pure-LSTM"}
#: Input conditions, clean first, then falling SNR.
CONDITIONS = ("clean", "snr20", "snr10", "snr0")
#: Display names of the conditions.
CONDITION_NAMES = {"clean": "clean", "snr20": "20 dB", "snr10": "10 dB", "snr0": "0 dB"}
#: Training regimes in the order of the paper's Table 2 rows.
TRAININGS = ("robust", "baseline")
#: Reference "layers": the input audio itself and Griffin-Lim of its true mel.
REFERENCE_LAYERS = ("original", "copy_synthesis")
#: Kinds of audio listed in ``samples.csv``.
SAMPLE_KINDS = ("original", "noise", "mixture", "copy_synthesis", "reconstruction")

METRICS_FIELDS = (
    "model",
    "arch",
    "training",
    "layer",
    "condition",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
)
ASR_FIELDS = ("model", "arch", "training", "condition", "wer", "cer", "n")
SAMPLES_FIELDS = ("utt_id", "spk_id", "model", "layer", "condition", "kind", "path")


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


def _read_csv(path, fields, what):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found: {path}; run the evaluation first (it writes "
            f"{path.name} with columns {','.join(fields)})"
        )
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [f for f in fields if f not in header]
        if missing:
            raise ValueError(
                f"{path} lacks column(s) {missing}; expected header "
                f"{','.join(fields)} (found {','.join(header) or 'nothing'})"
            )
        rows = []
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            rows.append((line, row))
    return path, rows


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Read ``metrics.csv``; numbers parsed, missing ones ``None``.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "metrics.csv").write_text(
    ...     "model,arch,training,layer,condition,metric,value,ci_low,ci_high,n\\n"
    ...     "m,vgg_lstm,baseline,cnn1,clean,stoi,0.9,0.85,0.95,32\\n"
    ...     "m,vgg_lstm,baseline,cnn2,clean,stoi,nan,,,0\\n")
    >>> rows = read_metrics(tmp / "metrics.csv")
    >>> rows[0]["value"], rows[0]["n"], rows[1]["value"]
    (0.9, 32, None)
    """
    path, raw = _read_csv(path, METRICS_FIELDS, "metrics file")
    rows = []
    for line, row in raw:
        try:
            for key in ("value", "ci_low", "ci_high"):
                row[key] = parse_number(row[key])
            n = parse_number(row["n"])
            row["n"] = None if n is None else int(n)
        except ValueError as err:
            raise ValueError(f"{path}, line {line}: {err}") from None
        rows.append(row)
    return rows


def read_asr_results(path: str | os.PathLike) -> list[dict]:
    """Read ``asr_results.csv``; ``wer``/``cer`` parsed, missing ones ``None``.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "asr_results.csv").write_text(
    ...     "model,arch,training,condition,wer,cer,n\\n"
    ...     "m,blstm,robust,clean,25.5,10.25,100\\n")
    >>> row = read_asr_results(tmp / "asr_results.csv")[0]
    >>> row["wer"], row["cer"], row["n"]
    (25.5, 10.25, 100)
    """
    path, raw = _read_csv(path, ASR_FIELDS, "ASR results file")
    rows = []
    for line, row in raw:
        try:
            row["wer"] = parse_number(row["wer"])
            row["cer"] = parse_number(row["cer"])
            n = parse_number(row["n"])
            row["n"] = None if n is None else int(n)
        except ValueError as err:
            raise ValueError(f"{path}, line {line}: {err}") from None
        rows.append(row)
    return rows


def read_samples(path: str | os.PathLike) -> list[dict]:
    """Read ``samples.csv``; adds ``file``, the absolute path of each wav.

    Rows of an unknown ``kind`` raise a ``ValueError`` naming the line.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "samples.csv").write_text(
    ...     "utt_id,spk_id,model,layer,condition,kind,path\\n"
    ...     "u1,s1,,,clean,original,audio/u1.wav\\n")
    >>> row = read_samples(tmp / "samples.csv")[0]
    >>> row["kind"], row["file"] == (tmp / "audio" / "u1.wav").resolve()
    ('original', True)
    """
    path, raw = _read_csv(path, SAMPLES_FIELDS, "audio index")
    base = path.resolve().parent
    rows = []
    for line, row in raw:
        if row["kind"] not in SAMPLE_KINDS:
            raise ValueError(
                f"{path}, line {line}: unknown kind {row['kind']!r}; "
                f"expected one of {', '.join(SAMPLE_KINDS)}"
            )
        if not row["path"]:
            raise ValueError(f"{path}, line {line}: empty path")
        row["file"] = (base / row["path"]).resolve()
        rows.append(row)
    return rows


def ordered(values, preferred) -> list:
    """Distinct ``values`` with those in ``preferred`` first (in its order).

    Others follow sorted, so that nothing found in the data is dropped.

    Example
    -------
    >>> ordered(["snr0", "clean", "snr5", "clean"], CONDITIONS)
    ['clean', 'snr0', 'snr5']
    """
    present = set(values)
    first = [v for v in preferred if v in present]
    rest = sorted(present - set(first))
    return first + rest
