#!/usr/bin/env python3
"""Recipe: a CTC ASR model on LibriSpeech train-clean-100 at the paper's sizes.

VGG-LSTM or pure-BLSTM (the hparams file), baseline or noise-robust with
MUSAN (``--training=robust``). The model is trained, tested on test-clean and
its noisy copies (20/10/0 dB) with its best checkpoint (lowest valid CER),
and exported for :func:`speechbrain_probe.frozen.load.load_asr`.

Run from this folder, with LibriSpeech and MUSAN extracted locally::

    python train_asr.py hparams/vgg_lstm.yaml \
        --librispeech_folder=/data/LibriSpeech --musan_folder=/data/musan
    python train_asr.py hparams/blstm.yaml --training=robust ...

Preparation (CSV manifests, the MUSAN split with babble, the noisy test sets)
runs once on the main process and is reused afterwards; a run that is
stopped resumes from its last checkpoint when the same command is run again.
Outputs in ``output_folder``: ``train_log.txt``, ``asr_results.csv``,
``wer_<condition>.txt``, ``ctc_alignability.json``, ``train_time.json`` and
``export/`` (what the probe recipe loads).
"""

from speechbrain_probe.environment import import_failure

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    import torch
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.utils.distributed import run_on_main
except (ImportError, OSError) as error:
    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.asr import training
from speechbrain_probe.data.librispeech import prepare_librispeech
from speechbrain_probe.data.musan import prepare_musan
from speechbrain_probe.data.noisy import build_noisy_test_sets


def prepare_data(hparams):
    """LibriSpeech and MUSAN manifests and the noisy test sets, in ``csv_folder``."""
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


def main(argv=None):
    """``train_asr.py hparams/<arch>.yaml [--key=value ...]``."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    training.check_hparams(hparams)
    sb.create_experiment_directory(hparams["output_folder"], hparams_file, overrides)
    torch.set_num_threads(int(hparams["num_threads"]))
    if not hparams["skip_prep"]:
        run_on_main(prepare_data, kwargs={"hparams": hparams})

    # the tokenizers, then the cached features and CTC targets of every split
    datasets, tokenizer = training.dataio_prepare(hparams)
    asr_brain = training.fit_ctc_brain(hparams, run_opts, tokenizer, datasets)
    # every test condition, with the best (lowest valid CER) checkpoint
    training.test_and_export(asr_brain, datasets, tokenizer, hparams)


if __name__ == "__main__":
    main()
