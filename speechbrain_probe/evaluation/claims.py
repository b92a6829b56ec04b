"""Verdicts on the paper's claims (``claims.csv``).

:func:`paired_claims` tests each claim of
:data:`~speechbrain_probe.result_rows.CLAIMS` on every cell it applies to, as
:data:`~speechbrain_probe.result_rows.CLAIM_TESTS` says: a paired difference
and its interval, judged by :func:`verdict`. C1 compares each model's
deepest and shallowest probed layers on clean input; C2 (EER, middle layers)
and C3 (STOI, from the first ``blstm`` layer upward) compare robust with
baseline (:func:`robust_baseline_pairs`) under input at
:data:`~speechbrain_probe.result_rows.NOISY_MAX_SNR_DB` or less, from ``paired.csv``'s
rows. A claim the
study cannot test gets one ``not applicable`` row with the reason.
"""

from __future__ import annotations

from dataclasses import astuple

from speechbrain_probe.result_rows import (
    NOISY_MAX_SNR_DB,
    NOT_APPLICABLE,
    ClaimRow,
    PairedRow,
)
from speechbrain_probe.study_info import StudyInfo
from speechbrain_probe.vocabulary import condition_snr_db

__all__ = [
    "verdict",
    "robust_baseline_pairs",
    "shared_layers",
    "paired_claims",
]


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
    return {
        arch: tuple(
            next(m for m in ms if m.training == t) for t in ("baseline", "robust")
        )
        for arch, ms in info.robust_baseline_archs().items()
    }


def shared_layers(baseline, robust) -> list[str]:
    """The layers both models have, in the baseline's order."""
    return [x for x in baseline.layers if x in set(robust.layers)]


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
        row.model_a,
        row.layer,
        row.model_b,
        row.layer,
        row.metric,
        row.condition,
        row.diff,
        row.ci_low,
        row.ci_high,
        row.n_speakers,
        row.n_items,
    )


def _claim_c1(items, n_boot, seed, alpha) -> list[ClaimRow]:
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


def _claims_c2_c3(info: StudyInfo, paired_rows) -> list[ClaimRow]:
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
        layers = shared_layers(base, robust)
        for verifier in info.verifiers:
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
    items, paired_rows, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> list[ClaimRow]:
    """Every claim's rows (see the module's docstring).

    Arguments
    ---------
    items : StudyItems
        The study folder's per-item values
        (:class:`~speechbrain_probe.evaluation.paired.StudyItems`).
    paired_rows : list of PairedRow
        The study's robust - baseline rows
        (:func:`~speechbrain_probe.evaluation.paired.paired_table`).
    n_boot, seed, alpha
        The paired bootstrap of C1's differences (as for ``paired_rows``).
    """
    return _claim_c1(items, n_boot, seed, alpha) + _claims_c2_c3(
        items.info, paired_rows
    )
