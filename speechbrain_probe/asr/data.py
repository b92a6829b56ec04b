"""Data for CTC training: checked manifests, cached features, noisy copies.

The log-mel of the shared :class:`~speechbrain_probe.features.ASRFeatures`
(``[T, 80]``) is computed once per utterance and stored as float16 in one file
per manifest, so epochs only run the network (the deltas are added per
utterance when a batch is read). The cache file name
carries a hash of the manifest rows and the mel settings; it is rewritten
atomically and reused by every model trained on the same data.

Noise-robust training (the paper's Kaldi x-vector style) adds, for every
training utterance, one copy mixed with a training noise of a random category
at a random SNR of that category's range
(:data:`~speechbrain_probe.vocabulary.NOISE_SNR_RANGES`), drawn
reproducibly from a seed. Mixing uses the project's one rule,
:func:`speechbrain_probe.data.noise.mix_at_snr`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from speechbrain_probe.atomic import atomic_output
from speechbrain_probe.features import ASRFeatures, MelConfig
from speechbrain_probe.vocabulary import NOISE_SNR_RANGES

__all__ = [
    "read_checked_manifest",
    "read_noise_bank",
    "load_audio",
    "compute_feature_cache",
    "make_noisy_copies",
]

logger = logging.getLogger(__name__)

_UTT_COLUMNS = ("ID", "duration", "wav", "wrd")


def load_audio(path: str, sample_rate: int = 16000) -> np.ndarray:
    """Read a mono float32 waveform with soundfile; clear errors on bad files.

    Example
    -------
    >>> p = getfixture("tmp_path") / "x.wav"
    >>> sf.write(p, np.zeros(160, dtype="float32"), 16000)
    >>> load_audio(str(p)).shape
    (160,)
    >>> load_audio(str(p), sample_rate=8000)
    Traceback (most recent call last):
    ...
    ValueError: .../x.wav has sample rate 16000 Hz, expected 8000 Hz; resample the corpus
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file {path} not found")
    wav, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != sample_rate:
        raise ValueError(
            f"{path} has sample rate {sr} Hz, expected {sample_rate} Hz; resample the corpus"
        )
    return wav.mean(axis=1)


def read_checked_manifest(
    csv_path: str, min_duration: float = 0.0, columns=_UTT_COLUMNS
) -> list[dict]:
    """Read a SpeechBrain CSV manifest and check it before any training starts.

    Missing audio files are an error listing (the first few of) them; rows of
    zero length (or shorter than ``min_duration`` seconds) or with an empty
    transcript are skipped with a warning.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(tmp / "a.wav", np.zeros(1600, dtype="float32"), 16000)
    >>> _ = (tmp / "m.csv").write_text(
    ...     "ID,duration,wav,spk_id,wrd\\n"
    ...     f"a,0.1,{tmp}/a.wav,s,HELLO\\n"
    ...     f"z,0.0,{tmp}/a.wav,s,EMPTY\\n")
    >>> [r["ID"] for r in read_checked_manifest(str(tmp / "m.csv"))]
    ['a']
    """
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(
            f"manifest {csv_path} not found; build or prepare the corpus first"
        )
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing_cols = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing_cols:
            raise ValueError(
                f"{csv_path} lacks column(s) {missing_cols}; expected a SpeechBrain "
                "CSV with ID,duration,wav,spk_id,wrd"
            )
        rows = list(reader)
    missing = [r["wav"] for r in rows if not os.path.isfile(r["wav"])]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(rows)} audio files listed in {csv_path} do not "
            f"exist, e.g. {missing[:3]}; rebuild the corpus or fix the wav paths"
        )
    kept, skipped = [], []
    for r in rows:
        if float(r["duration"]) <= min_duration or not r["wrd"].strip():
            skipped.append(r["ID"])
        else:
            kept.append(r)
    if skipped:
        logger.warning(
            "skipping %d utterance(s) of %s with zero/too short duration or an empty "
            "transcript: %s",
            len(skipped),
            csv_path,
            skipped[:5],
        )
    if not kept:
        raise ValueError(f"no usable utterances in {csv_path}")
    return kept


def read_noise_bank(folder: str, split: str = "train") -> dict[str, list[str]]:
    """Noise wav paths per category from ``noise_<split>.csv`` (or per-category
    ``noise_<split>_<category>.csv``) in ``folder``.

    Example
    -------
    >>> read_noise_bank(str(getfixture("tmp_path")))
    Traceback (most recent call last):
    ...
    FileNotFoundError: no noise_train.csv or noise_train_<category>.csv in ...
    """
    bank: dict[str, list[str]] = {}
    main = os.path.join(folder, f"noise_{split}.csv")
    per_category = [
        os.path.join(folder, f"noise_{split}_{cat}.csv") for cat in NOISE_SNR_RANGES
    ]
    paths = (
        [main]
        if os.path.isfile(main)
        else [p for p in per_category if os.path.isfile(p)]
    )
    if not paths:
        raise FileNotFoundError(
            f"no noise_{split}.csv or noise_{split}_<category>.csv in {folder}; "
            "build the corpus with its noise bank first"
        )
    for p in paths:
        with open(p, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                cat = row.get("category") or os.path.basename(p)[:-4].rsplit("_", 1)[-1]
                bank.setdefault(cat, []).append(row["wav"])
    unknown = sorted(set(bank) - set(NOISE_SNR_RANGES))
    if unknown:
        raise ValueError(f"unknown noise categories {unknown} in {paths}")
    return {k: sorted(set(v)) for k, v in sorted(bank.items())}


def _cache_key(rows: list[dict], mel: MelConfig, extra: str = "") -> str:
    h = hashlib.sha1()
    h.update(json.dumps(mel.to_dict(), sort_keys=True).encode())
    h.update(extra.encode())
    for r in rows:
        h.update(f"{r['ID']}|{r['wav']}|{r['duration']}\n".encode())
    return h.hexdigest()[:12]


def _atomic_torch_save(obj, path: str):
    with atomic_output(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


@torch.no_grad()
def _features(extractor: ASRFeatures, wav: np.ndarray) -> torch.Tensor:
    return extractor(torch.from_numpy(wav).float().unsqueeze(0))[0].to(torch.float16)


def compute_feature_cache(
    rows: list[dict],
    cache_dir: str,
    name: str,
    mel_config: MelConfig | dict | None = None,
    audio_fn=None,
    extra_key: str = "",
) -> dict[str, torch.Tensor]:
    """Log-mel ``[T, n_mels]`` (float16) of every row, cached on disk.

    The deltas of the models' input are added when a batch is read
    (:func:`~speechbrain_probe.features.add_deltas`): a cache of the log-mel
    alone takes a third of the memory (the training set of the built-in
    corpus: 137 MB instead of 412 MB, twice that for a noise-robust model).

    Arguments
    ---------
    rows : list of dict
        Manifest rows (``ID``, ``wav``, ``duration``).
    cache_dir : str
        Folder of the cache files (shared between models).
    name : str
        Readable part of the cache file name (e.g. ``train``).
    mel_config : MelConfig or dict
        Feature settings.
    audio_fn : callable, optional
        ``audio_fn(row) -> np.ndarray`` (default: read ``row["wav"]``); the
        noisy copies pass their mixing function here.
    extra_key : str
        Anything else that changes the audio (e.g. the noise seed).

    Returns
    -------
    dict
        utterance id -> float16 tensor ``[T, n_mels]``.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(tmp / "a.wav", np.random.randn(8000).astype("float32") * 0.1, 16000)
    >>> rows = [{"ID": "a", "wav": str(tmp / "a.wav"), "duration": "0.5"}]
    >>> feats = compute_feature_cache(rows, str(tmp / "cache"), "demo")
    >>> feats["a"].shape, feats["a"].dtype
    (torch.Size([41, 80]), torch.float16)
    """
    if isinstance(mel_config, dict):
        mel_config = MelConfig.from_dict(mel_config)
    mel_config = mel_config or MelConfig()
    key = _cache_key(rows, mel_config, extra_key)
    path = os.path.join(cache_dir, f"{name}-logmel-{key}.pt")
    if os.path.isfile(path):
        try:
            return torch.load(path)
        except Exception as err:  # a truncated file from another writer: rebuild
            logger.warning("feature cache %s unreadable (%s); recomputing", path, err)
    extractor = ASRFeatures(mel_config, deltas=False)
    audio_fn = audio_fn or (lambda r: load_audio(r["wav"], mel_config.sample_rate))
    feats = {}
    for row in tqdm(rows, desc=f"features {name}", dynamic_ncols=True):
        feats[row["ID"]] = _features(extractor, audio_fn(row))
    _atomic_torch_save(feats, path)
    return feats


def make_noisy_copies(
    rows: list[dict],
    noise_bank: dict[str, list[str]],
    seed: int = 0,
    sample_rate: int = 16000,
):
    """Rows of the noisy training copies and the function that makes their audio.

    Each clean row gets one copy with ID ``<ID>_noisy``, a noise category drawn
    uniformly from the bank, a random file of it, a random SNR in the
    category's range and a random noise offset, all from ``seed``.

    Returns
    -------
    (list of dict, callable)
        The new rows (with ``noise_wav``, ``category``, ``snr_db``) and
        ``audio_fn(row)`` for :func:`compute_feature_cache`.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(tmp / "c.wav", np.random.randn(4000).astype("float32"), 16000)
    >>> sf.write(tmp / "n.wav", np.random.randn(1000).astype("float32"), 16000)
    >>> rows = [{"ID": "u1", "wav": str(tmp / "c.wav"), "duration": "0.25", "wrd": "HI"}]
    >>> noisy, audio_fn = make_noisy_copies(rows, {"noise": [str(tmp / "n.wav")]})
    >>> noisy[0]["ID"], noisy[0]["category"], 0.0 <= noisy[0]["snr_db"] <= 15.0
    ('u1_noisy', 'noise', True)
    >>> audio_fn(noisy[0]).shape
    (4000,)
    """
    from speechbrain_probe.data.noise import fit_length, mix_at_snr

    cats = [c for c in sorted(noise_bank) if noise_bank[c]]
    if not cats:
        raise ValueError("the noise bank is empty; noise-robust training needs noises")
    rng = np.random.default_rng(seed)
    noisy = []
    for r in rows:
        cat = cats[int(rng.integers(len(cats)))]
        lo, hi = NOISE_SNR_RANGES[cat]
        new = dict(r)
        new.update(
            ID=f"{r['ID']}_noisy",
            noise_wav=noise_bank[cat][int(rng.integers(len(noise_bank[cat])))],
            category=cat,
            snr_db=float(rng.uniform(lo, hi)),
            noise_offset=int(rng.integers(1 << 30)),
        )
        noisy.append(new)

    cache: dict[str, np.ndarray] = {}

    def audio_fn(row):
        clean = load_audio(row["wav"], sample_rate)
        if row["noise_wav"] not in cache:
            cache[row["noise_wav"]] = load_audio(row["noise_wav"], sample_rate)
        noise = cache[row["noise_wav"]]
        noise = fit_length(noise, len(clean), offset=row["noise_offset"] % len(noise))
        return np.asarray(mix_at_snr(clean, noise, row["snr_db"]), dtype=np.float32)

    return noisy, audio_fn
