"""Write the audio an evaluation listens to: references and reconstructions.

Layout under ``<study>/samples/<condition>/``::

    original/<utt>.wav          clean speech (the STOI/PESQ reference)
    mixture/<utt>.wav           the noisy input (noisy conditions only)
    noise/<utt>.wav             mixture minus clean (noisy conditions only)
    copy_synthesis/<utt>.wav    Griffin-Lim of the input's own mel
    <model>/<layer>/<utt>.wav   Griffin-Lim of a probe's reconstruction

Every file is written atomically and an existing file is never recomputed, so
a killed evaluation resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from speechbrain_probe.data.audio import read_checked, write_wav
from speechbrain_probe.evaluation.selection import TestUtterance
from speechbrain_probe.features import LogMelSpectrogram, MelConfig
from speechbrain_probe.probe.brain import reconstruct_mel

__all__ = ["sample_path", "write_references", "write_reconstructions", "pad_batch"]


def sample_path(root, condition: str, kind: str, utt_id: str, layer=None) -> Path:
    """Where one sample lives (``kind`` is a reference kind or a model name).

    Example
    -------
    >>> sample_path("s", "snr0", "vgg_lstm_baseline", "u1", "blstm3").as_posix()
    's/snr0/vgg_lstm_baseline/blstm3/u1.wav'
    """
    parts = [condition, kind] + ([layer] if layer else [])
    return Path(root).joinpath(*parts, f"{utt_id}.wav")


def pad_batch(wavs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded ``[B, S]`` batch and relative lengths of 1-D arrays.

    Example
    -------
    >>> x, lens = pad_batch([np.ones(4), np.ones(2)])
    >>> x.shape, lens.tolist()
    (torch.Size([2, 4]), [1.0, 0.5])
    """
    longest = max(len(w) for w in wavs)
    batch = torch.zeros(len(wavs), longest)
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = torch.as_tensor(w, dtype=torch.float32)
    lens = torch.tensor([len(w) / longest for w in wavs])
    return batch, lens


def write_references(
    root,
    condition: str,
    utterances: list[TestUtterance],
    vocoder,
    mel_config: MelConfig,
) -> int:
    """Write clean, mixture, noise and copy-synthesis files of a condition.

    Returns the number of files written (0 when everything already existed).
    """
    mel = LogMelSpectrogram(mel_config)
    written = 0
    noisy = condition != "clean"
    for utt in tqdm(utterances, desc=f"references {condition}", leave=False):
        clean_path = sample_path(root, condition, "original", utt.utt_id)
        copy_path = sample_path(root, condition, "copy_synthesis", utt.utt_id)
        mix_path = sample_path(root, condition, "mixture", utt.utt_id)
        noise_path = sample_path(root, condition, "noise", utt.utt_id)
        wanted = [clean_path, copy_path] + ([mix_path, noise_path] if noisy else [])
        if all(p.exists() for p in wanted):
            continue
        clean = read_checked(utt.clean_wav)
        heard = read_checked(utt.wav) if noisy else clean
        if noisy and len(heard) != len(clean):
            raise ValueError(
                f"{utt.wav} has {len(heard)} samples but its clean reference "
                f"{utt.clean_wav} has {len(clean)}; rebuild the noisy test set"
            )
        if not clean_path.exists():
            write_wav(clean_path, clean)
            written += 1
        if noisy and not mix_path.exists():
            write_wav(mix_path, heard)
            write_wav(noise_path, heard - clean)
            written += 2
        if not copy_path.exists():
            with torch.no_grad():
                target = mel(torch.from_numpy(heard).unsqueeze(0))
            (wav,) = vocoder.synthesize(target)
            write_wav(copy_path, _fit(wav.numpy(), len(heard)))
            written += 1
    return written


def write_reconstructions(
    root,
    condition: str,
    model_name: str,
    utterances: list[TestUtterance],
    asr,
    probes,
    vocoder,
    batch_size: int = 8,
    device: str = "cpu",
) -> int:
    """Reconstruct every layer of ``probes`` for every utterance, one ASR forward
    per batch; write ``<model>/<layer>/<utt>.wav``. Returns files written."""
    layers = list(probes)
    todo = [
        u
        for u in utterances
        if not all(
            sample_path(root, condition, model_name, u.utt_id, layer).exists()
            for layer in layers
        )
    ]
    # similar lengths together: less padding in the ASR forward
    todo.sort(key=lambda u: Path(u.wav).stat().st_size)
    written = 0
    bar = tqdm(
        total=len(todo) * len(layers),
        desc=f"{model_name} {condition}",
        leave=False,
        unit="wav",
    )
    hop = asr.mel_config.hop_length
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        audio = [read_checked(u.wav) for u in chunk]
        wavs, lens = pad_batch(audio)
        with torch.no_grad():
            mels = reconstruct_mel(asr, probes, wavs.to(device), lens.to(device))
        for layer in layers:
            frames = [len(a) // hop + 1 for a in audio]
            outs = vocoder.synthesize(mels[layer].cpu(), lengths=frames)
            for utt, wav, samples in zip(chunk, outs, audio):
                path = sample_path(root, condition, model_name, utt.utt_id, layer)
                if not path.exists():
                    write_wav(path, _fit(wav.numpy(), len(samples)))
                    written += 1
                bar.update(1)
    bar.close()
    return written


def _fit(wav: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad to ``length`` samples (the input's own length)."""
    if len(wav) >= length:
        return wav[:length]
    return np.pad(wav, (0, length - len(wav)))
