"""Any speech corpus in SpeechBrain CSV manifests, made ready for a probe study.

A user brings manifests (``ID``, ``wav``, ``spk_id``; ``duration`` and
``wrd`` optional; ``$data_root`` / ``{data_root}`` in paths replaced), at any
sample rate, with any number of channels and of any length, and optionally
noise manifests (``ID``, ``wav``, ``category`` optional). :func:`prepare_user_corpus`
checks every row before any long work, then writes into one folder what the
probe training and the evaluation read:

* ``train.csv`` and ``valid.csv``: the user's rows with absolute paths and
  durations (their audio is converted on the fly, :func:`load_audio`);
* ``test.csv``: 16 kHz mono copies of the test audio (``test_audio/``), cut to
  ``max_test_seconds``;
* ``noise_train.csv`` / ``noise_test.csv``: 16 kHz mono copies of the noises;
* ``test_snr<N>.csv``: the test set mixed with the test noises at each SNR,
  each mixture with its exact clean reference
  (:func:`~speechbrain_probe.data.noisy.build_noisy_test_sets`).

Conversions are logged once per manifest (how many files, from what rate and
channel count). Everything written is reused by a second call with the same
inputs (resumable); other inputs in the same folder are refused.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from speechbrain_probe.atomic import atomic_write_text

from .audio import write_wav
from .manifest import write_manifest
from .noisy import build_noisy_test_sets, snr_condition

__all__ = [
    "ManifestError",
    "AudioRow",
    "read_user_manifest",
    "load_audio",
    "check_test_speakers",
    "prepare_user_corpus",
]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
_PREPARED = "prepared.json"


class ManifestError(ValueError):
    """A manifest, or a row of it, that cannot be used; the message names the
    file, the row and the fix."""


@dataclass(frozen=True)
class AudioRow:
    """One checked manifest row.

    ``sample_rate``, ``channels`` and ``frames`` are those of the file on disk.
    """

    utt_id: str
    wav: str
    spk_id: str
    words: str
    sample_rate: int
    channels: int
    frames: int
    category: str = ""

    @property
    def duration(self) -> float:
        """Seconds of audio in the file."""
        return self.frames / self.sample_rate


def _replace_root(text: str, data_root) -> str:
    if data_root is None:
        return text
    root = str(data_root)
    return text.replace("$data_root", root).replace("{data_root}", root)


def read_user_manifest(
    path, what: str, data_root=None, needs_speaker: bool = True
) -> list[AudioRow]:
    """Read a SpeechBrain CSV and check that every row's audio can be read.

    Only file headers are read (no decoding), so a corpus of thousands of
    files is checked in seconds.

    Arguments
    ---------
    path : str or path
        The CSV (``ID`` and ``wav`` columns; ``spk_id`` when ``needs_speaker``).
    what : str
        Its hparams key, named in errors (e.g. ``test_csv``).
    data_root : str or path, optional
        Replaces ``$data_root`` / ``{data_root}`` in the ``wav`` column.
    needs_speaker : bool
        Require ``spk_id`` (False for noise manifests).

    Returns
    -------
    list of AudioRow

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = write_wav(tmp / "a.wav", np.zeros(8000))
    >>> _ = (tmp / "t.csv").write_text("ID,wav,spk_id\\nu1,$data_root/a.wav,s1\\nu2,$data_root/b.wav,s1\\n")
    >>> read_user_manifest(tmp / "t.csv", "test_csv", data_root=tmp)
    Traceback (most recent call last):
    ...
    speechbrain_probe.data.user_corpus.ManifestError: test_csv ... row 3 (ID u2): audio file .../b.wav does not exist; fix the wav column (or --data_root) or remove the row
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(
            f"{what}: {path} does not exist; give a SpeechBrain CSV (columns ID, wav"
            f"{', spk_id' if needs_speaker else ''}) with --{what}=<file>"
        )
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        needed = ["ID", "wav"] + (["spk_id"] if needs_speaker else [])
        missing = [c for c in needed if c not in columns]
        if missing:
            raise ManifestError(
                f"{what} {path} lacks column(s) {', '.join(missing)} (it has: "
                f"{', '.join(columns) or 'no header'}); a SpeechBrain CSV needs "
                f"{', '.join(needed)}"
            )
        raw = list(reader)
    if not raw:
        raise ManifestError(f"{what} {path} lists no rows; give at least one utterance")
    rows, seen = [], set()
    for line, row in enumerate(raw, start=2):
        utt = (row.get("ID") or "").strip()
        where = f"{what} {path} row {line} (ID {utt or '?'})"
        if not utt:
            raise ManifestError(f"{where}: empty ID; every row needs a unique ID")
        if utt in seen:
            raise ManifestError(f"{where}: ID {utt} appears twice; IDs must be unique")
        seen.add(utt)
        wav = Path(os.path.expanduser(_replace_root(row["wav"].strip(), data_root)))
        if not wav.is_absolute():
            # relative to where the command runs (SpeechBrain's reading), else
            # to the manifest's folder
            beside = path.parent / wav
            wav = (wav if wav.exists() or not beside.exists() else beside).resolve()
        if not wav.is_file():
            raise ManifestError(
                f"{where}: audio file {wav} does not exist; fix the wav column "
                "(or --data_root) or remove the row"
            )
        try:
            info = sf.info(str(wav))
        except Exception as err:  # soundfile raises several types
            raise ManifestError(
                f"{where}: audio file {wav} cannot be read ({err}); replace the file "
                "or remove the row"
            ) from None
        if info.frames <= 0:
            raise ManifestError(
                f"{where}: audio file {wav} is empty; replace it or remove the row"
            )
        speaker = (row.get("spk_id") or "").strip()
        if needs_speaker and not speaker:
            raise ManifestError(f"{where}: empty spk_id; every utterance needs one")
        rows.append(
            AudioRow(
                utt,
                str(wav),
                speaker,
                (row.get("wrd") or "").strip(),
                int(info.samplerate),
                int(info.channels),
                int(info.frames),
                (row.get("category") or "").strip(),
            )
        )
    _log_formats(rows, what)
    return rows


def _log_formats(rows: list[AudioRow], what: str) -> None:
    formats = Counter(
        (r.sample_rate, r.channels)
        for r in rows
        if (r.sample_rate, r.channels) != (SAMPLE_RATE, 1)
    )
    if formats:
        text = ", ".join(
            f"{n} at {sr} Hz with {ch} channel(s)" for (sr, ch), n in formats.items()
        )
        logger.warning(
            "%s: %d of %d files are not 16 kHz mono (%s); they are converted to 16 kHz "
            "mono (channels averaged, resampled) as they are read",
            what,
            sum(formats.values()),
            len(rows),
            text,
        )


def load_audio(
    path,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: float | None = None,
    offset_seed: str | None = None,
) -> np.ndarray:
    """Read any audio file as mono float32 at ``sample_rate``.

    Channels are averaged; other rates are resampled (torchaudio's sinc
    resampler). With ``max_seconds`` only that much is read: from the start,
    or, with ``offset_seed`` (e.g. the utterance ID), from an offset derived
    from it (the same piece on every call).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> stereo = np.stack([np.ones(44100), -np.ones(44100) * 0.5], axis=1) * 0.1
    >>> sf.write(tmp / "s.wav", stereo, 44100)
    >>> wav = load_audio(tmp / "s.wav")
    >>> wav.shape, wav.dtype, round(float(wav[8000]), 3)
    ((16000,), dtype('float32'), 0.025)
    >>> load_audio(tmp / "s.wav", max_seconds=0.5).shape
    (8000,)
    """
    info = sf.info(str(path))
    start, frames = 0, -1
    if max_seconds is not None and info.frames > max_seconds * info.samplerate:
        frames = int(max_seconds * info.samplerate)
        if offset_seed is not None:
            span = info.frames - frames
            start = zlib.crc32(str(offset_seed).encode()) % (span + 1)
    wav, sr = sf.read(
        str(path), start=start, frames=frames, dtype="float32", always_2d=True
    )
    wav = wav.mean(axis=1) if wav.shape[1] > 1 else wav[:, 0]
    if sr != sample_rate:
        import torch
        import torchaudio

        wav = torchaudio.functional.resample(
            torch.from_numpy(np.ascontiguousarray(wav)), sr, sample_rate
        ).numpy()
    return np.ascontiguousarray(wav, dtype=np.float32)


def check_test_speakers(rows: list[AudioRow], what: str = "test_csv") -> None:
    """Refuse a test set without target trials or without non-target trials.

    Speaker verification needs two utterances of one speaker (a target
    trial) and two speakers (a non-target trial).

    Example
    -------
    >>> r = lambda u, s: AudioRow(u, "x.wav", s, "", 16000, 1, 16000)
    >>> check_test_speakers([r("a", "s1"), r("b", "s1"), r("c", "s2")])
    >>> check_test_speakers([r("a", "s1"), r("b", "s2")])
    Traceback (most recent call last):
    ...
    speechbrain_probe.data.user_corpus.ManifestError: test_csv: every speaker has one utterance (2 speakers), so there are no same-speaker trials; the speaker EER needs at least 2 utterances of some speakers
    """
    counts = Counter(r.spk_id for r in rows)
    if len(counts) < 2:
        raise ManifestError(
            f"{what}: all {len(rows)} utterances are of one speaker "
            f"({next(iter(counts))}); the speaker EER needs at least 2 speakers"
        )
    if max(counts.values()) < 2:
        raise ManifestError(
            f"{what}: every speaker has one utterance ({len(counts)} speakers), so "
            "there are no same-speaker trials; the speaker EER needs at least 2 "
            "utterances of some speakers"
        )


def _utterance_rows(files) -> list[dict]:
    """Manifest rows of ``(row, audio file, seconds)``."""
    return [
        dict(
            ID=r.utt_id,
            duration=f"{seconds:.3f}",
            wav=str(wav),
            spk_id=r.spk_id,
            wrd=r.words,
        )
        for r, wav, seconds in files
    ]


def _copy_audio(rows, folder: Path, max_seconds, desc: str, progress: bool):
    """16 kHz mono copies (reused when present); returns (row, path, seconds)."""
    out = []
    for r in tqdm(rows, desc=desc, disable=not progress, leave=False):
        target = folder / f"{r.utt_id}.wav"
        if target.is_file():
            seconds = sf.info(str(target)).duration
        else:
            wav = load_audio(r.wav, SAMPLE_RATE, max_seconds)
            write_wav(target, wav, SAMPLE_RATE)
            seconds = len(wav) / SAMPLE_RATE
        out.append((r, target.resolve(), seconds))
    return out


def _fingerprint(inputs: dict) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for key in sorted(inputs):
        value = inputs[key]
        digest.update(f"{key}={value}".encode())
        if value and Path(str(value)).is_file():
            digest.update(Path(str(value)).read_bytes())
    return digest.hexdigest()


def prepare_user_corpus(
    out_dir,
    train_csv,
    valid_csv,
    test_csv,
    noise_csv=None,
    train_noise_csv=None,
    snrs=(20, 10, 0),
    data_root=None,
    max_test_seconds: float | None = 30.0,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Check a user's manifests and write the study's data folder.

    Arguments
    ---------
    out_dir : str or path
        The prepared folder (created; reused when it holds the same inputs).
    train_csv, valid_csv, test_csv : str or path
        SpeechBrain CSVs (``ID``, ``wav``, ``spk_id``).
    noise_csv : str or path, optional
        Noises mixed into the test set at ``snrs`` (none: clean only).
    train_noise_csv : str or path, optional
        Noises for noisy probe training (``noise_train.csv``; none: none).
    snrs : sequence of float
        SNRs in dB of the noisy test conditions.
    data_root : str or path, optional
        Replaces ``$data_root`` in the manifests' ``wav`` column.
    max_test_seconds : float, optional
        Test audio is cut to this length (None: whole files).
    seed : int
        Seed of the noise choice.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        ``conditions`` (``clean`` then ``snr<N>``), ``folder`` and counts.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> rng = np.random.default_rng(0)
    >>> lines = ["ID,wav,spk_id"]
    >>> for i in range(4):
    ...     _ = sf.write(tmp / f"u{i}.wav", 0.1 * rng.standard_normal((22050, 2)), 22050)
    ...     lines.append(f"u{i},{tmp}/u{i}.wav,s{i % 2}")
    >>> _ = (tmp / "m.csv").write_text("\\n".join(lines) + "\\n")
    >>> _ = write_wav(tmp / "n.wav", 0.1 * rng.standard_normal(16000))
    >>> _ = (tmp / "n.csv").write_text(f"ID,wav\\nn1,{tmp}/n.wav\\n")
    >>> out = prepare_user_corpus(tmp / "prep", tmp / "m.csv", tmp / "m.csv", tmp / "m.csv",
    ...                           noise_csv=tmp / "n.csv", snrs=[5], progress=False)
    >>> out["conditions"], sorted(p.name for p in (tmp / "prep").glob("*.csv"))
    (['clean', 'snr5'], ['noise_test.csv', 'test.csv', 'test_snr5.csv', 'train.csv', 'valid.csv'])
    >>> sf.info(str(tmp / "prep" / "test_audio" / "u0.wav")).samplerate
    16000
    """
    out_dir = Path(out_dir)
    inputs = dict(
        train_csv=train_csv,
        valid_csv=valid_csv,
        test_csv=test_csv,
        noise_csv=noise_csv,
        train_noise_csv=train_noise_csv,
        snrs=",".join(f"{float(s):g}" for s in snrs) if noise_csv else "",
        data_root=data_root,
        max_test_seconds=max_test_seconds,
        seed=seed,
    )
    stamp = out_dir / _PREPARED
    fingerprint = _fingerprint(inputs)
    if stamp.is_file():
        stored = json.loads(stamp.read_text())
        if stored.get("fingerprint") == fingerprint:
            return stored
        raise ManifestError(
            f"{out_dir} was prepared from other manifests or settings "
            f"({stored.get('inputs')}); use another output folder, or delete {out_dir} "
            "to prepare it again (probes and results elsewhere are kept)"
        )
    # 1. check every row of every manifest before any long work
    train = read_user_manifest(train_csv, "train_csv", data_root)
    valid = read_user_manifest(valid_csv, "valid_csv", data_root)
    test = read_user_manifest(test_csv, "test_csv", data_root)
    check_test_speakers(test)
    noises = {}
    for key, name, manifest in (
        ("noise_csv", "noise_test", noise_csv),
        ("train_noise_csv", "noise_train", train_noise_csv),
    ):
        if manifest:
            noises[name] = read_user_manifest(
                manifest, key, data_root, needs_speaker=False
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    # 2. manifests and 16 kHz mono copies
    for name, rows in (("train", train), ("valid", valid)):
        files = [(r, r.wav, r.duration) for r in rows]
        write_manifest(out_dir / f"{name}.csv", _utterance_rows(files))
    copies = _copy_audio(
        test, out_dir / "test_audio", max_test_seconds, "test audio", progress
    )
    if max_test_seconds is not None:
        cut = sum(1 for r in test if r.duration > max_test_seconds)
        if cut:
            logger.warning(
                "test_csv: %d of %d files are longer than max_test_seconds=%g s and "
                "were cut to that length",
                cut,
                len(test),
                max_test_seconds,
            )
    write_manifest(out_dir / "test.csv", _utterance_rows(copies))
    for name, rows in noises.items():
        noise_copies = _copy_audio(rows, out_dir / name, None, name, progress)
        write_manifest(
            out_dir / f"{name}.csv",
            [
                dict(
                    ID=r.utt_id,
                    duration=f"{seconds:.3f}",
                    wav=str(path),
                    category=r.category or "noise",
                )
                for r, path, seconds in noise_copies
            ],
            fields=("ID", "duration", "wav", "category"),
        )
    conditions = ["clean"]
    if noise_csv:
        build_noisy_test_sets(
            out_dir / "test.csv",
            out_dir / "noise_test.csv",
            out_dir,
            snrs=list(snrs),
            seed=seed,
            progress=progress,
        )
        conditions += [snr_condition(s) for s in snrs]
    summary = dict(
        folder=str(out_dir.resolve()),
        conditions=conditions,
        train_utts=len(train),
        valid_utts=len(valid),
        test_utts=len(test),
        test_speakers=len({r.spk_id for r in test}),
        fingerprint=fingerprint,
        inputs={k: str(v) for k, v in inputs.items()},
    )
    atomic_write_text(stamp, json.dumps(summary, indent=1))
    return summary
