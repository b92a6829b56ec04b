"""The Griffin-Lim vocoder on real synthesised speech (eSpeak, offline)."""

import numpy as np
import pytest
import torch

from speechbrain_probe.evaluation.pool import trim_or_pad
from speechbrain_probe.features import LogMelSpectrogram, MelConfig
from speechbrain_probe.metrics.eer import eer
from speechbrain_probe.metrics.quality import stoi_pesq
from speechbrain_probe.metrics.speaker import GE2EVerifier, score_trials
from speechbrain_probe.metrics.trials import make_trials
from speechbrain_probe.vocoder import GriffinLimVocoder, spectral_convergence

SENTENCES = [
    "the brown fox jumps over the dog",
    "please call stella and ask her",
]
VOICES = [
    ("en-us", "m1", 130, 40),
    ("en-us", "f2", 150, 70),
    ("en", "m3", 170, 30),
    ("en", "f4", 120, 80),
    ("en-gb-scotland", "m5", 140, 50),
    ("en-us", "f1", 160, 60),
]


@pytest.fixture(scope="module")
def speech():
    """6 eSpeak voices x 2 sentences, 16 kHz: ``(ids, speakers, wavs)``."""
    from speechbrain_probe.data.espeak import Voice, synthesize

    ids, spk, wavs = [], [], []
    for s, (lang, variant, rate, pitch) in enumerate(VOICES):
        voice = Voice(lang, variant, rate=rate, pitch=pitch)
        for u, text in enumerate(SENTENCES):
            ids.append(f"s{s}_u{u}")
            spk.append(f"s{s}")
            wavs.append(synthesize(text, voice).astype(np.float32))
    return ids, spk, wavs


@pytest.fixture(scope="module")
def copies(speech):
    """Copy synthesis: Griffin-Lim of each utterance's own mel, padded to its
    length as the evaluation pads it."""
    vocoder = GriffinLimVocoder(n_iter=30, device="cpu", num_threads=1)
    mel = LogMelSpectrogram()
    return [
        trim_or_pad(vocoder.synthesize(mel(torch.from_numpy(w)))[0].numpy(), len(w))
        for w in speech[2]
    ]


def test_copy_synthesis_keeps_intelligibility(speech, copies):
    ids, _, wavs = speech
    assert all(c.shape == w.shape for c, w in zip(copies, wavs))
    rows, excluded = stoi_pesq(ids, wavs, copies, n_jobs=2)
    assert excluded == []
    stoi = np.mean([r["stoi"] for r in rows])
    pesq = np.mean([r["pesq"] for r in rows])
    assert stoi > 0.85, stoi
    assert pesq > 1.8, pesq


def test_copy_synthesis_keeps_speakers(speech, copies):
    ids, spk, wavs = speech
    verifier = GE2EVerifier(device="cpu")
    trials = make_trials(list(zip(ids, spk)), seed=0)
    rates = {}
    for name, audio in (("original", wavs), ("copy", copies)):
        emb, excluded = verifier.embed(audio, ids)
        assert excluded == []
        scores, labels, dropped = score_trials(emb, trials)
        assert dropped == []
        rates[name] = eer(scores[labels == 1], scores[labels == 0])[0]
    # eSpeak voices are far apart for GE2E; a broken vocoder would blur them
    assert rates["original"] <= 0.1, rates
    assert rates["copy"] <= 0.15, rates


def test_more_iterations_converge(speech):
    wav = torch.from_numpy(speech[2][0])
    voc = GriffinLimVocoder(device="cpu")
    mel = LogMelSpectrogram()(wav.unsqueeze(0))
    target = voc.mel_to_linear(mel)[0]
    n = (mel.shape[1] - 1) * voc.config.hop_length
    sc = {}
    for it in (2, 30):
        raw = voc.griffin_lim(target, n, n_iter=it)
        sc[it] = spectral_convergence(raw, target, voc.stft)
    assert sc[30] < sc[2]
    assert sc[30] < 0.4, sc


def test_pseudo_inverse_reproduces_the_mel(speech):
    wav = torch.from_numpy(speech[2][1]).unsqueeze(0)
    mel_fn = LogMelSpectrogram()
    mel = mel_fn(wav)
    linear = GriffinLimVocoder(device="cpu").mel_to_linear(mel)
    remel = mel_fn.config.normalize_db(
        20 * torch.log10((linear.transpose(1, 2) @ mel_fn.fbank).clamp(min=1e-5))
    )
    assert (linear >= 0).all()
    assert (remel - mel).abs().mean() < 0.02


def test_batched_and_per_utterance_agree(speech):
    mel_fn = LogMelSpectrogram()
    wavs = [torch.from_numpy(w) for w in speech[2][:3]]
    mels = [mel_fn(w.unsqueeze(0))[0] for w in wavs]
    frames = [m.shape[0] for m in mels]
    batch = torch.zeros(3, max(frames), 80)
    for i, m in enumerate(mels):
        batch[i, : m.shape[0]] = m
    out = {}
    for strategy in ("batched", "per_utterance"):
        voc = GriffinLimVocoder(n_iter=10, strategy=strategy, device="cpu")
        out[strategy] = voc.synthesize(batch, lengths=frames)
    hop = MelConfig().hop_length
    for a, b, n, m in zip(out["batched"], out["per_utterance"], frames, mels):
        assert a.shape[0] == b.shape[0] == (n - 1) * hop
        # same spectrogram up to the phase retrieval's randomness
        ma, mb = mel_fn(a.unsqueeze(0))[0], mel_fn(b.unsqueeze(0))[0]
        assert (ma - mb).abs().mean() < 0.05
        assert (ma - m[: ma.shape[0]]).abs().mean() < 0.08


def test_vocoder_is_deterministic_and_checks_input():
    mel = torch.rand(1, 30, 80)
    voc = GriffinLimVocoder(n_iter=3, device="cpu")
    assert torch.equal(voc.synthesize(mel)[0], voc.synthesize(mel)[0])
    threads = torch.get_num_threads()
    one = GriffinLimVocoder(n_iter=3, device="cpu", num_threads=2).synthesize(mel)
    assert torch.get_num_threads() == threads  # restored
    assert torch.allclose(one[0], voc.synthesize(mel)[0], atol=1e-5)
    with pytest.raises(ValueError, match="bands"):
        voc.synthesize(torch.rand(1, 30, 40))
    with pytest.raises(ValueError, match="relative"):
        voc.synthesize(mel, lengths=torch.tensor([1.5]))
    with pytest.raises(ValueError, match="strategy"):
        GriffinLimVocoder(strategy="fastest")
    padded, rel = voc(torch.rand(2, 30, 80), lengths=torch.tensor([1.0, 0.5]))
    assert padded.shape[0] == 2 and rel.tolist() == [1.0, pytest.approx(14 / 29)]
    assert padded[1, 14 * 200 :].abs().max() == 0


# --------------------------------------------------------------- CPU engine
# The CPU engine (GriffinLimVocoder(engine="cpu"), the default on a CPU) runs
# the torch engine's iteration in float32 with other FFTs and summation orders.
# Measured on the 12 eSpeak utterances and 3 random mels: max |cpu - torch|
# relative to the peak <= 2.7e-7 (n_iter 0) and 2.4e-6 (n_iter 1); at 30
# iterations momentum amplifies float32 rounding in both engines alike: RMS
# difference <= 6.1e-3 of the RMS, spectral convergence equal to 3.7e-6. On the
# worst utterance the torch engine itself is 1.3e-2 (max) from a float64
# Griffin-Lim, the CPU engine 1.4e-3.
def _engines(config=None, **kwargs):
    return (
        GriffinLimVocoder(config, device="cpu", engine="torch", **kwargs),
        GriffinLimVocoder(config, device="cpu", engine="cpu", **kwargs),
    )


def _compare(old, new, mel, n_iter):
    with torch.no_grad():
        mag = old.mel_to_linear(mel)
        n = (mag.shape[-1] - 1) * old.config.hop_length
        a = old.griffin_lim(mag, n, n_iter=n_iter)
        b = new.griffin_lim(mag, n, n_iter=n_iter)
    assert a.shape == b.shape and b.dtype == torch.float32
    peak = float(a.abs().max())
    sc_a = spectral_convergence(a, mag, old.stft)
    sc_b = spectral_convergence(b, mag, old.stft)
    return (
        float((a - b).abs().max()) / peak,
        float((a - b).norm() / a.norm()),
        sc_a,
        sc_b,
    )


@pytest.mark.parametrize("n_iter", [0, 1, 30])
def test_cpu_engine_equals_torch_engine(speech, n_iter):
    old, new = _engines()
    mel_fn = LogMelSpectrogram()
    gen = torch.Generator().manual_seed(1)
    mels = [mel_fn(torch.from_numpy(w).unsqueeze(0))[0] for w in speech[2][:4]]
    mels += [torch.rand(t, 80, generator=gen) for t in (7, 30, 101)]  # odd sizes
    for mel in mels:
        peak_diff, rms_diff, sc_a, sc_b = _compare(old, new, mel, n_iter)
        if n_iter <= 1:
            assert peak_diff < 2e-5, (mel.shape, peak_diff)
            assert sc_b == pytest.approx(sc_a, abs=1e-6)
        else:
            assert rms_diff < 2e-2, (mel.shape, rms_diff)
            assert sc_b == pytest.approx(sc_a, abs=2e-5)


@pytest.mark.parametrize(
    "config",
    [
        # odd window (401), hop not dividing it, odd n_fft - window offset
        MelConfig(n_fft=512, win_length_ms=25.0625, hop_length_ms=10.0),
        # window = n_fft, no pre-emphasis (the HiFi-GAN mel's geometry)
        MelConfig(n_fft=1024, win_length_ms=64.0, hop_length_ms=16.0, preemphasis=0),
    ],
)
def test_cpu_engine_other_geometries(config):
    old, new = _engines(config)
    mel = torch.rand(37, 80, generator=torch.Generator().manual_seed(2))
    for n_iter in (0, 1, 30):
        peak_diff, rms_diff, sc_a, sc_b = _compare(old, new, mel, n_iter)
        assert peak_diff < (2e-5 if n_iter <= 1 else 2e-2), (n_iter, peak_diff)
        assert sc_b == pytest.approx(sc_a, abs=2e-5)
    a, b = old.synthesize(mel)[0], new.synthesize(mel)[0]
    assert a.shape == b.shape
    assert float((a - b).norm() / a.norm()) < 2e-2


def test_cpu_engine_synthesize_batches_and_fallbacks():
    old, new = _engines(n_iter=3)
    mel = torch.rand(2, 41, 80, generator=torch.Generator().manual_seed(3))
    for strategy in ("per_utterance", "batched"):
        old.strategy = new.strategy = strategy
        for a, b in zip(old.synthesize(mel, [41, 23]), new.synthesize(mel, [41, 23])):
            assert a.shape == b.shape
            assert (a - b).abs().max() < 1e-4 * a.abs().max()
    # the initial phase kept per frame count is the torch engine's draw, also
    # after the least recently used one was dropped
    new._cpu.phase_cache_bytes = 1  # keeps only the last one
    new._cpu._phases.clear()
    for frames in (41, 23, 41, 41):
        m = old.mel_to_linear(mel[0, :frames])
        a = old.griffin_lim(m, (frames - 1) * 200, n_iter=0)
        b = new.griffin_lim(m, (frames - 1) * 200, n_iter=0)
        assert (a - b).abs().max() < 1e-6 * a.abs().max()
    assert list(new._cpu._phases) == [(0, 41)]
    mag = old.mel_to_linear(mel[0])
    # cases the CPU engine hands to the torch engine: the same result exactly
    odd_length = 40 * 200 + 17  # not (T - 1) * hop
    assert torch.equal(
        new.griffin_lim(mag, odd_length), old.griffin_lim(mag, odd_length)
    )
    short = old.mel_to_linear(mel[0, :6])  # 1000 samples: stft's padding refuses
    with pytest.raises(RuntimeError):
        old.griffin_lim(short, 1000)
    with pytest.raises(RuntimeError):
        new.griffin_lim(short, 1000)


def test_engine_argument():
    assert GriffinLimVocoder(device="cpu").spec()["engine"] == "cpu"
    assert GriffinLimVocoder(device="cpu", engine="torch").spec()["engine"] == "torch"
    with pytest.raises(ValueError, match="engine"):
        GriffinLimVocoder(device="cpu", engine="numpy")
    with pytest.raises(ValueError, match="runs on the CPU"):
        GriffinLimVocoder(device="cuda", engine="cpu")


def test_stoi_equals_pystoi(speech, copies):
    """The vectorised STOI of the metrics gives pystoi's value (measured: equal
    bit for bit on these 12 copy syntheses, on noisy and on shifted copies)."""
    import pystoi

    from speechbrain_probe.metrics.quality import stoi

    rng = np.random.default_rng(0)
    for clean, copy in zip(speech[2], copies):
        x = clean.astype(np.float64)
        for y in (copy.astype(np.float64), x + 0.05 * rng.standard_normal(x.shape)):
            assert stoi(x, y, 16000) == pytest.approx(
                pystoi.stoi(x, y, 16000), abs=1e-12
            )
