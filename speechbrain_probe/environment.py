"""Check the Python environment: what ``make`` and CI run against the lock,
and what a recipe says when torchaudio does not load with the installed torch.

``python -m speechbrain_probe.environment [--lock constraints.txt] [--strict]``

What is checked, cheapest first:

1. the versions installed against the ranges the package declares (its own
   metadata, i.e. ``setup.py``), and torchaudio against torch: PyPI's
   torchaudio is built for one exact torch release and does not load with
   another (torchaudio 2.11.1 with torch 2.11.0 fails with ``undefined symbol:
   torch_exception_get_what_without_backtrace``);
2. with ``--lock``, every package of the lock file at its exact version
   (a difference is a note, or a problem with ``--strict``);
3. the stack loads: torch, torchaudio's compiled library, speechbrain, the
   GE2E speaker encoder's weights that ship inside resemblyzer, and the eSpeak
   NG library with its voice data where the ``[corpus]`` extra is installed.

Each problem names the package, the version found, the version expected and
the command that fixes it. Recipes do not run this check; they import
SpeechBrain as SpeechBrain's recipes do and turn a failed import into one
message with :func:`import_failure`. Notes that are not errors (another
Python than the tested one, a package off the lock) are printed once per run:
child processes inherit ``SBPROBE_ENV_NOTED`` and stay quiet.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .extras import missing_modules

__all__ = [
    "TESTED_PYTHON",
    "Problem",
    "read_lock",
    "version_problems",
    "lock_problems",
    "load_problems",
    "check_environment",
    "import_failure",
    "main",
]

#: The Python version the lock was made and tested on.
TESTED_PYTHON = (3, 11)

#: The distribution name of this project.
PROJECT = "speechbrain-probe"

_NOTED = "SBPROBE_ENV_NOTED"

#: Set by ``make demo`` / ``make study``, whose ``install`` target has just
#: loaded the stack in its own check: the demo's check skips loading it again
#: (about 3 s of imports).
STACK_LOADED = "SBPROBE_STACK_LOADED"


@dataclass
class Problem:
    """One thing wrong with the environment, with what fixes it.

    Example
    -------
    >>> print(Problem("torchaudio", "2.11.1", "2.11.0", "does not match torch").describe())
    torchaudio 2.11.1 is installed, 2.11.0 is expected: does not match torch
      fix: ... -m pip install 'torchaudio==2.11.0'
    """

    package: str
    found: str | None
    expected: str | None
    detail: str = ""
    fix: str | None = None

    def describe(self) -> str:
        """A two-line message: what is wrong, then the command that fixes it."""
        found = (
            "is not installed" if self.found is None else f"{self.found} is installed"
        )
        text = f"{self.package} {found}"
        if self.expected:
            text += f", {self.expected} is expected"
        if self.detail:
            text += f": {self.detail}"
        fix = self.fix
        if fix is None and self.expected:
            fix = f"{sys.executable} -m pip install '{self.package}=={self.expected}'"
        return text + (f"\n  fix: {fix}" if fix else "")


def _normalise(name: str) -> str:
    """PEP 503 name: ``Resemblyzer`` and ``resemblyzer`` are one package.

    Example
    -------
    >>> _normalise("ruamel.yaml"), _normalise("Flask_Cors")
    ('ruamel-yaml', 'flask-cors')
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _release(version: str) -> str:
    """The public part of a version: ``2.11.0+cu130`` -> ``2.11.0``.

    Example
    -------
    >>> _release("2.11.0+cu130"), _release("2.11.0")
    ('2.11.0', '2.11.0')
    """
    return version.split("+", 1)[0]


def read_lock(path) -> dict[str, str]:
    """Exact pins of a constraints/lock file: normalised name -> version.

    Lines are ``name==version``; comments, blank lines and environment
    markers are ignored.

    Example
    -------
    >>> import tempfile
    >>> lock = Path(tempfile.mkdtemp()) / "constraints.txt"
    >>> _ = lock.write_text("# header\\ntorch==2.11.0\\nResemblyzer==0.1.4  # GE2E\\n")
    >>> read_lock(lock)
    {'torch': '2.11.0', 'resemblyzer': '0.1.4'}
    """
    pins = {}
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version.strip():
            raise ValueError(
                f"{path}:{number}: {raw!r} is not an exact pin (name==version); "
                "regenerate the lock with `make lock`"
            )
        pins[_normalise(name.strip())] = version.strip()
    return pins


def _project_requirements(extras=()) -> list:
    """The requirements of the installed project (``setup.py``'s), as
    ``packaging`` Requirement objects, for the base install and ``extras``."""
    from packaging.requirements import Requirement

    try:
        lines = metadata.requires(PROJECT) or []
    except metadata.PackageNotFoundError:
        return []
    wanted = []
    for line in lines:
        req = Requirement(line)
        if req.marker is None:
            wanted.append(req)
            continue
        if any(req.marker.evaluate({"extra": extra}) for extra in extras) or (
            "extra" not in str(req.marker) and req.marker.evaluate()
        ):
            wanted.append(req)
    return wanted


def version_problems(extras=()) -> list[Problem]:
    """Installed versions against the project's requirements (the core, plus
    ``extras``), and the torch/torchaudio pair. Imports nothing heavy.

    Example
    -------
    >>> version_problems()
    []
    """
    problems = []
    pins = {}
    for req in _project_requirements(extras):
        found = _installed(req.name)
        exact = [s.version for s in req.specifier if s.operator == "=="]
        expected = exact[0] if len(exact) == 1 and "*" not in exact[0] else None
        pins[_normalise(req.name)] = expected
        if found is None:
            problems.append(
                Problem(
                    req.name,
                    None,
                    expected or str(req.specifier),
                    fix=None if expected else _install(req),
                )
            )
        elif not req.specifier.contains(_release(found), prereleases=True):
            problems.append(
                Problem(
                    req.name,
                    found,
                    expected or str(req.specifier),
                    f"speechbrain-probe asks for {req.name}{req.specifier}",
                    fix=None if expected else _install(req),
                )
            )
    torch, audio = _installed("torch"), _installed("torchaudio")
    if torch and audio and _release(torch) != _release(audio):
        pair = (
            f"torchaudio is built for one torch release, and torch {_release(torch)} "
            "is installed"
        )
        for problem in problems:
            if problem.package == "torchaudio":
                problem.detail = f"{problem.detail}; {pair}"
                break
        else:
            problems.append(
                Problem(
                    "torchaudio", audio, pins.get("torchaudio") or _release(torch), pair
                )
            )
    return problems


def lock_problems(lock) -> list[Problem]:
    """Every package of the lock file at its exact version.

    Example
    -------
    >>> import tempfile
    >>> lock = Path(tempfile.mkdtemp()) / "constraints.txt"
    >>> _ = lock.write_text("no-such-package-here==1.0\\n")
    >>> [p.describe().splitlines()[0] for p in lock_problems(lock)]
    ['no-such-package-here is not installed, 1.0 is expected']
    """
    problems = []
    for name, version in read_lock(lock).items():
        found = _installed(name)
        if found is None or _release(found) != version:
            problems.append(
                Problem(
                    name,
                    found,
                    version,
                    fix=f"{sys.executable} -m pip install -c {lock} '{name}=={version}'",
                )
            )
    return problems


def _install(req) -> str:
    return f"{sys.executable} -m pip install '{req.name}{req.specifier}'"


def _reinstall(package: str) -> str:
    return (
        f"{sys.executable} -m pip install --force-reinstall --no-deps '{package}' "
        "(in the project's folder, `make install` rebuilds .venv from "
        "constraints.txt)"
    )


def _first_line(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause) not in text:
        text += f" (caused by {type(cause).__name__}: {cause})"
    return text.splitlines()[0] if text else type(err).__name__


def _load_torchaudio() -> None:
    import torch
    import torchaudio

    if not torchaudio._extension._IS_TORCHAUDIO_EXT_AVAILABLE:
        raise ImportError("torchaudio's compiled extension is not available")
    torch.ops._torchaudio.is_align_available()  # a call into libtorchaudio


def _load_espeak() -> None:
    if missing_modules("corpus"):
        return  # the optional [corpus] extra is not installed
    from .data.espeak import get_espeak

    get_espeak()  # loads libespeak-ng and initialises it with its voice data


def _load_ge2e() -> None:
    import torch

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("resemblyzer is not installed")
    weights = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if "model_state" not in state:
        raise ValueError(f"{weights} holds no GE2E model_state")


#: What must load, in order: (package, what it is, loader).
_LOADS = (
    ("torch", "torch", lambda: importlib.import_module("torch")),
    ("torchaudio", "torchaudio's compiled library (libtorchaudio)", _load_torchaudio),
    ("speechbrain", "speechbrain", lambda: importlib.import_module("speechbrain")),
    ("resemblyzer", "the GE2E speaker encoder weights", _load_ge2e),
    ("espeakng-loader", "the eSpeak NG library and its voice data", _load_espeak),
)


def load_problems() -> list[Problem]:
    """Import the stack and load its compiled libraries and shipped weights.

    Example
    -------
    >>> load_problems()
    []
    """
    problems, causes = [], set()
    for package, what, load in _LOADS:
        try:
            load()
        except Exception as err:  # anything: the message must reach the user
            cause = _first_line(err)
            if cause in causes:  # e.g. speechbrain failing on torchaudio's error
                continue
            causes.add(cause)
            problems.append(
                Problem(
                    package,
                    _installed(package),
                    None,
                    f"{what} does not load: {cause}",
                    fix=_reinstall(package),
                )
            )
    return problems


def import_failure(error: BaseException) -> str:
    """The message for a recipe whose ``import speechbrain`` failed.

    SpeechBrain imports torchaudio, and torchaudio's compiled library loads
    only with the torch release it was built for. When the installed pair
    differs, the message names both versions and the torchaudio that matches;
    otherwise it gives the error itself. A missing module is re-raised as it
    is (that is not this fault).

    Arguments
    ---------
    error : BaseException
        What ``import speechbrain`` raised.

    Returns
    -------
    str
        The message, for ``raise SystemExit(import_failure(error)) from None``.

    Example
    -------
    >>> print(import_failure(OSError("Could not load this library: libtorchaudio.so")))
    speechbrain-probe: speechbrain does not import, so nothing was done.
    - torchaudio's compiled library does not load: OSError: Could not load this library: libtorchaudio.so
    The full check: ... -m speechbrain_probe.environment
    """
    if isinstance(error, ModuleNotFoundError):
        raise error
    lines = [p.describe() for p in version_problems()]
    cause = _first_line(error)
    what = "torchaudio's compiled library" if "torchaudio" in cause else "speechbrain"
    lines.append(f"{what} does not load: {cause}")
    return (
        "speechbrain-probe: speechbrain does not import, so nothing was done.\n"
        + "\n".join("- " + line.replace("\n", "\n  ") for line in lines)
        + f"\nThe full check: {sys.executable} -m speechbrain_probe.environment"
    )


def _notes(lock, strict: bool) -> tuple[list[str], list[Problem]]:
    notes, problems = [], []
    if sys.version_info[:2] != TESTED_PYTHON:
        tested = ".".join(map(str, TESTED_PYTHON))
        notes.append(
            f"Python {sys.version_info.major}.{sys.version_info.minor} is not the "
            f"tested Python ({tested}): the lock was made there. Everything may "
            "still work; if an install or a test fails, use Python "
            f"{tested} (e.g. `make PYTHON=python{tested} install`)."
        )
    if lock is not None:
        off_lock = lock_problems(lock)
        if strict:
            problems.extend(off_lock)
        elif off_lock:
            notes.append(
                f"{len(off_lock)} package(s) differ from {lock}: "
                + ", ".join(
                    f"{p.package} {p.found} (lock {p.expected})" for p in off_lock[:8]
                )
                + ("" if len(off_lock) <= 8 else ", ...")
            )
    return notes, problems


def check_environment(lock=None, strict: bool = False, loads: bool = True) -> list[str]:
    """Stop (``SystemExit``, exit 1) when the environment is broken.

    Arguments
    ---------
    lock : path, optional
        A constraints file of exact pins to compare with.
    strict : bool
        A package off the lock is a problem, not a note.
    loads : bool
        Also import the stack and load its libraries and weights (a few
        seconds), unless :data:`STACK_LOADED` is set.

    Returns
    -------
    list of str
        Notes printed (empty when this process or a parent printed them already).

    Example
    -------
    >>> check_environment(loads=False)
    []
    """
    problems = version_problems()
    notes, more = _notes(lock, strict)
    problems.extend(more)
    if loads and not os.environ.get(STACK_LOADED):
        problems.extend(load_problems())
    if problems:
        seen, lines = set(), []
        for problem in problems:
            text = problem.describe()
            if text not in seen:
                seen.add(text)
                lines.append("- " + text.replace("\n", "\n  "))
        raise SystemExit(
            "speechbrain-probe: the Python environment is broken; stopping before "
            "any long work.\n"
            + "\n".join(lines)
            + "\nIn the project's folder, `make install` rebuilds .venv from "
            "constraints.txt (the tested versions)."
        )
    if notes and not os.environ.get(_NOTED):
        for note in notes:
            print(f"note: {note}", file=sys.stderr, flush=True)
        os.environ[_NOTED] = "1"  # child processes (recipe stages) stay quiet
        return notes
    return []


def main(argv: list[str] | None = None) -> int:
    """Command line: exit 0 when the environment is sound, 1 with the problems."""
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_probe.environment",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--lock", type=Path, help="constraints file of exact pins")
    parser.add_argument(
        "--strict", action="store_true", help="a package off the lock is an error"
    )
    parser.add_argument(
        "--versions-only", action="store_true", help="skip importing the stack"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing when sound")
    args = parser.parse_args(argv)
    if args.lock is not None and not args.lock.is_file():
        parser.error(f"--lock {args.lock}: no such file")
    check_environment(args.lock, args.strict, loads=not args.versions_only)
    if not args.quiet:
        torch, audio = _installed("torch"), _installed("torchaudio")
        lock = f", matches {args.lock}" if args.lock else ""
        print(
            f"environment OK: Python {sys.version.split()[0]}, torch {torch}, "
            f"torchaudio {audio}, speechbrain {_installed('speechbrain')}{lock}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
