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

import sys

from speechbrain_probe.environment import import_failure

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml
except (ImportError, OSError) as error:
    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.study_recipe import chosen_models, study_and_report


def main(argv=None) -> int:
    """``evaluate.py hparams/evaluate.yaml [--key=value ...]``."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hparams_file, overrides)
    models = chosen_models(hparams)
    verifiers = hparams["verifiers"] or {"ge2e": None}
    study_and_report(hparams, run_opts, models, hparams["data_folder"], verifiers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
