"""Generate a small, well-formed but *made-up* results folder.

Used by the tests and to preview the report's layout before an evaluation has
run. Every number is random (shaped only so that plots look like plots); the
wavs are short tones in noise. Nothing here is a result.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbrain_probe.report.results import (
    ARCH_LAYERS,
    ASR_FIELDS,
    CONDITIONS,
    METRICS_FIELDS,
    SAMPLES_FIELDS,
)

__all__ = ["make_example_results", "EXAMPLE_MODELS"]

#: model id -> (arch, training) of the example results.
EXAMPLE_MODELS = {
    "vgg_lstm_baseline": ("vgg_lstm", "baseline"),
    "vgg_lstm_robust": ("vgg_lstm", "robust"),
    "blstm_baseline": ("blstm", "baseline"),
    "blstm_robust": ("blstm", "robust"),
}

_METRICS = ("eer_ge2e", "eer_ecapa", "stoi", "pesq")


def _write_csv(path, fields, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


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
) -> dict:
    """Write ``metrics.csv``, ``asr_results.csv``, ``samples.csv`` and wavs.

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
        Cells written with value ``nan`` and no interval.

    Returns
    -------
    dict
        ``metrics``, ``asr``, ``samples`` paths and the ``rows`` of metrics.csv.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> out = make_example_results(tmp, n_utts=1, conditions=("clean", "snr0"))
    >>> sorted(p.name for p in tmp.glob("*.csv"))
    ['asr_results.csv', 'metrics.csv', 'samples.csv']
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    missing, nan_cells = set(map(tuple, missing)), set(map(tuple, nan_cells))
    snr_penalty = {"clean": 0.0, "snr20": 0.2, "snr10": 0.5, "snr0": 1.0}
    metric_rows = []
    for model, (arch, training) in EXAMPLE_MODELS.items():
        layers = ARCH_LAYERS[arch]
        for condition in conditions:
            penalty = snr_penalty.get(condition, 0.5)
            refs = (("original", -0.1), ("copy_synthesis", 0.0))
            entries = [(layer, (i + 1) / len(layers)) for i, layer in enumerate(layers)]
            for layer, depth in list(refs) + entries:
                for metric in _METRICS:
                    depth_ = max(depth, 0.0)
                    value, half = _metric_value(
                        rng, metric, depth_, penalty, training == "robust"
                    )
                    row = dict(
                        model=model,
                        arch=arch,
                        training=training,
                        layer=layer,
                        condition=condition,
                        metric=metric,
                        value=f"{value:.6f}",
                        ci_low=f"{max(value - half, 0.0):.6f}",
                        ci_high=f"{value + half:.6f}",
                        n=40,
                    )
                    if (model, layer, condition) in missing:
                        continue
                    if (model, layer, condition) in nan_cells:
                        row.update(value="nan", ci_low="", ci_high="", n=0)
                    metric_rows.append(row)
    _write_csv(out_dir / "metrics.csv", METRICS_FIELDS, metric_rows)

    asr_rows = []
    for model, (arch, training) in EXAMPLE_MODELS.items():
        for condition in conditions:
            wer = 25 + 20 * snr_penalty.get(condition, 0.5) + rng.normal(0, 2)
            asr_rows.append(
                dict(
                    model=model,
                    arch=arch,
                    training=training,
                    condition=condition,
                    wer=f"{wer:.2f}",
                    cer=f"{wer / 2.5:.2f}",
                    n=40,
                )
            )
    _write_csv(out_dir / "asr_results.csv", ASR_FIELDS, asr_rows)

    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    sample_rows = []

    def wav(rel, freq):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        signal = 0.2 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(path, signal.astype(np.float32), sr)
        return rel

    for u in range(n_utts):
        utt, spk = f"spk{u % 2}-utt{u}", f"spk{u % 2}"
        base = dict(utt_id=utt, spk_id=spk, model="", layer="")
        sample_rows.append(
            dict(
                base,
                condition="clean",
                kind="original",
                path=wav(f"audio/{utt}/clean/original.wav", 220),
            )
        )
        for c, condition in enumerate(conditions):
            folder = f"audio/{utt}/{condition}"
            if condition != "clean":
                sample_rows.append(
                    dict(
                        base,
                        condition=condition,
                        kind="noise",
                        path=wav(f"{folder}/noise.wav", 900),
                    )
                )
                sample_rows.append(
                    dict(
                        base,
                        condition=condition,
                        kind="mixture",
                        path=wav(f"{folder}/mixture.wav", 500),
                    )
                )
            sample_rows.append(
                dict(
                    base,
                    condition=condition,
                    kind="copy_synthesis",
                    path=wav(f"{folder}/copy_synthesis.wav", 230 + c),
                )
            )
            for model, (arch, _) in EXAMPLE_MODELS.items():
                for i, layer in enumerate(ARCH_LAYERS[arch]):
                    rel = wav(f"{folder}/{model}/{layer}.wav", 240 + 20 * i + c)
                    sample_rows.append(
                        dict(
                            utt_id=utt,
                            spk_id=spk,
                            model=model,
                            layer=layer,
                            condition=condition,
                            kind="reconstruction",
                            path=rel,
                        )
                    )
    _write_csv(out_dir / "samples.csv", SAMPLES_FIELDS, sample_rows)
    return {
        "metrics": out_dir / "metrics.csv",
        "asr": out_dir / "asr_results.csv",
        "samples": out_dir / "samples.csv",
        "rows": metric_rows,
    }
