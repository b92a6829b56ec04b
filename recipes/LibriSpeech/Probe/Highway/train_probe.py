#!/usr/bin/env python3
"""Recipe: probes that reconstruct speech from the hidden layers of a frozen
LibriSpeech ASR.

A non-contextual Highway probe per layer (Li, Yuan, Lee, ICASSP 2020) learns
to map the layer's frames back to the input's mel spectrogram; all probes of
one ASR train in one pass (one frozen ASR forward per batch feeds them all).
The ASR is a model that ``../../ASR/CTC`` exported (the default,
``<asr_folder>/<arch>_<training>/export``), a Hugging Face model directory or
a SpeechBrain hub id (``--asr_source``). Training data: a seeded subset of
train-clean-100, half of it mixed with MUSAN's training noises.

Run from this folder, once the ASR it probes exists::

    python train_probe.py hparams/all_layers.yaml \
        --librispeech_folder=/data/LibriSpeech --musan_folder=/data/musan
    python train_probe.py hparams/all_layers.yaml --arch=blstm --training=robust \
        --librispeech_folder=/data/LibriSpeech --musan_folder=/data/musan

Preparation (the manifests of train-clean-100, dev-clean and MUSAN, with
babble) runs once on the main process and is reused; a run that is stopped
resumes from its last checkpoint when the same command is run again. Each
probe stops early on its own validation L1 (``early_stopping_patience``) and
keeps its best state; ``target_mel`` chooses the mel it reconstructs. Outputs
in ``output_folder``: ``train_log.txt``, the probes' checkpoints in ``save/``
(what ``evaluate.py`` loads) and ``valid_l1.csv`` (per-layer validation L1 of
the kept probes, with their best epoch and step and whether they stopped
early).
"""

from speechbrain_probe.environment import import_failure

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    import torch
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.utils.distributed import run_on_main
except (ImportError, OSError) as error:
    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.data.librispeech_study import prepare_probe_data
from speechbrain_probe.devices import run_device
from speechbrain_probe.extras import extras_for_hparams, require_extra
from speechbrain_probe.probe import training


def main(argv=None):
    """``train_probe.py hparams/<file>.yaml [--key=value ...]``; returns the
    validation L1 of each layer's kept (best) probe."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    # what the settings need beyond the core, before anything is written
    require_extra(*extras_for_hparams(hparams_file, overrides))
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hparams_file, overrides)
    if hparams["num_threads"]:
        torch.set_num_threads(int(hparams["num_threads"]))
    # the ASR first: a missing one is reported before minutes of preparation
    asr = training.load_frozen_asr(
        hparams,
        run_device(run_opts),
        "recipes/LibriSpeech/ASR/CTC",
        "--librispeech_folder=... --musan_folder=... ",
    )
    # the manifests: prepared once, reused afterwards
    if not hparams["skip_prep"]:
        run_on_main(
            prepare_probe_data,
            args=[
                hparams["librispeech_folder"],
                hparams["musan_folder"],
                hparams["csv_folder"],
            ],
            kwargs=dict(
                train_split=hparams["train_split"],
                valid_split=hparams["valid_split"],
                num_babble=hparams["num_babble"],
                musan_seed=hparams["musan_seed"],
            ),
        )

    layers = training.probe_layers(hparams, asr)
    train_data, valid_data = training.dataio_prepare(
        hparams,
        {"train": hparams["train_csv"], "valid": hparams["valid_csv"]},
        hint="run with skip_prep: False (and --librispeech_folder, --musan_folder) "
        "to prepare it",
    )
    return training.train_probes(
        asr, layers, hparams, run_opts, train_data, valid_data, hparams["output_folder"]
    )


if __name__ == "__main__":
    main()
