"""One pool of single-threaded worker processes for a whole evaluation.

The evaluation's CPU work is many small, independent jobs: a Griffin-Lim
per reconstruction, a STOI and a PESQ per scored utterance. They run in one
pool of worker processes, created once per study (not once per cell) and
warmed up once, each worker on one torch thread. The main process, also on
one thread, meanwhile runs the ASR and probe forwards and the speaker
embeddings, so both kinds of work overlap.

Why single-threaded processes: on the project's 2-core machine, shared with
other jobs, a torch op on two threads was 7x (Griffin-Lim) to 16x (GE2E
LSTM) slower than on one, as the threads wait for each other whenever one is
descheduled; independent one-thread processes do not.

Workers are started with ``spawn`` (a fork of a process whose OpenMP threads
already ran is not safe).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

__all__ = [
    "EvaluationPool",
    "JobQueue",
    "VOCODER_KINDS",
    "finish_wav",
    "synthesize_to_file",
    "vocoder_from_spec",
    "vocoder_kind",
    "vocoder_spec",
    "worker_init",
]

#: The vocoders a study can use: ``griffin_lim`` decodes the ASR's own (paper)
#: mel, ``hifigan`` the universal HiFi-GAN's mel (``target_mel: hifigan``).
VOCODER_KINDS = ("griffin_lim", "hifigan")


#: How much lower the workers' CPU priority is than the study's own process
#: (``os.nice`` increment). The study's process is the serial part (the ASR
#: and probe forwards that feed the workers, then every cell's speaker
#: embeddings); at equal priority the workers ran ahead on later cells' STOI
#: and PESQ and left it a fifth of a core on a 2-core machine, then finished
#: and left a core idle. Niced, they take whatever it leaves.
WORKER_NICENESS = 10


def worker_init() -> None:
    """Set up a worker: lower priority than the study's process (see
    :data:`WORKER_NICENESS`), one thread everywhere, heavy imports done once."""
    if hasattr(os, "nice"):  # POSIX
        try:
            os.nice(WORKER_NICENESS)
        except OSError:  # pragma: no cover - a sandbox that forbids it
            pass
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)
    # numpy's and scipy's OpenBLAS were loaded (numpy is imported with this
    # module) before the variables above were set, so they kept one thread per
    # core: STOI's band matrix product then cost 4x the CPU of the whole
    # one-thread STOI on the shared 2-core machine. Limit them now.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # installed with scikit-learn, a dependency of librosa
        pass
    else:
        threadpool_limits(1)
    # warm up: the imports the jobs need, so the first job does not pay them
    import pesq  # noqa: F401
    import pystoi  # noqa: F401

    import speechbrain_probe.data.audio  # noqa: F401
    from speechbrain_probe.vocoder import GriffinLimVocoder

    # and the CPU Griffin-Lim's numba loops (loaded from numba's disk cache,
    # or compiled) and MKL's FFT set-up: one tiny synthesis
    GriffinLimVocoder(n_iter=1, device="cpu").synthesize(torch.full((9, 80), 0.5))


_VOCODERS: dict = {}


def vocoder_kind(vocoder) -> str:
    """``hifigan`` for a :class:`~speechbrain_probe.hifigan.HifiGanUniversalVocoder`,
    else ``griffin_lim`` (:data:`VOCODER_KINDS`).

    Example
    -------
    >>> from speechbrain_probe.vocoder import GriffinLimVocoder
    >>> vocoder_kind(GriffinLimVocoder(n_iter=1, device="cpu"))
    'griffin_lim'
    """
    from speechbrain_probe.hifigan import HifiGanUniversalVocoder

    return "hifigan" if isinstance(vocoder, HifiGanUniversalVocoder) else "griffin_lim"


def vocoder_spec(vocoder) -> dict:
    """The vocoder's ``spec()`` with its ``kind``: what a worker process
    rebuilds it from (:func:`vocoder_from_spec`).

    Example
    -------
    >>> from speechbrain_probe.vocoder import GriffinLimVocoder
    >>> spec = vocoder_spec(GriffinLimVocoder(n_iter=3, device="cpu"))
    >>> spec["kind"], vocoder_from_spec(spec).n_iter
    ('griffin_lim', 3)
    """
    return {"kind": vocoder_kind(vocoder), **vocoder.spec()}


def vocoder_from_spec(spec: dict):
    """Build the vocoder a spec describes; a spec without ``kind`` (the
    ``spec()`` of :class:`~speechbrain_probe.vocoder.GriffinLimVocoder`
    itself) is Griffin-Lim.

    Example
    -------
    >>> vocoder_from_spec({"kind": "wavenet"})
    Traceback (most recent call last):
    ...
    ValueError: unknown vocoder kind 'wavenet'; known: griffin_lim hifigan
    """
    spec = dict(spec)
    kind = spec.pop("kind", "griffin_lim")
    if kind == "griffin_lim":
        from speechbrain_probe.vocoder import GriffinLimVocoder

        return GriffinLimVocoder(**spec)
    if kind == "hifigan":
        from speechbrain_probe.hifigan import HifiGanUniversalVocoder

        return HifiGanUniversalVocoder(**spec)
    raise ValueError(f"unknown vocoder kind {kind!r}; known: {' '.join(VOCODER_KINDS)}")


def finish_wav(wav, from_rate: int, to_rate: int, length: int) -> np.ndarray:
    """A vocoder's output at ``to_rate`` Hz, trimmed or zero-padded to
    ``length`` samples (the input's rate and length: what ``samples/`` keeps).

    No resampling when the rates are equal (Griffin-Lim of the paper mel).

    Example
    -------
    >>> import torch
    >>> finish_wav(torch.ones(22050), 22050, 16000, 16001).shape
    (16001,)
    >>> finish_wav(torch.ones(3), 16000, 16000, 2).tolist()
    [1.0, 1.0]
    """
    if int(from_rate) != int(to_rate):
        from speechbrain_probe.hifigan import to_sample_rate

        wav = to_sample_rate(wav, from_rate, to_rate)
    wav = wav.numpy() if hasattr(wav, "numpy") else np.asarray(wav)
    return trim_or_pad(wav, length)


def synthesize_to_file(
    spec: dict, mel: np.ndarray, path: str, length: int, rate: int | None = None
) -> str:
    """Vocode one normalised log-mel ``[T, n_mels]``, written to ``path``.

    ``spec`` is :func:`vocoder_spec` of the study's vocoder (or a
    :class:`~speechbrain_probe.vocoder.GriffinLimVocoder`'s own ``spec()``);
    the vocoder is built once per worker. The waveform is resampled from the
    vocoder's rate to ``rate`` (default: the vocoder's), trimmed or
    zero-padded to ``length`` samples (:func:`finish_wav`) and written
    atomically.

    Example
    -------
    >>> from speechbrain_probe.vocoder import GriffinLimVocoder
    >>> spec = GriffinLimVocoder(n_iter=1, device="cpu").spec()
    >>> p = getfixture("tmp_path") / "a.wav"
    >>> synthesize_to_file(spec, np.random.rand(41, 80).astype("float32"), str(p), 8000)
    '...a.wav'
    """
    import torch

    from speechbrain_probe.data.audio import write_wav

    key = repr(sorted(spec.items()))
    vocoder = _VOCODERS.get(key)
    if vocoder is None:
        vocoder = _VOCODERS[key] = vocoder_from_spec(spec)
    (wav,) = vocoder.synthesize(torch.from_numpy(np.ascontiguousarray(mel)))
    own = vocoder.config.sample_rate
    write_wav(path, finish_wav(wav, own, rate or own, length), sample_rate=rate or own)
    return path


def trim_or_pad(wav: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad to ``length`` samples (the input's own length).

    Not :func:`speechbrain_probe.data.noise.fit_length`, which loops a noise
    to length: a reconstruction a few samples short is padded with silence.

    Example
    -------
    >>> trim_or_pad(np.ones(3), 5).tolist(), trim_or_pad(np.ones(3), 2).tolist()
    ([1.0, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0])
    """
    if len(wav) >= length:
        return wav[:length]
    return np.pad(wav, (0, length - len(wav)))


class EvaluationPool:
    """A process pool that lives for the whole evaluation.

    Arguments
    ---------
    n_jobs : int
        Worker processes (each on one thread).

    Example
    -------
    >>> with EvaluationPool(1) as pool:
    ...     pool.submit(abs, -3).result()
    3
    """

    def __init__(self, n_jobs: int):
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        self.n_jobs = n_jobs
        self.executor = ProcessPoolExecutor(
            max_workers=n_jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_init,
        )

    def submit(self, fn, *args) -> Future:
        """Run ``fn(*args)`` in a worker."""
        return self.executor.submit(fn, *args)

    def close(self, cancel: bool = False) -> None:
        """Stop the workers after the submitted jobs (``cancel``: after the
        running ones only; the queued ones are dropped)."""
        self.executor.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(cancel=exc[0] is not None)


class JobQueue:
    """Jobs in flight on a pool, at most ``limit`` at a time (bounded memory).

    ``on_done(result)`` is called for every finished job, in submission order;
    a job's exception is raised from :meth:`put` or :meth:`finish`.

    Example
    -------
    >>> done = []
    >>> with EvaluationPool(1) as pool:
    ...     queue = JobQueue(pool, limit=2, on_done=done.append)
    ...     for x in (-1, -2, -3):
    ...         queue.put(abs, x)
    ...     queue.finish()
    >>> done
    [1, 2, 3]
    """

    def __init__(self, pool: EvaluationPool, limit: int, on_done=None):
        self.pool = pool
        self.limit = max(1, int(limit))
        self.on_done = on_done
        self.pending: deque[Future] = deque()

    def put(self, fn, *args) -> None:
        """Submit a job, first waiting for the oldest while ``limit`` are in flight."""
        while len(self.pending) >= self.limit:
            self._pop()
        self.pending.append(self.pool.submit(fn, *args))

    def _pop(self) -> None:
        result = self.pending.popleft().result()
        if self.on_done is not None:
            self.on_done(result)

    def finish(self) -> None:
        """Wait for every job."""
        while self.pending:
            self._pop()
