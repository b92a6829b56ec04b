"""Noisy test sets: every test utterance mixed with a held-out noise at exact SNRs.

Works on any utterance manifest (built-in corpus, LibriSpeech test-clean) and
any noise manifest (built-in bank, MUSAN). For each utterance one noise and
one start offset are drawn (categories taken in turn, deterministic for a
seed) and used for every SNR, so conditions differ only by the noise level.
Each mixture is stored with its exact clean reference: when the mixture would
clip, mixture and reference are scaled by the same factor, so the SNR between
the stored files is the label.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .audio import read_checked, write_wav
from .manifest import read_manifest, write_manifest
from .noise import fit_length, mix_at_snr

__all__ = ["build_noisy_test_sets", "snr_condition", "NOISY_FIELDS"]

#: Columns of a noisy test manifest.
NOISY_FIELDS = (
    "ID",
    "duration",
    "wav",
    "spk_id",
    "wrd",
    "clean_wav",
    "noise_id",
    "snr_db",
)

_PEAK = 0.99


def snr_condition(snr: float) -> str:
    """The condition name of a noisy test set at ``snr`` dB (its manifest is
    ``test_<name>.csv``).

    Example
    -------
    >>> snr_condition(20), snr_condition(-5), snr_condition(2.5)
    ('snr20', 'snr-5', 'snr2.5')
    """
    return f"snr{float(snr):g}"


def build_noisy_test_sets(
    test_manifest: str | os.PathLike,
    noise_manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    snrs=(20, 10, 0),
    seed: int = 0,
    prefix: str = "test",
    sample_rate: int = 16000,
    progress: bool = True,
) -> dict[float, Path]:
    """Mix every utterance of ``test_manifest`` with a noise of ``noise_manifest``.

    Writes ``<out_dir>/noisy/<snr>/{mix,clean}/<ID>.wav`` and the manifests
    ``<out_dir>/<prefix>_<snr>.csv`` (e.g. ``test_snr10.csv``) with columns
    :data:`NOISY_FIELDS`. Utterances already written are reused (resumable);
    manifests are written atomically once a level is complete.

    Arguments
    ---------
    test_manifest : path
        Utterance CSV (``ID,duration,wav,spk_id,wrd``).
    noise_manifest : path
        Noise CSV (``ID,duration,wav,category``), e.g. ``noise_test.csv``.
    out_dir : path
        Where the audio and manifests go.
    snrs : sequence of float
        SNR levels in dB.
    seed : int
        Seed for the choice of noise and offset.
    prefix : str
        Manifest name prefix.
    sample_rate : int
        Expected sample rate of all audio.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    dict
        SNR -> manifest path.

    Example
    -------
    >>> from speechbrain_probe.data.noise import measure_snr
    >>> tmp = getfixture("tmp_path")
    >>> rng = np.random.default_rng(0)
    >>> u = write_wav(tmp / "u.wav", 0.1 * rng.standard_normal(8000))
    >>> n = write_wav(tmp / "n.wav", 0.1 * rng.standard_normal(4000))
    >>> _ = write_manifest(tmp / "t.csv", [dict(ID="u", duration=0.5, wav=str(u), spk_id="s", wrd="HI")])
    >>> _ = write_manifest(tmp / "n.csv", [dict(ID="n", duration=0.25, wav=str(n), category="noise")],
    ...                    fields=("ID", "duration", "wav", "category"))
    >>> out = build_noisy_test_sets(tmp / "t.csv", tmp / "n.csv", tmp, snrs=[5], progress=False)
    >>> row = read_manifest(out[5])[0]
    >>> bool(abs(measure_snr(read_checked(row["clean_wav"]), read_checked(row["wav"])) - 5) < 0.1)
    True
    """
    out_dir = Path(out_dir)
    utts = read_manifest(test_manifest)
    noises = read_manifest(noise_manifest)
    if not utts:
        raise ValueError(f"{test_manifest} lists no utterances; nothing to mix")
    if not noises:
        raise ValueError(
            f"{noise_manifest} lists no noises; prepare the noise bank first"
        )
    by_cat: dict[str, list[dict]] = {}
    for row in noises:
        by_cat.setdefault(row.get("category", "noise"), []).append(row)
    cats = sorted(by_cat)
    for cat in cats:
        by_cat[cat].sort(key=lambda r: r["ID"])
    rng = np.random.default_rng(seed)
    plan = []
    for i, utt in enumerate(sorted(utts, key=lambda r: r["ID"])):
        pool = by_cat[cats[i % len(cats)]]
        noise = pool[int(rng.integers(len(pool)))]
        plan.append((utt, noise, int(rng.integers(1 << 30))))

    noise_cache: dict[str, np.ndarray] = {}
    rows: dict[float, list[dict]] = {snr: [] for snr in snrs}
    for utt, noise, offset in tqdm(
        plan, desc=f"noisy {prefix} sets", disable=not progress
    ):
        targets = {}
        for snr in snrs:
            folder = out_dir / "noisy" / snr_condition(snr)
            targets[snr] = (
                folder / "mix" / f"{utt['ID']}.wav",
                folder / "clean" / f"{utt['ID']}.wav",
            )
        todo = [
            snr for snr, (m, c) in targets.items() if not (m.is_file() and c.is_file())
        ]
        if todo:
            clean = read_checked(utt["wav"], sample_rate).astype(np.float64)
            if noise["ID"] not in noise_cache:
                noise_cache[noise["ID"]] = read_checked(
                    noise["wav"], sample_rate
                ).astype(np.float64)
            piece = fit_length(
                noise_cache[noise["ID"]],
                len(clean),
                offset=offset % len(noise_cache[noise["ID"]]),
            )
            for snr in todo:
                mix = mix_at_snr(clean, piece, float(snr))
                peak = float(np.max(np.abs(mix)))
                scale = min(1.0, _PEAK / peak) if peak > 0 else 1.0
                mix_path, clean_path = targets[snr]
                write_wav(clean_path, clean * scale, sample_rate)
                write_wav(mix_path, mix * scale, sample_rate)
        for snr, (mix_path, clean_path) in targets.items():
            rows[snr].append(
                {
                    "ID": utt["ID"],
                    "duration": utt["duration"],
                    "wav": str(mix_path.resolve()),
                    "spk_id": utt["spk_id"],
                    "wrd": utt["wrd"],
                    "clean_wav": str(clean_path.resolve()),
                    "noise_id": noise["ID"],
                    "snr_db": f"{float(snr):g}",
                }
            )
    out = {}
    for snr in snrs:
        out[snr] = write_manifest(
            out_dir / f"{prefix}_{snr_condition(snr)}.csv", rows[snr], NOISY_FIELDS
        )
    return out
