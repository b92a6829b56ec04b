"""Paired robust-minus-baseline statistics of a study (``paired.csv``).

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

:func:`write_paired_results` writes two files into the study folder
(:mod:`speechbrain_probe.result_rows`): ``paired.csv`` (:func:`paired_table`),
for every architecture with a baseline and a robust model, every layer they
share, every condition and every metric (``eer_<verifier>``, ``stoi``,
``pesq``), robust minus baseline with its interval (EER differences are
fractions, like the EERs); and ``claims.csv``, the verdicts on the paper's
claims (:mod:`speechbrain_probe.evaluation.claims`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from speechbrain_probe.evaluation.claims import (
    paired_claims,
    robust_baseline_pairs,
    shared_layers,
)
from speechbrain_probe.evaluation.scoring import load_cell
from speechbrain_probe.metrics.bootstrap import PairedDiff, paired_eer, paired_mean
from speechbrain_probe.metrics.trials import load_trials
from speechbrain_probe.result_rows import (
    CLAIMS_CSV,
    PAIRED_CSV,
    ClaimRow,
    PairedRow,
    write_claims,
    write_paired,
)
from speechbrain_probe.study_info import STUDY_INFO, StudyInfo, read_study_info

__all__ = [
    "StudyItems",
    "NoPerItemValues",
    "paired_row",
    "paired_table",
    "write_paired_results",
]


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


def paired_row(cell: tuple, diff, **context) -> PairedRow:
    """A :class:`~speechbrain_probe.result_rows.PairedRow` of a cell
    (condition, layer, metric, model_a, model_b), its paired difference
    (:meth:`StudyItems.compare`) and any other field (``context``)."""
    numbers = (diff.a, diff.b, diff.diff, diff.low, diff.high)
    return PairedRow(*cell, *numbers, diff.n_speakers, diff.n_items, **context)


def paired_table(
    items: StudyItems, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> list[PairedRow]:
    """Robust (B) minus baseline (A) for every architecture with both models,
    every layer they share (the baseline's order), condition and metric.

    Cells without per-item values, and metrics without common items, have no
    row. ``n_boot``, ``seed`` and ``alpha`` are the paired bootstrap's
    resamples, seed and ``1 - coverage``.
    """
    rows = []
    for arch, (base, robust) in robust_baseline_pairs(items.info).items():
        for layer in shared_layers(base, robust):
            for condition in items.info.conditions:
                cell_a = items.cell(base.name, layer, condition)
                cell_b = items.cell(robust.name, layer, condition)
                if cell_a is None or cell_b is None:
                    continue
                for metric in items.metrics():
                    out = items.compare(cell_a, cell_b, metric, n_boot, seed, alpha)
                    if out is not None:
                        cell = (condition, layer, metric, base.name, robust.name)
                        rows.append(paired_row(cell, out, arch=arch))
    return rows


def write_paired_results(
    study_folder, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> tuple[list[PairedRow], list[ClaimRow]]:
    """Write ``paired.csv`` (:func:`paired_table`) and ``claims.csv``
    (:func:`~speechbrain_probe.evaluation.claims.paired_claims`) into the
    study folder; return their rows.

    Raises
    ------
    FileNotFoundError, NoPerItemValues
        When the folder has no ``study.json``/``trials.csv``, or no cell with
        per-item values.
    """
    items = StudyItems(study_folder)
    paired = paired_table(items, n_boot, seed, alpha)
    claims = paired_claims(items, paired, n_boot, seed, alpha)
    write_paired(items.folder / PAIRED_CSV, paired)
    write_claims(items.folder / CLAIMS_CSV, claims)
    return paired, claims
