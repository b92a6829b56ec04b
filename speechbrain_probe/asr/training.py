"""Pieces of the CTC ASR recipes that do not depend on a corpus.

The recipe scripts (``recipes/*/ASR/CTC/train_asr.py``) read their hparams and
pass each value here by name: feature caches of the splits, the training
order (SortaGrad, length buckets), the tokenizers and a lock that is safe
under DDP.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os

import torch
from speechbrain.utils.distributed import if_main_process

from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.data.locks import folder_lock
from speechbrain_probe.result_rows import AsrResult, write_asr_results
from speechbrain_probe.vocabulary import CONDITIONS

from .brain import SortaGradSampler
from .data import (
    compute_feature_cache,
    make_noisy_copies,
    read_checked_manifest,
    read_noise_bank,
)
from .tokenizer import train_tokenizer

__all__ = [
    "prepare_features",
    "train_order",
    "shared_folder",
    "intermediate_tokenizer",
    "unwrap",
    "run_test_sets",
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


def train_order(train_set, loader_opts: dict, sorting: str, sortagrad_epochs=1, seed=0):
    """The training set and loader options for an ordering of the utterances.

    ``random`` (shuffled), ``ascending`` / ``descending`` (by duration) or
    ``sortagrad`` (shortest first for ``sortagrad_epochs`` epochs, then
    shuffled batches of similar length).

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
            batch_size=int(opts.get("batch_size", 1)),
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


def unwrap(module):
    """The plain module inside a DDP / DataParallel wrapper."""
    return getattr(module, "module", module)


def run_test_sets(
    asr_brain,
    datasets: dict,
    loader_opts: dict,
    model: str,
    arch: str,
    training: str,
    output_folder,
):
    """Test on every condition of ``datasets`` with the best (lowest valid CER)
    checkpoint and write the run's results (``model``, ``arch``, ``training``
    name their rows).

    Writes ``wer_<condition>.txt`` (per-utterance alignments),
    ``asr_results.csv`` (WER/CER in percent per condition) and
    ``train_time.json`` (minutes of the training epochs, from the Brain's
    ``timer``) into ``output_folder`` on the main process.

    Returns
    -------
    list of AsrResult
        One row per tested condition, in :data:`~speechbrain_probe.vocabulary.CONDITIONS` order.
    """
    results = []
    for condition in CONDITIONS:
        if condition not in datasets:
            continue
        asr_brain.evaluate(
            datasets[condition].filtered_sorted(sort_key="duration"),
            min_key="CER",
            test_loader_kwargs=loader_opts,
        )
        results.append(
            AsrResult(
                model=model,
                arch=arch,
                training=training,
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
        if results:
            write_asr_results(os.path.join(output_folder, "asr_results.csv"), results)
        minutes = asr_brain.timer.seconds / 60.0
        atomic_write_text(
            os.path.join(output_folder, "train_time.json"),
            json.dumps({"train_minutes": minutes}),
        )
        logger.info("training took %.2f minutes (epochs only)", minutes)
        for r in results:
            logger.info(
                "%s %s: WER %.2f CER %.2f (n=%d)",
                r.model,
                r.condition,
                r.wer,
                r.cer,
                r.n,
            )
    return results
