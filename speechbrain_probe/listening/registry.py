"""The registered set of stimuli of a listening test.

A stimulus is one audio file with its (model, layer, condition, speaker). The
registry reads them from a ``samples.csv`` as written by the evaluation
(``utt_id,spk_id,model,layer,condition,kind,path``, paths relative to the CSV's
folder) or from any CSV with the columns ``model,layer,condition,speaker,path``
(``spk_id`` may stand for ``speaker``; ``utt_id`` is optional). The web app
serves audio only from this set, so nothing outside it can ever be reached.

Every file is checked once, at start (:meth:`Registry.verify`): its path is
resolved (symbolic links followed), the result must be a regular file inside the
study's folders (the CSV's folder, plus any ``roots`` given) with no other hard
link (a hard link can bring in a file from anywhere on the same file system),
neither empty nor above a size limit (the server reads a whole stimulus for
each request), and its size and SHA-256 are recorded. Identical bytes must stand
for one speaker and utterance wherever they appear: one wav listed for two
speakers or two utterances would make those trials' keys wrong.
:meth:`Registry.read_audio` serves only the recorded bytes: it opens the
resolved path without following a symbolic link, refuses anything but a regular
file of the recorded size, and compares the hash of what it read. A file
replaced, changed or swapped for a link after start is refused, never served.
"""

from __future__ import annotations

import csv
import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from speechbrain_probe.result_rows import SAMPLES_FIELDS, read_samples
from speechbrain_probe.vocabulary import REFERENCE_LAYERS, layer_sort_key

__all__ = [
    "MAX_STIMULUS_BYTES",
    "AudioChanged",
    "AudioFile",
    "Stimulus",
    "Registry",
    "load_registry",
]

_REQUIRED = ("model", "layer", "condition", "path")
#: Largest stimulus file by default (``serve --max-stimulus-mb``): every request
#: for audio reads and hashes the whole file (16 MiB: 8 minutes of 16 kHz
#: 16-bit mono).
MAX_STIMULUS_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Stimulus:
    """One audio file of the test.

    Example
    -------
    >>> s = Stimulus("u1", "spk1", "vgg", "cnn1", "clean", "/tmp/u1.wav")
    >>> s.cell
    ('vgg', 'clean', 'cnn1')
    """

    utt_id: str
    speaker: str
    model: str
    layer: str
    condition: str
    path: str
    #: where the stimulus was listed (e.g. its CSV line), for error messages
    source: str = field(default="", compare=False)

    @property
    def cell(self) -> tuple[str, str, str]:
        """``(model, condition, layer)``: the unit a human error rate is given for."""
        return (self.model, self.condition, self.layer)


@dataclass(frozen=True)
class AudioFile:
    """What :meth:`Registry.verify` recorded of one stimulus file at start."""

    path: str
    size: int
    sha256: str


class AudioChanged(Exception):
    """A registered file is no longer the regular file checked at start."""


#: Open flags of stimulus files: never follow a final symbolic link, never block
#: (a FIFO put in a file's place would hang the request), no fd leak to children.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _file_problem(info: os.stat_result, size: int | None, limit: int | None) -> str:
    """What is wrong with an open stimulus file (``''``: nothing): it must be a
    regular file, of ``size`` bytes when given; with ``limit`` (the check at
    start), also non-empty, of at most ``limit`` bytes and with one hard link."""
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file (stimuli must be regular files)"
    if size is not None and info.st_size != size:
        return f"has {info.st_size} bytes, {size} at start"
    if limit is None:
        return ""
    if info.st_nlink > 1:
        return (
            f"has {info.st_nlink} hard links, and a hard link can bring in a file "
            "from outside the study's folders; copy the file instead of linking it"
        )
    if info.st_size == 0:
        return "is empty"
    if info.st_size > limit:
        return (
            f"has {info.st_size} bytes, more than the {limit} a stimulus may have "
            "(serve --max-stimulus-mb)"
        )
    return ""


def _read_regular(
    path: str, size: int | None = None, limit: int | None = None
) -> bytes:
    """The bytes of ``path`` if it is a regular file, not a link, that passes
    :func:`_file_problem`; raises :class:`OSError` or :class:`AudioChanged`
    (whose message says what is wrong, without the path)."""
    with os.fdopen(os.open(path, _OPEN_FLAGS), "rb") as handle:
        info = os.fstat(handle.fileno())
        problem = _file_problem(info, size, limit)
        if problem:
            raise AudioChanged(problem)
        # one byte beyond the size seen: a file that grows meanwhile shows it
        return handle.read(info.st_size + 1)


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(os.path.commonpath([path, root]) == root for root in roots)


class Registry:
    """Stimuli indexed by cell and speaker, with a lookup of allowed paths.

    Parameters
    ----------
    stimuli : list of Stimulus
        The stimuli (paths absolute).
    roots : iterable of path, optional
        Folders every stimulus must resolve into (checked by :meth:`verify`);
        None: no such check.
    max_bytes : int
        Largest stimulus file :meth:`verify` accepts.

    Example
    -------
    >>> stims = [Stimulus(f"u{i}", f"s{i % 2}", "m", "cnn1", "clean", f"/a/u{i}.wav")
    ...          for i in range(4)]
    >>> reg = Registry(stims)
    >>> reg.cells()
    [('m', 'clean', 'cnn1')]
    >>> reg.is_registered("/a/u3.wav"), reg.is_registered("/etc/passwd")
    (True, False)
    """

    def __init__(
        self,
        stimuli: list[Stimulus],
        roots: Iterable[str | os.PathLike] | None = None,
        max_bytes: int = MAX_STIMULUS_BYTES,
    ):
        if not stimuli:
            raise ValueError(
                "the listening test has no stimuli: the samples CSV lists no usable rows"
            )
        self.stimuli = list(stimuli)
        self.roots = None if roots is None else [os.path.realpath(r) for r in roots]
        self.max_bytes = max_bytes
        self.files: dict[str, AudioFile] | None = None
        self._paths = {s.path for s in self.stimuli}
        self._by_cell = None
        seen = {}
        for s in self.stimuli:
            key = (s.cell, s.utt_id)
            if key in seen:
                raise ValueError(
                    f"utterance {s.utt_id!r} appears twice in cell {s.cell}: "
                    f"{seen[key]} and {s.path}; give each row its own utt_id"
                )
            seen[key] = s.path

    def is_registered(self, path: str) -> bool:
        """True when ``path`` (absolute, resolved) is one of the stimuli."""
        return path in self._paths

    @property
    def verified(self) -> bool:
        """True once :meth:`verify` has recorded every file."""
        return self.files is not None

    def verify(self) -> Registry:
        """Check every stimulus file once (see the module docstring) and record
        its size and SHA-256; return ``self``. A :class:`ValueError` names the
        file and where it was listed (:attr:`Stimulus.source`).

        Example
        -------
        >>> tmp = getfixture("tmp_path")
        >>> _ = (tmp / "a.wav").write_bytes(b"RIFF1234")
        >>> reg = Registry([Stimulus("a", "s", "m", "l", "c", str(tmp / "a.wav"))], roots=[tmp])
        >>> reg.verify().read_audio(str(tmp / "a.wav"))
        b'RIFF1234'
        >>> Registry([Stimulus("p", "s", "m", "l", "c", "/etc/passwd")], roots=[tmp]).verify()
        Traceback (most recent call last):
        ...
        ValueError: audio file /etc/passwd lies outside the study's folders ...
        """
        where: dict[str, str] = {}
        for s in self.stimuli:
            where.setdefault(s.path, s.source)
        files = {}
        for path in sorted(self._paths):
            label = f"{where[path]}: " if where[path] else ""
            real = os.path.realpath(path)
            if self.roots is not None and not _inside(real, self.roots):
                raise ValueError(
                    f"{label}audio file {path} lies outside the study's folders "
                    f"({', '.join(self.roots)}); keep the stimuli in the samples CSV's "
                    "folder or allow their folder with --stimuli-root"
                )
            try:
                data = _read_regular(path, limit=self.max_bytes)
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"{label}audio file {path} does not exist"
                ) from None
            except (OSError, AudioChanged) as err:
                reason = err.strerror if isinstance(err, OSError) else f"it {err}"
                raise ValueError(
                    f"{label}audio file {path} cannot be used: {reason}"
                ) from None
            files[path] = AudioFile(path, len(data), hashlib.sha256(data).hexdigest())
        self._check_one_identity_per_audio(files)
        self.files = files
        return self

    def _check_one_identity_per_audio(self, files: dict[str, AudioFile]) -> None:
        """Raise :class:`ValueError` when identical bytes (one file, or copies)
        stand for two speakers or two utterances, naming both listings."""
        first: dict[str, Stimulus] = {}
        for s in self.stimuli:
            other = first.setdefault(files[s.path].sha256, s)
            if (other.speaker, other.utt_id) == (s.speaker, s.utt_id):
                continue
            same = "the same file" if other.path == s.path else "identical files"
            raise ValueError(
                f"{other.source or other.path} and {s.source or s.path} list "
                f"{same} ({other.path}, {s.path}) as speaker {other.speaker!r} "
                f"utterance {other.utt_id!r} and as speaker {s.speaker!r} utterance "
                f"{s.utt_id!r}; a recording belongs to one speaker and utterance "
                "(else those trials' keys are wrong): fix the rows or the files"
            )

    def read_audio(self, path: str) -> bytes:
        """The bytes of a registered stimulus, exactly as checked at start:
        :class:`KeyError` for a path that is not a verified stimulus,
        :class:`AudioChanged` for a file changed since (module docstring)."""
        if self.files is None:
            raise KeyError("the registry has not been verified")
        record = self.files[path]
        try:
            data = _read_regular(path, size=record.size)
        except OSError as err:
            raise AudioChanged(f"{path}: {err.strerror}") from None
        except AudioChanged as err:
            raise AudioChanged(f"{path} {err}") from None
        if (
            len(data) != record.size
            or hashlib.sha256(data).hexdigest() != record.sha256
        ):
            raise AudioChanged(f"{path} changed since the server started")
        return data

    def cells(self) -> list[tuple[str, str, str]]:
        """All ``(model, condition, layer)`` cells, layers in paper order."""
        cells = {s.cell for s in self.stimuli}
        return sorted(cells, key=lambda c: (c[0], c[1], layer_sort_key(c[2])))

    def by_cell(self, cell: tuple[str, str, str]) -> dict[str, dict[str, Stimulus]]:
        """``{speaker: {utt_id: Stimulus}}`` of one cell (empty for an unknown cell)."""
        if self._by_cell is None:
            index: dict[tuple, dict[str, dict[str, Stimulus]]] = {}
            for s in self.stimuli:
                index.setdefault(s.cell, {}).setdefault(s.speaker, {})[s.utt_id] = s
            self._by_cell = index
        return self._by_cell.get(cell, {})

    def __len__(self) -> int:
        return len(self.stimuli)


def _rows(csv_path: Path):
    """``(line, row)`` of a stimuli CSV: the evaluation's ``samples.csv`` read
    through :func:`~speechbrain_probe.result_rows.read_samples`, or any CSV with
    ``model,layer,condition,speaker`` (or ``spk_id``) ``,path``."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        fields = set(csv.DictReader(handle).fieldnames or [])
    if set(SAMPLES_FIELDS) <= fields:
        for line, s in enumerate(read_samples(csv_path), start=2):
            yield line, {**vars(s), "speaker": s.spk_id, "path": str(s.file)}
        return
    speaker_col = "speaker" if "speaker" in fields else "spk_id"
    missing = [c for c in (*_REQUIRED, speaker_col) if c not in fields]
    if missing:
        raise ValueError(
            f"{csv_path} lacks columns {missing}; it needs model,layer,condition,"
            f"speaker (or spk_id),path and has {sorted(fields)}"
        )
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            row["speaker"] = row[speaker_col]
            yield line, row


def _check_text(csv_path: Path) -> None:
    """Raise :class:`ValueError` naming the line of a CSV that is not UTF-8 text
    or holds a NUL character (no path or name can contain one)."""
    data = csv_path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(
            f"{csv_path} line {line} is not UTF-8 text (byte {err.start}); save the "
            "CSV as UTF-8"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ValueError(
            f"{csv_path} line {line} holds a NUL character, which no path or name "
            "can contain; fix that row"
        )


def _select(row: dict, kinds, models, conditions, layers) -> tuple[str, str] | None:
    """``(model, layer)`` of a CSV row the test uses, or None to skip it."""
    kind = row.get("kind") or "reconstruction"
    if kind not in kinds:
        return None
    layer, model = row["layer"] or kind, row["model"]
    if kind in REFERENCE_LAYERS:
        # references do not belong to an ASR model unless the CSV says so
        layer, model = kind, model or "reference"
    elif models and model not in models:
        return None
    if conditions and row["condition"] not in conditions:
        return None
    if layers and layer not in layers:
        return None
    return model, layer


def load_registry(
    csv_path: str | os.PathLike,
    kinds: tuple[str, ...] = ("reconstruction",),
    models: tuple[str, ...] | None = None,
    conditions: tuple[str, ...] | None = None,
    layers: tuple[str, ...] | None = None,
    roots: Iterable[str | os.PathLike] = (),
    max_bytes: int = MAX_STIMULUS_BYTES,
) -> Registry:
    """Read the stimuli of a listening test from a samples CSV and check their
    files (:meth:`Registry.verify`).

    Parameters
    ----------
    csv_path : path
        ``samples.csv`` of the evaluation, or a CSV with ``model,layer,condition,
        speaker,path`` (UTF-8). Relative paths are taken relative to the CSV's
        folder.
    kinds : tuple of str
        Rows of these ``kind`` values are used when the CSV has a ``kind`` column.
        Add ``"original"`` or ``"copy_synthesis"`` to test the references too; their
        layer is then the kind's name.
    models, conditions, layers : tuple of str, optional
        Keep only these values.
    roots : iterable of path
        More folders the stimuli may lie in (besides the CSV's folder).
    max_bytes : int
        Largest stimulus file accepted.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "a.wav").write_bytes(b"RIFFa"); _ = (tmp / "b.wav").write_bytes(b"RIFFb")
    >>> _ = (tmp / "s.csv").write_text("model,layer,condition,speaker,path\\n"
    ...     "m,cnn1,clean,s1,a.wav\\nm,cnn1,clean,s2,b.wav\\n")
    >>> reg = load_registry(tmp / "s.csv")
    >>> len(reg), reg.stimuli[0].utt_id, reg.stimuli[1].source[-12:]
    (2, 'a', 's.csv line 3')
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"samples CSV {csv_path} does not exist; give the samples.csv written by the "
            "evaluation or a CSV with columns model,layer,condition,speaker,path"
        )
    _check_text(csv_path)
    base = csv_path.resolve().parent
    stimuli = []
    for line, row in _rows(csv_path):
        selected = _select(row, kinds, models, conditions, layers)
        if selected is None:
            continue
        model, layer = selected
        empty = [c for c in ("condition", "speaker", "path") if not row[c]]
        empty += [] if model else ["model"]
        if empty:
            raise ValueError(f"{csv_path} line {line}: empty {empty}")
        path = Path(row["path"])
        path = (path if path.is_absolute() else base / path).resolve()
        stimuli.append(
            Stimulus(
                utt_id=row.get("utt_id") or path.stem,
                speaker=row["speaker"],
                model=model,
                layer=layer,
                condition=row["condition"],
                path=str(path),
                source=f"{csv_path} line {line}",
            )
        )
    registry = Registry(stimuli, roots=[base, *roots], max_bytes=max_bytes)
    return registry.verify()
