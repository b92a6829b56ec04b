"""Write the audio an evaluation listens to: references and reconstructions.

Layout under ``<study>/samples/<condition>/``::

    original/<utt>.wav          clean speech (the STOI/PESQ reference)
    mixture/<utt>.wav           the noisy input (noisy conditions only)
    noise/<utt>.wav             mixture minus clean (noisy conditions only)
    copy_synthesis/<utt>.wav    the vocoder on the input's own mel
    <model>/<layer>/<utt>.wav   the vocoder on a probe's reconstruction

The vocoder is Griffin-Lim for probes of the paper mel, the universal
HiFi-GAN for probes of its mel (:data:`~speechbrain_probe.features.HIFIGAN_MEL`,
22,050 Hz): copy synthesis takes the mel of the input resampled to the
vocoder's rate, and every file is written at the input's rate and length
(the vocoder's output resampled, then trimmed or padded), so the scores
compare like with like.

Every file is written atomically and an existing file is never recomputed, so
a killed evaluation resumes where it stopped. With an
:class:`~speechbrain_probe.evaluation.pool.EvaluationPool` (and a CPU vocoder),
each synthesis runs in a worker process while the main process computes the
next batch's mels; without one, in this process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from speechbrain.utils.data_utils import batch_pad_right
from tqdm import tqdm

from speechbrain_probe.data.audio import read_checked, write_wav
from speechbrain_probe.evaluation.pool import (
    JobQueue,
    finish_wav,
    synthesize_to_file,
    vocoder_spec,
)
from speechbrain_probe.evaluation.selection import TestUtterance
from speechbrain_probe.features import LogMelSpectrogram, MelConfig
from speechbrain_probe.probe.inference import reconstruct_mel
from speechbrain_probe.probe.target import target_num_frames, to_target_rate
from speechbrain_probe.result_rows import sample_path

__all__ = ["write_references", "write_reconstructions", "pad_batch"]


def pad_batch(wavs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded float32 ``[B, S]`` batch and relative lengths of 1-D arrays
    (SpeechBrain's ``batch_pad_right``).

    Example
    -------
    >>> x, lens = pad_batch([np.ones(4), np.ones(2)])
    >>> x.shape, x.dtype, lens.tolist()
    (torch.Size([2, 4]), torch.float32, [1.0, 0.5])
    """
    return batch_pad_right([torch.as_tensor(w, dtype=torch.float32) for w in wavs])


def write_references(
    root,
    condition: str,
    utterances: list[TestUtterance],
    vocoder,
    mel_config: MelConfig,
    pool=None,
    input_rate: int | None = None,
) -> int:
    """Write clean, mixture, noise and copy-synthesis files of a condition.

    Returns the number of files written (0 when everything already existed).
    ``pool``: an :class:`~speechbrain_probe.evaluation.pool.EvaluationPool`
    that runs the copy syntheses (default: this process). ``mel_config``:
    the vocoder's mel; ``input_rate``: the rate of the utterances (default:
    the mel's), to which copy synthesis is resampled.
    """
    mel = LogMelSpectrogram(mel_config)
    input_rate = int(input_rate or mel_config.sample_rate)
    vocoder_rate = vocoder.config.sample_rate
    written = 0
    noisy = condition != "clean"
    bar = tqdm(utterances, desc=f"references {condition}", leave=False)
    queue = _queue(pool, vocoder)
    for utt in bar:
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
                audio = torch.from_numpy(heard).unsqueeze(0)
                target = mel(to_target_rate(audio, input_rate, mel_config))
            if queue is not None:
                queue.put(
                    synthesize_to_file,
                    vocoder_spec(vocoder),
                    target[0].numpy(),
                    str(copy_path),
                    len(heard),
                    input_rate,
                )
            else:
                (wav,) = vocoder.synthesize(target)
                out = finish_wav(wav, vocoder_rate, input_rate, len(heard))
                write_wav(copy_path, out, sample_rate=input_rate)
            written += 1
    if queue is not None:
        queue.finish()
    bar.close()
    return written


def _queue(pool, vocoder):
    """A bounded job queue on ``pool`` when the vocoder can run there."""
    if pool is None or not hasattr(vocoder, "spec"):
        return None
    if getattr(vocoder, "device", torch.device("cpu")).type != "cpu":
        return None  # one batched Griffin-Lim on the GPU beats CPU workers
    return JobQueue(pool, limit=4 * pool.n_jobs)


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
    pool=None,
) -> int:
    """Reconstruct every layer of ``probes`` for every utterance, one ASR forward
    per batch; write ``<model>/<layer>/<utt>.wav``. Returns files written.

    ``pool``: an :class:`~speechbrain_probe.evaluation.pool.EvaluationPool`
    that runs the syntheses of a CPU vocoder (default: this process).

    The probes predict their ``target_mel`` (default: the ASR's mel), which
    ``vocoder`` must decode; its output is resampled to the ASR's rate and
    trimmed or padded to the input's length."""
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
    rate = asr.mel_config.sample_rate
    target = getattr(probes, "target_mel", None) or asr.mel_config
    if target != vocoder.config:
        raise ValueError(
            f"the probes of {model_name} predict another mel than the vocoder "
            f"decodes ({target} vs {vocoder.config}); use the vocoder of the "
            "probes' target_mel"
        )
    vocoder_rate = vocoder.config.sample_rate
    queue = _queue(pool, vocoder)
    if queue is not None:
        queue.on_done = lambda _: bar.update(1)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        audio = [read_checked(u.wav) for u in chunk]
        wavs, lens = pad_batch(audio)
        with torch.no_grad():
            mels = reconstruct_mel(asr, probes, wavs.to(device), lens.to(device))
        frames = [target_num_frames(len(a), rate, target) for a in audio]
        for layer in layers:
            if queue is not None:
                batch = mels[layer].cpu().numpy()
                for i, (utt, samples) in enumerate(zip(chunk, audio)):
                    path = sample_path(root, condition, model_name, utt.utt_id, layer)
                    if path.exists():
                        bar.update(1)
                        continue
                    queue.put(
                        synthesize_to_file,
                        vocoder_spec(vocoder),
                        batch[i, : frames[i]].copy(),
                        str(path),
                        len(samples),
                        rate,
                    )
                    written += 1
                continue
            outs = vocoder.synthesize(mels[layer].cpu(), lengths=frames)
            for utt, wav, samples in zip(chunk, outs, audio):
                path = sample_path(root, condition, model_name, utt.utt_id, layer)
                if not path.exists():
                    out = finish_wav(wav, vocoder_rate, rate, len(samples))
                    write_wav(path, out, sample_rate=rate)
                    written += 1
                bar.update(1)
    if queue is not None:
        queue.finish()
    bar.close()
    return written
