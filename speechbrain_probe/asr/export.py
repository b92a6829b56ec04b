"""Export a trained CTC model as a directory SpeechBrain's ``EncoderASR`` loads.

The directory holds ``hyperparams.yaml`` plus one checkpoint file per loadable
(``model.ckpt``, ``ctc_lin.ckpt``, ``normalize.ckpt``, ``tokenizer.ckpt``). The
Pretrainer in the YAML has no explicit paths, so it fetches
``<source>/<name>.ckpt``: the directory can be moved or copied as a whole.

Besides what ``EncoderASR`` needs, the YAML carries for the probe:

* ``probe_layers``: short layer name -> dotted module path under the
  Pretrained object's ``mods`` (e.g. ``blstm3: encoder.model.blstm3``);
* ``layer_info``: per layer ``{dim, downsample}``;
* ``mel_config``: the :class:`~speechbrain_probe.features.MelConfig` of the
  model's input features (the probe target uses the same settings).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import torch
import yaml

from speechbrain_probe.features import MelConfig

from .models import CTCEncoder

__all__ = ["export_asr"]

_TEMPLATE = """\
# Exported by speechbrain_probe.asr.export: a CTC encoder for
# speechbrain.inference.ASR.EncoderASR.from_hparams(source=<this dir>, savedir=<this dir>)
arch: {arch}
sample_rate: {sample_rate}
blank_index: {blank_index}
vocab_size: {vocab_size}
{info_yaml}
compute_features: !new:speechbrain_probe.features.ASRFeatures
    config: !ref <mel_config>
    deltas: True

normalize: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    update_until_epoch: 0

model: !new:{model_class}
{model_kwargs}
ctc_lin: !new:torch.nn.Linear
    in_features: {ctc_in}
    out_features: !ref <vocab_size>

log_softmax: !new:torch.nn.LogSoftmax
    dim: -1

encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
    compute_features: !ref <compute_features>
    normalize: !ref <normalize>
    model: !ref <model>
    ctc_lin: !ref <ctc_lin>
    log_softmax: !ref <log_softmax>

tokenizer: !new:sentencepiece.SentencePieceProcessor

decoding_function: !name:speechbrain.decoders.ctc_greedy_decode
    blank_id: !ref <blank_index>

modules:
    encoder: !ref <encoder>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        model: !ref <model>
        ctc_lin: !ref <ctc_lin>
        normalize: !ref <normalize>
        tokenizer: !ref <tokenizer>
"""


def _indent_yaml(data: dict, indent: int) -> str:
    text = yaml.safe_dump(data, default_flow_style=False, sort_keys=False)
    pad = " " * indent
    return "".join(pad + line + "\n" for line in text.splitlines())


def export_asr(
    out_dir: str,
    model: CTCEncoder,
    ctc_lin: torch.nn.Linear,
    normalize: torch.nn.Module,
    tokenizer_model: str,
    mel_config: MelConfig | dict | None = None,
    blank_index: int = 0,
) -> str:
    """Write the EncoderASR directory for a trained model (atomically).

    Arguments
    ---------
    out_dir : str
        Target directory (replaced as a whole if it exists).
    model : CTCEncoder
        The trained encoder (:class:`~speechbrain_probe.asr.models.VGGLSTM` or
        :class:`~speechbrain_probe.asr.models.PureBLSTM`).
    ctc_lin : torch.nn.Linear
        Output layer (encoder dim -> vocabulary).
    normalize : speechbrain.processing.features.InputNormalization
        Global feature normalisation with its statistics.
    tokenizer_model : str
        Path of the SentencePiece ``.model`` file.
    mel_config : MelConfig or dict
        Feature settings (default: ``MelConfig()``).
    blank_index : int
        CTC blank id.

    Returns
    -------
    str
        ``out_dir``.

    Example
    -------
    See ``tests/test_asr_models.py`` (needs a trained tokenizer).
    """
    if isinstance(mel_config, dict):
        mel_config = MelConfig.from_dict(mel_config)
    mel_config = mel_config or MelConfig()
    if not os.path.isfile(tokenizer_model):
        raise FileNotFoundError(f"tokenizer model {tokenizer_model} not found")
    if not hasattr(model, "config") or not model.arch:
        raise TypeError("export_asr needs a speechbrain_probe.asr.models.CTCEncoder")
    info = model.layer_info()
    extra = {
        "mel_config": mel_config.to_dict(),
        "probe_layers": {name: f"encoder.model.{name}" for name in model.layer_names},
        "layer_info": {
            name: {"dim": i.dim, "downsample": i.downsample} for name, i in info.items()
        },
    }
    text = _TEMPLATE.format(
        arch=model.arch,
        sample_rate=mel_config.sample_rate,
        blank_index=blank_index,
        vocab_size=ctc_lin.out_features,
        info_yaml=yaml.safe_dump(extra, default_flow_style=False, sort_keys=False),
        model_class=f"{type(model).__module__}.{type(model).__name__}",
        model_kwargs=_indent_yaml(model.config, 4),
        ctc_in=ctc_lin.in_features,
    )
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        with open(os.path.join(tmp, "hyperparams.yaml"), "w", encoding="utf-8") as f:
            f.write(text)
        torch.save(model.state_dict(), os.path.join(tmp, "model.ckpt"))
        torch.save(ctc_lin.state_dict(), os.path.join(tmp, "ctc_lin.ckpt"))
        normalize._save(os.path.join(tmp, "normalize.ckpt"))
        shutil.copyfile(tokenizer_model, os.path.join(tmp, "tokenizer.ckpt"))
        if os.path.isdir(out_dir):
            old = out_dir + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
