"""Noise mixed into the probes' training batches.

The probes see clean and noisy input alike; their target is the input's own
mel, so neither an exact SNR nor the clean reference is needed here (unlike
the noisy test sets of :mod:`speechbrain_probe.data.noisy`). SpeechBrain's
``AddNoise`` takes one SNR range for all noise; the paper's Kaldi x-vector
style ranges differ per category (noise 0-15 dB, music 5-15 dB, babble 13-20
dB), which is why the project keeps this mixer.

A batch's draws come from the mixer's running generator (fresh each time an
utterance is seen), or, with :meth:`NoiseMixer.mix_utterances`, from the
mixer's seed and each utterance's id: one draw per utterance for the whole
run, the same in a resumed run (what storing hidden states across epochs
needs, :mod:`~speechbrain_probe.probe.state_store`).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import torch

from speechbrain_probe.data.noise import mix_at_snr
from speechbrain_probe.vocabulary import NOISE_SNR_RANGES

__all__ = ["NoiseMixer"]


class NoiseMixer:
    """Mix noise into a random share of the utterances of a batch.

    Noise files are read once into memory. Each chosen utterance gets a random
    segment of a random noise file at a random SNR from its category's range
    (the paper's Kaldi-style ranges by default: noise 0-15 dB, music 5-15 dB,
    babble/speech 13-20 dB), measured over the utterance's valid samples.

    Arguments
    ---------
    csv_file : str
        Noise manifest ``ID,duration,wav[,category]``.
    snr_ranges : dict, optional
        ``category -> [low, high]`` in dB (default:
        :data:`~speechbrain_probe.vocabulary.NOISE_SNR_RANGES`); ``default``
        covers other categories (if absent: 0-20 dB).
    prob : float
        Share of utterances that get noise (the rest stay clean).
    seed : int
        Seed of the mixer's own random generator.

    Example
    -------
    >>> import numpy as np
    >>> import soundfile as sf
    >>> d = getfixture("tmp_path")
    >>> sf.write(d / "n.wav", np.random.default_rng(0).normal(size=16000) * 0.1, 16000)
    >>> _ = (d / "noise.csv").write_text(f"ID,duration,wav,category\\nn,1.0,{d}/n.wav,noise\\n")
    >>> mixer = NoiseMixer(d / "noise.csv", prob=1.0)
    >>> clean = torch.sin(torch.arange(8000) / 5.0)[None].repeat(2, 1)
    >>> noisy = mixer(clean, torch.tensor([1.0, 0.5]))
    >>> snr = 10 * torch.log10(clean[0].pow(2).mean() / (noisy[0] - clean[0]).pow(2).mean())
    >>> 0.0 <= float(snr) <= 15.0, torch.equal(noisy[1, 4000:], clean[1, 4000:])
    (True, True)
    >>> a = mixer.mix_utterances(clean, torch.tensor([1.0, 0.5]), ["u1", "u2"])
    >>> b = mixer.mix_utterances(clean[:1], torch.tensor([1.0]), ["u1"])
    >>> torch.equal(a[:1], b), torch.equal(a[0], a[1])
    (True, False)
    """

    def __init__(self, csv_file, snr_ranges=None, prob=0.5, seed=0):
        import soundfile as sf

        if not Path(csv_file).exists():
            raise FileNotFoundError(
                f"noise_csv {csv_file} does not exist; build the corpus's noise bank or "
                "set noisy_training: False"
            )
        self.snr = dict(NOISE_SNR_RANGES if snr_ranges is None else snr_ranges)
        self.prob = prob
        self.seed = int(seed)
        self.gen = torch.Generator().manual_seed(self.seed)
        self.noises, self.categories = [], []
        with open(csv_file, newline="", encoding="utf-8") as fin:
            for row in csv.DictReader(fin):
                audio, sr = sf.read(row["wav"], dtype="float32", always_2d=True)
                if sr != 16000:
                    raise ValueError(f"noise {row['wav']} is {sr} Hz; 16 kHz expected")
                self.noises.append(torch.from_numpy(audio.mean(axis=1)))
                self.categories.append(row.get("category") or "default")
        if not self.noises:
            raise ValueError(f"noise_csv {csv_file} lists no noise files")

    def _segment(self, index: int, length: int, gen) -> torch.Tensor:
        noise = self.noises[index]
        if len(noise) < length:
            noise = noise.repeat(length // len(noise) + 1)
        start = int(torch.randint(0, len(noise) - length + 1, (1,), generator=gen))
        return noise[start : start + length]

    def _mix_one(self, wav: torch.Tensor, n: int, gen) -> torch.Tensor | None:
        """Noisy copy of the ``n`` valid samples of ``wav``, or None (clean)."""
        if float(torch.rand(1, generator=gen)) >= self.prob:
            return None
        k = int(torch.randint(0, len(self.noises), (1,), generator=gen))
        low, high = self.snr.get(
            self.categories[k], self.snr.get("default", (0.0, 20.0))
        )
        snr = low + (high - low) * float(torch.rand(1, generator=gen))
        noise = self._segment(k, n, gen).to(wav.device, wav.dtype)
        return mix_at_snr(wav[:n], noise, snr)

    def _mix(self, wavs, lens, generators):
        out = wavs.clone()
        total = wavs.shape[1]
        for i, gen in enumerate(generators):
            n = max(1, int(round(float(lens[i]) * total)))
            noisy = self._mix_one(wavs[i], n, gen)
            if noisy is not None:
                out[i, :n] = noisy
        return out

    def __call__(self, wavs, lens):
        """Noisy copy of ``wavs`` for a random share ``prob`` of the batch
        (fresh draws from the mixer's running generator)."""
        return self._mix(wavs, lens, [self.gen] * wavs.shape[0])

    def utterance_generator(self, utt_id: str) -> torch.Generator:
        """A generator seeded by the mixer's seed and ``utt_id`` alone."""
        digest = hashlib.sha256(f"{self.seed}:{utt_id}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)

    def mix_utterances(self, wavs, lens, ids):
        """Like calling the mixer, but each utterance's draw (clean or not,
        file, segment, SNR) depends only on the seed and its id, not on the
        batch or on what was drawn before."""
        return self._mix(wavs, lens, [self.utterance_generator(i) for i in ids])
