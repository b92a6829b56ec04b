#!/usr/bin/env python3
"""Recipe: probes that reconstruct speech from the hidden layers of a frozen ASR.

A non-contextual Highway probe per layer (Li, Yuan, Lee, ICASSP 2020) learns
to map the layer's frames back to the input's mel spectrogram; all probes of
one ASR train in one pass (one frozen ASR forward per batch feeds them all).
The ASR is any exported model of ``../../ASR/CTC`` (the default), a Hugging
Face model directory or a SpeechBrain hub id (``--asr_source``).

Run from this folder, once the ASR it probes exists::

    python train_probe.py hparams/blstm3.yaml
    python train_probe.py hparams/all_layers.yaml --arch=blstm --training=robust

Each probe stops early on its own validation L1 (``early_stopping_patience``)
and keeps its best state; ``target_mel`` chooses the mel it reconstructs
(``paper``: the ASR's own, for Griffin-Lim; ``hifigan``: the neural vocoder's).
A run that is stopped resumes from its last checkpoint when the same command
is run again. Outputs in ``output_folder``: ``train_log.txt``, the probes'
checkpoints in ``save/`` (what ``evaluate.py`` loads) and ``valid_l1.csv``
(per-layer validation L1 of the kept probes, with their best epoch and step
and whether they stopped early).
"""

from speechbrain_probe.environment import import_failure

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.utils.distributed import run_on_main
except (ImportError, OSError) as error:
    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.data.synthetic import build_corpus
from speechbrain_probe.devices import run_device
from speechbrain_probe.extras import extras_for_hparams, require_extra
from speechbrain_probe.probe import training


def main(argv=None):
    """``train_probe.py hparams/<file>.yaml [--key=value ...]``; returns the
    validation L1 of each layer's kept (best) probe."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    # what the settings need beyond the core, before anything is written
    require_extra("corpus", *extras_for_hparams(hparams_file, overrides))
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(hparams["output_folder"], hparams_file, overrides)
    # the ASR first: a missing one is reported before a minute of corpus building
    asr = training.load_frozen_asr(
        hparams, run_device(run_opts), "recipes/Synthetic/ASR/CTC"
    )
    # the built-in corpus: built once (seeded), reused afterwards
    if not hparams["skip_prep"]:
        settings = {"seed": hparams["corpus_seed"], "preset": hparams["corpus_preset"]}
        run_on_main(build_corpus, args=[hparams["data_folder"]], kwargs=settings)

    layers = training.probe_layers(hparams, asr)
    train_data, valid_data = training.dataio_prepare(
        hparams,
        {"train": hparams["train_csv"], "valid": hparams["valid_csv"]},
        replacements={"data_root": str(hparams["data_folder"])},
        hint="point data_folder at the built-in corpus (or another corpus with "
        "train.csv and dev.csv)",
    )
    return training.train_probes(
        asr, layers, hparams, run_opts, train_data, valid_data, hparams["output_folder"]
    )


if __name__ == "__main__":
    main()
