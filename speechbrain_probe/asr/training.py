"""The stages of the CTC ASR recipes that do not depend on a corpus.

A recipe script (``recipes/<Dataset>/ASR/CTC/train_asr.py``) prepares its
corpus, then runs these stages on its hparams: :func:`check_hparams` (before
anything is written), :func:`dataio_prepare` (the tokenizers, the feature
caches of the splits and their CTC datasets), :func:`fit_ctc_brain` (the
training order, SortaGrad or length buckets, and the fit) and
:func:`test_and_export`. The locks are safe under DDP (:func:`shared_folder`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os

import torch
from speechbrain.utils.distributed import if_main_process, run_on_main

from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.data.locks import folder_lock
from speechbrain_probe.result_rows import AsrResult, write_asr_results
from speechbrain_probe.vocabulary import CONDITIONS

from .brain import CTCBrain, SortaGradSampler, make_ctc_dataset
from .data import (
    compute_feature_cache,
    make_noisy_copies,
    read_checked_manifest,
    read_noise_bank,
)
from .export import export_asr
from .schedule import planned_steps
from .tokenizer import train_tokenizer

__all__ = [
    "check_hparams",
    "dataio_prepare",
    "fit_ctc_brain",
    "test_and_export",
    "prepare_features",
    "train_order",
    "shared_folder",
    "intermediate_tokenizer",
]

logger = logging.getLogger(__name__)


def prepare_features(
    manifests: dict,
    mel_config: dict,
    cache_folder,
    *,
    max_train_utterances: int | None = None,
    noise_folder=None,
    noise_seed: int = 0,
) -> dict:
    """Check the manifests and compute (or reuse) the feature caches.

    Arguments
    ---------
    manifests : dict
        Split -> manifest CSV (``train``, ``valid``, test conditions such as
        ``clean``, ``snr20``); a split whose manifest is None is skipped.
    mel_config : dict
        The MelConfig of the features.
    cache_folder : path
        Where the caches live (shared by the models of one corpus).
    max_train_utterances : int, optional
        Keep the first N training utterances.
    noise_folder : path, optional
        Noise bank of the noise-robust training: every training utterance is
        used clean and mixed with a training noise (seeded by ``noise_seed``).

    Returns
    -------
    dict
        Split -> ``(rows, features)``.
    """
    out = {}
    for split, manifest in manifests.items():
        if not manifest:
            continue
        rows = read_checked_manifest(manifest)
        if split == "train" and max_train_utterances:
            rows = rows[: int(max_train_utterances)]
        name = split if split in ("train", "valid") else f"test_{split}"
        feats = compute_feature_cache(rows, cache_folder, name, mel_config)
        if split == "train" and noise_folder is not None:
            bank = read_noise_bank(noise_folder, "train")
            noisy_rows, audio_fn = make_noisy_copies(rows, bank, seed=noise_seed)
            noisy = compute_feature_cache(
                noisy_rows,
                cache_folder,
                "train_noisy",
                mel_config,
                audio_fn=audio_fn,
                extra_key=f"seed={noise_seed}",
            )
            feats = {**feats, **noisy}
            rows = rows + noisy_rows
        out[split] = (rows, feats)
    return out


def train_order(
    train_set, loader_opts: dict, sorting: str, sortagrad_epochs=1, seed=0, world_size=1
):
    """The training set and loader options for an ordering of the utterances.

    ``random`` (shuffled), ``ascending`` / ``descending`` (by duration) or
    ``sortagrad`` (shortest first for ``sortagrad_epochs`` epochs, then
    shuffled batches of similar length).

    Under DDP with ``world_size`` processes, SpeechBrain hands process ``r``
    the items ``r, r + world_size, ...`` of the sampler's order, so the
    SortaGrad sampler groups ``batch_size * world_size`` utterances of similar
    length: every process then gets a batch of similar lengths from each group.

    Returns
    -------
    train_set, loader_opts, sampler
        ``sampler`` is the :class:`SortaGradSampler` (give it to the Brain as
        ``train_sampler`` so that its epoch follows the fit) or None.

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> ds = DynamicItemDataset({"a": {"duration": 2.0}, "b": {"duration": 1.0}})
    >>> _, opts, sampler = train_order(ds, {"batch_size": 1, "shuffle": True}, "sortagrad")
    >>> "shuffle" in opts, list(sampler)
    (False, [1, 0])
    """
    opts = dict(loader_opts)
    if sorting in ("ascending", "descending"):
        train_set = train_set.filtered_sorted(
            sort_key="duration", reverse=sorting == "descending"
        )
        opts["shuffle"] = False
        return train_set, opts, None
    if sorting == "sortagrad":
        opts.pop("shuffle", None)
        sampler = SortaGradSampler(
            [train_set.data[i]["duration"] for i in train_set.data_ids],
            sorted_epochs=int(sortagrad_epochs),
            seed=int(seed),
            batch_size=int(opts.get("batch_size", 1)) * max(1, int(world_size)),
        )
        opts["sampler"] = sampler
        return train_set, opts, sampler
    if sorting != "random":
        raise ValueError(
            f"sorting must be random, sortagrad, ascending or descending, not {sorting!r}"
        )
    return train_set, opts, None


def shared_folder(folder, what: str):
    """:func:`~speechbrain_probe.data.locks.folder_lock` for a single-process
    run (the demo's parallel stages share the tokenizer and feature folders);
    a DDP job's ranks are already ordered by ``run_on_main`` (and would
    deadlock on a lock held across its barrier)."""
    distributed = (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )
    return contextlib.nullcontext() if distributed else folder_lock(folder, what)


def intermediate_tokenizer(train_csv, tokenizer_folder, vocab_size, token_type, head):
    """The tokenizer of an intermediate CTC head with units of its own, or None.

    ``vocab_size`` (with ``head``, a Linear) gives the intermediate layer its
    own units, e.g. ~characters on ``blstm4`` of the pure-LSTM while its x8
    top layer needs large subwords: hierarchical CTC, a training aid only
    (the exported model is unchanged).
    """
    if not vocab_size:
        return None
    if head is None:
        raise ValueError(
            "inter_ctc_vocab_size is set but modules has no inter_ctc_lin; add "
            "a Linear(<layer dim>, inter_ctc_vocab_size) as modules.inter_ctc_lin"
        )
    tok = train_tokenizer(
        train_csv, tokenizer_folder, vocab_size=int(vocab_size), model_type=token_type
    )
    if head.out_features != tok.sp.vocab_size():
        raise ValueError(
            f"inter_ctc_lin has {head.out_features} outputs but the intermediate "
            f"tokenizer has {tok.sp.vocab_size()} units; set inter_ctc_vocab_size "
            f"to {tok.sp.vocab_size()}"
        )
    return tok.sp


def check_hparams(hparams):
    """Refuse a ``training`` other than baseline or robust and an ``arch``
    that is not the model's, before anything is written.

    Example
    -------
    >>> class Model: arch = "blstm"
    >>> check_hparams({"training": "robust", "arch": "blstm", "model": Model()})
    >>> check_hparams({"training": "noisy", "arch": "blstm", "model": Model()})
    Traceback (most recent call last):
    ...
    ValueError: training must be baseline or robust, not 'noisy'
    """
    if hparams["training"] not in ("baseline", "robust"):
        raise ValueError(
            f"training must be baseline or robust, not {hparams['training']!r}"
        )
    if hparams["model"].arch != hparams["arch"]:
        raise ValueError(
            f"arch is {hparams['arch']!r} but the model is a {hparams['model'].arch}; "
            "set arch to match the model"
        )


def _tokenizers(hparams):
    """The tokenizer of the top CTC layer and, with units of its own, the
    intermediate head's (or None); trained once, reused afterwards."""
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
    units = tokenizer.sp.vocab_size()
    if hparams["ctc_lin"].out_features != units:
        raise ValueError(
            f"ctc_lin has {hparams['ctc_lin'].out_features} outputs but the tokenizer "
            f"has {units} units; set vocab_size in the hparams to {units}"
        )
    return tokenizer, inter_tokenizer


def dataio_prepare(hparams):
    """The tokenizers and the datasets of the splits: cached features and CTC
    targets.

    The main process computes (or loads) the feature caches, then the others
    load them; another recipe process on the same corpus (the demo runs two
    side by side) waits for the caches instead of writing them too. What
    the model cannot align is summed up in ``ctc_alignability.json``.

    Returns
    -------
    datasets : dict
        Split (``train``, ``valid``, the test conditions) -> DynamicItemDataset.
    tokenizer : speechbrain.tokenizers.SentencePiece.SentencePiece
        The top layer's tokenizer.
    """
    tokenizer, inter_tokenizer = _tokenizers(hparams)
    robust = hparams["training"] == "robust"
    settings = dict(
        manifests={
            "train": hparams["train_csv"],
            "valid": hparams["valid_csv"],
            "clean": hparams["test_csv"],
            "snr20": hparams["test_snr20_csv"],
            "snr10": hparams["test_snr10_csv"],
            "snr0": hparams["test_snr0_csv"],
        },
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
    model = hparams["model"]
    datasets, alignability = {}, {}
    for split, (rows, feats) in data.items():
        datasets[split], alignability[split] = make_ctc_dataset(
            rows,
            feats,
            tokenizer.sp,
            model.output_frames,
            split,
            drop_unalignable=split == "train",
            inter_sp=inter_tokenizer if split == "train" else None,
        )
    if if_main_process():
        atomic_write_text(
            os.path.join(hparams["output_folder"], "ctc_alignability.json"),
            json.dumps(
                {"arch": model.arch, "downsample": model.downsample, **alignability},
                indent=1,
            ),
        )
    return datasets, tokenizer


def fit_ctc_brain(hparams, run_opts, tokenizer, datasets) -> CTCBrain:
    """A :class:`~speechbrain_probe.asr.brain.CTCBrain` of the hparams, fit on
    the ``train`` and ``valid`` datasets in the hparams' order (``sorting``);
    a per-step ``lr_schedule`` is sized to the planned updates."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    train_set, train_opts, sortagrad = train_order(
        datasets["train"],
        hparams["train_dataloader_opts"],
        hparams["sorting"],
        sortagrad_epochs=hparams["sortagrad_epochs"],
        seed=hparams["seed"],
        world_size=world_size,
    )
    valid_set = datasets["valid"].filtered_sorted(sort_key="duration")
    if hparams["lr_schedule"] is not None:
        hparams["lr_schedule"].total_steps = planned_steps(
            len(train_set),
            int(train_opts.get("batch_size", 1)),
            int(hparams["number_of_epochs"]),
            world_size=world_size,
        )
        hparams["checkpointer"].add_recoverable("lr_schedule", hparams["lr_schedule"])
    asr_brain = CTCBrain(
        tokenizer=tokenizer.sp,
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
    return asr_brain


def test_and_export(asr_brain, datasets, tokenizer, hparams):
    """Test on every condition of ``datasets`` with the best (lowest valid
    CER) checkpoint, write the run's results, then export that model for
    :func:`speechbrain_probe.frozen.load.load_asr` into ``export_folder``.

    Writes ``wer_<condition>.txt`` (per-utterance alignments),
    ``asr_results.csv`` (WER/CER in percent per condition) and
    ``train_time.json`` (minutes of the training epochs, from the Brain's
    ``timer``) into ``output_folder`` on the main process.

    Returns
    -------
    list of AsrResult
        One row per tested condition, in
        :data:`~speechbrain_probe.vocabulary.CONDITIONS` order.
    """
    output_folder = hparams["output_folder"]
    results = []
    for condition in (c for c in CONDITIONS if c in datasets):
        asr_brain.evaluate(
            datasets[condition].filtered_sorted(sort_key="duration"),
            min_key="CER",
            test_loader_kwargs=hparams["valid_dataloader_opts"],
        )
        results.append(
            AsrResult(
                model=hparams["model_name"],
                arch=hparams["arch"],
                training=hparams["training"],
                condition=condition,
                wer=asr_brain.last_stats["WER"],
                cer=asr_brain.last_stats["CER"],
                n=len(asr_brain.cer_metric.scores),
            )
        )
        if if_main_process():
            out = os.path.join(output_folder, f"wer_{condition}.txt")
            with open(out, "w", encoding="utf-8") as w:
                asr_brain.wer_metric.write_stats(w)
    if if_main_process():
        _write_results(results, asr_brain.timer.seconds / 60.0, output_folder)
    modules = asr_brain.modules
    run_on_main(
        export_asr,
        kwargs=dict(
            out_dir=hparams["export_folder"],
            model=getattr(modules.model, "module", modules.model),
            ctc_lin=getattr(modules.ctc_lin, "module", modules.ctc_lin),
            normalize=modules.normalize,
            tokenizer_model=tokenizer.prefix_model_file + ".model",
            mel_config=hparams["mel_config"],
            blank_index=hparams["blank_index"],
        ),
    )
    return results


def _write_results(results, minutes, output_folder):
    """``asr_results.csv`` and ``train_time.json``, and their lines in the log."""
    if results:
        write_asr_results(os.path.join(output_folder, "asr_results.csv"), results)
    atomic_write_text(
        os.path.join(output_folder, "train_time.json"),
        json.dumps({"train_minutes": minutes}),
    )
    logger.info("training took %.2f minutes (epochs only)", minutes)
    for r in results:
        logger.info(
            "%s %s: WER %.2f CER %.2f (n=%d)", r.model, r.condition, r.wer, r.cer, r.n
        )
