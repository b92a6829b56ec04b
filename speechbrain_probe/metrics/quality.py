"""STOI and wide-band PESQ of reconstructions against their clean reference.

Both metrics are per-utterance, single-threaded C/NumPy code, so
:func:`stoi_pesq` spreads utterances over a process pool. Every utterance that
cannot be scored is listed in the returned exclusion record with the reason
(non-finite samples, silence, too short for STOI, a sample rate PESQ does not
take, a metric's own error) instead of leaving a NaN in a table.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "Exclusion",
    "check_waveform",
    "score_utterance",
    "stoi_pesq",
    "submit_stoi_pesq",
    "collect_stoi_pesq",
    "write_exclusions",
    "METRICS",
]

METRICS = ("stoi", "pesq")
# pystoi works on 384 ms of 10 kHz frames (30 frames of 25.6 ms, hop 12.8 ms)
# after dropping silent frames: shorter speech gives no intermediate frame.
MIN_STOI_SECONDS = 0.5
# PESQ's level alignment and utterance split need about a quarter second.
MIN_PESQ_SECONDS = 0.25
PESQ_RATES = (16000,)  # wide band only (8 kHz is narrow band)
SILENCE_RMS = 1e-5


@dataclass(frozen=True)
class Exclusion:
    """One utterance (and metric) left out of a result, and why."""

    utt_id: str
    metric: str
    reason: str


def check_waveform(
    wav,
    sample_rate: int,
    expected_rate: int | None = None,
    min_seconds=0.0,
    what="reconstruction",
):
    """Return why ``wav`` cannot be scored, or None when it can.

    Example
    -------
    >>> check_waveform(np.zeros(16000), 16000)
    'silent reconstruction (RMS 0 <= 1e-05)'
    >>> check_waveform(np.full(16000, np.nan), 16000)
    'reconstruction has 16000 non-finite (NaN/inf) samples'
    >>> check_waveform(np.ones(100), 8000, expected_rate=16000)
    'reconstruction sample rate is 8000 Hz; expected 16000 Hz (resample it first)'
    >>> check_waveform(np.random.randn(16000) * 0.1, 16000) is None
    True
    """
    wav = np.asarray(wav)
    if wav.ndim != 1:
        return f"{what} must be mono 1-D audio, got shape {wav.shape}"
    if expected_rate is not None and sample_rate != expected_rate:
        return (
            f"{what} sample rate is {sample_rate} Hz; expected {expected_rate} Hz "
            "(resample it first)"
        )
    bad = int((~np.isfinite(wav)).sum())
    if bad:
        return f"{what} has {bad} non-finite (NaN/inf) samples"
    seconds = wav.shape[0] / sample_rate
    if seconds < min_seconds:
        return f"{what} too short: {seconds:.3f} s < {min_seconds} s needed"
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
    if rms <= SILENCE_RMS:
        return f"silent {what} (RMS {rms:.3g} <= {SILENCE_RMS:g})"
    return None


def _align(ref: np.ndarray, deg: np.ndarray, sample_rate: int, tolerance_s: float):
    diff = abs(ref.shape[0] - deg.shape[0])
    if diff > tolerance_s * sample_rate:
        return (
            None,
            None,
            (
                f"length mismatch: reference {ref.shape[0]} samples, reconstruction "
                f"{deg.shape[0]} samples (more than {tolerance_s} s apart)"
            ),
        )
    n = min(ref.shape[0], deg.shape[0])
    return ref[:n], deg[:n], None


def score_utterance(
    utt_id: str,
    reference,
    degraded,
    sample_rate: int = 16000,
    metrics=METRICS,
    length_tolerance_s: float = 0.1,
):
    """STOI and/or PESQ of one utterance.

    Returns
    -------
    scores : dict
        ``{metric: value}`` for the metrics that could be computed.
    exclusions : list of Exclusion
        One per metric that could not.

    Example
    -------
    >>> t = np.arange(16000) / 16000
    >>> ref = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    >>> scores, excl = score_utterance("u1", ref, ref, metrics=("stoi",))
    >>> round(scores["stoi"], 3), excl
    (1.0, [])
    >>> score_utterance("u2", ref, np.zeros_like(ref))[1][0].reason
    'silent reconstruction (RMS 0 <= 1e-05)'
    """
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; available: {METRICS}")
    ref = (
        np.asarray(reference, dtype=np.float64).reshape(-1)
        if np.ndim(reference) <= 1
        else np.asarray(reference)
    )
    deg = (
        np.asarray(degraded, dtype=np.float64).reshape(-1)
        if np.ndim(degraded) <= 1
        else np.asarray(degraded)
    )
    scores, excluded = {}, []

    def exclude(metric, reason):
        excluded.append(Exclusion(str(utt_id), metric, reason))

    problem = check_waveform(
        ref, sample_rate, what="clean reference"
    ) or check_waveform(deg, sample_rate)
    if problem is None:
        ref, deg, problem = _align(ref, deg, sample_rate, length_tolerance_s)
    if problem is not None:
        for m in metrics:
            exclude(m, problem)
        return scores, excluded

    if "stoi" in metrics:
        short = check_waveform(
            ref, sample_rate, min_seconds=MIN_STOI_SECONDS, what="utterance"
        )
        if short:
            exclude("stoi", short)
        else:
            from pystoi import stoi

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                value = float(stoi(ref, deg, sample_rate, extended=False))
            msgs = [
                str(w.message) for w in caught if "frames" in str(w.message).lower()
            ]
            if msgs or not np.isfinite(value):
                exclude(
                    "stoi",
                    "STOI could not be computed: "
                    + ("; ".join(msgs) or f"value {value}"),
                )
            else:
                scores["stoi"] = value
    if "pesq" in metrics:
        reason = None
        if sample_rate not in PESQ_RATES:
            reason = (
                f"wide-band PESQ needs 16000 Hz audio, got {sample_rate} Hz "
                "(resample it first)"
            )
        else:
            reason = check_waveform(
                ref, sample_rate, min_seconds=MIN_PESQ_SECONDS, what="utterance"
            )
        if reason:
            exclude("pesq", reason)
        else:
            from pesq import pesq

            try:
                value = float(pesq(sample_rate, ref, deg, "wb"))
            except Exception as err:  # pesq raises its own error classes
                exclude("pesq", f"PESQ failed: {type(err).__name__}: {err}")
            else:
                if np.isfinite(value):
                    scores["pesq"] = value
                else:
                    exclude("pesq", f"PESQ returned {value}")
    return scores, excluded


def _worker(args):
    utt_id, ref, deg, sr, metrics, tol = args
    if isinstance(deg, str):
        from speechbrain_probe.data.audio import read_checked

        deg = read_checked(deg, sr)
    if isinstance(ref, str):
        import soundfile as sf

        ref, ref_sr = sf.read(ref, dtype="float64")
        if ref_sr != sr:
            return {}, [
                Exclusion(
                    utt_id, m, f"clean reference is {ref_sr} Hz, reconstruction {sr} Hz"
                )
                for m in metrics
            ]
    return score_utterance(utt_id, ref, deg, sr, metrics, tol)


def stoi_pesq(
    utt_ids,
    references,
    degraded,
    sample_rate: int | list[int] = 16000,
    metrics=METRICS,
    n_jobs: int | None = None,
    length_tolerance_s: float = 0.1,
    progress: bool = False,
):
    """STOI and PESQ of many utterances, in parallel across utterances.

    Arguments
    ---------
    utt_ids : list of str
    references : list of arrays (or wav paths)
        The clean reference of each utterance (for a noisy input: the clean
        speech, not the mixture).
    degraded : list of arrays
        The reconstructions.
    sample_rate : int or list of int
        Rate of each reconstruction (references must share it).
    metrics : tuple
        Any of ``("stoi", "pesq")``.
    n_jobs : int, optional
        Worker processes (default: all cores; 1 runs in this process).

    Returns
    -------
    rows : list of dict
        ``{"utt_id", "stoi", "pesq"}`` with None for an excluded metric.
    exclusions : list of Exclusion

    Example
    -------
    >>> t = np.arange(16000) / 16000
    >>> ref = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    >>> rows, excl = stoi_pesq(["a", "b"], [ref, ref], [ref, ref * np.nan], metrics=("stoi",), n_jobs=1)
    >>> rows[0]["stoi"] > 0.99, rows[1]["stoi"], excl[0].utt_id
    (True, None, 'b')
    """
    utt_ids, jobs = _jobs(
        utt_ids, references, degraded, sample_rate, metrics, length_tolerance_s
    )
    n_jobs = n_jobs or os.cpu_count() or 1
    if n_jobs == 1 or len(jobs) <= 1:
        results = map(_worker, jobs)
        results = _progress(results, len(jobs), progress)
        results = list(results)
    else:
        with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs))) as pool:
            chunk = max(1, len(jobs) // (4 * n_jobs))
            results = list(
                _progress(pool.map(_worker, jobs, chunksize=chunk), len(jobs), progress)
            )
    return _rows(utt_ids, results, metrics)


def submit_stoi_pesq(
    pool,
    utt_ids,
    references,
    degraded,
    sample_rate: int | list[int] = 16000,
    metrics=METRICS,
    length_tolerance_s: float = 0.1,
):
    """Start :func:`stoi_pesq` on a long-lived pool; returns a pending handle.

    ``pool`` has a ``submit(fn, *args)`` method (an
    :class:`~speechbrain_probe.evaluation.pool.EvaluationPool` or a
    ``concurrent.futures`` executor). References and reconstructions may be
    wav paths, read by the workers. :func:`collect_stoi_pesq` waits for the
    handle and returns what :func:`stoi_pesq` returns.

    Example
    -------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> t = np.arange(16000) / 16000
    >>> ref = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    >>> with ThreadPoolExecutor(1) as pool:
    ...     handle = submit_stoi_pesq(pool, ["a"], [ref], [ref], metrics=("stoi",))
    ...     rows, excl = collect_stoi_pesq(handle)
    >>> rows[0]["stoi"] > 0.99, excl
    (True, [])
    """
    utt_ids, jobs = _jobs(
        utt_ids, references, degraded, sample_rate, metrics, length_tolerance_s
    )
    return utt_ids, [pool.submit(_worker, job) for job in jobs], tuple(metrics)


def collect_stoi_pesq(handle):
    """Rows and exclusions of a :func:`submit_stoi_pesq` handle (waits)."""
    utt_ids, futures, metrics = handle
    return _rows(utt_ids, [f.result() for f in futures], metrics)


def _rows(utt_ids, results, metrics):
    rows, exclusions = [], []
    for u, (scores, excl) in zip(utt_ids, results):
        rows.append({"utt_id": u, **{m: scores.get(m) for m in metrics}})
        exclusions.extend(excl)
    return rows, exclusions


def _jobs(utt_ids, references, degraded, sample_rate, metrics, length_tolerance_s):
    utt_ids = [str(u) for u in utt_ids]
    if not (len(utt_ids) == len(references) == len(degraded)):
        raise ValueError(
            f"{len(utt_ids)} ids, {len(references)} references and {len(degraded)} "
            "reconstructions: give one of each per utterance"
        )
    rates = (
        sample_rate
        if isinstance(sample_rate, list | tuple)
        else [sample_rate] * len(utt_ids)
    )
    jobs = [
        (
            u,
            r,
            np.asarray(d, dtype=np.float64) if not isinstance(d, str) else d,
            int(sr),
            tuple(metrics),
            length_tolerance_s,
        )
        for u, r, d, sr in zip(utt_ids, references, degraded, rates)
    ]
    return utt_ids, jobs


def _progress(it, total, enabled):
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc="STOI/PESQ")


def write_exclusions(path, exclusions) -> None:
    """Save the exclusion record as CSV (``utt_id,metric,reason``), atomically.

    Example
    -------
    >>> p = getfixture("tmp_path") / "excluded.csv"
    >>> write_exclusions(p, [Exclusion("u1", "stoi", "silent reconstruction")])
    >>> p.read_text().splitlines()[1]
    'u1,stoi,silent reconstruction'
    """
    from speechbrain_probe.data.manifest import write_csv

    rows = [asdict(e) if isinstance(e, Exclusion) else e for e in exclusions]
    write_csv(path, rows, ["utt_id", "metric", "reason"])
