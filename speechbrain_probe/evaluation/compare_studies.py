"""Compare two studies that differ only in the vocoder, cell by cell.

Two study folders made by :func:`~speechbrain_probe.evaluation.study.run_study`
on the same utterances and trials (identical ``subset.csv`` and
``trials.csv``), e.g. probes of one ASR trained on the paper mel (Griffin-Lim)
and on the HiFi-GAN mel (HiFi-GAN), are compared cell by cell
(:func:`compare_studies`): for every model, layer and condition both have,
and the reference rows, every metric (``eer_<verifier>``, ``stoi``,
``pesq``) in A, in B, and the paired difference B - A with its
speaker-bootstrap interval
(:meth:`~speechbrain_probe.evaluation.paired.StudyItems.compare`, the same
utterances and trials in both cells), as
:class:`~speechbrain_probe.result_rows.PairedRow` rows of
``vocoder_comparison.csv``
(:func:`~speechbrain_probe.result_rows.write_comparison`). ``original`` is
the same audio in both studies and must score the same (else the studies did
not hear the same thing); ``copy_synthesis`` compares the two vocoders on the
true mel.

Models are matched by a mapping (``models={name_in_a: name_in_b}``), else by
architecture and training (paper models), else by name. The command line
that also writes the table, figure and listening page is
:mod:`speechbrain_probe.compare`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speechbrain_probe.evaluation.paired import StudyItems, paired_row
from speechbrain_probe.result_rows import PairedRow
from speechbrain_probe.study_info import StudyInfo, StudyModel
from speechbrain_probe.vocabulary import REFERENCE_LAYERS

__all__ = ["compare_studies", "match_models"]


def _same_file(a: Path, b: Path, what: str) -> None:
    for path in (a, b):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist; compare two finished study folders "
                "(run_study writes subset.csv and trials.csv)"
            )
    if a.read_bytes() != b.read_bytes():
        raise ValueError(
            f"{a} and {b} differ: the two studies used other {what}; compare only "
            "studies run on the same corpus with the same conditions, "
            "utts_per_speaker, seed and negatives_per_positive"
        )


def match_models(
    info_a: StudyInfo, info_b: StudyInfo, models: dict | None = None
) -> list[tuple[StudyModel, StudyModel]]:
    """Pairs (model of A, model of B) to compare.

    ``models`` maps names in A to names in B; without it, a paper model
    (architecture and training) is matched to B's only model of the same
    architecture and training, any other model to B's model of its name.

    Example
    -------
    >>> a = StudyInfo([StudyModel("vgg_gl", ("cnn1",), "vgg_lstm", "baseline"),
    ...                StudyModel("w", ("l1",))], ["clean"])
    >>> b = StudyInfo([StudyModel("vgg_hifi", ("cnn1",), "vgg_lstm", "baseline"),
    ...                StudyModel("w", ("l1",))], ["clean"])
    >>> [(x.name, y.name) for x, y in match_models(a, b)]
    [('vgg_gl', 'vgg_hifi'), ('w', 'w')]
    >>> match_models(a, b, {"vgg_gl": "nope"})
    Traceback (most recent call last):
    ...
    ValueError: model 'nope' (mapped from 'vgg_gl') is not in study B; it has: vgg_hifi w
    """
    by_name_b = {m.name: m for m in info_b.models}
    by_name_a = {m.name: m for m in info_a.models}
    if models:
        pairs = []
        for name_a, name_b in models.items():
            if name_a not in by_name_a:
                raise ValueError(
                    f"model {name_a!r} is not in study A; it has: "
                    + " ".join(by_name_a)
                )
            if name_b not in by_name_b:
                raise ValueError(
                    f"model {name_b!r} (mapped from {name_a!r}) is not in study B; "
                    "it has: " + " ".join(by_name_b)
                )
            pairs.append((by_name_a[name_a], by_name_b[name_b]))
        return pairs
    pairs, used = [], set()
    for m in info_a.models:
        twin = None
        if m.arch and m.training:
            same = [
                x for x in info_b.models if (x.arch, x.training) == (m.arch, m.training)
            ]
            if len(same) == 1:
                twin = same[0]
        if twin is None:
            twin = by_name_b.get(m.name)
        if twin is not None and twin.name not in used:
            used.add(twin.name)
            pairs.append((m, twin))
    return pairs


def _check_original(items_a, items_b, condition, cell_a, cell_b, tolerance=1e-4):
    """The original audio must score the same in both studies."""
    for verifier, scores in cell_a.get("trial_scores", {}).items():
        other = cell_b.get("trial_scores", {}).get(verifier)
        if other is None:
            continue
        a = np.array(scores, dtype=np.float64)
        b = np.array(other, dtype=np.float64)
        if a.shape != b.shape or not np.allclose(a, b, atol=tolerance, equal_nan=True):
            raise ValueError(
                f"the original audio of condition {condition} has other {verifier} "
                f"scores in {items_a.folder} than in {items_b.folder}: the studies "
                "did not hear the same audio with the same verifier; compare studies "
                "of the same corpus and verifiers"
            )
    for metric, values in cell_a.get("utt_scores", {}).items():
        other = cell_b.get("utt_scores", {}).get(metric) or {}
        for utt, value in values.items():
            twin = other.get(utt)
            if value is None or twin is None:
                continue
            if abs(value - twin) > tolerance:
                raise ValueError(
                    f"the original audio of condition {condition} has {metric} "
                    f"{value:.4f} for {utt} in {items_a.folder} but {twin:.4f} in "
                    f"{items_b.folder}: the studies did not hear the same audio"
                )


def compare_studies(
    study_a,
    study_b,
    n_boot: int = 2000,
    seed: int = 0,
    models: dict | None = None,
    label_a: str | None = None,
    label_b: str | None = None,
    alpha: float = 0.05,
) -> list[PairedRow]:
    """Every shared cell of two studies: A, B and the paired B - A.

    Arguments
    ---------
    study_a, study_b : path
        Study folders with the same ``subset.csv`` and ``trials.csv`` (else a
        ``ValueError``) and per-item cells.
    n_boot : int
        Speaker-bootstrap resamples of each interval.
    seed : int
        Seed of the resampling (the same speakers for every cell).
    models : dict, optional
        Names in A -> names in B (default: :func:`match_models`).
    label_a, label_b : str, optional
        Names of the two studies (default: the vocoder each ``study.json``
        records, else the folder's name).
    alpha : float
        ``1 - alpha`` is the interval's coverage.

    Returns
    -------
    list of PairedRow
        Per condition: the reference rows (``original``, ``copy_synthesis``),
        then each matched model's shared layers in A's order; per cell
        ``eer_<verifier>`` of the verifiers both have, ``stoi``, ``pesq``.
    """
    a, b = Path(study_a), Path(study_b)
    _same_file(a / "subset.csv", b / "subset.csv", "utterances")
    _same_file(a / "trials.csv", b / "trials.csv", "trials")
    items_a, items_b = StudyItems(a), StudyItems(b)
    info_a, info_b = items_a.info, items_b.info
    label_a = label_a or info_a.vocoder or a.name
    label_b = label_b or info_b.vocoder or b.name
    verifiers = [v for v in info_a.verifiers if v in info_b.verifiers]
    metrics = [f"eer_{v}" for v in verifiers] + ["stoi", "pesq"]
    conditions = [c for c in info_a.conditions if c in info_b.conditions]
    if not conditions:
        raise ValueError(
            f"the studies share no condition ({', '.join(info_a.conditions)} vs "
            f"{', '.join(info_b.conditions)})"
        )
    pairs = match_models(info_a, info_b, models)
    rows = []

    def add(condition, owner_a, owner_b, layer, model_a="", model_b=""):
        cell_a = items_a.cell(owner_a, layer, condition)
        cell_b = items_b.cell(owner_b, layer, condition)
        if cell_a is None or cell_b is None:
            return
        if layer == "original":
            _check_original(items_a, items_b, condition, cell_a, cell_b)
        for metric in metrics:
            d = items_a.compare(cell_a, cell_b, metric, n_boot, seed, alpha)
            if d is None:
                continue
            cell = (condition, layer, metric, model_a, model_b)
            rows.append(paired_row(cell, d, label_a=label_a, label_b=label_b))

    for condition in conditions:
        for layer in REFERENCE_LAYERS:
            add(condition, "_reference", "_reference", layer)
        for ma, mb in pairs:
            for layer in ma.layers:
                if layer in mb.layers:
                    add(condition, ma.name, mb.name, layer, ma.name, mb.name)
    return rows
