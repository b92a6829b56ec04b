"""Paired robust-minus-baseline statistics, and verdicts on the paper's claims.

Each cell of a study stores per-item values (one score per trial of the
study's trial list for every verifier, one STOI and PESQ per utterance;
:mod:`~speechbrain_probe.evaluation.scoring`), and every cell of a study is
scored on the same utterances and trials. So two cells can be compared
*paired*: the difference of a metric between them, with a 95% interval from
one bootstrap that resamples the same items for both cells. The interval of
a difference is then far narrower than the two cells' own intervals suggest,
because what the two cells share (which speakers are easy) cancels.

The bootstrap resamples **speakers**, not trials: trials of one speaker are
correlated (one hard speaker makes many errors), and only resampling the
speakers carries that into the interval (:mod:`speechbrain_probe.metrics.bootstrap`).

Study level (:func:`write_paired_results` writes both files):

``paired.csv`` (:func:`paired_table`, :class:`PairedRow`)
    For every architecture with a baseline and a robust model, every layer
    they share, every condition and every metric (``eer_<verifier>``,
    ``stoi``, ``pesq``): robust minus baseline with its interval.
``claims.csv`` (:func:`paired_claims`, :class:`ClaimRow`)
    Verdicts on the paper's three claims (:data:`CLAIMS`), one row per
    tested cell: ``holds``, ``reversed`` or ``cannot tell`` (the interval
    contains 0), or one ``not applicable`` row when the study cannot test a
    claim; :func:`claim_summaries` sums them up in one line per claim.

EER differences are fractions (as stored), like the EERs themselves.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, astuple, dataclass, fields
from pathlib import Path

import numpy as np

from speechbrain_probe.atomic import write_csv
from speechbrain_probe.evaluation.scoring import load_cell
from speechbrain_probe.metrics.bootstrap import PairedDiff, paired_eer, paired_mean
from speechbrain_probe.metrics.trials import load_trials
from speechbrain_probe.study_info import STUDY_INFO, StudyInfo, read_study_info
from speechbrain_probe.vocabulary import condition_snr_db, parse_number

__all__ = [
    "verdict",
    "StudyItems",
    "NoPerItemValues",
    "PairedRow",
    "ClaimRow",
    "CLAIMS",
    "CLAIM_TESTS",
    "PAIRED_CSV",
    "CLAIMS_CSV",
    "robust_baseline_pairs",
    "paired_table",
    "paired_claims",
    "claim_summaries",
    "write_paired_results",
    "read_paired",
    "read_claims",
]

#: File names in a study folder.
PAIRED_CSV = "paired.csv"
CLAIMS_CSV = "claims.csv"
#: Verdicts of a claim on one cell (and for a claim the study cannot test).
VERDICTS = ("holds", "reversed", "cannot tell")
NOT_APPLICABLE = "not applicable"
#: Noisy conditions of claims C2 and C3: ``snr<N>`` with N at most this (dB).
NOISY_MAX_SNR_DB = 10.0
#: The paper's claims, as tested here.
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
    "C2": "per architecture, verifier, input at 10 dB SNR or less and middle layer "
    "(all but the first and last): robust - baseline EER; holds if the interval "
    "is below 0",
    "C3": "per architecture and input at 10 dB SNR or less, each layer from the "
    "first blstm layer upward (other models: the second half of the layers): "
    "robust - baseline STOI; holds if the interval is above 0",
}


# --- the verdict on an interval ------------------------------------------------


def verdict(low, high, expect: str) -> str:
    """``holds`` when the interval lies on the expected side of 0 (``above``
    or ``below``), ``reversed`` when it lies on the other side, else
    ``cannot tell`` (it contains 0, or is unknown).

    Example
    -------
    >>> verdict(0.01, 0.05, "above"), verdict(0.01, 0.05, "below")
    ('holds', 'reversed')
    >>> verdict(-0.01, 0.05, "above"), verdict(0.0, 0.0, "below"), verdict(None, None, "above")
    ('cannot tell', 'cannot tell', 'cannot tell')
    """
    if expect not in ("above", "below"):
        raise ValueError(f"expect must be 'above' or 'below', got {expect!r}")
    if low is None or high is None:
        return "cannot tell"
    if low > 0:
        return "holds" if expect == "above" else "reversed"
    if high < 0:
        return "holds" if expect == "below" else "reversed"
    return "cannot tell"


# --- a study's per-item values -----------------------------------------------


class NoPerItemValues(ValueError):
    """The study folder has no cell with per-item values (an older study, or
    no evaluation yet)."""


class StudyItems:
    """A study folder's trials, speakers and per-item cell values.

    Arguments
    ---------
    folder : path
        The study folder (``study.json``, ``trials.csv``, ``cells/``, and
        ``subset.csv`` for the utterances' speakers).

    Raises
    ------
    FileNotFoundError
        Without ``study.json`` or ``trials.csv``.
    NoPerItemValues
        When no cell of a model keeps per-item values.

    Example
    -------
    >>> StudyItems(getfixture("tmp_path"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: study description not found: .../study.json
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.info: StudyInfo = read_study_info(self.folder / STUDY_INFO)
        self.trials = load_trials(self.folder / "trials.csv")
        self.labels = np.array([t.label for t in self.trials], dtype=int)
        self.enrol_spk = np.array([t.enrol_spk for t in self.trials], dtype=str)
        self.test_spk = np.array([t.test_spk for t in self.trials], dtype=str)
        self.speaker_of = self._speakers()
        self._cells = {}
        if not any(
            self.cell(m.name, layer, c) is not None
            for m in self.info.models
            for layer in m.layers
            for c in self.info.conditions
        ):
            raise NoPerItemValues(
                f"no cell in {self.folder / 'cells'} keeps per-item values (scored "
                "by an older version, or not scored yet); run the evaluation again "
                "to rescore them"
            )

    def _speakers(self) -> dict:
        speaker_of = {}
        for t in self.trials:
            speaker_of.setdefault(t.enrol, t.enrol_spk)
            speaker_of.setdefault(t.test, t.test_spk)
        subset = self.folder / "subset.csv"
        if subset.is_file():
            with open(subset, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    speaker_of[row["ID"]] = row["spk_id"]
        return speaker_of

    def cell(self, owner: str, layer: str, condition: str) -> dict | None:
        """A cell's stored result with per-item values, or None."""
        key = (owner, layer, condition)
        if key not in self._cells:
            path = self.folder / "cells" / condition / owner / f"{layer}.json"
            self._cells[key] = load_cell(path, require_items=True)
        return self._cells[key]

    def compare(
        self,
        cell_a: dict,
        cell_b: dict,
        metric: str,
        n_boot: int = 2000,
        seed: int = 0,
        alpha: float = 0.05,
    ) -> PairedDiff | None:
        """``metric`` of ``cell_b`` minus ``cell_a`` on their common items;
        None when the two have no common items to compare."""
        if metric.startswith("eer_"):
            verifier = metric[4:]
            scores = [c["trial_scores"].get(verifier) for c in (cell_a, cell_b)]
            if any(s is None or len(s) != len(self.trials) for s in scores):
                return None
            try:
                return paired_eer(
                    np.array(scores[0], dtype=np.float64),
                    np.array(scores[1], dtype=np.float64),
                    self.labels,
                    self.enrol_spk,
                    self.test_spk,
                    n_boot,
                    seed,
                    alpha,
                )
            except ValueError:
                return None
        values = [c["utt_scores"].get(metric) or {} for c in (cell_a, cell_b)]
        utts = sorted(
            u
            for u in set(values[0]) & set(values[1])
            if values[0][u] is not None
            and values[1][u] is not None
            and u in self.speaker_of
        )
        if not utts:
            return None
        return paired_mean(
            [values[0][u] for u in utts],
            [values[1][u] for u in utts],
            [self.speaker_of[u] for u in utts],
            n_boot,
            seed,
            alpha,
        )

    def metrics(self) -> list[str]:
        """``eer_<verifier>`` of the study's verifiers, then ``stoi``, ``pesq``."""
        return [f"eer_{v}" for v in self.info.verifiers] + ["stoi", "pesq"]


def robust_baseline_pairs(info: StudyInfo) -> dict:
    """arch -> (baseline model, robust model), for each architecture with
    both (the first of each in the study's order).

    Example
    -------
    >>> from speechbrain_probe.study_info import StudyModel
    >>> info = StudyInfo([StudyModel("r", ("l1",), "blstm", "robust"),
    ...                   StudyModel("b", ("l1",), "blstm", "baseline"),
    ...                   StudyModel("w", ("l1",))], ["clean"])
    >>> {arch: (b.name, r.name) for arch, (b, r) in robust_baseline_pairs(info).items()}
    {'blstm': ('b', 'r')}
    """
    found = {}
    for m in info.models:
        if m.arch and m.training in ("baseline", "robust"):
            found.setdefault(m.arch, {}).setdefault(m.training, m)
    return {
        arch: (models["baseline"], models["robust"])
        for arch, models in found.items()
        if len(models) == 2
    }


def _shared_layers(baseline, robust) -> list[str]:
    return [x for x in baseline.layers if x in set(robust.layers)]


# --- paired.csv ---------------------------------------------------------------


@dataclass(frozen=True)
class PairedRow:
    """One row of ``paired.csv``: robust minus baseline in one cell.

    Attributes
    ----------
    arch, layer, condition, metric : str
    baseline_model, robust_model : str
    baseline, robust : float
        The metric of each model on the items both have (EER a fraction).
    diff, ci_low, ci_high : float or None
        ``robust - baseline`` and its 95% interval (speakers resampled).
    n_speakers, n_items : int
        Speakers, and trials (EER) or utterances (STOI/PESQ), behind it.
    """

    arch: str
    layer: str
    condition: str
    metric: str
    baseline_model: str
    robust_model: str
    baseline: float | None
    robust: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    n_speakers: int | None
    n_items: int | None

    @property
    def excludes_zero(self) -> bool:
        """The interval lies entirely above or below 0."""
        return self.ci_low is not None and (self.ci_low > 0 or self.ci_high < 0)


def paired_table(
    study_folder,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    write: bool = True,
    items: StudyItems | None = None,
) -> list[PairedRow]:
    """Robust minus baseline for every architecture with both models, every
    layer they share (the baseline's order), condition and metric.

    Cells without per-item values, and metrics without common items, have no
    row. Written as ``<study>/paired.csv`` (with ``write``).

    Arguments
    ---------
    study_folder : path
        What :func:`~speechbrain_probe.evaluation.run_study` wrote.
    n_boot, seed, alpha
        The paired bootstrap's resamples, seed and ``1 - coverage``.
    items : StudyItems, optional
        The folder already read.

    Raises
    ------
    NoPerItemValues
        When no cell keeps per-item values.
    """
    items = items or StudyItems(study_folder)
    rows = []
    for arch, (base, robust) in robust_baseline_pairs(items.info).items():
        for layer in _shared_layers(base, robust):
            for condition in items.info.conditions:
                cell_a = items.cell(base.name, layer, condition)
                cell_b = items.cell(robust.name, layer, condition)
                if cell_a is None or cell_b is None:
                    continue
                for metric in items.metrics():
                    out = items.compare(cell_a, cell_b, metric, n_boot, seed, alpha)
                    if out is None:
                        continue
                    rows.append(
                        PairedRow(
                            arch,
                            layer,
                            condition,
                            metric,
                            base.name,
                            robust.name,
                            *astuple(out),
                        )
                    )
    if write:
        _write(Path(items.folder) / PAIRED_CSV, PairedRow, rows)
    return rows


# --- claims.csv ---------------------------------------------------------------


@dataclass(frozen=True)
class ClaimRow:
    """One row of ``claims.csv``: a claim tested on one cell.

    ``diff`` is ``metric`` of (``model_b``, ``layer_b``) minus that of
    (``model_a``, ``layer_a``) in ``condition``: for C1 one model's deepest
    minus its shallowest layer, for C2 and C3 robust minus baseline at one
    layer. A claim the study cannot test has one row with ``verdict``
    ``not applicable`` and the reason in ``note``.
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


def _noisy_conditions(info: StudyInfo) -> list[str]:
    out = []
    for condition in info.conditions:
        snr = condition_snr_db(condition)
        if snr is not None and snr <= NOISY_MAX_SNR_DB:
            out.append(condition)
    return out


def _upper_layers(layers: list[str]) -> list[str]:
    """C3's layers: from the first ``blstm*`` layer upward; without one, the
    second half (``layers[len // 2:]``)."""
    for i, layer in enumerate(layers):
        if layer.startswith("blstm"):
            return layers[i:]
    return layers[len(layers) // 2 :]


def _from_paired(claim, row: PairedRow, expect: str) -> ClaimRow:
    return ClaimRow(
        claim,
        verdict(row.ci_low, row.ci_high, expect),
        row.arch,
        row.baseline_model,
        row.layer,
        row.robust_model,
        row.layer,
        row.metric,
        row.condition,
        row.diff,
        row.ci_low,
        row.ci_high,
        row.n_speakers,
        row.n_items,
    )


def _claim_c1(items: StudyItems, n_boot, seed, alpha) -> list[ClaimRow]:
    if "clean" not in items.info.conditions:
        return [ClaimRow("C1", NOT_APPLICABLE, note="the study has no clean input")]
    rows = []
    for model in items.info.models:
        scored = [
            x for x in model.layers if items.cell(model.name, x, "clean") is not None
        ]
        if len(scored) < 2:
            continue
        first, last = scored[0], scored[-1]
        cell_a = items.cell(model.name, first, "clean")
        cell_b = items.cell(model.name, last, "clean")
        for verifier in items.info.verifiers:
            metric = f"eer_{verifier}"
            out = items.compare(cell_a, cell_b, metric, n_boot, seed, alpha)
            if out is None:
                continue
            rows.append(
                ClaimRow(
                    "C1",
                    verdict(out.low, out.high, "above"),
                    model.arch,
                    model.name,
                    first,
                    model.name,
                    last,
                    metric,
                    "clean",
                    *astuple(out)[2:],
                )
            )
    if not rows:
        return [
            ClaimRow(
                "C1",
                NOT_APPLICABLE,
                note="no model has two probed layers with per-item EER values on "
                "clean input",
            )
        ]
    return rows


def _claims_c2_c3(info: StudyInfo, paired_rows, verifiers) -> list[ClaimRow]:
    pairs = robust_baseline_pairs(info)
    if not pairs:
        note = "the study has no robust and baseline model of one architecture"
        return [ClaimRow(c, NOT_APPLICABLE, note=note) for c in ("C2", "C3")]
    noisy = _noisy_conditions(info)
    if not noisy:
        note = f"the study has no input at {NOISY_MAX_SNR_DB:g} dB SNR or less"
        return [ClaimRow(c, NOT_APPLICABLE, note=note) for c in ("C2", "C3")]
    lookup = {(r.arch, r.layer, r.condition, r.metric): r for r in paired_rows}
    c2, c3 = [], []
    for arch, (base, robust) in pairs.items():
        layers = _shared_layers(base, robust)
        for verifier in verifiers:
            for condition in noisy:
                for layer in layers[1:-1]:
                    row = lookup.get((arch, layer, condition, f"eer_{verifier}"))
                    if row is not None:
                        c2.append(_from_paired("C2", row, "below"))
        for condition in noisy:
            for layer in _upper_layers(layers):
                row = lookup.get((arch, layer, condition, "stoi"))
                if row is not None:
                    c3.append(_from_paired("C3", row, "above"))
    out = []
    for claim, rows, what in (
        ("C2", c2, "no middle layer (all but the first and last) has a paired EER"),
        ("C3", c3, "no upper layer has a paired STOI"),
    ):
        out += rows or [ClaimRow(claim, NOT_APPLICABLE, note=f"{what} under noise")]
    return out


def paired_claims(
    study_folder,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    write: bool = True,
    paired_rows: list[PairedRow] | None = None,
    items: StudyItems | None = None,
) -> list[ClaimRow]:
    """Verdicts on the paper's claims (:data:`CLAIMS`, :data:`CLAIM_TESTS`).

    C1 compares each model's deepest and shallowest probed layers on clean
    input (any model). C2 (EER, middle layers) and C3 (STOI, from the first
    ``blstm`` layer upward) compare robust with baseline under input at
    10 dB SNR or less, from the paired table; a study without a
    robust/baseline pair gets a ``not applicable`` row for each. Written as
    ``<study>/claims.csv`` (with ``write``).

    Arguments
    ---------
    paired_rows : list of PairedRow, optional
        :func:`paired_table`'s rows, if already computed (same settings).
    """
    items = items or StudyItems(study_folder)
    if paired_rows is None:
        paired_rows = paired_table(
            items.folder, n_boot, seed, alpha, write=False, items=items
        )
    rows = _claim_c1(items, n_boot, seed, alpha)
    rows += _claims_c2_c3(items.info, paired_rows, items.info.verifiers)
    if write:
        _write(Path(items.folder) / CLAIMS_CSV, ClaimRow, rows)
    return rows


def claim_summaries(rows) -> dict:
    """One line per claim of :data:`CLAIMS`, from its rows.

    Example
    -------
    >>> rows = [ClaimRow("C1", "holds"), ClaimRow("C1", "cannot tell"),
    ...         ClaimRow("C2", "not applicable", note="no pair")]
    >>> claim_summaries(rows)["C1"]
    'holds in 1 of 2 cells, reversed in 0, cannot tell in 1'
    >>> claim_summaries(rows)["C2"], claim_summaries(rows)["C3"]
    ('not applicable: no pair', 'not tested')
    """
    out = {}
    for claim in CLAIMS:
        own = [r for r in rows if r.claim == claim]
        judged = [r for r in own if r.verdict in VERDICTS]
        if judged:
            count = {v: sum(r.verdict == v for r in judged) for v in VERDICTS}
            out[claim] = (
                f"holds in {count['holds']} of {len(judged)} cells, reversed in "
                f"{count['reversed']}, cannot tell in {count['cannot tell']}"
            )
        elif own:
            notes = sorted({r.note for r in own if r.note})
            out[claim] = NOT_APPLICABLE + (f": {'; '.join(notes)}" if notes else "")
        else:
            out[claim] = "not tested"
    return out


def write_paired_results(
    study_folder, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> tuple[list[PairedRow], list[ClaimRow]]:
    """Write ``paired.csv`` and ``claims.csv`` into the study folder; return
    their rows (:func:`paired_table`, :func:`paired_claims`).

    Raises
    ------
    FileNotFoundError, NoPerItemValues
        When the folder has no ``study.json``/``trials.csv``, or no cell with
        per-item values.
    """
    items = StudyItems(study_folder)
    paired = paired_table(items.folder, n_boot, seed, alpha, items=items)
    claims = paired_claims(
        items.folder, n_boot, seed, alpha, paired_rows=paired, items=items
    )
    return paired, claims


# --- files --------------------------------------------------------------------


def _text(value) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _write(path: Path, cls, rows) -> Path:
    columns = [f.name for f in fields(cls)]
    table = ({k: _text(v) for k, v in asdict(r).items()} for r in rows)
    return write_csv(path, table, columns)


def _read(path, cls) -> list:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; write it with write_paired_results(<study folder>)"
        )
    numbers = {"diff", "ci_low", "ci_high", "baseline", "robust"}
    counts = {"n_speakers", "n_items"}
    columns = [f.name for f in fields(cls)]
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks column(s) {','.join(missing)}")
        rows = []
        for raw in reader:
            values = {}
            for c in columns:
                text = raw[c]
                if c in numbers:
                    values[c] = parse_number(text)
                elif c in counts:
                    number = parse_number(text)
                    values[c] = None if number is None else int(number)
                else:
                    values[c] = text
            rows.append(cls(**values))
    return rows


def read_paired(path: str | os.PathLike) -> list[PairedRow]:
    """Read ``paired.csv`` (:func:`paired_table`'s rows).

    Example
    -------
    >>> p = getfixture("tmp_path") / PAIRED_CSV
    >>> row = PairedRow("blstm", "blstm1", "snr0", "stoi", "b", "r", 0.6, 0.7,
    ...                 0.1, 0.05, 0.15, 8, 32)
    >>> _ = _write(p, PairedRow, [row])
    >>> read_paired(p) == [row], row.excludes_zero
    (True, True)
    """
    return _read(path, PairedRow)


def read_claims(path: str | os.PathLike) -> list[ClaimRow]:
    """Read ``claims.csv`` (:func:`paired_claims`' rows).

    Example
    -------
    >>> p = getfixture("tmp_path") / CLAIMS_CSV
    >>> rows = [ClaimRow("C1", "holds", "", "m", "l1", "m", "l5", "eer_ge2e",
    ...                  "clean", 0.3, 0.2, 0.4, 8, 96),
    ...         ClaimRow("C2", NOT_APPLICABLE, note="no pair")]
    >>> _ = _write(p, ClaimRow, rows)
    >>> read_claims(p) == rows
    True
    """
    return _read(path, ClaimRow)
