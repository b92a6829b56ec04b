"""Which device a run uses, as SpeechBrain users give it, and on how many
CPU threads a piece of work runs.

``--device`` absent (``run_opts["device"]`` is ``None``) means what
SpeechBrain's ``Brain`` picks: CUDA (``cuda:<LOCAL_RANK>`` under DDP) where
an accelerator is available, else the CPU. A device that is asked for but
absent is an error that says so, before any work.
"""

from __future__ import annotations

import contextlib
import os

import torch

__all__ = ["resolve_device", "run_device", "torch_threads"]


@contextlib.contextmanager
def torch_threads(num_threads: int | None):
    """Run the block on ``num_threads`` torch threads, restoring the previous
    count afterwards (also after an error); None or 0 leaves it as it is.

    Example
    -------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    previous = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(device=None) -> str:
    """The device string to use for ``device`` (``None``: the best available).

    Arguments
    ---------
    device : str, torch.device or None
        ``cpu``, ``cuda``, ``cuda:1``, ... or ``None``.

    Returns
    -------
    str

    Example
    -------
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device(None) in ("cpu", "cuda:0") or resolve_device(None).startswith("cuda")
    True
    >>> resolve_device("None")
    Traceback (most recent call last):
    ...
    ValueError: device 'None' is not a torch device; give --device=cpu, --device=cuda or --device=cuda:0
    """
    if device is None or device == "":
        # what SpeechBrain 1.1's infer_device picks (1.0 has no such function)
        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        return "cpu"
    text = str(device)
    try:
        parsed = torch.device(text)
    except RuntimeError:
        raise ValueError(
            f"device {text!r} is not a torch device; give --device=cpu, "
            "--device=cuda or --device=cuda:0"
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {text!r} was asked for, but torch sees no CUDA device "
                f"(torch {torch.__version__}); run with --device=cpu"
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {text!r}: this machine has {torch.cuda.device_count()} CUDA "
                "device(s); give one of "
                + ", ".join(f"cuda:{i}" for i in range(torch.cuda.device_count()))
            )
    return text


def run_device(run_opts) -> str:
    """The device of a recipe's ``run_opts`` (from ``sb.parse_arguments``).

    Example
    -------
    >>> run_device({"device": "cpu"}), run_device({}) == resolve_device(None)
    ('cpu', True)
    """
    return resolve_device(run_opts.get("device"))
