"""Generate a small, well-formed but *made-up* results folder.

The report's tests build their reports from it. The files are written through
:mod:`speechbrain_probe.result_rows` in the layout
:func:`~speechbrain_probe.evaluation.study.run_study` writes (``metrics.csv``
with model-independent reference rows, ``asr_results.csv``, ``samples.csv``
with wavs under ``samples/``, ``figure3_mels.npz``, ``study.json``). By
default the study is the paper's four models; ``models`` makes any other
(e.g. one Whisper-like model with layers cnn, layer1..layer4). Every number
is random (shaped only so that plots look like plots); the wavs are short
tones in noise. Nothing here is a result.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbrain_probe import result_rows
from speechbrain_probe.study_info import (
    STUDY_INFO,
    StudyInfo,
    StudyModel,
    write_study_info,
)
from speechbrain_probe.vocabulary import (
    ARCH_LAYERS,
    CONDITIONS,
    REFERENCE_LAYERS,
    ModelId,
)

__all__ = ["make_example_results", "EXAMPLE_MODELS"]

#: model id -> (arch, training) of the example results.
EXAMPLE_MODELS = {
    m.name: (m.arch, m.training)
    for m in (
        ModelId("vgg_lstm", "baseline"),
        ModelId("vgg_lstm", "robust"),
        ModelId("blstm", "baseline"),
        ModelId("blstm", "robust"),
    )
}

_METRICS = ("eer_ge2e", "eer_ecapa", "stoi", "pesq")


def _metric_value(rng, metric, depth, snr_penalty, robust):
    if metric.startswith("eer"):
        value = 0.04 + 0.44 * depth + 0.08 * snr_penalty * (1.0 - 0.5 * robust)
        return min(value + rng.normal(0, 0.01), 0.5), 0.02
    if metric == "stoi":
        value = 0.9 - 0.3 * depth - 0.2 * snr_penalty * (1.0 - 0.4 * robust)
        return value + rng.normal(0, 0.01), 0.02
    value = 3.5 - 1.5 * depth - 1.0 * snr_penalty
    return max(value + rng.normal(0, 0.05), 1.05), 0.1


def make_example_results(
    out_dir: str | os.PathLike,
    seed: int = 0,
    n_utts: int = 2,
    conditions=CONDITIONS,
    seconds: float = 0.5,
    missing=(("vgg_lstm_robust", "cnn2", "snr10"),),
    nan_cells=(("blstm_baseline", "blstm4", "snr20"),),
    models=None,
) -> dict:
    """Write ``metrics.csv``, ``asr_results.csv``, ``samples.csv``, wavs and
    ``figure3_mels.npz`` as :func:`~speechbrain_probe.evaluation.run_study` does.

    Arguments
    ---------
    out_dir : path
        Results folder to fill.
    seed : int
        Random seed.
    n_utts : int
        Utterances in ``samples.csv``.
    conditions : sequence of str
        Input conditions.
    seconds : float
        Duration of each wav.
    missing : sequence of (model, layer, condition)
        Cells left out of ``metrics.csv`` (to exercise missing cells).
    nan_cells : sequence of (model, layer, condition)
        Cells written without a value or interval (a missing number).
    models : sequence of StudyModel or dict, optional
        The study's models (a dict holds StudyModel's fields, e.g.
        ``{"name": "whisper_tiny", "layers": ["cnn", "layer1"]}``); default:
        the paper's four (:data:`EXAMPLE_MODELS`).

    Returns
    -------
    dict
        ``metrics``, ``asr``, ``samples`` paths and the ``rows`` of metrics.csv
        (:class:`~speechbrain_probe.result_rows.MetricRow`).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> out = make_example_results(tmp, n_utts=1, conditions=("clean", "snr0"))
    >>> sorted(p.name for p in tmp.glob("*.csv"))
    ['asr_results.csv', 'metrics.csv', 'samples.csv']
    >>> out = make_example_results(tmp / "w", n_utts=1, conditions=("clean", "snr5"),
    ...     models=[{"name": "whisper_tiny", "layers": ["cnn", "layer1", "layer2"]}])
    >>> out["info"].models[0].layers, (tmp / "w" / "study.json").is_file()
    (('cnn', 'layer1', 'layer2'), True)
    """
    if models is None:
        study_models = [
            StudyModel(name, ARCH_LAYERS[arch], arch, training)
            for name, (arch, training) in EXAMPLE_MODELS.items()
        ]
    else:
        study_models = [
            m if isinstance(m, StudyModel) else StudyModel(**dict(m)) for m in models
        ]
    info = StudyInfo(tuple(study_models), tuple(conditions), ("ge2e", "ecapa"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    skipped = {tuple(x): "nan" for x in nan_cells}
    skipped.update({tuple(x): "missing" for x in missing})
    metric_rows = _metric_rows(rng, study_models, conditions, skipped)
    result_rows.write_metrics(out_dir / "metrics.csv", metric_rows)
    asr_rows = [
        result_rows.AsrResult(m.name, m.arch, m.training, condition, wer, wer / 2.5, 40)
        for m in study_models
        for condition in conditions
        for wer in [25 + 20 * _SNR_PENALTY.get(condition, 0.5) + rng.normal(0, 2)]
    ]
    result_rows.write_asr_results(out_dir / "asr_results.csv", asr_rows)
    _write_samples(out_dir, rng, n_utts, conditions, study_models, seconds)
    _write_figure3_mels(out_dir, study_models, models is None, conditions, seconds)
    write_study_info(out_dir / STUDY_INFO, info)
    return {
        "metrics": out_dir / "metrics.csv",
        "asr": out_dir / "asr_results.csv",
        "samples": out_dir / "samples.csv",
        "study": out_dir / STUDY_INFO,
        "info": info,
        "rows": metric_rows,
    }


_SNR_PENALTY = {"clean": 0.0, "snr20": 0.2, "snr10": 0.5, "snr5": 0.7, "snr0": 1.0}


def _metric_rows(rng, study_models, conditions, skipped: dict) -> list:
    """``metrics.csv``'s rows: references, then each model's layers; a cell in
    ``skipped`` is left out (``missing``) or has no value (``nan``)."""
    rows = []

    def add(model, arch, training, layer, condition, depth, robust):
        for metric in _METRICS:
            value, half = _metric_value(
                rng, metric, depth, _SNR_PENALTY.get(condition, 0.5), robust
            )
            value = round(value, 6)
            numbers = (value, round(max(value - half, 0.0), 6), round(value + half, 6))
            cell = (model, arch, training, layer, condition, metric)
            kind = skipped.get((model, layer, condition))
            if kind != "missing":
                n = (None,) * 3 if kind == "nan" else (*numbers, 40)
                rows.append(result_rows.MetricRow(*cell, *n))

    for condition in conditions:
        # the references do not depend on the model: one row each, no model
        for layer in REFERENCE_LAYERS:
            add("", "", "", layer, condition, 0.0, False)
        for m in study_models:
            for i, layer in enumerate(m.layers):
                robust = m.training == "robust"
                depth = (i + 1) / len(m.layers)
                add(m.name, m.arch, m.training, layer, condition, depth, robust)
    return rows


def _write_samples(out_dir, rng, n_utts, conditions, study_models, seconds):
    """Short tones in noise for every clip, and ``samples.csv``."""
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    rows = []

    def wav(utt, spk, condition, kind, freq, model="", layer=""):
        rel = result_rows.sample_path(
            "samples", condition, model or kind, utt, layer or None
        )
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        signal = 0.2 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(path, signal.astype(np.float32), sr)
        rows.append(
            result_rows.Sample(utt, spk, model, layer, condition, kind, rel.as_posix())
        )

    for u in range(n_utts):
        utt, spk = f"spk{u % 2}-utt{u}", f"spk{u % 2}"
        for c, condition in enumerate(conditions):
            wav(utt, spk, condition, "original", 220)
            wav(utt, spk, condition, "copy_synthesis", 230 + c)
            if condition != "clean":
                wav(utt, spk, condition, "mixture", 500)
                wav(utt, spk, condition, "noise", 900)
            for m in study_models:
                for i, layer in enumerate(m.layers):
                    freq = 240 + 20 * i + c
                    wav(utt, spk, condition, "reconstruction", freq, m.name, layer)
    result_rows.write_samples(out_dir / "samples.csv", rows)


def _write_figure3_mels(out_dir, study_models, paper: bool, conditions, seconds):
    """Figure 3's probe mels, as the evaluation saves them (smooth made-up
    images): baseline and robust rows of the paper's layers, else one row per
    model, its layers in model order."""
    frames = max(int(seconds / 0.0125), 2)
    grid = np.linspace(0.0, 1.0, 80)[None, :] * np.linspace(1.0, 0.2, frames)[:, None]

    def mel(i):
        return np.clip(grid * (1 - 0.1 * i), 0, 1)

    if paper:
        keys = [
            (f"{arch}:{layer}", i)
            for arch in ARCH_LAYERS
            for i, layer in enumerate(ARCH_LAYERS[arch])
        ]
        fig3 = {t: {k: mel(i) for k, i in keys} for t in ("baseline", "robust")}
    else:
        fig3 = {
            m.name: {f"{m.name}:{layer}": mel(i) for i, layer in enumerate(m.layers)}
            for m in study_models
        }
    result_rows.save_figure3_mels(
        out_dir / "figure3_mels.npz",
        fig3,
        {"clean": grid, "mixture": np.clip(grid + 0.2, 0, 1)},
        f"Made-up probe mels of spk0-utt0 at {conditions[-1]}",
    )
