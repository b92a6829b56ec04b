"""The shell commands of the README and the docs name files that exist.

Every fenced ``bash``, ``sh``, ``shell`` or ``console`` block of ``README.md``,
``docs/*.md``, ``benchmarks/README.md`` and ``CHANGELOG.md`` is read as a script (in a ``console``
block only the lines that start with ``$ `` are commands). A block starts at
the repository root; ``cd DIR`` (on its own line or before ``&&``) changes the
folder the following commands of the same block run from. Lines continued
with a backslash are joined, comments are dropped, and a command line is split
at ``&&``, ``||``, ``;`` and ``|``. ``NAME=value`` assignments of the block are
expanded in later arguments (``R=../../../.. && python x.py $R/y.yaml``).

What is checked, relative to the folder the command runs from:

* ``cd DIR``: DIR is a folder of the repository;
* every argument (or ``--option=`` value) ending in ``.py``, ``.yaml`` or
  ``.yml``, except the value of an output option (``-o``, ``--out...``):
  scripts and hparams files are inputs that the commands never create, so
  each must exist;
* a file given to ``-r``, ``-c``, ``--requirement``, ``--constraint`` or
  ``--lock`` (requirements, the lock), and the script given to ``bash``/``sh``;
* ``python -m speechbrain_probe.X``: ``speechbrain_probe/X.py`` or
  ``speechbrain_probe/X/__main__.py`` exists (the package is installed, so
  this does not depend on the folder);
* ``make TARGET``: the folder has a Makefile that defines TARGET.

What is not checked: every other argument, in particular data and outputs
(``results/...``, ``data/...``, ``--output_folder=...``, ``--train_csv=...``:
CSVs, folders and models that a run writes or the user brings), and any
argument that is absolute, starts with ``~``, holds an unresolved ``$VAR``,
a ``<placeholder>``, a glob or a URL. Nothing is run and nothing is fetched.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
CHECKED_SUFFIXES = (".py", ".yaml", ".yml")
FILE_OPTIONS = {"-r", "-c", "--requirement", "--constraint", "--lock"}
SEPARATORS = {"&&", "||", ";", "|", "&", ";;"}
SHELL_WORDS = {"do", "then", "else", "done", "fi", "{", "}", "(", ")"}
WRAPPERS = {"time", "env", "nice", "sudo", "exec"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
OUTPUT_OPTION = re.compile(r"^(--?out[-_a-z]*|-o)(=|$)")
UNCHECKABLE = re.compile(r"[$<>*?{}~]|://")


@dataclass(frozen=True)
class Command:
    """One command of a fenced block, with where it comes from and runs.

    Parameters
    ----------
    line : int
        Line of the document where the command starts (1-based).
    cwd : pathlib.Path or None
        Folder it runs from, relative to the repository root (None: a ``cd``
        that could not be followed, so nothing is checked).
    words : tuple of str
        Its words, variables expanded.
    """

    line: int
    cwd: Path | None
    words: tuple[str, ...]


def shell_blocks(markdown: str) -> list[tuple[int, str, list[str]]]:
    """The fenced shell blocks of a markdown text.

    Parameters
    ----------
    markdown : str
        The document.

    Returns
    -------
    list of (int, str, list of str)
        For each block: the line number of its first body line, its language
        and its body lines.

    Example
    -------
    >>> shell_blocks("text\\n```bash\\nmake test\\n```\\n```python\\nx = 1\\n```\\n")
    [(3, 'bash', ['make test'])]
    """
    blocks, lang, body, start = [], None, [], 0
    in_fence = False
    for number, line in enumerate(markdown.splitlines(), start=1):
        stripped = line.strip()
        if not in_fence and stripped.startswith("```"):
            in_fence, lang, body, start = (
                True,
                stripped[3:].strip().lower(),
                [],
                number + 1,
            )
        elif in_fence and stripped.startswith("```"):
            in_fence = False
            if lang in SHELL_LANGS:
                blocks.append((start, lang, body))
        elif in_fence:
            body.append(line)
    return blocks


def logical_lines(first_line: int, lang: str, body: list[str]) -> list[tuple[int, str]]:
    """Command lines of a block: continuations joined, console output dropped.

    Example
    -------
    >>> logical_lines(5, "bash", ["python a.py \\\\", "    --x=1", "", "make test"])
    [(5, 'python a.py      --x=1'), (8, 'make test')]
    >>> logical_lines(1, "console", ["$ make test", "ok"])
    [(1, 'make test')]
    """
    lines, pending, start = [], "", 0
    for offset, raw in enumerate(body):
        text = raw.rstrip()
        if not pending:
            if lang == "console":
                if not text.lstrip().startswith("$ "):
                    continue
                text = text.lstrip()[2:]
            start = first_line + offset
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        line = (pending + text).strip()
        pending = ""
        if line:
            lines.append((start, line))
    return lines


def _expand(word: str, variables: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced where the block assigned NAME."""
    return VARIABLE.sub(
        lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), word
    )


def _segments(line: str) -> list[list[str]]:
    """The simple commands of a line (split at ``&&``, ``;``, ``|`` ...)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments, current = [], []
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: read the line word by word
        tokens = line.split("#", 1)[0].split()
    for token in tokens:
        if token in SEPARATORS:
            segments.append(current)
            current = []
        else:
            current.append(token)
    segments.append(current)
    return [s for s in segments if s]


def block_commands(first_line: int, lang: str, body: list[str]) -> list[Command]:
    """The commands of one block, each with the folder it runs from.

    ``cd`` changes the folder for the rest of the block; assignments are
    remembered for later words. A ``cd`` is kept as a command of its own so
    that its folder is checked too.

    Example
    -------
    >>> [(c.cwd.as_posix(), c.words) for c in block_commands(
    ...     1, "bash", ["cd recipes/X && python run.py hparams/a.yaml"])]
    [('recipes/X', ('cd', 'recipes/X')), ('recipes/X', ('python', 'run.py', 'hparams/a.yaml'))]
    """
    cwd: Path | None = Path(".")
    variables: dict[str, str] = {}
    commands = []
    for line_number, line in logical_lines(first_line, lang, body):
        for words in _segments(line):
            while words and words[0] in SHELL_WORDS:
                words = words[1:]
            if words and words[0] == "for":  # for VAR in ...: the body follows `do`
                continue
            while words and ASSIGNMENT.match(words[0]):
                name, value = words[0].split("=", 1)
                variables[name] = _expand(value, variables)
                words = words[1:]
            if not words:
                continue
            words = [_expand(w, variables) for w in words]
            if words[0] == "cd":
                target = words[1] if len(words) > 1 else "~"
                if (
                    cwd is not None
                    and not UNCHECKABLE.search(target)
                    and not target.startswith("/")
                ):
                    cwd = Path(_normalise(cwd / target))
                    commands.append(Command(line_number, cwd, ("cd", target)))
                else:
                    cwd = None
                continue
            commands.append(Command(line_number, cwd, tuple(words)))
    return commands


def _normalise(path: Path) -> str:
    """``a/b/../c`` -> ``a/c`` without touching the file system."""
    parts: list[str] = []
    for part in path.as_posix().split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or "."


def make_targets(makefile: Path) -> set[str]:
    """Targets a Makefile defines (rules ``name:``, not variables ``name :=``).

    Example
    -------
    >>> sorted(make_targets(REPO / "Makefile"))[:3]
    ['clean', 'demo', 'install']
    """
    targets = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*:(?![=:])", line)
        if match and not match.group(1).startswith("."):
            targets.add(match.group(1))
    return targets


def _module_exists(root: Path, module: str) -> bool:
    """``python -m module`` finds a file in ``root`` (a .py or a package's __main__)."""
    path = root.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()


def _program(words: tuple[str, ...]) -> tuple[str, ...]:
    """The command without wrappers (``/usr/bin/time -v``, ``env``) or leading assignments."""
    words = tuple(words)
    while words and (
        Path(words[0]).name in WRAPPERS
        or ASSIGNMENT.match(words[0])
        or (words[0].startswith("-") and len(words) > 1)
    ):
        words = words[1:]
    return words


def _checkable(word: str) -> bool:
    """A relative, literal path (no variable, placeholder, glob, home or URL)."""
    return bool(word) and not word.startswith("/") and not UNCHECKABLE.search(word)


def _missing_file(here: Path, cwd: Path, word: str, what: str) -> list[str]:
    if _checkable(word) and not (here / word).is_file():
        return [f"{what} {word!r} does not exist in {cwd.as_posix()}/"]
    return []


def _make_problems(root: Path, cwd: Path, words) -> list[str]:
    """Targets of ``make`` that the Makefile of ``cwd`` does not define."""
    makefile = root / cwd / "Makefile"
    problems = []
    for word in words[1:]:
        if word.startswith("-") or ASSIGNMENT.match(word):
            continue
        if not makefile.is_file():
            problems.append(f"make {word}: no Makefile in {cwd.as_posix()}/")
        elif word not in make_targets(makefile):
            problems.append(
                f"make target {word!r} is not in {makefile.relative_to(root)}"
            )
    return problems


def _python_problems(root: Path, args: list[str]) -> tuple[list[str], list[str]]:
    """A missing ``-m speechbrain_probe...`` module; the arguments after it."""
    if "-c" in args:  # inline code, not a file
        args = args[: args.index("-c")]
    if "-m" not in args:
        return [], args
    index = args.index("-m")
    module = args[index + 1] if index + 1 < len(args) else ""
    problems = []
    if module.split(".")[0] == "speechbrain_probe" and not _module_exists(root, module):
        problems.append(f"module {module!r} has no file in speechbrain_probe/")
    return problems, args[index + 2 :]


def _argument_problems(here: Path, cwd: Path, args: list[str]) -> list[str]:
    """Input files among the arguments that do not exist (outputs are skipped)."""
    problems = []
    for index, word in enumerate(args):
        value = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
        previous = args[index - 1] if index else ""
        if OUTPUT_OPTION.match(word) or OUTPUT_OPTION.match(previous):
            continue  # what the command writes
        if value.endswith(CHECKED_SUFFIXES):
            problems += _missing_file(here, cwd, value, "file")
        elif previous in FILE_OPTIONS:
            problems += _missing_file(here, cwd, value, f"{previous} file")
    return problems


def command_problems(command: Command, root: Path = REPO) -> list[str]:
    """What a command names that does not exist in ``root``.

    Parameters
    ----------
    command : Command
        The command, with the folder it runs from.
    root : pathlib.Path
        The repository.

    Returns
    -------
    list of str
        One message per missing file, folder, module or make target.
    """
    words = _program(command.words)
    if command.cwd is None or not words:
        return []
    cwd, here = command.cwd, root / command.cwd
    program = Path(words[0]).name
    if program == "cd":
        return [] if here.is_dir() else [f"folder {cwd.as_posix()!r} does not exist"]
    if program == "make":
        return _make_problems(root, cwd, words)
    problems, args = [], list(words[1:])
    if program in ("bash", "sh") and args:
        problems += _missing_file(here, cwd, args[0], "script")
    if program.startswith("python"):
        found, args = _python_problems(root, args)
        problems += found
    return problems + _argument_problems(here, cwd, args)


def document_problems(markdown: str, name: str, root: Path = REPO) -> list[str]:
    """Every problem of every shell command of one markdown text.

    Parameters
    ----------
    markdown : str
        The document's text.
    name : str
        How to name the document in the messages.
    root : pathlib.Path
        The repository its commands run in.

    Returns
    -------
    list of str
        ``name:line: message: command``, one per problem.

    Example
    -------
    >>> document_problems("```bash\\nmake test\\n```\\n", "x.md")
    []
    """
    problems = []
    for first_line, lang, body in shell_blocks(markdown):
        for command in block_commands(first_line, lang, body):
            for problem in command_problems(command, root):
                problems.append(
                    f"{name}:{command.line}: {problem}: {' '.join(command.words)}"
                )
    return problems


def documents() -> list[Path]:
    """README.md, docs/*.md, benchmarks/README.md and CHANGELOG.md."""
    found = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    more = [REPO / "benchmarks" / "README.md", REPO / "CHANGELOG.md"]
    return found + [p for p in more if p.is_file()]


@pytest.mark.parametrize(
    "doc", documents(), ids=lambda p: p.relative_to(REPO).as_posix()
)
def test_documented_commands_name_existing_files(doc):
    text = doc.read_text(encoding="utf-8")
    problems = document_problems(text, doc.relative_to(REPO).as_posix())
    assert not problems, "\n".join(problems)


def test_readme_commands_are_found():
    """The extractor sees the README's commands (a silent extractor passes anything)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = [
        c
        for first, lang, body in shell_blocks(text)
        for c in block_commands(first, lang, body)
    ]
    words = {" ".join(c.words) for c in commands}
    assert "make test" in words
    assert any(
        c.words[:2] == ("python", "train_asr.py")
        and c.cwd == Path("recipes/Synthetic/ASR/CTC")
        for c in commands
    )


WRONG = """\
Some text.

```bash
cd recipes/Synthetic/Probe/Highway
python train_probe.py hparams/blstm3.yaml --output_folder=results/new/x.yaml
python train_probe.py hparams/no_such_layer.yaml --data_folder=../../corpus
```

```sh
cd recipes/Synthetic/ASR/CTC && python train_asr.py hparams/vgg_lstm.yaml
python recipes/Synthetic/ASR/CTC/train_asr.py hparams/vgg_lstm.yaml
```

```console
$ make tset
$ python -m speechbrain_probe.no_such_module results/x
$ R=../../.. && cd recipes/Nowhere
output: not a command.py
```
"""


def test_wrong_paths_are_reported():
    problems = document_problems(WRONG, "inline.md")
    text = "\n".join(problems)
    # a missing hparams file, relative to the folder the block cd'ed into
    assert (
        "inline.md:6: file 'hparams/no_such_layer.yaml' does not exist in recipes/Synthetic/Probe/Highway/"
        in text
    )
    # a cd earlier in the block still holds: the repo-root path is wrong there
    assert (
        "inline.md:11: file 'recipes/Synthetic/ASR/CTC/train_asr.py' does not exist in recipes/Synthetic/ASR/CTC/"
        in text
    )
    assert "make target 'tset'" in text
    assert "module 'speechbrain_probe.no_such_module'" in text
    assert "folder 'recipes/Nowhere' does not exist" in text
    # outputs and data are not inputs; console output is not a command
    assert "'results/new/x.yaml'" not in text
    assert "'../../corpus'" not in text
    assert "'command.py'" not in text
    assert len(problems) == 5, text


def test_correct_paths_pass():
    ok = """\
```bash
make demo QUICK=1
R=../../../.. && cd recipes/Synthetic/Probe/Highway
OMP_NUM_THREADS=1 python train_probe.py hparams/all_layers.yaml --data_folder=$R/data/synthetic
cd ../../ASR/CTC && torchrun --nproc_per_node=2 train_asr.py hparams/blstm.yaml
for arch in vgg_lstm blstm; do python train_asr.py hparams/$arch.yaml; done
/usr/bin/time -v python -m speechbrain_probe.demo --quick
```
"""
    assert document_problems(ok, "ok.md") == []
