"""The built-in multi-speaker corpus: eSpeak speech, a noise bank, noisy test sets.

:func:`build_corpus` writes, under ``out_dir``::

    wav/<spk_id>/<ID>.wav          16 kHz mono utterances
    train.csv dev.csv test.csv     speaker-disjoint (ID,duration,wav,spk_id,wrd)
    noise/<category>/*.wav         noise bank (noise, music, speech babble)
    noise_train.csv noise_test.csv (ID,duration,wav,category), plus
    noise_{train,test}_<category>.csv per category
    babble_talkers/*.wav           the single talkers mixed into the babble
    noisy/<snr>/{mix,clean}/*.wav  test_snr20.csv test_snr10.csv test_snr5.csv test_snr0.csv
    corpus.json                    settings, seed and sizes (written last)

Speakers: :func:`.speakers.make_speakers` (default 60 train, 8 dev, 16
unseen test); sentences: :class:`.text.SentenceGenerator`, all distinct
across the corpus; babble talkers are training speakers (training noises)
or dev speakers (test noises), never test speakers.

It is deterministic for a seed, resumable (every file is written atomically
and reused on the next call) and idempotent: once ``corpus.json`` matches the
requested settings a call returns at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from speechbrain_probe.atomic import atomic_write_text

from .audio import check_audio_info, read_checked, write_wav
from .espeak import Voice, get_espeak, to_rate
from .locks import folder_lock
from .manifest import read_manifest, write_manifest
from .noise import NOISE_CATEGORIES, NOISE_FIELDS, make_babble, make_music, make_noise
from .noisy import build_noisy_test_sets
from .speakers import Speaker, make_speakers
from .text import SentenceGenerator

__all__ = [
    "build_corpus",
    "PRESETS",
    "preset_settings",
    "corpus_summary",
    "NOISE_FIELDS",
]

_SETTINGS = (
    "num_train_speakers",
    "num_dev_speakers",
    "num_test_speakers",
    "train_utts_per_speaker",
    "dev_utts_per_speaker",
    "test_utts_per_speaker",
    "num_train_noises",
    "num_test_noises",
    "noise_seconds",
    "snrs",
    "min_words",
    "max_words",
    "sample_rate",
)
#: Size presets: the first nine settings and the words per sentence.
#: ``default``: 3000 training utterances of 60 speakers (about 2.5 h);
#: ``quick``: a few minutes of work for the whole study: 2304 short sentences
#: (3-8 words, about 2 h), since a CTC model left its blank plateau far sooner
#: on many distinct utterances seen twice than on a few seen many times (the
#: quick demo's VGG-LSTM, 15% more audio through it: 576 long
#: utterances x 6 epochs 72.3% test CER, 2304 short x 2 epochs 46.6%;
#: docs/results.md); ``tiny``: seconds, for the recipes' debug runs
#: (tests/recipes/Synthetic.csv).
_PRESET_COLUMNS = _SETTINGS[:9] + ("min_words", "max_words")
PRESETS = {
    name: dict(zip(_PRESET_COLUMNS, sizes))
    for name, sizes in {
        #         speakers      utterances/speaker  noises/category  noise    words
        #         train dev test  train dev test      train test       seconds  min max
        "default": (60,   8, 16,    50,  25, 25,        30,   10,        12.0,    4, 14),
        "quick":   (48,   4, 16,    48,  10,  8,         8,    4,         8.0,    3,  8),
        "tiny":    (4,    2,  4,     4,   2,  2,         1,    1,         3.0,    4, 14),
    }.items()
}  # fmt: skip
_VERSION = 2
_PAD_S = 0.12


def _postprocess(wav: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Trim silence to a short pad, then set a random speech level."""
    mag = np.abs(wav)
    above = np.nonzero(mag > 0.02 * mag.max())[0]
    pad = int(_PAD_S * sr)
    if len(above):
        wav = wav[max(0, above[0] - pad) : above[-1] + pad]
    level_db = rng.uniform(-26.0, -20.0)
    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))
    wav = wav * (10 ** (level_db / 20) / max(rms, 1e-9))
    peak = float(np.abs(wav).max())
    if peak > 0.95:
        wav = wav * (0.95 / peak)
    return wav.astype(np.float32)


def _utt_voice(voice: Voice, rng: np.random.Generator) -> Voice:
    """Small per-utterance prosody jitter around the speaker's setting."""
    return Voice(
        language=voice.language,
        variant=voice.variant,
        rate=int(np.clip(voice.rate + rng.integers(-5, 6), 90, 145)),
        pitch=int(np.clip(voice.pitch + rng.integers(-3, 4), 0, 100)),
        pitch_range=voice.pitch_range,
        volume=voice.volume,
    )


def _settings(preset: str, overrides: dict) -> dict:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    unknown = sorted(set(overrides) - set(_SETTINGS))
    if unknown:
        raise ValueError(
            f"unknown corpus setting(s) {unknown}; known: {list(_SETTINGS)}"
        )
    cfg = dict(snrs=[20, 10, 5, 0], sample_rate=16000)
    cfg.update(PRESETS[preset])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg["snrs"] = [float(s) for s in cfg["snrs"]]
    cfg["noise_seconds"] = float(cfg["noise_seconds"])
    if cfg["num_test_speakers"] < 1 or cfg["test_utts_per_speaker"] < 2:
        raise ValueError("need test speakers with at least two utterances each")
    return cfg


def preset_settings(preset: str) -> dict:
    """The settings that :func:`build_corpus` records for ``preset``.

    Example
    -------
    >>> s = preset_settings("quick")
    >>> s["train_utts_per_speaker"], s["min_words"], s["max_words"], s["snrs"]
    (48, 3, 8, [20.0, 10.0, 5.0, 0.0])
    """
    return _settings(preset, {})


def corpus_summary(out_dir: str | os.PathLike) -> dict:
    """Sizes of a built corpus, read from its manifests.

    Returns a dict ``split -> {speakers, utterances, minutes}`` for
    train/dev/test (and the noisy sets), plus ``noise`` counts per category.
    """
    out_dir = Path(out_dir)
    summary: dict = {}
    names = ["train", "dev", "test"] + sorted(
        p.stem for p in out_dir.glob("test_snr*.csv")
    )
    for name in names:
        path = out_dir / f"{name}.csv"
        if not path.is_file():
            continue
        rows = read_manifest(path)
        summary[name] = {
            "speakers": len({r["spk_id"] for r in rows}),
            "utterances": len(rows),
            "minutes": round(sum(float(r["duration"]) for r in rows) / 60, 2),
        }
    noise = {}
    for split in ("train", "test"):
        path = out_dir / f"noise_{split}.csv"
        if path.is_file():
            rows = read_manifest(path)
            noise[split] = {
                c: sum(r["category"] == c for r in rows) for c in NOISE_CATEGORIES
            }
    summary["noise"] = noise
    return summary


class _Job(NamedTuple):
    """One utterance to synthesise: text, voice, seed of its level, target file."""

    text: str
    voice: Voice
    level_seed: tuple
    path: str


#: Utterances spoken ahead of the writing thread (bounds the memory held).
_PENDING = 32


def _finish_utterance(native, rate: int, job: _Job, sample_rate: int) -> None:
    """Resample eSpeak's samples, trim and level them, write the file."""
    wav = to_rate(native, rate, sample_rate)
    rng = np.random.default_rng(list(job.level_seed))
    write_wav(job.path, _postprocess(wav, rng, sample_rate), sample_rate)


def _synthesis_worker(jobs: list[_Job], sample_rate: int, progress: bool) -> None:
    """Synthesise every job in order; write the files that do not exist yet.

    eSpeak carries state from one utterance to the next (pitch-flutter phase,
    its random generator), so the output of an utterance depends on all
    earlier ones in the process. Running the whole plan, always complete and
    in the same order, in a fresh process makes the corpus deterministic and a
    resumed build identical to an uninterrupted one (synthesis is cheap: a
    few milliseconds per utterance).

    eSpeak speaks in this thread; the resampling to ``sample_rate``, levelling
    and writing of each utterance (a third of the time, measured) run in a
    second thread meanwhile, at most :data:`_PENDING` utterances behind.
    """
    espeak = get_espeak()
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=1) as writer:
        for job in tqdm(jobs, desc="synthesising speech", disable=not progress):
            native = espeak.speak(job.text, job.voice)
            if Path(job.path).is_file():
                continue
            pending.append(
                writer.submit(
                    _finish_utterance, native, espeak.native_rate, job, sample_rate
                )
            )
            while len(pending) > _PENDING or (pending and pending[0].done()):
                pending.popleft().result()  # raises a failed write here
        for future in pending:
            future.result()


def _run_synthesis(jobs: list[_Job], sample_rate: int, progress: bool) -> None:
    """Run :func:`_synthesis_worker` in a fresh Python process (no
    ``if __name__ == "__main__"`` guard needed in the caller's script)."""
    if all(Path(j.path).is_file() for j in jobs):
        return
    payload = {
        "sample_rate": sample_rate,
        "progress": progress,
        "jobs": [[j.text, asdict(j.voice), list(j.level_seed), j.path] for j in jobs],
    }
    fd, plan_path = tempfile.mkstemp(prefix="speechbrain_probe_plan_", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle)
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    installed = {
        str(Path(sysconfig.get_paths()[k]).resolve()) for k in ("purelib", "platlib")
    }
    if package_root not in installed:
        # a source tree (not installed): the child must find the package there.
        # Never site-packages itself on PYTHONPATH: it would come before the
        # standard library, and a backport there (the 'typing' that resemblyzer
        # requires) would shadow it
        env["PYTHONPATH"] = os.pathsep.join(
            [package_root] + [p for p in [env.get("PYTHONPATH")] if p]
        )
    code = "from speechbrain_probe.data.synthetic import _worker_main; _worker_main()"
    try:
        done = subprocess.run([sys.executable, "-c", code, plan_path], env=env)
    finally:
        os.unlink(plan_path)
    if done.returncode != 0:
        raise RuntimeError(
            f"speech synthesis failed (exit code {done.returncode}, see the messages "
            "above); files written so far are kept, so calling build_corpus again "
            "resumes"
        )


def _worker_main() -> None:
    """Entry point of the synthesis process: ``argv[1]`` is the JSON plan."""
    payload = json.loads(Path(sys.argv[1]).read_text())
    jobs = [_Job(t, Voice(**v), tuple(s), p) for t, v, s, p in payload["jobs"]]
    _synthesis_worker(jobs, payload["sample_rate"], payload["progress"])


def _plan_speech(out_dir, speakers, counts, sentences, seed):
    """Jobs and manifest rows (without durations) of the corpus utterances."""
    jobs, rows = [], []
    k = 0
    for s_index, spk in enumerate(speakers):
        for u in range(counts[spk.split]):
            utt_id = f"{spk.spk_id}-{u:04d}"
            path = out_dir / "wav" / spk.spk_id / f"{utt_id}.wav"
            voice = _utt_voice(spk.voice, np.random.default_rng([seed, s_index, u, 1]))
            jobs.append(_Job(sentences[k], voice, (seed, s_index, u, 2), str(path)))
            rows.append(
                {
                    "split": spk.split,
                    "ID": utt_id,
                    "wav": str(path.resolve()),
                    "spk_id": spk.spk_id,
                    "wrd": sentences[k],
                }
            )
            k += 1
    return jobs, rows


def _noise_plan(cfg):
    for split, count in (
        ("train", cfg["num_train_noises"]),
        ("test", cfg["num_test_noises"]),
    ):
        for cat in NOISE_CATEGORIES:
            for i in range(count):
                yield split, cat, i, f"{split}_{cat}_{i:03d}"


def _plan_babble(out_dir, speakers, sentences, seed, cfg):
    """Talker utterances of every babble file: jobs and noise_id -> talker files.

    Training babble uses training speakers, test babble dev speakers: never
    a test speaker.
    """
    pools = {
        "train": [s for s in speakers if s.split == "train"],
        "test": [s for s in speakers if s.split == "dev"]
        or [s for s in speakers if s.split == "train"],
    }
    jobs, talkers = [], {}
    sent_iter = iter(sentences)
    for split, cat, i, noise_id in _noise_plan(cfg):
        if cat != "speech":
            continue
        rng = np.random.default_rng([seed, 2, i, 0 if split == "train" else 1, 0])
        n_talkers = int(rng.integers(3, 8))
        pool = pools[split]
        if len(pool) >= n_talkers:
            picks = rng.permutation(len(pool))[:n_talkers]
        else:  # tiny corpora: a talker may say two sentences
            picks = rng.integers(len(pool), size=n_talkers)
        talkers[noise_id] = []
        for j, p in enumerate(picks):
            path = out_dir / "babble_talkers" / f"{noise_id}_{j}.wav"
            jobs.append(
                _Job(next(sent_iter), pool[p].voice, (seed, 3, i, j), str(path))
            )
            talkers[noise_id].append(path)
    return jobs, talkers


def _build_noise_bank(out_dir, talkers, seed, cfg, progress):
    """Noise, music and babble files; rows per split."""
    sr = cfg["sample_rate"]
    n = int(cfg["noise_seconds"] * sr)
    rows = {"train": [], "test": []}
    plan = list(_noise_plan(cfg))
    for split, cat, i, noise_id in tqdm(
        plan, desc="building noise bank", disable=not progress
    ):
        path = out_dir / "noise" / cat / f"{noise_id}.wav"
        if not path.is_file():
            rng = np.random.default_rng(
                [seed, NOISE_CATEGORIES.index(cat), i, 0 if split == "train" else 1, 1]
            )
            if cat == "noise":
                wav, _ = make_noise(n, rng, sr)
            elif cat == "music":
                wav, _ = make_music(n, rng, sr)
            else:
                utts = [read_checked(p, sr) for p in talkers[noise_id]]
                wav = make_babble(utts, n, rng)
            write_wav(path, wav, sr)
        rows[split].append(
            {
                "ID": noise_id,
                "duration": f"{n / sr:.4f}",
                "wav": str(path.resolve()),
                "category": cat,
            }
        )
    return rows


def _same_but_snrs(stored: dict, wanted: dict) -> bool:
    """Whether two corpus settings differ in their test SNRs at most.

    Example
    -------
    >>> _same_but_snrs({"snrs": [20.0, 0.0], "seed": 1}, {"snrs": [5.0], "seed": 1})
    True
    >>> _same_but_snrs({"snrs": [0.0], "seed": 1}, {"snrs": [0.0], "seed": 2})
    False
    """
    return {k: v for k, v in stored.items() if k != "snrs"} == {
        k: v for k, v in wanted.items() if k != "snrs"
    }


def _extend_snrs(out_dir: Path, meta: dict, cfg: dict, progress: bool) -> dict:
    """Add the noisy test sets of SNRs a corpus lacks (e.g. 5 dB, added to
    the defaults after corpora with 20/10/0 dB were built) without touching
    anything else: each test utterance keeps its noise and offset, which do
    not depend on the SNRs, so the existing sets stay byte for byte and the
    models trained on the corpus stay valid. A corpus that has more SNRs than
    asked for is returned as it is."""
    have = [float(s) for s in meta["settings"]["snrs"]]
    missing = [s for s in cfg["snrs"] if s not in have]
    if not missing:
        return meta
    with folder_lock(out_dir, "the built-in corpus"):
        meta = json.loads((out_dir / "corpus.json").read_text())
        have = [float(s) for s in meta["settings"]["snrs"]]
        union = sorted(set(have) | set(cfg["snrs"]), reverse=True)
        if union != have:
            print(
                f"{out_dir}: adding the noisy test sets at "
                f"{', '.join(f'{s:g}' for s in sorted(set(union) - set(have)))} dB "
                "(the rest of the corpus is kept)"
            )
            build_noisy_test_sets(
                out_dir / "test.csv",
                out_dir / "noise_test.csv",
                out_dir,
                snrs=union,
                seed=meta["seed"],
                prefix="test",
                sample_rate=meta["settings"]["sample_rate"],
                progress=progress,
            )
            meta["settings"]["snrs"] = union
            meta["sizes"] = corpus_summary(out_dir)
            atomic_write_text(out_dir / "corpus.json", json.dumps(meta, indent=1))
    return meta


def build_corpus(
    out_dir: str | os.PathLike = "data/synthetic",
    seed: int = 0,
    preset: str = "default",
    progress: bool = True,
    **settings,
) -> dict:
    """Build (or reuse) the built-in corpus in ``out_dir``; return its ``corpus.json``.

    Arguments
    ---------
    out_dir : path
        Corpus folder (created).
    seed : int
        Everything (speakers, sentences, prosody, noises, mixing) follows it.
    preset : str
        ``default``, ``quick`` or ``tiny`` (see :data:`PRESETS`); keyword settings
        override single values: ``num_train_speakers``, ``num_dev_speakers``,
        ``num_test_speakers``, ``train_utts_per_speaker``,
        ``dev_utts_per_speaker``, ``test_utts_per_speaker``,
        ``num_train_noises``, ``num_test_noises`` (per category),
        ``noise_seconds``, ``snrs``, ``min_words``, ``max_words``,
        ``sample_rate``.
    progress : bool
        Show tqdm bars.

    Returns
    -------
    dict
        The content of ``corpus.json``: ``seed``, ``settings``, ``sizes``
        (per split: speakers, utterances, minutes), ``speakers``,
        ``build_seconds``.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> info = build_corpus(tmp, seed=1, preset="quick", num_train_speakers=2,
    ...     num_dev_speakers=1, num_test_speakers=2, train_utts_per_speaker=2,
    ...     dev_utts_per_speaker=2, test_utts_per_speaker=2, num_train_noises=1,
    ...     num_test_noises=1, noise_seconds=2, progress=False)
    >>> info["sizes"]["test"]["speakers"], info["sizes"]["train"]["utterances"]
    (2, 4)
    >>> build_corpus(tmp, seed=1, preset="quick", num_train_speakers=2,
    ...     num_dev_speakers=1, num_test_speakers=2, train_utts_per_speaker=2,
    ...     dev_utts_per_speaker=2, test_utts_per_speaker=2, num_train_noises=1,
    ...     num_test_noises=1, noise_seconds=2, progress=False)["sizes"] == info["sizes"]
    True
    """
    out_dir = Path(out_dir)
    cfg = _settings(preset, settings)
    meta_path = out_dir / "corpus.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("seed") == seed and meta.get("version") == _VERSION:
            if meta.get("settings") == cfg:
                return meta
            if _same_but_snrs(meta.get("settings", {}), cfg):
                return _extend_snrs(out_dir, meta, cfg, progress)
        raise ValueError(
            f"{out_dir} already holds a corpus built with other settings "
            f"(seed {meta.get('seed')}, {meta.get('settings')}); pass another out_dir "
            f"or delete {out_dir} to rebuild it"
        )
    start = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    speakers: list[Speaker] = make_speakers(
        cfg["num_train_speakers"],
        cfg["num_dev_speakers"],
        cfg["num_test_speakers"],
        seed=seed,
    )
    counts = {
        "train": cfg["train_utts_per_speaker"],
        "dev": cfg["dev_utts_per_speaker"],
        "test": cfg["test_utts_per_speaker"],
    }
    total = sum(counts[s.split] for s in speakers)
    n_babble = 7 * 3 * (cfg["num_train_noises"] + cfg["num_test_noises"])
    sentences = SentenceGenerator(seed, cfg["min_words"], cfg["max_words"]).sentences(
        total + n_babble
    )

    speech_jobs, planned = _plan_speech(
        out_dir, speakers, counts, sentences[:total], seed
    )
    babble_jobs, talkers = _plan_babble(out_dir, speakers, sentences[total:], seed, cfg)
    _run_synthesis(speech_jobs + babble_jobs, cfg["sample_rate"], progress)

    rows = {"train": [], "dev": [], "test": []}
    for row in planned:
        duration = check_audio_info(row["wav"], cfg["sample_rate"])
        rows[row.pop("split")].append({**row, "duration": f"{duration:.4f}"})
    for split, split_rows in rows.items():
        write_manifest(out_dir / f"{split}.csv", split_rows)

    noise_rows = _build_noise_bank(out_dir, talkers, seed, cfg, progress)
    for split, split_rows in noise_rows.items():
        write_manifest(out_dir / f"noise_{split}.csv", split_rows, NOISE_FIELDS)
        for cat in NOISE_CATEGORIES:
            write_manifest(
                out_dir / f"noise_{split}_{cat}.csv",
                [r for r in split_rows if r["category"] == cat],
                NOISE_FIELDS,
            )

    build_noisy_test_sets(
        out_dir / "test.csv",
        out_dir / "noise_test.csv",
        out_dir,
        snrs=cfg["snrs"],
        seed=seed,
        prefix="test",
        sample_rate=cfg["sample_rate"],
        progress=progress,
    )
    meta = {
        "version": _VERSION,
        "seed": seed,
        "settings": cfg,
        "sizes": corpus_summary(out_dir),
        "vocabulary": len({w for r in rows["train"] for w in r["wrd"].split()}),
        "speakers": [s.to_dict() for s in speakers],
        "build_seconds": round(time.time() - start, 1),
    }
    atomic_write_text(meta_path, json.dumps(meta, indent=1))
    return meta
