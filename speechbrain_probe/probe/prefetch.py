"""Prepare the next training batch on a second thread while probes train.

A probe's training step has two parts: the shared work (mel target and the
frozen ASR's forward, no gradients) and each probe's forward, backward and
optimizer step. They depend on each other only through the batch, so the
shared work of batch k+1 can run while the probes train on batch k. On a CPU
with a core to spare (torch releases the GIL inside its operators) or on a
GPU, a step then costs about max(shared, probes) instead of their sum.

:class:`PrefetchedBatches` wraps a SpeechBrain ``SaveableDataLoader``: it
iterates the loader on a background thread, applies ``prepare`` to each
batch, and yields the results ``depth`` batches ahead. The loader's saved
position (for intra-epoch checkpoints) counts the batches handed out, not the
ones prepared ahead, so a resumed run skips exactly the batches it trained on.
"""

from __future__ import annotations

import queue
import threading

__all__ = ["PrefetchedBatches"]

_DONE = object()


class _Position:
    """Stands in for the loader's iterator when SpeechBrain saves its position."""

    def __init__(self, start: int):
        self._num_yielded = start


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class PrefetchedBatches:
    """Iterate ``loader``, each batch passed through ``prepare`` on a thread.

    Arguments
    ---------
    loader : iterable with ``len``
        Usually the Brain's training ``SaveableDataLoader``.
    prepare : callable
        ``prepare(batch) -> item``, run on the background thread. Thread-local
        torch state (``no_grad``, autocast) must be set inside it.
    depth : int
        Batches prepared ahead of the one being trained on.

    Example
    -------
    >>> batches = PrefetchedBatches(range(5), lambda b: b * 10)
    >>> len(batches), list(batches)
    (5, [0, 10, 20, 30, 40])
    >>> def broken(b):
    ...     raise ValueError(f"bad batch {b}")
    >>> list(PrefetchedBatches([1], broken))
    Traceback (most recent call last):
    ...
    ValueError: bad batch 1
    """

    def __init__(self, loader, prepare, depth: int = 1):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.loader = loader
        self.prepare = prepare
        self.depth = depth

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        iterator = iter(self.loader)  # here, so a recovery skip happens first
        position = None
        if hasattr(self.loader, "_speechbrain_iterator"):
            position = _Position(getattr(iterator, "_num_yielded", 0))
            self.loader._speechbrain_iterator = position
        ready: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def offer(item) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def work():
            try:
                for batch in iterator:
                    if stop.is_set() or not offer(self.prepare(batch)):
                        return
            except BaseException as error:  # handed to the consumer
                offer(_Failure(error))
                return
            offer(_DONE)

        thread = threading.Thread(target=work, name="prefetch-batches", daemon=True)
        thread.start()
        try:
            while True:
                item = ready.get()
                if item is _DONE:
                    break
                if isinstance(item, _Failure):
                    raise item.error
                if position is not None:
                    position._num_yielded += 1
                yield item
        finally:
            stop.set()
            thread.join()
