"""``evaluate.py hparams/<study>.yaml``: the evaluation recipe's logic.

The recipe script stays thin; this module reads the HyperPyYAML file (with
command-line overrides, as SpeechBrain recipes do) and calls
:func:`~speechbrain_probe.evaluation.study.run_study`.
"""

from __future__ import annotations

import logging
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from speechbrain_probe.evaluation.study import ModelSpec, run_study

__all__ = ["main", "models_from_hparams"]


def models_from_hparams(hparams: dict) -> list[ModelSpec]:
    """The ``models:`` mapping of a study file as :class:`ModelSpec` objects,
    keeping only those listed in ``use_models`` (all when it is null)."""
    models = hparams.get("models") or {}
    if not models:
        raise ValueError("the study file lists no models: add a `models:` mapping")
    chosen = hparams.get("use_models") or list(models)
    unknown = [m for m in chosen if m not in models]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; available: {', '.join(models)}")
    return [ModelSpec.from_dict(name, models[name]) for name in chosen]


def main(argv=None) -> int:
    """Parse ``hparams_file [--key=value ...]`` and run the study."""
    argv = sys.argv[1:] if argv is None else argv
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    # numba (librosa, inside resemblyzer) logs every compilation step and
    # matplotlib every font it scores at DEBUG level into the experiment log:
    # a thousand lines of noise per run
    for noisy in ("numba", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    device = run_opts.get("device", "cpu")
    run_study(
        data_folder=hparams["data_folder"],
        output_folder=hparams["output_folder"],
        models=models_from_hparams(hparams),
        conditions=hparams.get("conditions", ["clean", "snr20", "snr10", "snr0"]),
        utts_per_speaker=hparams.get("utts_per_speaker"),
        verifiers=hparams.get("verifiers") or {"ge2e": None},
        griffin_lim_iters=hparams.get("griffin_lim_iters", 30),
        n_boot=hparams.get("n_boot", 1000),
        n_jobs=hparams.get("n_jobs"),
        batch_size=hparams.get("batch_size", 8),
        device=device,
        seed=hparams.get("seed", 0),
        title=hparams.get("title", "What does a network layer hear?"),
        note=hparams.get("note"),
        num_threads=hparams.get("num_threads", 1),
        pesq_per_speaker=hparams.get("pesq_per_speaker"),
    )
    return 0
