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

A :class:`ProbeIdentity` travels in every checkpoint (the ASR's weight hash, the
layers with their paths, dims and downsampling, the mel settings) and is loaded
FIRST, so a checkpoint made for another ASR or layer is refused with a message
saying what differs, before any weight is loaded.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)
from torch import nn

from speechbrain_probe.checkpoints import (
    KillSafeCheckpoints,
    find_complete_checkpoint,
)
from speechbrain_probe.data.manifest import atomic_output
from speechbrain_probe.features import LogMelSpectrogram
from speechbrain_probe.probe.model import FrameAligner, HighwayProbe, frames_per_hidden
from speechbrain_probe.probe.prefetch import PrefetchedBatches

__all__ = [
    "ProbeMismatchError",
    "ProbeIdentity",
    "build_probes",
    "HiddenStateCache",
    "masked_l1",
    "ProbeBrain",
    "load_trained_probes",
    "reconstruct_mel",
]

logger = logging.getLogger(__name__)


class ProbeMismatchError(RuntimeError):
    """A probe checkpoint belongs to another ASR, layer set or mel setting."""


def _layer_entry(asr, name: str) -> dict:
    geo = asr.geometry(name)
    return {
        "path": asr.layers[name],
        "dim": int(geo.dim),
        "downsample": float(geo.downsample),
        "offset": float(geo.offset),
        "r": frames_per_hidden(geo.downsample),
    }


@register_checkpoint_hooks
class ProbeIdentity:
    """What a set of probes was trained on; refuses mismatched checkpoints.

    Arguments
    ---------
    asr : FrozenASR
        The frozen ASR (its weight hash and layer geometry are recorded).
    layers : list of str
        The probed layers.
    probe_kwargs : dict
        Extra probe settings (``n_highway``, ``gate_bias``).

    Example
    -------
    >>> from speechbrain_probe.frozen import ModuleASR
    >>> asr = ModuleASR(nn.Sequential(nn.Unflatten(1, (1, -1)), nn.Conv1d(1, 4, 200, 200)), {"c": "1"},
    ...     takes_lengths=False)
    >>> ident = ProbeIdentity(asr, ["c"])
    >>> ident.data["layers"]["c"]["dim"], ident.data["layers"]["c"]["r"]
    (4, 1)
    """

    def __init__(self, asr, layers, probe_kwargs: dict | None = None):
        self.data = {
            "asr_fingerprint": asr.fingerprint,
            "asr_source": asr.source,
            "layers": {name: _layer_entry(asr, name) for name in layers},
            "mel_config": asr.mel_config.to_dict(),
            "probe_kwargs": dict(probe_kwargs or {}),
        }

    @mark_as_saver
    def save(self, path):
        """Write the identity as JSON."""
        Path(path).write_text(json.dumps(self.data, indent=1, sort_keys=True))

    def check(self, stored: dict, where: str = "checkpoint") -> None:
        """Raise :class:`ProbeMismatchError` naming what differs from ``stored``."""
        if stored["asr_fingerprint"] != self.data["asr_fingerprint"]:
            raise ProbeMismatchError(
                f"the probe {where} was trained on another ASR ({stored['asr_source']}, "
                f"weights {stored['asr_fingerprint'][:12]}) than the one loaded now "
                f"({self.data['asr_source']}, weights "
                f"{self.data['asr_fingerprint'][:12]}); use that ASR, or train new probes "
                "in a fresh output folder"
            )
        mine, theirs = set(self.data["layers"]), set(stored["layers"])
        if mine != theirs:
            raise ProbeMismatchError(
                f"the probe {where} holds layers {sorted(theirs)} but layers "
                f"{sorted(mine)} were asked for; pick the layers it was trained for, "
                "or train new probes in a fresh output folder"
            )
        for name in sorted(mine):
            if stored["layers"][name] != self.data["layers"][name]:
                raise ProbeMismatchError(
                    f"layer {name!r} of the probe {where} was "
                    f"{stored['layers'][name]} but is now {self.data['layers'][name]}"
                )
        if stored["mel_config"] != self.data["mel_config"]:
            raise ProbeMismatchError(
                f"the probe {where} predicts mel {stored['mel_config']}, but the target "
                f"is now {self.data['mel_config']}"
            )

    @mark_as_loader
    def load(self, path, end_of_epoch=True):
        """Compare the stored identity with this one (never overwrites it)."""
        self.check(json.loads(Path(path).read_text()), where=str(Path(path).parent))


def build_probes(
    asr, layers, n_highway: int = 3, gate_bias: float = -1.0
) -> nn.ModuleDict:
    """One :class:`HighwayProbe` per layer, sized from the ASR's geometry.

    Example
    -------
    >>> from speechbrain_probe.frozen import ModuleASR
    >>> asr = ModuleASR(nn.Sequential(nn.Unflatten(1, (1, -1)), nn.Conv1d(1, 4, 800, 800)), {"c": "1"},
    ...     takes_lengths=False)
    >>> probes = build_probes(asr, ["c"])
    >>> probes["c"].input_dim, probes["c"].r
    (4, 4)
    """
    layers = asr.check_layers(layers)
    probes = nn.ModuleDict()
    for name in layers:
        geo = asr.geometry(name)
        probes[name] = HighwayProbe(
            geo.dim,
            r=frames_per_hidden(geo.downsample),
            n_mels=asr.mel_config.n_mels,
            n_highway=n_highway,
            gate_bias=gate_bias,
        )
    return probes


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


def _valid(rel_lens: torch.Tensor, total: int) -> torch.Tensor:
    return torch.round(rel_lens.float() * total).long().clamp(1, total)


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
        < _valid(rel_lens, frames).to(target.device)[:, None]
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
        Layer name -> probe (e.g. from :func:`build_probes`); each probe is its
        own Brain module, so DDP wraps each one. Register the same dict in the
        Checkpointer as ``probes`` so :func:`load_trained_probes` finds it.
    add_noise : callable, optional
        ``add_noise(wavs, lens)`` applied to training batches (e.g. SpeechBrain's
        ``AddNoise``); the target is then the noisy input's own mel.
    cache : HiddenStateCache, optional
        Reuse hidden states of clean input across epochs.
    prefetch : bool
        Compute the next training batch's mel target and ASR forward on a
        second thread while the probes train on this one
        (:mod:`~speechbrain_probe.probe.prefetch`): a step then costs about
        max(ASR, probes) instead of their sum. Worth it with a spare CPU core
        (run torch on half the cores) or on a GPU.
    train_logger : speechbrain.utils.train_logger.TrainLogger, optional
        Where each epoch's train and valid statistics go.
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
        prefetch=False,
        train_logger=None,
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
        self.add_noise = add_noise
        self.cache = cache
        super().__init__(modules=modules, **kwargs)
        self.mel = LogMelSpectrogram(asr.mel_config).to(self.device)
        self.asr.to(self.device).freeze()
        self.aligners = {}
        for name in self.layers:
            geo = asr.geometry(name)
            self.aligners[name] = FrameAligner(geo.downsample, geo.offset)
        self.identity = ProbeIdentity(asr, self.layers, self._probe_kwargs())
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("probe_identity", self.identity)
            # load the identity first: a mismatch is reported before any weights
            rec = self.checkpointer.recoverables
            self.checkpointer.recoverables = {
                "probe_identity": rec.pop("probe_identity"),
                **rec,
            }

    def _probe_kwargs(self) -> dict:
        probe = self.modules[self.layers[0]]
        probe = getattr(probe, "module", probe)
        return {"n_highway": len(probe.highways), "n_mels": probe.n_mels}

    # -- hidden states -------------------------------------------------------
    def hidden_states(self, ids, wavs, lens) -> dict[str, torch.Tensor]:
        """Hidden frames of every probed layer, from the cache or one ASR forward."""
        if self.cache is not None:
            cached = {n: [self.cache.get(i, n) for i in ids] for n in self.layers}
            if all(x is not None for frames in cached.values() for x in frames):
                return {
                    n: nn.utils.rnn.pad_sequence(frames, batch_first=True).to(
                        self.device
                    )
                    for n, frames in cached.items()
                }
        self.asr.root.eval()
        with torch.no_grad():
            states = self.asr.hidden_states(wavs, lens, self.layers)
        if self.cache is not None:
            for name, h in states.items():
                valid = _valid(lens.cpu(), h.shape[1])
                for i, utt in enumerate(ids):
                    self.cache.put(utt, name, h[i, : valid[i]])
        return states

    def shared_inputs(self, batch, stage):
        """Hidden states of one ASR forward and the mel target, for every probe.

        In training, ``add_noise`` is applied first: the target is the noisy
        input's own mel.
        """
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        if stage == sb.Stage.TRAIN and self.add_noise is not None:
            wavs = self.add_noise(wavs, lens)
        # the target in float32 even under --precision bf16/fp16 (autocast
        # would run the mel filterbank product in half precision)
        device_type = torch.device(self.device).type
        with torch.no_grad(), torch.autocast(device_type, enabled=False):
            target = self.mel(wavs.float())
        return self.hidden_states(batch.id, wavs, lens), target

    def predict(self, name, states, num_target):
        """Probe ``name``'s prediction ``[B, num_target, n_mels]``."""
        return self.aligners[name](self.modules[name](states[name]), num_target)

    def _inputs(self, batch, stage):
        """Hidden states and target: prefetched with the batch, or computed now."""
        if isinstance(batch, _PreparedBatch):
            return batch.states, batch.target
        return self.shared_inputs(batch, stage)

    def compute_forward(self, batch, stage):
        """Mel target and every probe's prediction from one ASR forward."""
        states, target = self._inputs(batch, stage)
        preds = {n: self.predict(n, states, target.shape[1]) for n in self.layers}
        return preds, target

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **kwargs):
        """SpeechBrain's loader; with ``prefetch``, each batch comes with its
        hidden states and mel target, prepared on a second thread."""
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, **kwargs)
        if self.prefetch:
            return PrefetchedBatches(loader, lambda b: self._prepare_batch(b, stage))
        return loader

    def _prepare_batch(self, batch, stage) -> _PreparedBatch:
        # runs on the prefetch thread: grad mode and autocast are per thread
        context = self.training_ctx if stage == sb.Stage.TRAIN else self.evaluation_ctx
        with torch.no_grad(), context:
            states, target = self.shared_inputs(batch, stage)
        return _PreparedBatch(batch, states, target)

    def fit_batch(self, batch):
        """One ASR forward, then each probe's forward and backward in turn.

        The gradients are those of the summed loss (each probe sees only its
        own loss), but each probe's graph is freed before the next probe runs.
        Follows ``sb.Brain.fit_batch`` otherwise (autocast, gradient scaling
        and accumulation, DDP ``no_sync``, non-finite loss check).
        """
        should_step = (self.step % self.grad_accumulation_factor) == 0
        self.on_fit_batch_start(_unwrap(batch), should_step)
        total = None
        with self.no_sync(not should_step):
            with self.training_ctx:
                states, target = self._inputs(batch, sb.Stage.TRAIN)
            batch = _unwrap(batch)
            for name in self.layers:
                with self.training_ctx:
                    pred = self.predict(name, states, target.shape[1])
                    loss = self.compute_objectives(
                        ({name: pred}, target), batch, sb.Stage.TRAIN
                    )
                scaled = self.scaler.scale(loss / self.grad_accumulation_factor)
                self.check_loss_isfinite(scaled)
                scaled.backward()
                total = loss.detach() if total is None else total + loss.detach()
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
        return total

    def on_stage_start(self, stage, epoch=None):
        """Reset per-layer sums; keep the ASR in eval mode whatever fit did."""
        self.asr.root.eval()
        self._layer_sums = {
            name: [
                torch.zeros((), dtype=torch.float64, device=self.device)
                for _ in range(2)
            ]
            for name in self.layers
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
        sums = torch.stack([torch.stack(self._layer_sums[n]).to("cpu") for n in names])
        if torch.distributed.get_backend() == "nccl":
            sums = sums.to(self.device)
        torch.distributed.all_reduce(sums)
        self._layer_sums = {n: [a, b] for n, (a, b) in zip(names, sums)}

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log per-layer L1; checkpoint after validation (best by mean L1)."""
        self._reduce_layer_sums()
        stats = {"loss": stage_loss}
        stats.update({f"l1_{n}": round(v, 5) for n, v in self.layer_losses().items()})
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
        elif stage == sb.Stage.VALID:
            self.valid_stats = stats
            lr = (
                self.optimizer.param_groups[0]["lr"]
                if hasattr(self, "optimizer")
                else None
            )
            if self.train_logger is not None:
                self.train_logger.log_stats(
                    stats_meta={"epoch": epoch, "lr": lr},
                    train_stats=getattr(self, "train_stats", None),
                    valid_stats=stats,
                )
            if self.checkpointer is not None:
                self.checkpointer.save_and_keep_only(
                    meta={
                        "loss": stage_loss,
                        **{k: v for k, v in stats.items() if k != "loss"},
                    },
                    min_keys=["loss"],
                    num_to_keep=1,
                )
        elif stage == sb.Stage.TEST:
            self.test_stats = stats


def load_trained_probes(
    checkpoint_dir, asr, layers=None, device="cpu"
) -> nn.ModuleDict:
    """Load probes from a ``ProbeBrain`` checkpoint folder, checking its identity.

    Arguments
    ---------
    checkpoint_dir : str or path
        The ``CKPT+...`` folder, or the save folder holding them (the best by
        validation loss is used).
    asr : FrozenASR
        The ASR they must belong to.
    layers : list of str, optional
        Default: every layer of the checkpoint.
    device : str
        Where to put the probes.

    Returns
    -------
    torch.nn.ModuleDict
        Layer -> probe, in eval mode.
    """
    folder = Path(checkpoint_dir)
    if not (folder / "probe_identity.ckpt").exists():
        best = find_complete_checkpoint(folder, min_key="loss")
        if best is None:
            raise FileNotFoundError(
                f"no probe checkpoint in {folder}; train probes with train_probe.py first"
            )
        folder = best.path
    stored = json.loads((folder / "probe_identity.ckpt").read_text())
    layers = list(stored["layers"]) if layers is None else asr.check_layers(layers)
    kwargs = {
        k: v for k, v in stored.get("probe_kwargs", {}).items() if k == "n_highway"
    }
    probes = build_probes(asr, list(stored["layers"]), **kwargs)
    ProbeIdentity(asr, list(stored["layers"]), stored.get("probe_kwargs")).check(
        stored, where=str(folder)
    )
    state = torch.load(folder / "probes.ckpt", map_location="cpu")
    probes.load_state_dict(state)
    keep = nn.ModuleDict({n: probes[n] for n in layers})
    return keep.to(device).eval()


@torch.no_grad()
def reconstruct_mel(
    asr, probes, wavs, wav_lens, layers=None
) -> dict[str, torch.Tensor]:
    """Each probe's mel prediction ``[B, T_mel, n_mels]`` for a batch of audio.

    ``T_mel`` is the frame count of ``LogMelSpectrogram(asr.mel_config)(wavs)``,
    so the result feeds the vocoder directly (values are clipped to [0, 1],
    the range of the normalised mel). One ASR forward serves every layer.

    Example
    -------
    >>> from speechbrain_probe.frozen import ModuleASR
    >>> asr = ModuleASR(nn.Sequential(nn.Unflatten(1, (1, -1)), nn.Conv1d(1, 4, 400, 400)),
    ...     {"c": "1"}, takes_lengths=False)
    >>> mels = reconstruct_mel(asr, build_probes(asr, ["c"]), torch.randn(2, 8000), torch.ones(2))
    >>> mels["c"].shape
    torch.Size([2, 41, 80])
    """
    layers = list(probes) if layers is None else asr.check_layers(layers)
    cfg = asr.mel_config
    num_target = wavs.shape[-1] // cfg.hop_length + 1
    states = asr.hidden_states(wavs, wav_lens, layers)
    out = {}
    for name in layers:
        geo = asr.geometry(name)
        pred = probes[name].eval()(
            states[name].to(next(probes[name].parameters()).device)
        )
        out[name] = FrameAligner(geo.downsample, geo.offset)(pred, num_target).clamp(
            0, 1
        )
    return out
