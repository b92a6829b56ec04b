"""Train probes on a frozen ASR: :class:`ProbeBrain`.

One ASR forward per batch feeds every probe being trained (all-layers mode is a
list of layers; one layer is a list of one). The frozen ASR is NOT in
``modules``: ``Brain.fit`` calls ``modules.train()`` and hands
``modules.parameters()`` to the optimizer, so the ASR would otherwise switch to
training mode (dropout, normalisation statistics) and be optimised. It stays in
eval mode, runs under ``torch.no_grad()``, and its weights are never touched.

Training several probes at once trains each exactly as its own run would: the
losses are separate, each probe's gradient is clipped by its own norm (not by
the norm of all probes together), Adam is per parameter. A training step runs
the probes' forward and backward one after the other, so only one probe's
graph is alive at a time (memory and allocator traffic of one probe, not L).

The target is the mel of ``target_mel`` (:mod:`~speechbrain_probe.probe.target`):
by default the ASR's own mel; ``hifigan`` is the mel a neural vocoder expects,
computed from the input resampled to its rate, with each layer's frame
geometry converted to the target's frames.

With ``early_stopping_patience``, each probe stops on its own validation L1
(:mod:`~speechbrain_probe.probe.early_stopping`): a stopped probe leaves the
forward, the loss and the optimizer, training ends when all have stopped or
at the epoch limit, and the final checkpoint holds each probe's best state.
Validation can run every ``valid_every_steps`` training steps as well as at
the end of each epoch.

With a ``state_store`` (:mod:`~speechbrain_probe.probe.state_store`), each
training utterance keeps one input for the whole run (clean, or one noise
draw fixed by the mixer's seed and its id): its hidden states and mel target
are computed once, in the first epoch, and later epochs read them instead of
running the ASR. Validation always runs the ASR on clean input.

Every checkpoint holds the probes' :class:`~speechbrain_probe.probe.identity.ProbeIdentity`,
loaded first, so a checkpoint of another ASR, layer or target mel is refused
before any weight is loaded. The probes themselves come from
:func:`~speechbrain_probe.probe.model.build_probes`; trained ones are read back
with :func:`~speechbrain_probe.probe.inference.load_trained_probes`.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.utils.distributed import if_main_process
from torch import nn
from tqdm.auto import tqdm

from speechbrain_probe.atomic import atomic_output
from speechbrain_probe.checkpoints import (
    KillSafeCheckpoints,
    find_complete_checkpoint,
)
from speechbrain_probe.features import LogMelSpectrogram
from speechbrain_probe.probe.early_stopping import LayerEarlyStopping
from speechbrain_probe.probe.identity import ProbeIdentity
from speechbrain_probe.probe.model import aligner_for
from speechbrain_probe.probe.prefetch import PrefetchedBatches
from speechbrain_probe.probe.state_store import valid_frames
from speechbrain_probe.probe.target import (
    resolve_target_mel,
    target_mel_name,
    to_target_rate,
)

__all__ = ["HiddenStateCache", "masked_l1", "ProbeBrain"]

logger = logging.getLogger(__name__)


class HiddenStateCache:
    """On-disk cache of hidden states per utterance (clean input only).

    Files ``<folder>/<asr hash[:16]>/<layer>/<utt id>.pt`` hold the valid frames
    ``[T_h, D]`` in float16; written atomically, so a kill never leaves a broken
    file behind.

    Arguments
    ---------
    folder : str or path
        Cache root.
    fingerprint : str
        The ASR's weight hash (a cache of another ASR is never read).

    Example
    -------
    >>> cache = HiddenStateCache(getfixture("tmp_path"), "abc")
    >>> cache.put("utt1", "blstm1", torch.ones(3, 2))
    >>> cache.get("utt1", "blstm1").shape
    torch.Size([3, 2])
    """

    def __init__(self, folder, fingerprint: str):
        self.folder = Path(folder) / fingerprint[:16]

    def _path(self, utt_id: str, layer: str) -> Path:
        safe = str(utt_id).replace("/", "_")
        return self.folder / layer / f"{safe}.pt"

    def get(self, utt_id: str, layer: str) -> torch.Tensor | None:
        """The cached frames, or None."""
        path = self._path(utt_id, layer)
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu").float()

    def put(self, utt_id: str, layer: str, frames: torch.Tensor) -> None:
        """Store ``[T_h, D]`` frames."""
        with atomic_output(self._path(utt_id, layer)) as tmp:
            torch.save(frames.detach().to("cpu", torch.float16).clone(), tmp)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, rel_lens: torch.Tensor):
    """Mean absolute error over the valid frames of each utterance.

    Returns ``(sum of |error|, number of valid values)``.

    Example
    -------
    >>> p, t = torch.ones(2, 4, 3), torch.zeros(2, 4, 3)
    >>> p[1, 2:] = 100.0  # padding of the second utterance
    >>> total, count = masked_l1(p, t, torch.tensor([1.0, 0.5]))
    >>> float(total / count)
    1.0
    """
    frames = target.shape[1]
    mask = (
        torch.arange(frames, device=target.device)[None, :]
        < valid_frames(rel_lens, frames).to(target.device)[:, None]
    )
    err = (pred.float() - target.float()).abs() * mask[..., None]
    return err.sum(), mask.sum() * target.shape[-1]


@dataclass
class _PreparedBatch:
    """A batch with its hidden states and mel target (prefetched)."""

    batch: object
    states: dict
    target: torch.Tensor


def _unwrap(batch):
    """The data batch itself, prefetched or not."""
    return batch.batch if isinstance(batch, _PreparedBatch) else batch


class ProbeBrain(KillSafeCheckpoints, sb.Brain):
    """Train non-contextual probes that reconstruct the mel from hidden layers.

    Arguments
    ---------
    asr : FrozenASR
        The frozen model (kept outside ``modules``).
    layers : list of str
        Layers to probe (all trained from the same ASR forward).
    modules : dict or nn.ModuleDict
        Layer name -> probe (e.g. from
        :func:`~speechbrain_probe.probe.model.build_probes`); each probe is its
        own Brain module, so DDP wraps each one. Register the same dict in the
        Checkpointer as ``probes`` so
        :func:`~speechbrain_probe.probe.inference.load_trained_probes` finds it.
    add_noise : callable, optional
        ``add_noise(wavs, lens)`` applied to training batches (e.g. SpeechBrain's
        ``AddNoise``); the target is then the noisy input's own mel.
    cache : HiddenStateCache, optional
        Reuse hidden states of clean input across epochs.
    state_store : StateStore, optional
        Store each training utterance's hidden states (of every probed layer)
        and mel target in the first epoch and read them in later ones
        (:mod:`~speechbrain_probe.probe.state_store`). ``add_noise`` must then
        have ``mix_utterances(wavs, lens, ids)`` (one draw per utterance for
        the whole run, as :class:`~speechbrain_probe.probe.noise_mixer.NoiseMixer`).
    prefetch : bool
        Compute the next training batch's mel target and ASR forward on a
        second thread while the probes train on this one
        (:mod:`~speechbrain_probe.probe.prefetch`): a step then costs about
        max(ASR, probes) instead of their sum. Worth it with a spare CPU core
        (run torch on half the cores) or on a GPU.
    train_logger : speechbrain.utils.train_logger.TrainLogger, optional
        Where each epoch's train and valid statistics go.
    target_mel : str, MelConfig or dict, optional
        The mel the probes reconstruct: ``"paper"`` (the ASR's own mel),
        ``"hifigan"`` or a configuration
        (:func:`~speechbrain_probe.probe.target.resolve_target_mel`). Default:
        the ``target_mel`` of ``modules`` when ``build_probes`` made them,
        else the ASR's own mel.
    early_stopping_patience : int, optional
        Validations without an improvement of a layer's L1 (by more than
        ``early_stopping_min_delta``) after which that layer's probe stops;
        None or 0: no early stopping (every probe trains every epoch, and the
        checkpoint kept is the best by the sum of the layers' L1).
    early_stopping_min_delta : float
        Smallest decrease of a layer's validation L1 that counts as better.
    valid_every_steps : int, optional
        Also validate every this many training steps (batches) of an epoch,
        not only at its end (for long epochs); None or 0: at epoch ends only.
        Each validation saves a checkpoint.
    **kwargs
        ``opt_class``, ``hparams``, ``run_opts``, ``checkpointer`` as for ``sb.Brain``.
    """

    def __init__(
        self,
        asr,
        layers,
        modules,
        add_noise=None,
        cache=None,
        state_store=None,
        prefetch=False,
        train_logger=None,
        target_mel=None,
        early_stopping_patience=None,
        early_stopping_min_delta=0.0,
        valid_every_steps=None,
        **kwargs,
    ):
        self.asr = asr
        self.train_logger = train_logger
        self.prefetch = bool(prefetch)
        self.layers = asr.check_layers(layers)
        missing = [n for n in self.layers if n not in modules]
        if missing:
            raise KeyError(
                f"no probe for layer(s) {missing}; build them with build_probes"
            )
        if add_noise is not None and cache is not None:
            raise ValueError(
                "a hidden-state cache holds clean input only; turn off add_noise or the cache"
            )
        self._check_state_store(state_store, add_noise)
        built_for = getattr(modules, "target_mel", None)
        self.target_mel = resolve_target_mel(
            built_for if target_mel is None else target_mel, asr
        )
        if built_for is not None and built_for != self.target_mel:
            raise ValueError(
                f"the probes were built for the target mel "
                f"{target_mel_name(built_for)} but target_mel is "
                f"{target_mel_name(self.target_mel)}; pass the same target_mel to "
                "build_probes and ProbeBrain"
            )
        if valid_every_steps is not None and int(valid_every_steps) < 0:
            raise ValueError(
                f"valid_every_steps must be >= 0 (0 or null: at epoch ends only), "
                f"got {valid_every_steps}"
            )
        self.valid_every_steps = int(valid_every_steps or 0)
        self.early_stopping = None
        if early_stopping_patience:
            self.early_stopping = LayerEarlyStopping(
                self.layers, early_stopping_patience, early_stopping_min_delta or 0.0
            )
        self.add_noise = add_noise
        self.cache = cache
        self.state_store = state_store
        super().__init__(modules=modules, **kwargs)
        self.mel = LogMelSpectrogram(self.target_mel).to(self.device)
        self.asr.to(self.device).freeze()
        self.aligners = {
            name: aligner_for(asr, name, self.modules[name], self.target_mel)
            for name in self.layers
        }
        # the ASR's layer hooks are per module, not per thread: one forward at
        # a time (a validation inside an epoch runs beside the prefetch thread)
        self._asr_lock = threading.Lock()
        self._epoch = None
        self._mid_epoch = False
        self._train_loader = self._valid_loader = None
        self.identity = ProbeIdentity(
            asr, self.layers, self._probe_kwargs(), target_mel=self.target_mel
        )
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("probe_identity", self.identity)
            if self.early_stopping is not None:
                # optional: a run without early stopping can go on with it
                self.checkpointer.add_recoverable(
                    "early_stopping", self.early_stopping, optional_load=True
                )
            # load the identity first: a mismatch is reported before any weights
            rec = self.checkpointer.recoverables
            self.checkpointer.recoverables = {
                "probe_identity": rec.pop("probe_identity"),
                **rec,
            }

    def _check_state_store(self, store, add_noise) -> None:
        if store is None:
            return
        missing = [n for n in self.layers if n not in store.layers]
        if missing:
            raise ValueError(f"the state store holds no layer(s) {missing}")
        if add_noise is not None and not hasattr(add_noise, "mix_utterances"):
            raise ValueError(
                "stored states need one noise draw per utterance for the whole run: "
                "add_noise must have mix_utterances(wavs, lens, ids) (NoiseMixer)"
            )

    def _probe_kwargs(self) -> dict:
        probe = self.modules[self.layers[0]]
        probe = getattr(probe, "module", probe)
        return {"n_highway": len(probe.highways), "n_mels": probe.n_mels}

    def stage_layers(self, stage) -> list[str]:
        """The layers a stage runs: in training and validation the probes that
        have not stopped early; in a test (``evaluate``) every probe."""
        if stage == sb.Stage.TEST or self.early_stopping is None:
            return self.layers
        return self.early_stopping.active

    # -- hidden states -------------------------------------------------------
    def hidden_states(self, ids, wavs, lens, layers=None) -> dict[str, torch.Tensor]:
        """Hidden frames of ``layers`` (default: all probed layers), from the
        cache or one ASR forward."""
        layers = self.layers if layers is None else layers
        if self.cache is not None:
            cached = {n: [self.cache.get(i, n) for i in ids] for n in layers}
            if all(x is not None for frames in cached.values() for x in frames):
                return {
                    n: nn.utils.rnn.pad_sequence(frames, batch_first=True).to(
                        self.device
                    )
                    for n, frames in cached.items()
                }
        with self._asr_lock, torch.no_grad():
            self.asr.root.eval()
            states = self.asr.hidden_states(wavs, lens, layers)
        if self.cache is not None:
            for name, h in states.items():
                valid = valid_frames(lens.cpu(), h.shape[1])
                for i, utt in enumerate(ids):
                    self.cache.put(utt, name, h[i, : valid[i]])
        return states

    def target(self, wavs: torch.Tensor) -> torch.Tensor:
        """The target mel ``[B, T, n_mels]`` of ``wavs`` at the ASR's rate
        (resampled to the target mel's rate first), in float32."""
        # float32 even under --precision bf16/fp16 (autocast would run the mel
        # filterbank product in half precision)
        device_type = torch.device(self.device).type
        with torch.no_grad(), torch.autocast(device_type, enabled=False):
            wavs = to_target_rate(
                wavs.float(), self.asr.mel_config.sample_rate, self.target_mel
            )
            return self.mel(wavs)

    def shared_inputs(self, batch, stage):
        """Hidden states of one ASR forward and the mel target, for every probe
        the stage runs.

        In training, ``add_noise`` is applied first: the target is the noisy
        input's own mel.
        """
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        if stage == sb.Stage.TRAIN and self.state_store is not None:
            return self.stored_inputs(batch.id, wavs, lens, self.stage_layers(stage))
        if stage == sb.Stage.TRAIN and self.add_noise is not None:
            wavs = self.add_noise(wavs, lens)
        target = self.target(wavs)
        states = self.hidden_states(batch.id, wavs, lens, self.stage_layers(stage))
        return states, target

    def stored_inputs(self, ids, wavs, lens, layers):
        """Training inputs from the state store: read back when every
        utterance of the batch is stored; else its one noise draw per
        utterance, the mel target and one ASR forward of every stored layer,
        written to the store."""
        stored = self.state_store.get(ids, self.device)
        if stored is None:
            if self.add_noise is not None:
                wavs = self.add_noise.mix_utterances(wavs, lens, ids)
            target = self.target(wavs)
            with self._asr_lock, torch.no_grad():
                self.asr.root.eval()
                states = self.asr.hidden_states(wavs, lens, self.state_store.layers)
            self.state_store.put(ids, states, target, lens)
            stored = states, target
        states, target = stored
        return {n: states[n] for n in layers}, target

    def predict(self, name, states, num_target):
        """Probe ``name``'s prediction ``[B, num_target, n_mels]``."""
        return self.aligners[name](self.modules[name](states[name]), num_target)

    def _inputs(self, batch, stage):
        """Hidden states and target: prefetched with the batch, or computed now."""
        if isinstance(batch, _PreparedBatch):
            return batch.states, batch.target
        return self.shared_inputs(batch, stage)

    def compute_forward(self, batch, stage):
        """Mel target and the prediction of every probe the stage runs, from
        one ASR forward."""
        states, target = self._inputs(batch, stage)
        preds = {
            n: self.predict(n, states, target.shape[1])
            for n in self.stage_layers(stage)
        }
        return preds, target

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **kwargs):
        """SpeechBrain's loader; with ``prefetch``, each batch comes with its
        hidden states and mel target, prepared on a second thread."""
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, **kwargs)
        if self.prefetch:
            loader = PrefetchedBatches(loader, lambda b: self._prepare_batch(b, stage))
        if stage == sb.Stage.TRAIN:
            self._train_loader = loader
        elif stage == sb.Stage.VALID:
            self._valid_loader = loader
        return loader

    def _prepare_batch(self, batch, stage) -> _PreparedBatch:
        # runs on the prefetch thread: grad mode and autocast are per thread
        context = self.training_ctx if stage == sb.Stage.TRAIN else self.evaluation_ctx
        with torch.no_grad(), context:
            states, target = self.shared_inputs(batch, stage)
        return _PreparedBatch(batch, states, target)

    def fit_batch(self, batch):
        """One ASR forward, then each active probe's forward and backward in turn.

        The gradients are those of the summed loss (each probe sees only its
        own loss), but each probe's graph is freed before the next probe runs.
        A probe that stopped early takes no part (no forward, no gradient, so
        the optimizer leaves it alone). Follows ``sb.Brain.fit_batch``
        otherwise (autocast, gradient scaling and accumulation, DDP
        ``no_sync``, non-finite loss check).
        """
        should_step = (self.step % self.grad_accumulation_factor) == 0
        self.on_fit_batch_start(_unwrap(batch), should_step)
        total = torch.zeros(())
        with self.no_sync(not should_step):
            with self.training_ctx:
                states, target = self._inputs(batch, sb.Stage.TRAIN)
            batch = _unwrap(batch)
            for name in self.stage_layers(sb.Stage.TRAIN):
                with self.training_ctx:
                    pred = self.predict(name, states, target.shape[1])
                    loss = self.compute_objectives(
                        ({name: pred}, target), batch, sb.Stage.TRAIN
                    )
                scaled = self.scaler.scale(loss / self.grad_accumulation_factor)
                self.check_loss_isfinite(scaled)
                scaled.backward()
                total = total.to(loss.device) + loss.detach()
        if should_step:
            self.optimizers_step()
        self.on_fit_batch_end(batch, (None, target), total, should_step)
        return total.cpu()

    def optimizers_step(self):
        """``sb.Brain.optimizers_step`` with each probe clipped by its own norm.

        SpeechBrain clips the gradient norm of all parameters of an optimizer
        together, which would couple the probes of a one-pass run (one probe's
        large gradient would shrink every other probe's step).
        """
        if self.optimizers_dict is not None:
            optimizers = self.freeze_optimizers(self.optimizers_dict)
        elif self.opt_class is not None:
            optimizers = {"optimizer": self.optimizer}
        else:
            return
        for opt in optimizers.values():
            self.scaler.unscale_(opt)
        for name in self.layers:
            grads = [p for p in self.modules[name].parameters() if p.grad is not None]
            if grads:
                torch.nn.utils.clip_grad_norm_(grads, self.max_grad_norm)
        if not self.scaler.is_enabled() and self.skip_nonfinite_grads:
            self.check_gradients()
        for opt in optimizers.values():
            self.scaler.step(opt)
        self.scaler.update()
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        self.optimizer_step += 1

    def compute_objectives(self, predictions, batch, stage):
        """Sum over the predicted layers of each probe's masked L1.

        Per-layer error sums stay on the device (no synchronisation per probe
        and step); :meth:`layer_losses` reads them.
        """
        preds, target = predictions
        _, lens = _unwrap(batch).sig
        total = 0.0
        for name, pred in preds.items():
            err, count = masked_l1(pred, target, lens)
            sums = self._layer_sums[name]
            sums[0].add_(err.detach().double())
            sums[1].add_(count.double())
            total = total + err / count
        return total if torch.is_tensor(total) else torch.zeros(())

    # -- stages ----------------------------------------------------------------
    def on_stage_start(self, stage, epoch=None):
        """Reset per-layer sums; keep the ASR in eval mode whatever fit did."""
        self.asr.root.eval()
        if stage == sb.Stage.TRAIN:
            self._epoch = epoch
        self._layer_sums = {
            name: [
                torch.zeros((), dtype=torch.float64, device=self.device)
                for _ in range(2)
            ]
            for name in self.stage_layers(stage)
        }

    def layer_losses(self) -> dict[str, float]:
        """Per-layer L1 of the stage that just ended (or is running)."""
        out = {}
        for name, (err, count) in self._layer_sums.items():
            err, count = float(err), float(count)
            out[name] = err / count if count else float("nan")
        return out

    def _reduce_layer_sums(self) -> None:
        """Sum the per-layer error sums over DDP processes (each saw a shard)."""
        if not (
            torch.distributed.is_available() and torch.distributed.is_initialized()
        ):
            return
        names = list(self._layer_sums)
        if not names:
            return
        sums = torch.stack([torch.stack(self._layer_sums[n]).to("cpu") for n in names])
        if torch.distributed.get_backend() == "nccl":
            sums = sums.to(self.device)
        torch.distributed.all_reduce(sums)
        self._layer_sums = {n: [a, b] for n, (a, b) in zip(names, sums)}

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log per-layer L1; after a validation, early stopping and a checkpoint."""
        self._reduce_layer_sums()
        stats = {"loss": stage_loss}
        stats.update({f"l1_{n}": round(v, 5) for n, v in self.layer_losses().items()})
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
        elif stage == sb.Stage.VALID:
            self.valid_stats = stats
            stopped = []
            if self.early_stopping is not None:
                stopped = self.early_stopping.update(
                    self.layer_losses(), self.modules, epoch, self.optimizer_step
                )
                # a stopped probe keeps its best parameters from now on (and
                # drops gradients it accumulated, so no later step moves it)
                self.early_stopping.restore_best(self.modules, stopped)
                for name in stopped:
                    for param in self.modules[name].parameters():
                        param.grad = None
            lr = (
                self.optimizer.param_groups[0]["lr"]
                if hasattr(self, "optimizer")
                else None
            )
            # a validation inside an epoch says at which step it ran
            meta = {"epoch": epoch, "lr": lr}
            if self._mid_epoch:
                meta = {"epoch": epoch, "step": self.optimizer_step, "lr": lr}
            if self.train_logger is not None:
                self.train_logger.log_stats(
                    stats_meta=meta,
                    train_stats=None
                    if self._mid_epoch
                    else getattr(self, "train_stats", None),
                    valid_stats=stats,
                )
            self._log_stops(stopped, epoch)
            self._end_fit_if_all_stopped()
            self._save_checkpoint(stats, epoch, end_of_epoch=not self._mid_epoch)
        elif stage == sb.Stage.TEST:
            self.test_stats = stats

    def _log_stops(self, stopped, epoch) -> None:
        es = self.early_stopping
        for name in stopped:
            logger.info(
                "probe %s stopped early at epoch %s (step %d): no improvement of "
                "its valid L1 by more than %g in %d validations; keeps its best, "
                "%.5f at epoch %s",
                name,
                epoch,
                self.optimizer_step,
                es.min_delta,
                es.patience,
                es.best_loss[name],
                es.best_epoch[name],
            )
        if stopped and es.all_stopped:
            logger.info("every probe has stopped early: training ends")

    def _checkpoint_meta(self, stats, epoch) -> dict:
        meta = {"epoch": epoch, "step": self.optimizer_step}
        if self.early_stopping is None:
            meta["loss"] = stats["loss"]
            meta.update({k: v for k, v in stats.items() if k != "loss"})
        else:
            # the probes' best so far: the sum of each layer's best L1
            best = self.early_stopping.best_loss
            meta["loss"] = sum(best.values())
            meta.update({f"l1_{n}": round(v, 5) for n, v in best.items()})
        return meta

    def _save_checkpoint(self, stats, epoch, end_of_epoch=True) -> None:
        """Save after a validation: without early stopping, the best by the
        summed L1 and the latest are kept (SpeechBrain keeps both); with it,
        the latest only (it carries every layer's best state)."""
        if self.checkpointer is None:
            return
        meta = self._checkpoint_meta(stats, epoch)
        if self.early_stopping is None:
            self.checkpointer.save_and_keep_only(
                meta=meta, end_of_epoch=end_of_epoch, min_keys=["loss"], num_to_keep=1
            )
        else:
            self.checkpointer.save_and_keep_only(
                meta=meta, end_of_epoch=end_of_epoch, num_to_keep=1
            )

    # -- validation inside an epoch ----------------------------------------------
    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """Validate every ``valid_every_steps`` training steps of an epoch
        (not after its last step: the epoch's own validation follows)."""
        every = self.valid_every_steps
        if not every or self._valid_loader is None or self.step % every:
            return
        try:
            last = len(self._train_loader)
        except TypeError:  # an iterable without a length
            last = None
        if self.debug:
            last = min(last or self.debug_batches, self.debug_batches)
        if last is not None and self.step >= last:
            return
        self._validate_mid_epoch()

    def _validate_mid_epoch(self) -> None:
        """A validation stage inside the training stage (its sums kept aside)."""
        train_sums = self._layer_sums
        self._mid_epoch = True
        try:
            self.modules.eval()
            self.on_stage_start(sb.Stage.VALID, self._epoch)
            avg, steps = 0.0, 0
            with torch.no_grad():
                for batch in tqdm(
                    self._valid_loader,
                    dynamic_ncols=True,
                    leave=False,
                    disable=self.noprogressbar or not if_main_process(),
                ):
                    steps += 1
                    loss = self.evaluate_batch(batch, stage=sb.Stage.VALID)
                    avg += (float(loss) - avg) / steps
                    if self.debug and steps == self.debug_batches:
                        break
            self.on_stage_end(sb.Stage.VALID, avg, self._epoch)
        finally:
            self._mid_epoch = False
            self._layer_sums = train_sums
            self.modules.train()

    # A private method of sb.Brain (the same in SpeechBrain 1.0.3 to 1.1.x):
    # no public hook can skip a validation stage. on_stage_start runs inside
    # it and cannot stop its loop over the valid set, and ``fit`` takes the
    # valid set once for every epoch.
    def _fit_valid(self, valid_set, epoch, enable):
        """SpeechBrain's validation stage, skipped once every probe has stopped."""
        if self.early_stopping is not None and self.early_stopping.all_stopped:
            return
        super()._fit_valid(valid_set, epoch, enable)

    def _end_fit_if_all_stopped(self) -> None:
        """Once every probe has stopped early, reach SpeechBrain's
        ``optimizer_step_limit`` (a run option): ``fit`` then ends its epoch
        at the next step and stops after it."""
        if self.early_stopping is not None and self.early_stopping.all_stopped:
            limit = self.optimizer_step_limit
            self.optimizer_step_limit = min(self.optimizer_step, limit or math.inf)

    def on_fit_start(self):
        """``sb.Brain.on_fit_start``; a resumed run whose probes have all
        stopped early trains no more."""
        super().on_fit_start()
        self._end_fit_if_all_stopped()

    def fit(self, epoch_counter, train_set, valid_set=None, **kwargs):
        """``sb.Brain.fit``; with early stopping, each probe's best state is
        then put back and saved in a final checkpoint (the one
        ``load_trained_probes`` and ``evaluate(min_key="loss")`` read)."""
        # loaders given as such; datasets are replaced by make_dataloader
        self._train_loader, self._valid_loader = train_set, valid_set
        super().fit(epoch_counter, train_set, valid_set, **kwargs)
        if self.early_stopping is not None and not self.test_only:
            self._keep_best_states(epoch_counter.current)

    def _keep_best_states(self, epoch) -> None:
        """Each probe's best state into its module, saved as the last checkpoint
        (once: a finished run that is started again saves nothing new)."""
        es = self.early_stopping
        if es.finished or not es.validated:
            return
        es.restore_best(self.modules)
        es.finished = True
        if self.checkpointer is not None:
            self._save_checkpoint({}, epoch, end_of_epoch=True)
        logger.info(
            "probes kept at their best validation: %s",
            ", ".join(
                f"{n} {es.best_loss[n]:.5f} (epoch {es.best_epoch[n]}"
                f"{', stopped early' if es.stopped[n] else ''})"
                for n in es.layers
            ),
        )

    def best_validation(self) -> dict[str, dict]:
        """Layer -> ``best_epoch``, ``best_step`` (optimizer steps) and
        ``stopped_early`` of the probes the training kept.

        With early stopping, each layer's own best validation; without, the
        epoch and step of the checkpoint with the lowest summed L1 (the same
        for every layer). Unknown values are None.
        """
        if self.early_stopping is not None:
            return {
                n: {k: v[k] for k in ("best_epoch", "best_step", "stopped_early")}
                for n, v in self.early_stopping.summary().items()
            }
        meta = {}
        if self.checkpointer is not None:
            best = find_complete_checkpoint(self.checkpointer.checkpoints_dir, "loss")
            meta = best.meta if best is not None else {}
        return {
            n: {
                "best_epoch": meta.get("epoch"),
                "best_step": meta.get("step"),
                "stopped_early": False,
            }
            for n in self.layers
        }
