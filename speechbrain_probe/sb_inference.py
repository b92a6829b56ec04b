"""SpeechBrain inference models (``EncoderASR``, ``EncoderDecoderASR``) as a
:class:`~speechbrain_probe.asr_interface.FrozenASR`.

An exported ``hyperparams.yaml`` may declare ``probe_layers:`` (short name ->
dotted path under ``mods``) and ``mel_config:`` (the :class:`MelConfig` of its
features, which the probe target then uses).
"""

from __future__ import annotations

import logging

from speechbrain_probe.asr_interface import FrozenASR
from speechbrain_probe.features import MelConfig
from speechbrain_probe.hooks import LayerReport, resolve_module

__all__ = ["SpeechBrainASR"]

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
            mel_config = MelConfig()
        else:
            mel_config = (
                mel if isinstance(mel, MelConfig) else MelConfig.from_dict(dict(mel))
            )
        self.declared_info = dict(hp.get("layer_info") or {})
        root = pretrained.mods
        if declared:
            layers = {str(k): str(v) for k, v in dict(declared).items()}
            for name, path in layers.items():
                try:
                    resolve_module(root, path)
                except KeyError as err:
                    raise KeyError(
                        f"probe_layers[{name!r}] of {source}: {err.args[0]}"
                    ) from None
        else:
            layers = {}
        super().__init__(root, layers, mel_config, source)
        self.device = str(pretrained.device)
        if not declared:
            # no declaration: every submodule with a time axis, by its path
            self.layers = {r.name: r.path for r in self.measure(all_modules=True)}
            self._reports.clear()

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
