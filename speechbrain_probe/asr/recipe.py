"""The body of ``recipes/*/ASR/train_asr.py``: prepare, train, test, export.

A recipe script only parses its arguments and calls :func:`main`; everything
here is driven by the recipe's HyperPyYAML (see
``recipes/Synthetic/ASR/hparams/vgg_lstm.yaml`` for the keys).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_probe.data.locks import folder_lock

from .brain import (
    CTCBrain,
    SortaGradSampler,
    make_ctc_dataset,
    write_asr_results,
)
from .data import (
    compute_feature_cache,
    make_noisy_copies,
    read_checked_manifest,
    read_noise_bank,
)
from .export import export_asr
from .schedule import planned_steps
from .tokenizer import train_tokenizer

__all__ = ["main", "prepare_features", "CONDITIONS"]

logger = logging.getLogger(__name__)

#: Test conditions and the manifest key in the hparams that holds each.
CONDITIONS = {
    "clean": "test_csv",
    "snr20": "test_snr20_csv",
    "snr10": "test_snr10_csv",
    "snr0": "test_snr0_csv",
}


def prepare_features(hparams: dict) -> dict:
    """Check manifests and compute (or reuse) the feature caches.

    Returns a dict split -> (rows, feats); the training split includes the
    noisy copies when ``noise_robust`` is true.
    """
    mel = hparams["mel_config"]
    cache = hparams["feature_cache"]
    out = {}
    train_rows = read_checked_manifest(hparams["train_csv"])
    limit = hparams.get("max_train_utterances")
    if limit:
        train_rows = train_rows[: int(limit)]
    feats = compute_feature_cache(train_rows, cache, "train", mel)
    rows = list(train_rows)
    if hparams.get("noise_robust", False):
        bank = read_noise_bank(hparams["noise_folder"], "train")
        noisy_rows, audio_fn = make_noisy_copies(
            train_rows, bank, seed=hparams["noise_seed"]
        )
        noisy = compute_feature_cache(
            noisy_rows,
            cache,
            "train_noisy",
            mel,
            audio_fn=audio_fn,
            extra_key=f"seed={hparams['noise_seed']}",
        )
        feats = {**feats, **noisy}
        rows += noisy_rows
    out["train"] = (rows, feats)
    valid_rows = read_checked_manifest(hparams["valid_csv"])
    out["valid"] = (valid_rows, compute_feature_cache(valid_rows, cache, "valid", mel))
    for cond, key in CONDITIONS.items():
        path = hparams.get(key)
        if path:
            rows_c = read_checked_manifest(path)
            out[cond] = (
                rows_c,
                compute_feature_cache(rows_c, cache, f"test_{cond}", mel),
            )
    return out


def _load_features(hparams: dict, into: dict) -> None:
    """:func:`prepare_features` into ``into`` (returns None for run_on_main)."""
    into.update(prepare_features(hparams))


def main(argv=None, prepare=None):
    """Run a CTC ASR recipe: ``train_asr.py hparams.yaml [--key=value ...]``.

    Arguments
    ---------
    argv : list of str
        Command-line arguments (default ``sys.argv[1:]``).
    prepare : callable, optional
        ``prepare(hparams)`` run on the main process before anything reads
        the manifests (e.g. LibriSpeech/MUSAN preparation).
    """
    argv = sys.argv[1:] if argv is None else argv
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    torch.set_num_threads(int(hparams.get("num_threads", torch.get_num_threads())))
    if prepare is not None:
        run_on_main(prepare, kwargs={"hparams": hparams})

    # tokenizer on the training transcripts (main process trains, all load);
    # another recipe process sharing the folder (the demo's parallel stages)
    # waits for it instead of writing the same files at the same time
    with _shared(hparams["tokenizer_folder"], "the tokenizers"):
        tok = train_tokenizer(
            hparams["train_csv"],
            hparams["tokenizer_folder"],
            vocab_size=hparams.get("vocab_size"),
            model_type=hparams.get("token_type", "unigram"),
        )
        inter_sp = _inter_tokenizer(hparams)
    sp = tok.sp
    model = hparams["model"]
    if hparams["ctc_lin"].out_features != sp.vocab_size():
        raise ValueError(
            f"ctc_lin has {hparams['ctc_lin'].out_features} outputs but the tokenizer "
            f"has {sp.vocab_size()} units; set vocab_size in the hparams to "
            f"{sp.vocab_size()}"
        )
    hparams["tokenizer"] = sp

    # the main process computes (or loads) the caches, then the others load
    # them: each process reads them once, and nothing is broadcast (the value
    # run_on_main returns is sent to every process)
    data = {}
    with _shared(hparams["feature_cache"], "the feature caches"):
        run_on_main(
            _load_features,
            args=[hparams, data],
            post_func=_load_features,
            post_args=[hparams, data],
        )

    summaries = {}
    datasets = {}
    for split, (rows, feats) in data.items():
        ds, summary = make_ctc_dataset(
            rows,
            feats,
            sp,
            model.output_frames,
            split,
            drop_unalignable=split == "train",
            inter_sp=inter_sp if split == "train" else None,
        )
        datasets[split] = ds
        summaries[split] = summary
    if sb.utils.distributed.if_main_process():
        from speechbrain_probe.data.manifest import atomic_write_text

        atomic_write_text(
            os.path.join(hparams["output_folder"], "ctc_alignability.json"),
            json.dumps(
                {"arch": model.arch, "downsample": model.downsample, **summaries},
                indent=1,
            ),
        )
    sort = hparams.get("sorting", "random")
    sortagrad = None
    train_set = datasets["train"]
    train_opts = dict(hparams["train_dataloader_opts"])
    if sort in ("ascending", "descending"):
        train_set = train_set.filtered_sorted(
            sort_key="duration", reverse=sort == "descending"
        )
        train_opts["shuffle"] = False
    elif sort == "sortagrad":
        train_opts.pop("shuffle", None)
        sortagrad = SortaGradSampler(
            [train_set.data[i]["duration"] for i in train_set.data_ids],
            sorted_epochs=int(hparams.get("sortagrad_epochs", 1)),
            seed=int(hparams.get("seed", 0)),
            # later epochs: shuffled batches of similar length (less padding)
            batch_size=int(train_opts.get("batch_size", 1))
            if hparams.get("length_bucketing", True)
            else None,
        )
        train_opts["sampler"] = sortagrad
    elif sort != "random":
        raise ValueError(
            f"sorting must be random, sortagrad, ascending or descending, not {sort!r}"
        )
    valid_set = datasets["valid"].filtered_sorted(sort_key="duration")

    schedule = hparams.get("lr_schedule")
    if schedule is not None:
        schedule.total_steps = planned_steps(
            len(train_set),
            int(train_opts.get("batch_size", 1)),
            int(hparams["number_of_epochs"]),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
        )
        hparams["checkpointer"].add_recoverable("lr_schedule", schedule)

    brain = CTCBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    if sortagrad is not None:
        brain.train_sampler = sortagrad  # so that Brain calls its set_epoch
    brain.fit(
        hparams["epoch_counter"],
        train_set,
        valid_set,
        train_loader_kwargs=train_opts,
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )

    # test on every condition with the best (lowest valid CER) checkpoint
    results = []
    for cond in CONDITIONS:
        if cond not in datasets:
            continue
        ds = datasets[cond].filtered_sorted(sort_key="duration")
        brain.evaluate(
            ds,
            min_key="CER",
            test_loader_kwargs=hparams["valid_dataloader_opts"],
        )
        results.append(
            dict(
                model=hparams["model_name"],
                arch=model.arch,
                training="robust" if hparams.get("noise_robust") else "baseline",
                condition=cond,
                wer=brain.last_stats["WER"],
                cer=brain.last_stats["CER"],
                n=len(brain.cer_metric.scores),
            )
        )
        if sb.utils.distributed.if_main_process():
            with open(
                os.path.join(hparams["output_folder"], f"wer_{cond}.txt"), "w"
            ) as w:
                brain.wer_metric.write_stats(w)
    if sb.utils.distributed.if_main_process():
        if results:
            write_asr_results(
                os.path.join(hparams["output_folder"], "asr_results.csv"), results
            )
        minutes = hparams["timer"].seconds / 60.0
        with open(os.path.join(hparams["output_folder"], "train_time.json"), "w") as f:
            json.dump({"train_minutes": minutes}, f)
        logger.info("training took %.2f minutes (epochs only)", minutes)
        for r in results:
            logger.info(
                "%s %s: WER %.2f CER %.2f (n=%d)",
                r["model"],
                r["condition"],
                r["wer"],
                r["cer"],
                r["n"],
            )
    run_on_main(
        export_asr,
        kwargs=dict(
            out_dir=hparams["export_folder"],
            model=_unwrap(brain.modules.model),
            ctc_lin=_unwrap(brain.modules.ctc_lin),
            normalize=brain.modules.normalize,
            tokenizer_model=tok.prefix_model_file + ".model",
            mel_config=hparams["mel_config"],
            blank_index=hparams["blank_index"],
        ),
    )
    return brain, results


def _shared(folder, what: str):
    """:func:`folder_lock` for a single-process run; a DDP job's ranks are
    already ordered by ``run_on_main`` (and would deadlock on a lock held
    across its barrier)."""
    distributed = (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )
    return contextlib.nullcontext() if distributed else folder_lock(folder, what)


def _inter_tokenizer(hparams: dict):
    """The tokenizer of an intermediate CTC head with its own units, or None.

    ``inter_ctc_vocab_size`` (with an ``inter_ctc_lin`` module) gives the
    intermediate layer units of its own, e.g. ~characters on ``blstm2`` of the
    pure-LSTM (full frame rate) while its x8 top layer needs large subwords:
    hierarchical CTC, a training aid only (the exported model is unchanged).
    """
    size = hparams.get("inter_ctc_vocab_size")
    if not size:
        return None
    head = hparams["modules"].get("inter_ctc_lin")
    if head is None:
        raise ValueError(
            "inter_ctc_vocab_size is set but modules has no inter_ctc_lin; add "
            "a Linear(<layer dim>, inter_ctc_vocab_size) as modules.inter_ctc_lin"
        )
    tok = train_tokenizer(
        hparams["train_csv"],
        hparams["tokenizer_folder"],
        vocab_size=int(size),
        model_type=hparams.get("token_type", "unigram"),
    )
    if head.out_features != tok.sp.vocab_size():
        raise ValueError(
            f"inter_ctc_lin has {head.out_features} outputs but the intermediate "
            f"tokenizer has {tok.sp.vocab_size()} units; set inter_ctc_vocab_size "
            f"to {tok.sp.vocab_size()}"
        )
    return tok.sp


def _unwrap(module):
    """The plain module inside a DDP / DataParallel wrapper."""
    return getattr(module, "module", module)
