"""Build and export a SpeechBrain ECAPA-TDNN speaker encoder in pretrained format.

:func:`export_ecapa` writes a directory that
``EncoderClassifier.from_hparams(source=dir, savedir=dir)`` loads offline
(``hyperparams.yaml``, ``embedding_model.ckpt``, ``classifier.ckpt``,
``label_encoder.ckpt``), so :class:`~speechbrain_probe.metrics.speaker.ECAPAVerifier`
can use an ECAPA trained on the built-in corpus
(``recipes/Synthetic/SpeakerRec/ECAPA/train_ecapa.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from speechbrain_probe.atomic import atomic_output, atomic_write_text

__all__ = ["ECAPA_DEFAULTS", "build_ecapa", "export_ecapa"]

# A small ECAPA-TDNN that trains in minutes on 2 CPU cores.
ECAPA_DEFAULTS = {
    "n_mels": 80,
    "channels": [128, 128, 128, 128, 384],
    "kernel_sizes": [5, 3, 3, 3, 1],
    "dilations": [1, 2, 3, 4, 1],
    "attention_channels": 64,
    "lin_neurons": 128,
}

_YAML = """# ECAPA-TDNN speaker encoder exported by speechbrain_probe.metrics.ecapa
# Load with EncoderClassifier.from_hparams(source=<this dir>, savedir=<this dir>)
sample_rate: {sample_rate}
n_mels: {n_mels}
n_speakers: {n_speakers}
lin_neurons: {lin_neurons}

compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: {channels}
    kernel_sizes: {kernel_sizes}
    dilations: {dilations}
    attention_channels: {attention_channels}
    lin_neurons: !ref <lin_neurons>

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: !ref <lin_neurons>
    out_neurons: !ref <n_speakers>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
"""


def build_ecapa(n_speakers: int, **arch):
    """ECAPA-TDNN embedding model and its AAM classifier head.

    Arguments
    ---------
    n_speakers : int
        Number of training speakers (classifier outputs).
    **arch
        Overrides of :data:`ECAPA_DEFAULTS`.

    Example
    -------
    >>> emb, clf = build_ecapa(4, channels=[16, 16, 16, 16, 48], lin_neurons=8)
    >>> x = emb(torch.randn(2, 50, 80))
    >>> x.shape, clf(x).shape
    (torch.Size([2, 1, 8]), torch.Size([2, 1, 4]))
    """
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN, Classifier

    cfg = _arch(arch)
    embedding = ECAPA_TDNN(input_size=cfg.pop("n_mels"), **cfg)
    classifier = Classifier(input_size=cfg["lin_neurons"], out_neurons=n_speakers)
    return embedding, classifier


def _arch(arch: dict) -> dict:
    unknown = set(arch) - set(ECAPA_DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown ECAPA setting(s) {sorted(unknown)}; known: {sorted(ECAPA_DEFAULTS)}"
        )
    cfg = dict(ECAPA_DEFAULTS)
    cfg.update(arch)
    return cfg


def export_ecapa(
    out_dir: str | os.PathLike,
    embedding_model: torch.nn.Module,
    classifier: torch.nn.Module,
    speakers: list[str],
    sample_rate: int = 16000,
    **arch,
) -> Path:
    """Write ``out_dir`` in SpeechBrain's pretrained format.

    Arguments
    ---------
    out_dir : path
        Directory to (over)write.
    embedding_model, classifier : torch.nn.Module
        From :func:`build_ecapa` (trained or not).
    speakers : list of str
        Speaker label of each classifier output, in order.
    sample_rate : int
        Audio rate the model expects.
    **arch
        The architecture settings used in :func:`build_ecapa`.

    Example
    -------
    >>> from speechbrain.inference.classifiers import EncoderClassifier
    >>> arch = dict(channels=[16, 16, 16, 16, 48], lin_neurons=8)
    >>> emb, clf = build_ecapa(2, **arch)
    >>> d = export_ecapa(getfixture("tmp_path") / "ecapa", emb, clf, ["a", "b"], **arch)
    >>> model = EncoderClassifier.from_hparams(source=str(d), savedir=str(d))
    >>> model.encode_batch(torch.randn(1, 16000)).shape
    torch.Size([1, 1, 8])
    """
    from speechbrain.dataio.encoder import CategoricalEncoder

    cfg = _arch(arch)
    if len(set(speakers)) != len(speakers):
        raise ValueError("speaker labels must be unique")
    out = Path(out_dir)
    for name, module in (
        ("embedding_model", embedding_model),
        ("classifier", classifier),
    ):
        with atomic_output(out / f"{name}.ckpt") as tmp:
            torch.save(module.state_dict(), tmp)
    encoder = CategoricalEncoder()
    encoder.update_from_iterable(speakers)
    with atomic_output(out / "label_encoder.ckpt") as tmp:
        encoder.save(tmp)
    text = _YAML.format(sample_rate=sample_rate, n_speakers=len(speakers), **cfg)
    atomic_write_text(out / "hyperparams.yaml", text)
    return out
