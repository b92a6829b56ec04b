#!/usr/bin/env python3
"""Evaluate every (model x layer x condition) of the built-in corpus study.

Reconstructs the unseen test speakers' utterances from every probed layer of
every ASR model, at clean input and 20/10/0 dB, scores speaker EER (GE2E,
ECAPA), STOI and PESQ, and writes the tables, figures and listening page.
Resumable: finished audio and cells are kept.

    python recipes/Synthetic/evaluate/evaluate.py \
        recipes/Synthetic/evaluate/hparams/evaluate.yaml [--utts_per_speaker=8]
"""

import sys

from speechbrain_probe.environment import check_environment

check_environment()  # before speechbrain and torchaudio load: a broken install stops here

from speechbrain_probe.evaluation.recipe import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
