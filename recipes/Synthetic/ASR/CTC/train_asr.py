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

import json
import os
import sys

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    import torch
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.utils.distributed import if_main_process, run_on_main
except (ImportError, OSError) as error:
    from speechbrain_probe.environment import import_failure

    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.asr.brain import CTCBrain, make_ctc_dataset
from speechbrain_probe.asr.export import export_asr
from speechbrain_probe.asr.schedule import planned_steps
from speechbrain_probe.asr.tokenizer import train_tokenizer
from speechbrain_probe.asr.training import (
    intermediate_tokenizer,
    prepare_features,
    run_test_sets,
    shared_folder,
    train_order,
    unwrap,
)
from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.data.synthetic import build_corpus
from speechbrain_probe.extras import require_extra


def dataio_prepare(hparams, tokenizer, inter_tokenizer, output_frames):
    """Datasets of the splits: cached features and CTC targets.

    The main process computes (or loads) the feature caches, then the others
    load them; another recipe process on the same corpus (the demo runs two
    side by side) waits for the caches instead of writing them too.
    """
    manifests = {
        "train": hparams["train_csv"],
        "valid": hparams["valid_csv"],
        "clean": hparams["test_csv"],
        "snr20": hparams["test_snr20_csv"],
        "snr10": hparams["test_snr10_csv"],
        "snr0": hparams["test_snr0_csv"],
    }
    robust = hparams["training"] == "robust"
    settings = dict(
        manifests=manifests,
        mel_config=hparams["mel_config"],
        cache_folder=hparams["feature_cache"],
        max_train_utterances=hparams["max_train_utterances"],
        noise_folder=hparams["noise_folder"] if robust else None,
        noise_seed=hparams["noise_seed"],
    )
    data = {}
    with shared_folder(hparams["feature_cache"], "the feature caches"):
        run_on_main(
            lambda: data.update(prepare_features(**settings)),
            post_func=lambda: data.update(prepare_features(**settings)),
        )
    datasets, alignability = {}, {}
    for split, (rows, feats) in data.items():
        datasets[split], alignability[split] = make_ctc_dataset(
            rows,
            feats,
            tokenizer,
            output_frames,
            split,
            drop_unalignable=split == "train",
            inter_sp=inter_tokenizer if split == "train" else None,
        )
    return datasets, alignability


def main(argv=None):
    """``train_asr.py hparams/<arch>.yaml [--key=value ...]``."""
    hparams_file, run_opts, overrides = sb.parse_arguments(
        sys.argv[1:] if argv is None else argv
    )
    # what the settings need beyond the core, before anything is written
    require_extra("corpus")
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    if hparams["training"] not in ("baseline", "robust"):
        raise ValueError(
            f"training must be baseline or robust, not {hparams['training']!r}"
        )
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    torch.set_num_threads(int(hparams["num_threads"]))

    # the built-in corpus: built once (seeded), reused afterwards
    if not hparams["skip_prep"]:
        run_on_main(
            build_corpus,
            kwargs=dict(
                out_dir=hparams["data_folder"],
                seed=hparams["corpus_seed"],
                preset=hparams["corpus_preset"],
            ),
        )

    model = hparams["model"]
    if model.arch != hparams["arch"]:
        raise ValueError(
            f"arch is {hparams['arch']!r} but the model is a {model.arch}; "
            "set arch to match the model"
        )
    with shared_folder(hparams["tokenizer_folder"], "the tokenizers"):
        tokenizer = train_tokenizer(
            hparams["train_csv"],
            hparams["tokenizer_folder"],
            vocab_size=hparams["vocab_size"],
            model_type=hparams["token_type"],
        )
        inter_tokenizer = intermediate_tokenizer(
            hparams["train_csv"],
            hparams["tokenizer_folder"],
            hparams.get("inter_ctc_vocab_size"),
            hparams["token_type"],
            hparams["modules"].get("inter_ctc_lin"),
        )
    sp = tokenizer.sp
    if hparams["ctc_lin"].out_features != sp.vocab_size():
        raise ValueError(
            f"ctc_lin has {hparams['ctc_lin'].out_features} outputs but the tokenizer "
            f"has {sp.vocab_size()} units; set vocab_size in the hparams to "
            f"{sp.vocab_size()}"
        )

    datasets, alignability = dataio_prepare(
        hparams, sp, inter_tokenizer, model.output_frames
    )
    if if_main_process():
        atomic_write_text(
            os.path.join(hparams["output_folder"], "ctc_alignability.json"),
            json.dumps(
                {"arch": model.arch, "downsample": model.downsample, **alignability},
                indent=1,
            ),
        )
    train_set, train_opts, sortagrad = train_order(
        datasets["train"],
        hparams["train_dataloader_opts"],
        hparams["sorting"],
        sortagrad_epochs=hparams["sortagrad_epochs"],
        seed=hparams["seed"],
    )
    valid_set = datasets["valid"].filtered_sorted(sort_key="duration")

    if hparams["lr_schedule"] is not None:
        hparams["lr_schedule"].total_steps = planned_steps(
            len(train_set),
            int(train_opts.get("batch_size", 1)),
            int(hparams["number_of_epochs"]),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
        )
        hparams["checkpointer"].add_recoverable("lr_schedule", hparams["lr_schedule"])

    asr_brain = CTCBrain(
        tokenizer=sp,
        epoch_counter=hparams["epoch_counter"],
        train_logger=hparams["train_logger"],
        blank_index=hparams["blank_index"],
        augment=hparams["augment"],
        augment_from_epoch=hparams["augment_from_epoch"],
        inter_ctc_layer=hparams["inter_ctc_layer"],
        inter_ctc_weight=hparams["inter_ctc_weight"],
        inter_ctc_epochs=hparams["inter_ctc_epochs"],
        lr_schedule=hparams["lr_schedule"],
        lr_annealing=hparams["lr_annealing"],
        timer=hparams["timer"],
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    if sortagrad is not None:
        asr_brain.train_sampler = sortagrad  # so that Brain calls its set_epoch
    asr_brain.fit(
        hparams["epoch_counter"],
        train_set,
        valid_set,
        train_loader_kwargs=train_opts,
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )

    # every test condition, with the best (lowest valid CER) checkpoint
    results = run_test_sets(
        asr_brain,
        datasets,
        hparams["valid_dataloader_opts"],
        hparams["model_name"],
        model.arch,
        hparams["training"],
        hparams["output_folder"],
    )
    run_on_main(
        export_asr,
        kwargs=dict(
            out_dir=hparams["export_folder"],
            model=unwrap(asr_brain.modules.model),
            ctc_lin=unwrap(asr_brain.modules.ctc_lin),
            normalize=asr_brain.modules.normalize,
            tokenizer_model=tokenizer.prefix_model_file + ".model",
            mel_config=hparams["mel_config"],
            blank_index=hparams["blank_index"],
        ),
    )
    return asr_brain, results


if __name__ == "__main__":
    main()
