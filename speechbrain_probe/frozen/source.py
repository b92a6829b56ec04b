"""Where a pretrained model comes from: a local directory or a hub id, one rule.

``Pretrained.from_hparams(source=...)`` treats a path that does not exist as a
Hugging Face hub id and goes to the network. :func:`is_hub_id` decides first,
for every model the project loads (frozen ASR, ECAPA verifier): an existing
path is local; so is anything that does not read ``owner/name``, and an
``owner/name`` whose ``owner`` is a folder here (``exported/vgg``). Only the
rest is a hub id. :func:`resolve_source` and :func:`check_local` turn a local
source that does not exist into a clear error instead of a download.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["is_hub_id", "resolve_source", "check_local"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def is_hub_id(source: str | os.PathLike) -> bool:
    """Whether ``source`` names a model on a hub rather than on disk.

    Example
    -------
    >>> is_hub_id("speechbrain/asr-crdnn-rnnlm-librispeech")
    True
    >>> is_hub_id("./exported/vgg"), is_hub_id("results/asr/vgg/export")
    (False, False)
    """
    text = str(source)
    if isinstance(source, os.PathLike) or os.path.exists(os.path.expanduser(text)):
        return False
    return bool(_HUB_ID.match(text)) and not os.path.isdir(text.split("/")[0])


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
        ``source`` is not a hub id (:func:`is_hub_id`) and does not exist, is
        a file, or the directory lacks ``needs``.

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
    if not is_hub_id(source):
        raise FileNotFoundError(
            f"{what} directory {text!r} does not exist (and is not a hub id of "
            "the form owner/name); check the path, or train/export the model first"
        )
    return text, False


def check_local(source) -> Path:
    """The existing local model directory ``source`` names.

    Raises
    ------
    ValueError
        ``source`` is a hub id.
    FileNotFoundError
        It does not exist, or is a file.

    Example
    -------
    >>> check_local(getfixture("tmp_path")).is_dir()
    True
    """
    if is_hub_id(source):
        raise ValueError(f"{source!r} is a hub id, not a local directory")
    path = Path(os.path.expanduser(str(source)))
    if not path.exists():
        raise FileNotFoundError(
            f"asr_source: local directory {str(source)!r} does not exist (nothing was "
            "downloaded); check the path, or train/export the model first"
        )
    resolved, _ = resolve_source(path, what="ASR", needs="")  # refuses files
    return Path(resolved)
