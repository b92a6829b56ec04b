"""Padding of variable-length waveforms (SpeechBrain's ``batch_pad_right``):
float32 rows of the longest length, each wav then zeros, and relative lengths."""

import numpy as np
import pytest
import torch

from speechbrain_probe.evaluation.synthesis import pad_batch
from speechbrain_probe.hifigan import HifiGanUniversalVocoder
from speechbrain_probe.metrics.speaker import ECAPAVerifier
from speechbrain_probe.vocoder import GriffinLimVocoder

BATCHES = {
    "three lengths": [1000, 640, 1001],
    "equal lengths": [500, 500],
    "one wav": [777],
}


def wavs_of(lengths, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for n in lengths]


def assert_padded(out, wavs):
    padded, lens = out
    longest = max(len(w) for w in wavs)
    assert padded.dtype == lens.dtype == torch.float32
    assert padded.shape == (len(wavs), longest) and lens.shape == (len(wavs),)
    for row, wav, rel in zip(padded, wavs, lens):
        n = len(wav)
        assert torch.equal(row[:n], torch.as_tensor(wav, dtype=torch.float32))
        assert not row[n:].any()
        assert float(rel) == pytest.approx(n / longest)


@pytest.mark.parametrize("lengths", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vocoders_pad(lengths, dtype):
    wavs = [torch.from_numpy(w) for w in wavs_of(lengths, dtype)]
    gl = GriffinLimVocoder.__new__(GriffinLimVocoder)
    torch.nn.Module.__init__(gl)
    gl.synthesize = lambda mel, lengths=None: wavs
    assert_padded(gl(None), wavs)
    hifi = HifiGanUniversalVocoder.__new__(HifiGanUniversalVocoder)
    torch.nn.Module.__init__(hifi)
    hifi.synthesize = lambda mel, lengths=None: wavs
    assert_padded(hifi(None), wavs)


class RecordingEncoder:
    def __init__(self):
        self.seen = []

    def encode_batch(self, batch, lens):
        self.seen.append((batch, lens))
        return batch.sum(dim=1, keepdim=True)[:, None]  # [B, 1, 1]


@pytest.mark.parametrize("lengths", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ecapa_batch_is_padded(lengths, dtype):
    wavs = wavs_of(lengths, dtype, seed=1)
    verifier = ECAPAVerifier.__new__(ECAPAVerifier)
    verifier.device = torch.device("cpu")
    verifier.model = RecordingEncoder()
    emb = verifier._embed(wavs)
    (seen,) = verifier.model.seen
    assert_padded(seen, wavs)
    assert emb.shape == (len(wavs), 1)


@pytest.mark.parametrize("lengths", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluation_batches_are_padded(lengths, dtype):
    wavs = wavs_of(lengths, dtype, seed=2)
    assert_padded(pad_batch(wavs), wavs)
