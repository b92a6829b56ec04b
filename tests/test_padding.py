"""Padding of variable-length waveforms is SpeechBrain's ``batch_pad_right``,
giving what the hand-written loops it replaced gave (kept here as the reference)."""

import numpy as np
import pytest
import torch

from speechbrain_probe.evaluation.synthesis import pad_batch
from speechbrain_probe.hifigan import HifiGanUniversalVocoder
from speechbrain_probe.metrics.speaker import ECAPAVerifier
from speechbrain_probe.vocoder import GriffinLimVocoder


def old_pad(wavs):
    """The loop of GriffinLimVocoder.forward, HifiGanVocoder.__call__,
    ECAPAVerifier._embed and evaluation.synthesis.pad_batch before (commit 8cac91f)."""
    longest = max(w.shape[0] for w in wavs)
    padded = torch.zeros(len(wavs), longest)
    for i, w in enumerate(wavs):
        padded[i, : w.shape[0]] = torch.as_tensor(w)
    return padded, torch.tensor([w.shape[0] / longest for w in wavs])


BATCHES = {
    "three lengths": [1000, 640, 1001],
    "equal lengths": [500, 500],
    "one wav": [777],
}


def wavs_of(lengths, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for n in lengths]


def assert_same(new, old):
    assert new[0].dtype == old[0].dtype == torch.float32
    assert new[0].device == old[0].device
    assert torch.equal(new[0], old[0])
    assert new[1].dtype == old[1].dtype and torch.equal(new[1], old[1])


@pytest.mark.parametrize("lengths", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vocoders_pad_as_before(lengths, dtype):
    wavs = [torch.from_numpy(w) for w in wavs_of(lengths, dtype)]
    gl = GriffinLimVocoder.__new__(GriffinLimVocoder)
    torch.nn.Module.__init__(gl)
    gl.synthesize = lambda mel, lengths=None: wavs
    assert_same(gl(None), old_pad(wavs))
    hifi = HifiGanUniversalVocoder.__new__(HifiGanUniversalVocoder)
    torch.nn.Module.__init__(hifi)
    hifi.synthesize = lambda mel, lengths=None: wavs
    assert_same(hifi(None), old_pad(wavs))


class RecordingEncoder:
    def __init__(self):
        self.seen = []

    def encode_batch(self, batch, lens):
        self.seen.append((batch, lens))
        return batch.sum(dim=1, keepdim=True)[:, None]  # [B, 1, 1]


@pytest.mark.parametrize("lengths", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ecapa_batch_is_padded_as_before(lengths, dtype):
    wavs = wavs_of(lengths, dtype, seed=1)
    verifier = ECAPAVerifier.__new__(ECAPAVerifier)
    verifier.device = torch.device("cpu")
    verifier.model = RecordingEncoder()
    emb = verifier._embed(wavs)
    (seen,) = verifier.model.seen
    assert_same(seen, old_pad(wavs))
    assert emb.shape == (len(wavs), 1)


@pytest.mark.parametrize("lengths", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluation_batches_are_padded_as_before(lengths, dtype):
    wavs = wavs_of(lengths, dtype, seed=2)
    old = old_pad([torch.as_tensor(w, dtype=torch.float32) for w in wavs])
    assert_same(pad_batch(wavs), old)
