"""Hidden states of each training utterance, computed once and read back.

A probe training step costs the frozen ASR's forward (and the mel target)
plus each probe's own step. When every training utterance keeps one input
for the whole run (clean, or one noise draw fixed by the mixer's seed and the
utterance's id: :meth:`~speechbrain_probe.probe.noise_mixer.NoiseMixer.mix_utterances`),
the first epoch's forward can be stored and the later epochs read it instead
of running the ASR.

:class:`StateStore` keeps one record per utterance on disk (not in memory:
one VGG-LSTM's states for the demo's 3,000 training utterances are ~3 GB in
float16): the valid frames of every probed layer (``dtype``, float16 by
default) and of the mel target (float32), written atomically
(:func:`~speechbrain_probe.atomic.atomic_output`), so a killed run leaves
whole records or none, and a resumed run reads the ones it wrote. Records are
read with ``torch.load`` one batch at a time (no memory-mapping: mapped pages
would count in the process's memory).

The folder is named by a hash of everything the records depend on (the
ASR's weights, the layers, the stored dtype and what the caller adds: the
noise mixer's settings, the target mel); each record carries that hash too,
so another ASR, or other settings, never read them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import shutil
from pathlib import Path

import torch
from torch import nn

from speechbrain_probe.atomic import atomic_output, atomic_write_text

__all__ = ["StateStore", "StoreSpaceError"]

logger = logging.getLogger(__name__)

#: Room left free on the disk besides the planned records (logs, checkpoints).
HEADROOM_BYTES = 256 * 2**20


class StoreSpaceError(RuntimeError):
    """The disk cannot hold the records a training run will write."""


def valid_frames(rel_lens: torch.Tensor, total: int) -> torch.Tensor:
    """Valid frames of each item from SpeechBrain's relative lengths (>= 1);
    the one rounding of the stored records and of ProbeBrain's masked L1."""
    return torch.round(rel_lens.float() * total).long().clamp(1, total)


class StateStore:
    """One on-disk record per training utterance: hidden states and mel target.

    Arguments
    ---------
    folder : str or path
        Root folder; the records go in ``<folder>/<asr hash[:16]>/<key hash[:16]>/``.
    fingerprint : str
        The ASR's weight hash (``asr.fingerprint``).
    layers : list of str
        The layers each record holds.
    key : dict, optional
        Whatever else the records depend on (JSON-serialisable: noise settings,
        target mel); another key is another store.
    dtype : torch.dtype or str
        How hidden states are stored (``float16`` or ``float32``); the target
        is stored in float32.

    Example
    -------
    >>> store = StateStore(getfixture("tmp_path"), "abc", ["l1"], key={"seed": 0})
    >>> states = {"l1": torch.randn(2, 4, 3)}
    >>> target, lens = torch.randn(2, 8, 5), torch.tensor([1.0, 0.5])
    >>> store.get(["a", "b"]) is None
    True
    >>> store.put(["a", "b"], states, target, lens)
    >>> got, got_target = store.get(["a", "b"])
    >>> got["l1"].shape, got_target.shape, torch.equal(got_target[1, :4], target[1, :4])
    (torch.Size([2, 4, 3]), torch.Size([2, 8, 5]), True)
    >>> stored = states["l1"].half().float()
    >>> torch.equal(got["l1"][0], stored[0]), torch.equal(got["l1"][1, :2], stored[1, :2])
    (True, True)
    >>> float(got["l1"][1, 2:].abs().sum())  # the padding of the shorter one
    0.0
    >>> StateStore(getfixture("tmp_path"), "abd", ["l1"], key={"seed": 0}).get(["a"]) is None
    True
    """

    def __init__(self, folder, fingerprint: str, layers, key=None, dtype="float16"):
        self.layers = list(layers)
        self.dtype = getattr(torch, str(dtype).replace("torch.", ""))
        if self.dtype not in (torch.float16, torch.float32, torch.bfloat16):
            raise ValueError(f"states dtype must be a float type, got {dtype}")
        self.key = {
            "asr_fingerprint": str(fingerprint),
            "layers": self.layers,
            "dtype": str(self.dtype),
            **(key or {}),
        }
        text = json.dumps(self.key, sort_keys=True, default=str)
        self.digest = hashlib.sha256(text.encode()).hexdigest()
        self.folder = Path(folder) / str(fingerprint)[:16] / self.digest[:16]
        self._text = text
        self._expected = None

    def expect(self, utterances: int) -> None:
        """Check, once the next batch is written, that the disk holds the
        records of ``utterances`` in all (its records' size times those not
        stored yet, plus :data:`HEADROOM_BYTES`); else :meth:`put` raises
        :class:`StoreSpaceError`, keeping the records written so far.

        Example
        -------
        >>> store = StateStore(getfixture("tmp_path"), "abc", ["l1"])
        >>> store.expect(10**12)  # a trillion utterances of 2 x 3 float16 states
        >>> store.put(["a"], {"l1": torch.randn(1, 2, 3)}, torch.randn(1, 4, 5), torch.ones(1))
        Traceback (most recent call last):
        ...
        speechbrain_probe.probe.state_store.StoreSpaceError: the stored hidden states need about ...
        """
        self._expected = int(utterances)

    def _check_room(self, written: list[Path]) -> None:
        expected, self._expected = self._expected, None
        per_record = sum(p.stat().st_size for p in written) / len(written)
        stored = sum(1 for _ in self.folder.glob("*.pt"))
        remaining = max(0, expected - stored)
        need = per_record * remaining
        free = shutil.disk_usage(self.folder).free
        if need + HEADROOM_BYTES > free:
            raise StoreSpaceError(
                f"the stored hidden states need about {need / 1e9:.1f} GB more in "
                f"{self.folder} ({remaining} utterances x "
                f"{per_record / 1e6:.2f} MB), but {free / 1e9:.1f} GB is free: free "
                "space there, store them on a disk with room (--states_folder=PATH), "
                "or do not store them (--reuse_states=False: every epoch then runs "
                f"the frozen ASR, as the first does). The {stored} records written "
                "so far are kept and read by the next run."
            )

    def _path(self, utt_id: str) -> Path:
        utt_id = str(utt_id)
        tag = hashlib.sha1(utt_id.encode()).hexdigest()[:8]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in utt_id)
        return self.folder / f"{safe[:80]}-{tag}.pt"

    def _load(self, utt_id: str):
        path = self._path(utt_id)
        if not path.exists():
            return None
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:
            logger.warning("unreadable stored states %s (%s): recomputed", path, err)
            return None
        if record.get("key") != self.digest or not set(self.layers) <= set(
            record["states"]
        ):
            return None
        return record

    def get(self, ids, device="cpu"):
        """``(states, target)`` of the utterances ``ids``, padded to a batch
        (``{layer: [B, T_h, D]}`` float32, ``[B, T, n_mels]``), or None when
        any of them is not stored."""
        records = []
        for utt_id in ids:
            record = self._load(utt_id)
            if record is None:
                return None
            records.append(record)

        def batch(frames):
            padded = nn.utils.rnn.pad_sequence(frames, batch_first=True)
            return padded.to(device=device, dtype=torch.float32)

        states = {n: batch([r["states"][n] for r in records]) for n in self.layers}
        return states, batch([r["target"] for r in records])

    def put(self, ids, states, target, lens) -> None:
        """Store each utterance's valid frames of ``states`` (``{layer:
        [B, T_h, D]}``) and ``target`` (``[B, T, n_mels]``); ``lens`` are the
        batch's relative lengths."""
        lens = lens.detach().cpu()
        self._write_key()
        valid = {n: valid_frames(lens, h.shape[1]) for n, h in states.items()}
        valid_target = valid_frames(lens, target.shape[1])
        written = []
        for i, utt_id in enumerate(ids):
            record = {
                "key": self.digest,
                "states": {
                    n: h[i, : valid[n][i]].detach().to("cpu", self.dtype).clone()
                    for n, h in states.items()
                },
                "target": target[i, : valid_target[i]]
                .detach()
                .to("cpu", torch.float32)
                .clone(),
            }
            path = self._path(utt_id)
            with atomic_output(path, suffix=".pt") as tmp:
                torch.save(record, tmp)
            written.append(path)
        if self._expected is not None:
            self._check_room(written)

    def _write_key(self) -> None:
        """``key.json`` beside the records (what they depend on, for a reader)."""
        path = self.folder / "key.json"
        if not path.exists():
            atomic_write_text(path, json.dumps(json.loads(self._text), indent=1))

    def clear(self) -> None:
        """Remove the records (e.g. once training is over)."""
        shutil.rmtree(self.folder, ignore_errors=True)
