"""Speaker embeddings shared between the pool's workers and the study's process."""

import contextlib

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from speechbrain_probe.data.audio import write_wav
from speechbrain_probe.devices import torch_threads
from speechbrain_probe.evaluation.embedding import CellEmbeddings, embed_files, from_job
from speechbrain_probe.evaluation.pool import EvaluationPool


def _wavs(folder, count):
    t = np.arange(16000) / 16000
    paths = []
    for k in range(count):
        path = folder / f"{k}.wav"
        tone = np.sin(2 * np.pi * 80 * (k + 2) * t) * (1 + np.sin(2 * np.pi * 3 * t))
        write_wav(path, (0.05 * tone).astype("float32"))
        paths.append(str(path))
    return paths


@contextlib.contextmanager
def _one_thread():
    """As the study's process runs (``run_study``'s ``num_threads=1``) and
    every worker does: one torch and one BLAS thread."""
    with torch_threads(1), threadpool_limits(1):
        yield


def test_each_cell_is_embedded_once_and_the_same_in_a_worker_or_here(tmp_path):
    paths = _wavs(tmp_path, 6)
    cells = {k: ([f"u{k}", f"v{k}"], [paths[k], paths[(k + 1) % 6]]) for k in range(6)}
    with _one_thread():
        expected = {k: from_job(embed_files({"ge2e": None}, *cells[k])) for k in cells}
    with EvaluationPool(1, share=True) as pool, _one_thread():
        shared = CellEmbeddings(pool, {"ge2e": None})
        for k, (ids, wavs) in cells.items():
            shared.submit(k, ids, wavs)
        jobs = list(pool._queued)
        got = {k: shared.get(k) for k in cells}
    in_workers = sum(not inner.cancelled() for inner, _, _, _ in jobs)
    # the one worker starts slowly (spawn, imports): this process embeds the
    # cells it has not started (cancelled there), and no cell is embedded twice
    assert pool.ran_here >= 1
    assert pool.ran_here + in_workers == len(cells)
    assert not shared.jobs
    for k in cells:
        emb, excluded = got[k]["ge2e"]
        assert excluded == [] and list(emb) == cells[k][0]
        for u, e in emb.items():
            assert torch.equal(e, expected[k]["ge2e"][0][u]), (k, u)


def test_without_a_pool_every_cell_is_embedded_here(tmp_path):
    paths = _wavs(tmp_path, 2)
    shared = CellEmbeddings(None, {"ge2e": None})
    shared.submit("a", ["x", "y"], paths)
    (emb, excluded), = shared.get("a").values()
    assert sorted(emb) == ["x", "y"] and excluded == [] and not shared.jobs
