"""The registered set of stimuli of a listening test.

A stimulus is one audio file with its (model, layer, condition, speaker). The
registry reads them from a ``samples.csv`` as written by the evaluation
(``utt_id,spk_id,model,layer,condition,kind,path``, paths relative to the CSV's
folder) or from any CSV with the columns ``model,layer,condition,speaker,path``
(``spk_id`` may stand for ``speaker``; ``utt_id`` is optional). The web app
serves audio only from this set, so nothing outside it can ever be reached.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Stimulus", "Registry", "load_registry", "layer_sort_key"]

_REQUIRED = ("model", "layer", "condition", "path")
_REFERENCE_KINDS = ("original", "copy_synthesis")


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

    @property
    def cell(self) -> tuple[str, str, str]:
        """``(model, condition, layer)``: the unit a human error rate is given for."""
        return (self.model, self.condition, self.layer)


def layer_sort_key(layer: str) -> tuple:
    """Order layers as the paper does: references, CNN layers, then (B)LSTM layers.

    Example
    -------
    >>> sorted(["blstm3", "cnn2", "blstm10", "original", "cnn1"], key=layer_sort_key)
    ['original', 'cnn1', 'cnn2', 'blstm3', 'blstm10']
    """
    if layer in _REFERENCE_KINDS:
        return (0, _REFERENCE_KINDS.index(layer), "", 0)
    match = re.fullmatch(r"([A-Za-z_]*?)(\d+)", layer)
    family = match.group(1) if match else layer
    number = int(match.group(2)) if match else -1
    rank = {"cnn": 1, "conv": 1, "blstm": 2, "lstm": 2}.get(family.lower(), 3)
    return (rank, 0, family, number)


class Registry:
    """Stimuli indexed by cell and speaker, with a lookup of allowed paths.

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

    def __init__(self, stimuli: list[Stimulus]):
        if not stimuli:
            raise ValueError(
                "the listening test has no stimuli: the samples CSV lists no usable rows"
            )
        self.stimuli = list(stimuli)
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


def load_registry(
    csv_path: str | os.PathLike,
    kinds: tuple[str, ...] = ("reconstruction",),
    models: tuple[str, ...] | None = None,
    conditions: tuple[str, ...] | None = None,
    layers: tuple[str, ...] | None = None,
    check_files: bool = True,
) -> Registry:
    """Read the stimuli of a listening test from a samples CSV.

    Parameters
    ----------
    csv_path : path
        ``samples.csv`` of the evaluation, or a CSV with ``model,layer,condition,
        speaker,path``. Relative paths are taken relative to the CSV's folder.
    kinds : tuple of str
        Rows of these ``kind`` values are used when the CSV has a ``kind`` column.
        Add ``"original"`` or ``"copy_synthesis"`` to test the references too; their
        layer is then the kind's name.
    models, conditions, layers : tuple of str, optional
        Keep only these values.
    check_files : bool
        Fail when a listed file does not exist.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "a.wav").write_bytes(b"RIFF"); _ = (tmp / "b.wav").write_bytes(b"RIFF")
    >>> _ = (tmp / "s.csv").write_text("model,layer,condition,speaker,path\\n"
    ...     "m,cnn1,clean,s1,a.wav\\nm,cnn1,clean,s2,b.wav\\n")
    >>> reg = load_registry(tmp / "s.csv")
    >>> len(reg), reg.stimuli[0].utt_id
    (2, 'a')
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"samples CSV {csv_path} does not exist; give the samples.csv written by the "
            "evaluation or a CSV with columns model,layer,condition,speaker,path"
        )
    base = csv_path.resolve().parent
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or [])
        speaker_col = "speaker" if "speaker" in fields else "spk_id"
        missing = [c for c in (*_REQUIRED, speaker_col) if c not in fields]
        if missing:
            raise ValueError(
                f"{csv_path} lacks columns {missing}; it needs model,layer,condition,"
                f"speaker (or spk_id),path and has {sorted(fields)}"
            )
        stimuli = []
        for line, row in enumerate(reader, start=2):
            kind = row.get("kind") or "reconstruction"
            if kind not in kinds:
                continue
            layer = row["layer"] or kind
            model = row["model"]
            if kind in _REFERENCE_KINDS:
                # references do not belong to an ASR model unless the CSV says so
                layer, model = kind, model or "reference"
            elif models and model not in models:
                continue
            if conditions and row["condition"] not in conditions:
                continue
            if layers and layer not in layers:
                continue
            empty = [c for c in ("condition", speaker_col, "path") if not row[c]]
            empty += [] if model else ["model"]
            if empty:
                raise ValueError(f"{csv_path} line {line}: empty {empty}")
            path = Path(row["path"])
            path = (path if path.is_absolute() else base / path).resolve()
            if check_files and not path.is_file():
                raise FileNotFoundError(
                    f"{csv_path} line {line}: audio file {path} does not exist"
                )
            utt_id = row.get("utt_id") or path.stem
            stimuli.append(
                Stimulus(
                    utt_id=utt_id,
                    speaker=row[speaker_col],
                    model=model,
                    layer=layer,
                    condition=row["condition"],
                    path=str(path),
                )
            )
    return Registry(stimuli)
