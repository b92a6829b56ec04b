#!/usr/bin/env python3
"""Recipe: a CTC ASR model on the built-in synthetic corpus, to be probed later.

VGG-LSTM or pure-BLSTM (the hparams file), baseline or noise-robust
(``--training=robust``: every training utterance is used clean and mixed with
a training noise). The model is trained, tested on the clean and noisy
(20/10/5/0 dB) test sets with its best checkpoint (lowest valid CER), and
exported for :func:`speechbrain_probe.frozen.load.load_asr`.

Run from this folder::

    python train_asr.py hparams/vgg_lstm.yaml
    python train_asr.py hparams/blstm.yaml --training=robust --number_of_epochs=2
    torchrun --nproc_per_node=2 train_asr.py hparams/blstm.yaml --distributed_backend=gloo

The first run builds the corpus into ``data_folder`` (about a minute); a run
that is stopped resumes from its last checkpoint when the same command is run
again. Outputs in ``output_folder``: ``train_log.txt``, ``asr_results.csv``,
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
from speechbrain_probe.data.synthetic import build_corpus
from speechbrain_probe.extras import require_extra


def main(argv=None):
    """``train_asr.py hparams/<arch>.yaml [--key=value ...]``."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    # what the settings need beyond the core, before anything is written
    require_extra("corpus")
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    training.check_hparams(hparams)
    sb.create_experiment_directory(hparams["output_folder"], hparams_file, overrides)
    torch.set_num_threads(int(hparams["num_threads"]))
    # the built-in corpus: built once (seeded), reused afterwards
    if not hparams["skip_prep"]:
        settings = {"seed": hparams["corpus_seed"], "preset": hparams["corpus_preset"]}
        run_on_main(build_corpus, args=[hparams["data_folder"]], kwargs=settings)

    # the tokenizers, then the cached features and CTC targets of every split
    datasets, tokenizer = training.dataio_prepare(hparams)
    asr_brain = training.fit_ctc_brain(hparams, run_opts, tokenizer, datasets)
    # every test condition, with the best (lowest valid CER) checkpoint
    training.test_and_export(asr_brain, datasets, tokenizer, hparams)


if __name__ == "__main__":
    main()
