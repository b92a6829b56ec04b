"""The recipe scripts of ``recipes/``, loaded as modules for in-process tests.

A recipe script is run as ``python train_x.py hparams/x.yaml``; tests that
need many runs (or a monkeypatch) load it once and call its ``main(argv)``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC = REPO / "recipes" / "Synthetic"
ASR_RECIPE = SYNTHETIC / "ASR" / "CTC"
ECAPA_RECIPE = SYNTHETIC / "SpeakerRec" / "ECAPA"
PROBE_RECIPE = SYNTHETIC / "Probe" / "Highway"

_LOADED: dict = {}


def load_recipe(script: str | Path):
    """The module of a recipe script (loaded once per test session).

    Example
    -------
    >>> load_recipe(PROBE_RECIPE / "train_probe.py").main.__name__
    'main'
    """
    path = Path(script).resolve()
    if path not in _LOADED:
        name = "recipe_" + "_".join(path.relative_to(REPO).with_suffix("").parts[1:])
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _LOADED[path] = module
    return _LOADED[path]
