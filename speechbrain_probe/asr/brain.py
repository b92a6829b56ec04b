"""The CTC training Brain and its datasets.

:class:`CTCBrain` trains any :class:`~speechbrain_probe.asr.models.CTCEncoder`
on cached features (see :mod:`.data`): global mean/variance normalisation
(statistics gathered during the first epoch and checkpointed), optional
SpecAugment-style masking, a linear CTC output layer over SentencePiece units
(blank = id 0), greedy decoding and WER/CER with SpeechBrain's ErrorRateStats.
"""

from __future__ import annotations

import logging
import time

import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.decoders import ctc_greedy_decode
from speechbrain.utils.metric_stats import ErrorRateStats

from speechbrain_probe.checkpoints import KillSafeCheckpoints
from speechbrain_probe.features import add_deltas

from .schedule import CheckpointedNumber
from .tokenizer import find_unalignable

__all__ = [
    "CTCBrain",
    "SortaGradSampler",
    "TrainTimer",
    "make_ctc_dataset",
]

logger = logging.getLogger(__name__)


class TrainTimer(CheckpointedNumber):
    """Wall-clock seconds spent in training epochs, kept across resumes.

    Example
    -------
    >>> t = TrainTimer()
    >>> t.add(1.5); t.add(2.0)
    >>> t.seconds
    3.5
    """

    field = "seconds"

    def __init__(self):
        self.seconds = 0.0

    def add(self, seconds: float):
        """Count ``seconds`` more of training."""
        self.seconds += float(seconds)


class SortaGradSampler(torch.utils.data.Sampler):
    """Shortest utterances first for the first epoch(s), then a fresh shuffle
    per epoch (SortaGrad, Amodei et al. 2016).

    Short, easy utterances in the first epoch get a CTC model off the
    all-blank plateau much sooner than random batches. The order of every
    epoch depends only on ``seed`` and the epoch number, so an intra-epoch
    resume sees the same batches.

    Arguments
    ---------
    durations : list of float
        Duration of each dataset item (its index order).
    sorted_epochs : int
        Epochs (counted from 1) that run in ascending duration order.
    seed : int
        Shuffle seed of the later epochs.
    batch_size : int, optional
        If given, the later epochs are shuffled *batches of similar
        duration* (items shuffled, sorted by duration within pools of
        ``pool_batches`` batches, cut into batches, batch order shuffled):
        random batches of 8 utterances pad ~35% of their frames, which the
        LSTMs compute anyway. The DataLoader must use the same batch size
        and ``drop_last=False``.
    pool_batches : int
        Batches per sorting pool (bigger: less padding, less randomness).

    Example
    -------
    >>> s = SortaGradSampler([3.0, 1.0, 2.0], sorted_epochs=1)
    >>> s.set_epoch(1); list(s)
    [1, 2, 0]
    >>> s.set_epoch(2); sorted(s)
    [0, 1, 2]
    >>> b = SortaGradSampler([5, 1, 6, 2, 5, 1], batch_size=2, pool_batches=3)
    >>> b.set_epoch(2); order = list(b)
    >>> sorted(order), sorted(sorted(b.durations[i] for i in order[k:k + 2])
    ...                       for k in (0, 2, 4))
    ([0, 1, 2, 3, 4, 5], [[1.0, 1.0], [2.0, 5.0], [5.0, 6.0]])
    """

    def __init__(
        self,
        durations,
        sorted_epochs: int = 1,
        seed: int = 563375142,
        batch_size: int | None = None,
        pool_batches: int = 50,
    ):
        self.durations = [float(d) for d in durations]
        self.sorted_epochs = int(sorted_epochs)
        self.seed = int(seed)
        self.batch_size = int(batch_size) if batch_size else None
        self.pool_batches = int(pool_batches)
        self.epoch = 1

    def set_epoch(self, epoch: int):
        """Called by ``sb.Brain`` before each training epoch."""
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.durations)

    def __iter__(self):
        if self.epoch <= self.sorted_epochs:
            order = sorted(range(len(self.durations)), key=self.durations.__getitem__)
            return iter(order)
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.durations), generator=g).tolist()
        if not self.batch_size:
            return iter(order)
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=self.durations.__getitem__)
            batches += [
                chunk[k : k + self.batch_size]
                for k in range(0, len(chunk), self.batch_size)
            ]
        # a short batch (the end of a pool) goes last, where the loader
        # expects its only short batch
        full = [b for b in batches if len(b) == self.batch_size]
        short = [b for b in batches if len(b) < self.batch_size]
        perm = torch.randperm(len(full), generator=g).tolist()
        return iter([i for k in perm for i in full[k]] + [i for b in short for i in b])


def make_ctc_dataset(
    rows: list[dict],
    feats: dict[str, torch.Tensor],
    sp,
    output_frames,
    name: str,
    drop_unalignable: bool = True,
    inter_sp=None,
):
    """A DynamicItemDataset of cached features and SentencePiece token ids.

    Utterances whose model output is too short for their CTC transcript
    (:func:`~speechbrain_probe.asr.tokenizer.find_unalignable`) are reported
    with a warning and, if ``drop_unalignable``, left out.

    Arguments
    ---------
    rows : list of dict
        Manifest rows (``ID``, ``duration``, ``wrd``).
    feats : dict
        utterance id -> ``[T, n_mels]`` log-mel; the dataset's ``feats`` are
        ``[T, 3 * n_mels]`` (with deltas and delta-deltas).
    sp : sentencepiece.SentencePieceProcessor
        The tokenizer.
    output_frames : callable
        ``output_frames(num_input_frames) -> num_output_frames`` of the model.
    name : str
        Split name for messages.
    drop_unalignable : bool
        Leave unalignable utterances out (training) or keep them (evaluation,
        where they count as errors).
    inter_sp : sentencepiece.SentencePieceProcessor, optional
        Tokenizer of an intermediate CTC head with its own units (e.g.
        characters under subword top units); adds the output key
        ``inter_tokens``.

    Returns
    -------
    (DynamicItemDataset, dict)
        The dataset (output keys ``id, feats, tokens, wrd``) and a summary
        ``{"n": ..., "unalignable": ..., "examples": [...]}``.

    Example
    -------
    >>> import sentencepiece as spm
    >>> class Chars:  # a stand-in tokenizer: one id per character
    ...     def encode_as_ids(self, s): return [ord(c) - 60 for c in s]
    >>> rows = [{"ID": "a", "duration": "1", "wrd": "ABC"},
    ...         {"ID": "b", "duration": "1", "wrd": "ABCDEFGH"}]
    >>> feats = {"a": torch.zeros(20, 4), "b": torch.zeros(20, 4)}
    >>> ds, info = make_ctc_dataset(rows, feats, Chars(), lambda t: t // 4, "demo")
    >>> len(ds), info["unalignable"]
    (1, 1)
    >>> ds[0]["tokens"].tolist()
    [5, 6, 7]
    """
    missing = [r["ID"] for r in rows if r["ID"] not in feats]
    if missing:
        raise KeyError(
            f"no cached features for {len(missing)} utterances, e.g. {missing[:3]}"
        )
    tokens = {r["ID"]: sp.encode_as_ids(r["wrd"]) for r in rows}
    bad = find_unalignable(
        (r["ID"], output_frames(feats[r["ID"]].shape[0]), tokens[r["ID"]]) for r in rows
    )
    if bad:
        logger.warning(
            "%s: %d of %d utterances (%.1f%%) cannot be CTC-aligned by this model "
            "(output frames < tokens + repeats), e.g. %s; %s",
            name,
            len(bad),
            len(rows),
            100.0 * len(bad) / len(rows),
            bad[:3],
            "left out of training"
            if drop_unalignable
            else "kept (they count as errors)",
        )
    bad_ids = {b[0] for b in bad}
    data = {
        r["ID"]: {"duration": float(r["duration"]), "wrd": r["wrd"]}
        for r in rows
        if not (drop_unalignable and r["ID"] in bad_ids)
    }
    if not data:
        raise ValueError(
            f"{name}: no utterance can be CTC-aligned; use a smaller time reduction "
            "or a larger subword vocabulary"
        )
    dataset = DynamicItemDataset(data)

    @sb.utils.data_pipeline.takes("id")
    @sb.utils.data_pipeline.provides("feats", "tokens")
    def pipeline(utt_id):
        yield add_deltas(feats[utt_id].float())
        yield torch.LongTensor(tokens[utt_id])

    sb.dataio.dataset.add_dynamic_item([dataset], pipeline)
    keys = ["id", "feats", "tokens", "wrd"]
    if inter_sp is not None:
        inter_tokens = {r["ID"]: inter_sp.encode_as_ids(r["wrd"]) for r in rows}

        @sb.utils.data_pipeline.takes("id")
        @sb.utils.data_pipeline.provides("inter_tokens")
        def inter_pipeline(utt_id):
            return torch.LongTensor(inter_tokens[utt_id])

        sb.dataio.dataset.add_dynamic_item([dataset], inter_pipeline)
        keys.append("inter_tokens")
    dataset.set_output_keys(keys)
    summary = {"n": len(rows), "unalignable": len(bad), "examples": bad[:10]}
    return dataset, summary


class CTCBrain(KillSafeCheckpoints, sb.Brain):
    """Train a CTC encoder on cached features.

    Expected ``modules``: ``model`` (a CTCEncoder), ``ctc_lin`` (Linear to the
    vocabulary), ``normalize`` (InputNormalization, global), optionally
    ``inter_ctc_lin`` (the intermediate layer's own head). Every setting is an
    argument (the recipe script passes its hparams by name), none is read
    from ``hparams``.

    Arguments
    ---------
    tokenizer : sentencepiece.SentencePieceProcessor
        Decodes the greedy transcripts.
    epoch_counter : speechbrain.utils.epoch_loop.EpochCounter
        The fit's counter (normalisation statistics and masking follow it).
    train_logger : speechbrain.utils.train_logger.TrainLogger
        Where each epoch's statistics go.
    blank_index : int
        CTC blank.
    augment : callable, optional
        Masking of training features (e.g.
        :class:`~speechbrain_probe.asr.augment.FeatureMasking`).
    augment_from_epoch : int
        No masking before this epoch.
    inter_ctc_layer : str, optional
        Layer of an intermediate CTC loss (e.g. ``blstm2``).
    inter_ctc_weight : float
        Its weight (0 = off).
    inter_ctc_epochs : int, optional
        Epochs with the intermediate loss (None = all).
    lr_schedule : callable, optional
        Per-step ``schedule(optimizer)``, e.g. a
        :class:`~speechbrain_probe.asr.schedule.WarmupLinearDecay`.
    lr_annealing : callable, optional
        Per-epoch annealing on the valid loss (a NewBobScheduler).
    timer : TrainTimer, optional
        Adds up the training time of the epochs.
    **kwargs
        ``modules``, ``opt_class``, ``hparams``, ``run_opts``, ``checkpointer``
        as for ``sb.Brain``.

    Example
    -------
    See ``recipes/Synthetic/ASR/CTC/train_asr.py`` and ``tests/test_asr_train.py``.
    """

    def __init__(
        self,
        *,
        tokenizer,
        epoch_counter,
        train_logger,
        blank_index: int = 0,
        augment=None,
        augment_from_epoch: int = 1,
        inter_ctc_layer: str | None = None,
        inter_ctc_weight: float = 0.0,
        inter_ctc_epochs: int | None = None,
        lr_schedule=None,
        lr_annealing=None,
        timer=None,
        **kwargs,
    ):
        self.tokenizer = tokenizer
        self.epoch_counter = epoch_counter
        self.train_logger = train_logger
        self.blank_index = int(blank_index)
        self.augment = augment
        self.augment_from_epoch = int(augment_from_epoch or 1)
        self.inter_ctc_layer = inter_ctc_layer
        self.inter_ctc_weight = float(inter_ctc_weight or 0.0)
        self.inter_ctc_epochs = inter_ctc_epochs
        self.lr_schedule = lr_schedule
        self.lr_annealing = lr_annealing
        self.timer = timer
        super().__init__(**kwargs)

    def compute_forward(self, batch, stage):
        """Features -> normalisation (-> masking) -> encoder -> CTC log-probs."""
        batch = batch.to(self.device)
        feats, lens = batch.feats
        epoch = self.epoch_counter.current
        feats = self.modules.normalize(feats, lens, epoch=epoch)
        # no masking while the model is still learning to emit non-blank units
        if (
            stage == sb.Stage.TRAIN
            and self.augment is not None
            and epoch >= self.augment_from_epoch
        ):
            feats = self.augment(feats)
        inter_name = self._inter_ctc_layer(stage, epoch)
        captured = {}
        handle = None
        if inter_name is not None:
            model = getattr(self.modules.model, "module", self.modules.model)
            handle = model.layer(inter_name).register_forward_hook(
                lambda _m, _i, out: captured.setdefault("h", out)
            )
        try:
            hidden = self.modules.model(feats, lens)
        finally:
            if handle is not None:
                handle.remove()
        logits = self.modules.ctc_lin(hidden)
        if inter_name is not None:
            # its own head (e.g. characters under subword top units) or the
            # top layer's, shared
            head = getattr(self.modules, "inter_ctc_lin", None) or self.modules.ctc_lin
            inter = torch.log_softmax(head(captured["h"]), dim=-1)
            return torch.log_softmax(logits, dim=-1), lens, inter
        return torch.log_softmax(logits, dim=-1), lens

    def on_fit_batch_start(self, batch, should_step):
        """Per-step learning rate (``lr_schedule``, e.g. a
        :class:`~speechbrain_probe.asr.schedule.WarmupLinearDecay`)."""
        if self.lr_schedule is not None and should_step:
            self.lr_schedule(self.optimizer)

    def _inter_ctc_layer(self, stage, epoch):
        """The layer of the intermediate CTC loss now, or None.

        ``inter_ctc_layer`` (e.g. ``blstm2``) shares ``ctc_lin`` with the top
        layer (Lee & Watanabe 2021) for the first ``inter_ctc_epochs`` epochs:
        the short gradient path lets a 5-deep stack leave the blank plateau
        about as fast as a 2-deep one; later epochs train the top loss only.
        """
        name = self.inter_ctc_layer
        weight = self.inter_ctc_weight
        last = self.inter_ctc_epochs
        if stage != sb.Stage.TRAIN or not name or weight <= 0:
            return None
        if last is not None and epoch is not None and epoch > int(last):
            return None
        return name

    def compute_objectives(self, predictions, batch, stage):
        """CTC loss; greedy transcripts and WER/CER outside training."""
        log_probs, lens = predictions[:2]
        tokens, token_lens = batch.tokens
        loss = sb.nnet.losses.ctc_loss(
            log_probs, tokens, lens, token_lens, self.blank_index
        )
        if len(predictions) > 2:
            weight = self.inter_ctc_weight
            inter_tokens, inter_lens = getattr(batch, "inter_tokens", batch.tokens)
            inter = sb.nnet.losses.ctc_loss(
                predictions[2],
                inter_tokens,
                lens,
                inter_lens,
                self.blank_index,
            )
            loss = (1.0 - weight) * loss + weight * inter
        if stage != sb.Stage.TRAIN:
            hyps = ctc_greedy_decode(log_probs, lens, blank_id=self.blank_index)
            sp = self.tokenizer
            words = [sp.decode_ids(h).split() for h in hyps]
            refs = [w.split() for w in batch.wrd]
            self.wer_metric.append(batch.id, words, refs)
            self.cer_metric.append(batch.id, words, refs)
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Fresh error-rate statistics; start the epoch clock."""
        if stage == sb.Stage.TRAIN:
            self._epoch_start = time.time()
        else:
            self.wer_metric = ErrorRateStats()
            self.cer_metric = ErrorRateStats(split_tokens=True)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log, anneal the learning rate, checkpoint on valid CER."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            if self.timer is not None:
                self.timer.add(time.time() - self._epoch_start)
            return
        stats = {
            "loss": stage_loss,
            "CER": self.cer_metric.summarize("error_rate"),
            "WER": self.wer_metric.summarize("error_rate"),
        }
        self.last_stats = stats
        if stage == sb.Stage.VALID:
            lr = self.optimizer.param_groups[0]["lr"]
            if self.lr_annealing is not None:
                _, new_lr = self.lr_annealing(stats["loss"])
                sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            meta = dict(stats)
            if self.timer is not None:
                meta["train_minutes"] = self.timer.seconds / 60.0
            self.train_logger.log_stats(
                stats_meta={
                    "epoch": epoch,
                    "lr": lr,
                    **{k: v for k, v in meta.items() if k == "train_minutes"},
                },
                train_stats={"loss": self.train_loss},
                valid_stats=stats,
            )
            self.checkpointer.save_and_keep_only(meta=meta, min_keys=["CER"])
        elif stage == sb.Stage.TEST:
            self.train_logger.log_stats(
                stats_meta={"epoch loaded": self.epoch_counter.current},
                test_stats=stats,
            )
