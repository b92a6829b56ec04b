"""Speaker embeddings of the cells, shared between the pool's workers and the
study's own process.

Scoring a cell embeds its audio with every verifier (GE2E, ECAPA) and scores
STOI/PESQ. The STOI/PESQ jobs ran in the pool's workers, the embeddings in
the study's process, cell after cell: the serial path of the scoring (in the
quick demo's profile the process spent 211 of 356 s embedding; in ``make
study``, once the workers had finished the STOI/PESQ, one of two cores
idled while it embedded the rest).

:class:`CellEmbeddings` puts every cell's embedding on the pool as a job
too, queued in cell order ahead of its STOI/PESQ, and the study's process
takes work back while it waits (``EvaluationPool(..., share=True)``): the
newest job no worker has started is cancelled there and run here. Both
sides run the same code on one thread (:func:`embed_files`), so an
embedding is the same wherever it ran, and no CPU is left idle as long as
any job is queued.
"""

from __future__ import annotations

import torch

__all__ = ["CellEmbeddings", "embed_files", "from_job"]

_VERIFIERS: dict = {}


def _verifier(name: str, source):
    """The verifier ``name`` from ``source``, built once per process on the CPU."""
    from speechbrain_probe.metrics.speaker import build_verifier

    key = (name, None if source is None else str(source))
    if key not in _VERIFIERS:
        _VERIFIERS[key] = build_verifier(name, source, "cpu")
    return _VERIFIERS[key]


def embed_files(sources: dict, utt_ids: list[str], wav_paths: list[str]) -> dict:
    """Embed the audio files of one cell with every verifier of ``sources``
    (name -> source, as ``run_study``'s ``verifiers``), on the CPU.

    Returns ``{name: ({utt_id: float32 array}, exclusions)}``: plain arrays,
    cheap to send back from a worker process (:func:`from_job` makes them
    the tensors :meth:`SpeakerVerifier.embed
    <speechbrain_probe.metrics.speaker.SpeakerVerifier.embed>` returns).

    Example
    -------
    >>> import numpy as np
    >>> from speechbrain_probe.data.audio import write_wav
    >>> t = np.arange(16000) / 16000
    >>> path = getfixture("tmp_path") / "a.wav"
    >>> _ = write_wav(path, (0.1 * np.sin(2 * np.pi * 200 * t)).astype("float32"))
    >>> out = embed_files({"ge2e": None}, ["a"], [str(path)])
    >>> out["ge2e"][0]["a"].shape, out["ge2e"][1]
    ((256,), [])
    """
    from speechbrain_probe.data.audio import read_checked

    audio = [read_checked(p) for p in wav_paths]
    out = {}
    for name, source in sources.items():
        emb, excluded = _verifier(name, source).embed(audio, utt_ids)
        out[name] = ({u: e.numpy() for u, e in emb.items()}, excluded)
    return out


def from_job(result: dict) -> dict:
    """:func:`embed_files`' result with tensors, as ``SpeakerVerifier.embed``
    returns them (the same values: ``torch.from_numpy`` copies no bits).

    Example
    -------
    >>> import numpy as np
    >>> emb = from_job({"ge2e": ({"a": np.ones(2, dtype="float32")}, [])})
    >>> emb["ge2e"][0]["a"]
    tensor([1., 1.])
    """
    return {
        name: ({u: torch.from_numpy(e) for u, e in emb.items()}, excluded)
        for name, (emb, excluded) in result.items()
    }


class CellEmbeddings:
    """Every cell's speaker embeddings, queued on ``pool`` (None: computed in
    this process when asked for).

    On a pool that shares its jobs (``EvaluationPool(..., share=True)``, as
    ``run_study`` makes it) this process, while it waits for a cell, runs
    the newest jobs no worker has started, embeddings and STOI/PESQ alike.

    Arguments
    ---------
    pool : EvaluationPool or None
        The study's workers.
    sources : dict
        Verifier name -> source (``run_study``'s ``verifiers``).

    Example
    -------
    >>> import numpy as np
    >>> from speechbrain_probe.evaluation.pool import EvaluationPool
    >>> from speechbrain_probe.data.audio import write_wav
    >>> t = np.arange(16000) / 16000
    >>> paths = []
    >>> for k in range(3):
    ...     paths.append(str(getfixture("tmp_path") / f"{k}.wav"))
    ...     _ = write_wav(paths[-1], (0.1 * np.sin(2 * np.pi * 90 * (k + 1) * t)).astype("float32"))
    >>> with EvaluationPool(1, share=True) as pool:
    ...     shared = CellEmbeddings(pool, {"ge2e": None})
    ...     for k, p in enumerate(paths):
    ...         shared.submit(k, [str(k)], [p])
    ...     cells = [shared.get(k)["ge2e"] for k in range(3)]
    >>> [(list(emb), excluded) for emb, excluded in cells]
    [(['0'], []), (['1'], []), (['2'], [])]
    >>> 1 <= pool.ran_here <= 3  # the cells no worker had started yet
    True

    Where it runs does not change an embedding on one thread, as the study's
    process and the workers run (``tests/test_evaluation_embedding.py``).
    """

    def __init__(self, pool, sources: dict):
        self.pool, self.sources = pool, dict(sources)
        self.jobs: dict = {}  # key -> (utt_ids, paths, future or None)

    def submit(self, key, utt_ids, wav_paths) -> None:
        """Queue the embedding of one cell's audio (``key`` names the cell)."""
        ids, paths = [str(u) for u in utt_ids], [str(p) for p in wav_paths]
        future = None
        if self.pool is not None:
            future = self.pool.submit(embed_files, self.sources, ids, paths)
        self.jobs[key] = (ids, paths, future)

    def get(self, key) -> dict:
        """The embeddings of cell ``key``: ``{name: (embeddings, exclusions)}``."""
        ids, paths, future = self.jobs.pop(key)
        if future is None:
            return from_job(embed_files(self.sources, ids, paths))
        (result,) = self.pool.wait([future])
        return from_job(result)
