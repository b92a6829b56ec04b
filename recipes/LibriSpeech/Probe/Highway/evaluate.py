#!/usr/bin/env python3
"""Recipe: measure what each probed layer of the LibriSpeech ASR models keeps,
and write the report.

For every model of the hparams file (an ASR of ``../../ASR/CTC`` and its
probes from ``train_probe.py``), every probed layer and every input condition
(test-clean clean, and mixed with MUSAN's held-out noises at 20/10/0 dB), a
seeded subset of test-clean is reconstructed from the layer (Griffin-Lim of
the probe's mel) and scored: speaker verification EER with GE2E (and ECAPA,
given ``ecapa_source``) on a balanced trial list, STOI and PESQ against the
exact clean reference. The report (tables, figures, ``report.html`` with a
listening page) goes to ``output_folder``.

Run from this folder, once the ASR models and their probes exist::

    python evaluate.py hparams/evaluate.yaml \\
        --librispeech_folder=/data/LibriSpeech --musan_folder=/data/musan
    python evaluate.py hparams/evaluate.yaml --use_models=[vgg_lstm_baseline] ...

Preparation (test-clean's manifest and its noisy copies) runs once on the
main process and is reused. Finished audio and scored cells are kept: a
stopped run resumes. ``--debug`` scores two utterances per speaker with a
short bootstrap (a check that everything runs, not a result).
"""

import logging
import sys

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.utils.distributed import run_on_main
except (ImportError, OSError) as error:
    from speechbrain_probe.environment import import_failure

    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.data.librispeech_study import (
    prepare_test_conditions,
)
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


def chosen_verifiers(hparams) -> dict:
    """GE2E (resemblyzer's shipped model), and ECAPA when ``ecapa_source`` is set."""
    verifiers = {"ge2e": None}
    if hparams["ecapa_source"]:
        verifiers["ecapa"] = str(hparams["ecapa_source"])
    return verifiers


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
    # test-clean and its noisy copies: prepared once, reused afterwards
    if not hparams["skip_prep"]:
        run_on_main(
            prepare_test_conditions,
            kwargs=dict(
                librispeech_folder=hparams["librispeech_folder"],
                musan_folder=hparams["musan_folder"],
                save_folder=hparams["csv_folder"],
                test_split=hparams["test_split"],
                snrs=hparams["snrs"],
                num_babble=hparams["num_babble"],
                musan_seed=hparams["musan_seed"],
                noise_seed=hparams["noise_seed"],
            ),
        )
    utts_per_speaker = hparams["utts_per_speaker"]
    pesq_per_speaker = hparams["pesq_per_speaker"]
    n_boot = hparams["n_boot"]
    if run_opts.get("debug"):
        # two per speaker: the fewest that make a same-speaker trial
        utts_per_speaker, pesq_per_speaker, n_boot = 2, 1, min(n_boot, 50)
        logger.info("debug: 2 utterances per speaker, %d bootstrap samples", n_boot)
    study = run_study(
        data_folder=hparams["csv_folder"],
        output_folder=hparams["output_folder"],
        models=models,
        conditions=hparams["conditions"],
        utts_per_speaker=utts_per_speaker,
        verifiers=chosen_verifiers(hparams),
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
