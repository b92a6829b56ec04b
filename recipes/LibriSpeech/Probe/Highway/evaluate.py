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

import sys

from speechbrain_probe.environment import import_failure

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.utils.distributed import run_on_main
except (ImportError, OSError) as error:
    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.data.librispeech_study import prepare_test_conditions
from speechbrain_probe.study_recipe import (
    chosen_models,
    chosen_verifiers,
    study_and_report,
)


def main(argv=None) -> int:
    """``evaluate.py hparams/evaluate.yaml [--key=value ...]``."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hparams_file, overrides)
    models = chosen_models(hparams)
    # test-clean and its noisy copies: prepared once, reused afterwards
    if not hparams["skip_prep"]:
        run_on_main(
            prepare_test_conditions,
            args=[
                hparams["librispeech_folder"],
                hparams["musan_folder"],
                hparams["csv_folder"],
                hparams["test_split"],
            ],
            kwargs=dict(
                snrs=hparams["snrs"],
                num_babble=hparams["num_babble"],
                musan_seed=hparams["musan_seed"],
                noise_seed=hparams["noise_seed"],
            ),
        )
    study_and_report(
        hparams, run_opts, models, hparams["csv_folder"], chosen_verifiers(hparams)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
