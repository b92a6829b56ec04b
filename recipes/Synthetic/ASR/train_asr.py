#!/usr/bin/env python3
"""Train a CTC ASR model (VGG-LSTM or pure-BLSTM, baseline or noise-robust),
test it on the clean and noisy test sets and export it for EncoderASR.

Usage (from the repository root)::

    python recipes/Synthetic/ASR/train_asr.py recipes/Synthetic/ASR/hparams/vgg_lstm.yaml
    torchrun --nproc_per_node=2 recipes/Synthetic/ASR/train_asr.py \
        recipes/Synthetic/ASR/hparams/blstm.yaml --distributed_backend=gloo

Re-running the same command after a kill resumes from the last checkpoint
(saved every ``ckpt_interval_minutes`` and at each epoch end). Outputs in
``<output_folder>``: ``train_log.txt``, ``asr_results.csv``,
``ctc_alignability.json``, ``train_time.json``, ``export/``.
"""

import sys

from speechbrain_probe.environment import check_environment

check_environment()  # before speechbrain and torchaudio load: a broken install stops here

from speechbrain_probe.asr.recipe import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
