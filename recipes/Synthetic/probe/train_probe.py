#!/usr/bin/env python3
"""Train probes that reconstruct speech from hidden layers of a frozen ASR.

    python train_probe.py hparams/blstm3.yaml
    python train_probe.py hparams/vgg_lstm/cnn1.yaml --asr_source=<export dir>
    python train_probe.py hparams/all_layers.yaml --arch=blstm --training=robust

Writes checkpoints and ``valid_l1.csv`` (per-layer validation L1) under
``output_folder``. The logic lives in :mod:`speechbrain_probe.probe.recipe`.
"""

from speechbrain_probe.environment import check_environment

check_environment()  # before speechbrain and torchaudio load: a broken install stops here

from speechbrain_probe.probe.recipe import main  # noqa: E402

if __name__ == "__main__":
    main()
