"""Resolve where a pretrained SpeechBrain model comes from, without surprises.

``Pretrained.from_hparams(source=...)`` treats a path that does not exist as a
Hugging Face hub id and goes to the network. :func:`resolve_source` decides
first: an existing directory is used as is; something that looks like a path
but does not exist is a clear error; only an ``owner/name`` string is a hub id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["resolve_source"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def resolve_source(
    source: str | os.PathLike, what: str = "model", needs: str = "hyperparams.yaml"
) -> tuple[str, bool]:
    """Classify ``source`` as a local directory or a hub id.

    Arguments
    ---------
    source : str or path
        A local directory holding a pretrained model, or a hub id
        ``owner/name``.
    what : str
        Name of the model used in error messages (``"ECAPA verifier"``).
    needs : str
        File a local directory must contain.

    Returns
    -------
    source : str
        The directory (absolute) or the hub id.
    is_local : bool
        True for a local directory.

    Raises
    ------
    FileNotFoundError
        ``source`` looks like a path (absolute, relative with ``./``, ``~``,
        more than one ``/``) or is a ``Path`` and does not exist, or the
        directory lacks ``needs``.

    Example
    -------
    >>> resolve_source("speechbrain/spkrec-ecapa-voxceleb")
    ('speechbrain/spkrec-ecapa-voxceleb', False)
    >>> d = getfixture("tmp_path")
    >>> _ = (d / "hyperparams.yaml").write_text("{}")
    >>> resolve_source(d)[1]
    True
    >>> resolve_source(d / "missing")
    Traceback (most recent call last):
    ...
    FileNotFoundError: model directory ... does not exist ...
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FileNotFoundError(
                f"{what} source {text!r} is a file; pass the directory that holds "
                f"{needs} and the checkpoint files"
            )
        if needs and not (path / needs).is_file():
            raise FileNotFoundError(
                f"{what} directory {text!r} has no {needs}; export the model with "
                "its hyperparams.yaml (pretrained format) or pass a hub id"
            )
        return str(path.resolve()), True
    if isinstance(source, os.PathLike) or not _HUB_ID.match(text):
        raise FileNotFoundError(
            f"{what} directory {text!r} does not exist (and is not a hub id of "
            "the form owner/name); check the path, or train/export the model first"
        )
    return text, False
