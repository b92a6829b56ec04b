#!/usr/bin/env python3
"""Recipe: measure what each probed layer keeps, and write the report.

For every model of the hparams file (an ASR and its trained probes), every
probed layer and every input condition (clean, 20/10/5/0 dB), the test
utterances of the unseen speakers are reconstructed from the layer
(Griffin-Lim of the probe's mel) and scored: speaker verification EER with
GE2E and ECAPA on a fixed trial list, STOI and PESQ against the clean input.
The report (tables, figures, ``report.html`` with a listening page) goes to
``output_folder``.

Run from this folder, once the ASR models, the ECAPA verifier and the probes
exist (``../../ASR/CTC``, ``../../SpeakerRec/ECAPA``, ``train_probe.py
hparams/all_layers.yaml`` per model)::

    python evaluate.py hparams/evaluate.yaml
    python evaluate.py hparams/evaluate.yaml --use_models=[vgg_lstm_baseline]

Finished audio and scored cells are kept: a stopped run resumes. ``--debug``
scores two utterances per speaker with a short bootstrap (a check that
everything runs, not a result).
"""

import logging
import sys

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml
except (ImportError, OSError) as error:
    from speechbrain_probe.environment import import_failure

    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.devices import run_device
from speechbrain_probe.evaluation.study import ModelSpec, run_study
from speechbrain_probe.report import build_report

logger = logging.getLogger(__name__)


def chosen_models(hparams) -> list:
    """The ``models`` of the hparams that ``use_models`` lists (all when null)."""
    models = hparams["models"] or {}
    if not models:
        raise ValueError("the hparams list no models: add a `models:` mapping")
    chosen = hparams["use_models"] or list(models)
    unknown = [m for m in chosen if m not in models]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; available: {', '.join(models)}")
    return [ModelSpec.from_dict(name, models[name]) for name in chosen]


def main(argv=None) -> int:
    """``evaluate.py hparams/evaluate.yaml [--key=value ...]``."""
    hparams_file, run_opts, overrides = sb.parse_arguments(
        sys.argv[1:] if argv is None else argv
    )
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    models = chosen_models(hparams)
    utts_per_speaker = hparams["utts_per_speaker"]
    pesq_per_speaker = hparams["pesq_per_speaker"]
    n_boot = hparams["n_boot"]
    if run_opts.get("debug"):
        # two per speaker: the fewest that make a same-speaker trial
        utts_per_speaker, pesq_per_speaker, n_boot = 2, 1, min(n_boot, 50)
        logger.info("debug: 2 utterances per speaker, %d bootstrap samples", n_boot)
    study = run_study(
        data_folder=hparams["data_folder"],
        output_folder=hparams["output_folder"],
        models=models,
        conditions=hparams["conditions"],
        utts_per_speaker=utts_per_speaker,
        verifiers=hparams["verifiers"] or {"ge2e": None},
        griffin_lim_iters=hparams["griffin_lim_iters"],
        n_boot=n_boot,
        n_jobs=hparams["n_jobs"],
        batch_size=hparams["batch_size"],
        device=run_device(run_opts),
        seed=hparams["seed"],
        num_threads=hparams["num_threads"],
        pesq_per_speaker=pesq_per_speaker,
        negatives_per_positive=hparams["negatives_per_positive"],
    )
    page = build_report(
        study, title=hparams["title"], note=hparams["note"] or "", verbose=False
    )
    print(f"report: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
