"""Load a frozen ASR: :func:`load_asr` picks, for a source, one of the wrappers
of :class:`~speechbrain_probe.frozen.interface.FrozenASR`.

* SpeechBrain inference models (``EncoderASR``, ``EncoderDecoderASR``), from an
  exported local directory (our own ASR exports) or a hub id when online
  (:class:`~speechbrain_probe.frozen.sb_inference.SpeechBrainASR`);
* Hugging Face speech encoders (Whisper, wav2vec2, HuBERT, WavLM, data2vec-audio)
  from a local ``save_pretrained`` directory
  (:class:`~speechbrain_probe.frozen.hf_encoder.HFEncoderASR`);
* any ``torch.nn.Module`` taking ``(wavs, wav_lens)``:
  :class:`~speechbrain_probe.frozen.interface.ModuleASR` (built directly).

A local source (:func:`~speechbrain_probe.frozen.source.is_hub_id` says
which) that does not exist is an error, never a network call; so is a local
SpeechBrain directory that lacks a file its pretrainer loads (checked before
the model is built).
"""

from __future__ import annotations

import os
from pathlib import Path

from speechbrain_probe.devices import resolve_device
from speechbrain_probe.frozen.hf_encoder import HFEncoderASR
from speechbrain_probe.frozen.interface import FrozenASR
from speechbrain_probe.frozen.sb_inference import SpeechBrainASR, check_pretrainer_files
from speechbrain_probe.frozen.source import check_local, is_hub_id

__all__ = ["load_asr"]


def load_asr(
    source: str | os.PathLike,
    savedir: str | os.PathLike | None = None,
    device: str | None = None,
    interface: str = "auto",
    whisper_window: str = "full",
) -> FrozenASR:
    """Load a frozen ASR from a local directory or a hub id.

    Arguments
    ---------
    source : str or path
        Exported SpeechBrain model directory (``hyperparams.yaml``), Hugging Face
        model directory (``config.json``), or a SpeechBrain hub id (online only).
    savedir : str or path, optional
        Where SpeechBrain collects the files (default: the directory itself for a
        local source, ``pretrained_models/<name>`` for a hub id).
    device : str, optional
        ``cpu``, ``cuda:0``, ...; None: CUDA where available, else the CPU.
    interface : str
        ``auto``, ``EncoderASR`` or ``EncoderDecoderASR``.
    whisper_window : str
        Whisper encoders only (other models ignore it): ``"full"`` (default)
        or ``"trim"``, see :mod:`~speechbrain_probe.frozen.hf_encoder`.

    Returns
    -------
    FrozenASR

    Example
    -------
    >>> load_asr("./no/such/model")
    Traceback (most recent call last):
    ...
    FileNotFoundError: asr_source: local directory './no/such/model' does not exist ...
    """
    from speechbrain.inference.ASR import EncoderASR, EncoderDecoderASR

    device = resolve_device(device)
    text = str(source)
    if not is_hub_id(text):
        path = check_local(text)
        if (path / "config.json").exists() and not (path / "hyperparams.yaml").exists():
            return HFEncoderASR(path, whisper_window=whisper_window).to(device)
        if not (path / "hyperparams.yaml").exists():
            raise FileNotFoundError(
                f"{path} has neither hyperparams.yaml (SpeechBrain export) nor "
                "config.json (Hugging Face save_pretrained); is it a model directory?"
            )
        check_pretrainer_files(path)
        src, save = str(path.resolve()), str(savedir or path.resolve())
        yaml_text = (path / "hyperparams.yaml").read_text(encoding="utf-8")
    else:
        src = text
        save = str(savedir or Path("pretrained_models") / text.replace("/", "--"))
        from speechbrain.utils.fetching import fetch

        yaml_text = Path(
            fetch("hyperparams.yaml", source=src, savedir=save)
        ).read_text()
    if interface == "auto":
        interface = (
            "EncoderASR" if "decoding_function" in yaml_text else "EncoderDecoderASR"
        )
    classes = {"EncoderASR": EncoderASR, "EncoderDecoderASR": EncoderDecoderASR}
    if interface not in classes:
        raise ValueError(f"interface {interface!r}; choose one of {' '.join(classes)}")
    pretrained = classes[interface].from_hparams(
        source=src, savedir=save, run_opts={"device": device}
    )
    return SpeechBrainASR(pretrained, src)
