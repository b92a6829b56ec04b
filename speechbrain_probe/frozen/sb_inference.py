"""SpeechBrain inference models (``EncoderASR``, ``EncoderDecoderASR``) as a
:class:`~speechbrain_probe.frozen.interface.FrozenASR`.

An exported ``hyperparams.yaml`` may declare ``probe_layers:`` (short name ->
dotted path under ``mods``) and ``mel_config:`` (the :class:`MelConfig` of its
features, which the probe target then uses). Without ``probe_layers`` (the
hub's own models) every submodule with a time axis is a layer, named by its
path, and :meth:`SpeechBrainASR.default_layers` picks the top-level ones.

:func:`check_pretrainer_files` checks a local model directory against its
pretrainer before anything is built.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path

import torch
import yaml

from speechbrain_probe.features import MelConfig
from speechbrain_probe.frozen.interface import FrozenASR
from speechbrain_probe.hooks import LayerReport, block_paths, forward_order

__all__ = ["SpeechBrainASR", "layer_name", "check_pretrainer_files"]


def layer_name(path: str) -> str:
    """The layer name of an undeclared module path: ``.`` becomes ``-``.

    Layer names key ``nn.ModuleDict`` probes and name files, so they cannot
    hold dots; ``-`` never occurs in a module name, so the mapping is one to one.

    Example
    -------
    >>> layer_name("encoder.model.RNN.rnn.l0")
    'encoder-model-RNN-rnn-l0'
    """
    return path.replace(".", "-")


class _Tagged:
    """A HyperPyYAML tagged value (``!ref``, ``!new:``, ...), unevaluated."""

    def __init__(self, tag, value):
        self.tag, self.value = tag, value


class _RawLoader(yaml.SafeLoader):
    """Reads HyperPyYAML without building anything (tags kept as _Tagged)."""


def _construct_tagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    return _Tagged("!" + suffix, value)


_RawLoader.add_multi_constructor("!", _construct_tagged)


def check_pretrainer_files(directory) -> None:
    r"""Raise ``FileNotFoundError`` naming every file a local model directory's
    pretrainer lacks.

    Reads ``hyperparams.yaml`` without building the model: each loadable of
    ``pretrainer`` is read from ``<directory>/<name>.ckpt`` unless ``paths``
    names a file (only absolute paths given as plain strings are checked; a
    ``!ref`` or hub path is left to SpeechBrain).

    Example
    -------
    >>> d = getfixture("tmp_path")
    >>> _ = (d / "hyperparams.yaml").write_text(
    ...     "model: !new:torch.nn.Linear [2, 2]\n"
    ...     "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n"
    ...     "    loadables:\n        model: !ref <model>\n        lm: !ref <model>\n")
    >>> _ = (d / "model.ckpt").write_bytes(b"")
    >>> check_pretrainer_files(d)
    Traceback (most recent call last):
    ...
    FileNotFoundError: model directory ... lacks lm.ckpt, which the pretrainer in its hyperparams.yaml loads (loadables: lm); ...
    """
    directory = Path(directory)
    text = (directory / "hyperparams.yaml").read_text(encoding="utf-8")
    try:
        hp = yaml.load(text, Loader=_RawLoader)
    except yaml.YAMLError:
        return  # SpeechBrain will report the syntax error itself
    pretrainer = hp.get("pretrainer") if isinstance(hp, dict) else None
    args = pretrainer.value if isinstance(pretrainer, _Tagged) else None
    if not isinstance(args, dict):
        return
    loadables = args.get("loadables") or {}
    paths = args.get("paths") or {}
    missing = {}
    for name in loadables if isinstance(loadables, dict) else []:
        given = paths.get(name) if isinstance(paths, dict) else None
        if given is None:
            if not (directory / f"{name}.ckpt").exists():
                missing[str(name)] = f"{name}.ckpt"
        elif isinstance(given, str) and Path(given).is_absolute():
            if not Path(given).exists():
                missing[str(name)] = given
    if missing:
        raise FileNotFoundError(
            f"model directory {str(directory)!r} lacks {', '.join(missing.values())}, "
            "which the pretrainer in its hyperparams.yaml loads (loadables: "
            f"{', '.join(missing)}); copy the missing file(s) into that directory "
            "(from the model's hub page or the export that made it), or, for a "
            "local export, export the model again"
        )


logger = logging.getLogger(__name__)


class SpeechBrainASR(FrozenASR):
    """A SpeechBrain ``EncoderASR`` / ``EncoderDecoderASR`` (hooks on ``mods``)."""

    kind = "speechbrain"

    def __init__(self, pretrained, source: str):
        self.pretrained = pretrained
        hp = vars(pretrained.hparams)
        declared = hp.get("probe_layers")
        mel = hp.get("mel_config")
        if mel is None:
            logger.warning(
                "%s declares no mel_config: the probe target uses the default MelConfig",
                source,
            )
        mel_config = MelConfig.of(dict(mel) if isinstance(mel, Mapping) else mel)
        self.declared_info = dict(hp.get("layer_info") or {})
        layers = {str(k): str(v) for k, v in dict(declared or {}).items()}
        super().__init__(pretrained.mods, layers, mel_config, source)
        self.device = str(pretrained.device)
        self.declared = bool(declared)
        self._defaults: list[str] | None = None
        if not declared:
            # no declaration: every submodule with a time axis, named by its
            # path with "-" for "." (names become module keys and file names);
            # check_layers also takes the dotted path itself
            reports = [
                dataclasses.replace(r, name=layer_name(r.path))
                for r in self.measure(all_modules=True)
            ]
            self.layers = {r.name: r.path for r in reports}
            self._reports = {r.name: r for r in reports}

    def default_layers(self) -> list[str]:
        """Top-level probe layers, in forward order (input side first).

        The declared ``probe_layers`` when the export has them. Otherwise the
        model's blocks (:func:`speechbrain_probe.hooks.block_paths`: the
        blocks of layer lists such as CNN, DNN, transformer or conformer
        layers, a stacked RNN's layers one by one, other parameterised stages
        whole) that run in ``encode_batch`` and whose frames are no finer than
        the probe target's mel hop, sorted by when they run.
        """
        if self.declared:
            return list(self.layers)
        if self._defaults is None:
            units = [layer_name(p) for p in block_paths(self.root)]
            units = [
                n
                for n in units
                if n in self.layers and self.report(n).downsample >= 1 - 1e-6
            ]
            hop = self.mel_config.hop_length
            self.root.eval()
            with torch.no_grad():
                self._defaults = forward_order(
                    self.root,
                    lambda: self._dummy_run(2, 80 * hop),
                    {n: self.layers[n] for n in units},
                )
        return list(self._defaults)

    def to(self, device):
        """Move the model and tell the interface."""
        super().to(device)
        self.pretrained.device = str(device)
        return self

    def report(self, name: str) -> LayerReport:
        """Measured geometry, cross-checked with a declared ``layer_info``."""
        rep = super().report(name)
        info = self.declared_info.get(name)
        if info and (
            int(info.get("dim", rep.dim)) != rep.dim
            or abs(float(info.get("downsample", rep.downsample)) - rep.downsample)
            > 1e-3
        ):
            raise ValueError(
                f"layer {name!r} of {self.source}: hyperparams.yaml declares {dict(info)}, "
                f"but its output measures dim={rep.dim}, downsample={rep.downsample}; "
                "the export's layer_info or probe_layers path is wrong"
            )
        return rep

    def encode(self, wavs, wav_lens):
        """``encode_batch`` of the SpeechBrain interface."""
        return self.pretrained.encode_batch(
            wavs.to(self.device), wav_lens.to(self.device)
        )
