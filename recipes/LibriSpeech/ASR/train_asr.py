#!/usr/bin/env python3
"""Train a CTC ASR model on LibriSpeech train-clean-100 at the paper's sizes
(VGG-LSTM or pure-BLSTM, baseline or noise-robust with MUSAN), test it on
test-clean and its noisy copies, and export it for EncoderASR.

Usage (from the repository root; LibriSpeech and MUSAN extracted locally)::

    python recipes/LibriSpeech/ASR/train_asr.py recipes/LibriSpeech/ASR/hparams/vgg_lstm.yaml \
        --librispeech_folder=/data/LibriSpeech --musan_folder=/data/musan

Preparation (CSV manifests, MUSAN split with babble, noisy test sets at 20,
10 and 0 dB) runs once on the main process and is reused afterwards. The rest
is the shared recipe of ``speechbrain_probe.asr.recipe`` (resumable, DDP with
``torchrun``).
"""

import sys

from speechbrain_probe.environment import check_environment

check_environment()  # before speechbrain and torchaudio load: a broken install stops here

from speechbrain_probe.asr.recipe import main  # noqa: E402


def prepare(hparams):
    """LibriSpeech + MUSAN manifests and the noisy test sets, in ``csv_folder``."""
    from speechbrain_probe.data.librispeech import prepare_librispeech
    from speechbrain_probe.data.musan import prepare_musan
    from speechbrain_probe.data.noisy import build_noisy_test_sets

    csv_folder = hparams["csv_folder"]
    prepare_librispeech(
        hparams["librispeech_folder"],
        csv_folder,
        splits=[hparams["train_split"], hparams["valid_split"], hparams["test_split"]],
    )
    prepare_musan(hparams["musan_folder"], csv_folder, num_babble=hparams["num_babble"])
    build_noisy_test_sets(
        hparams["test_csv"],
        f"{csv_folder}/noise_test.csv",
        csv_folder,
        snrs=(20, 10, 0),
        seed=hparams["noise_seed"],
    )


if __name__ == "__main__":
    main(sys.argv[1:], prepare=prepare)
