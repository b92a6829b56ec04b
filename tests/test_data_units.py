"""Building blocks of the data package: mixing, sentences, speakers, eSpeak, noises, atomic writes."""

import hashlib
import re

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_probe.atomic import atomic_output, atomic_write_bytes
from speechbrain_probe.data.audio import write_wav
from speechbrain_probe.data.espeak import Voice, synthesize
from speechbrain_probe.data.manifest import write_manifest
from speechbrain_probe.data.noise import (
    coloured_noise,
    fit_length,
    make_babble,
    make_music,
    make_noise,
    measure_snr,
    mix_at_snr,
)
from speechbrain_probe.data.speakers import make_speakers
from speechbrain_probe.data.text import (
    SentenceGenerator,
    normalize_transcript,
    vocabulary,
)


@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.5, 20.0])
def test_mix_at_snr_numpy_exact(snr):
    rng = np.random.default_rng(1)
    clean = 0.1 * rng.standard_normal(12000)
    noise = coloured_noise(5000, 1.0, rng)
    piece = fit_length(noise, len(clean), rng)
    mix = mix_at_snr(clean, piece, snr)
    assert abs(float(measure_snr(clean, mix)) - snr) < 1e-6
    # the clean part is untouched: what was added is a scaled copy of the noise
    added = mix - clean
    gain = np.dot(added, piece) / np.dot(piece, piece)
    assert gain > 0 and np.allclose(added, gain * piece, atol=1e-6)


def test_mix_at_snr_torch_batch_per_row():
    clean = torch.randn(3, 4000) * 0.1
    noise = torch.rand(3, 4000) - 0.5
    snrs = torch.tensor([0.0, 10.0, 15.0])
    mix = mix_at_snr(clean, noise, snrs)
    assert mix.shape == clean.shape and mix.dtype == clean.dtype
    got = measure_snr(clean, mix)
    assert torch.allclose(got.float(), snrs, atol=1e-3)


def test_mix_at_snr_refuses_bad_noise():
    with pytest.raises(ValueError, match="fit_length"):
        mix_at_snr(np.ones(10), np.ones(5), 0.0)
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(np.ones(10), np.zeros(10), 0.0)
    with pytest.raises(ValueError, match="empty"):
        fit_length(np.zeros(0), 10)


def test_sentences_are_varied_real_and_normalised():
    gen = SentenceGenerator(seed=0)
    sents = gen.sentences(2000)
    assert len(set(sents)) == 2000
    lengths = [len(s.split()) for s in sents]
    assert min(lengths) >= 4 and max(lengths) <= 14 and np.std(lengths) > 1.5
    # varied structure: many different opening words and sentence types
    assert len({s.split()[0] for s in sents}) > 60
    assert any(s.startswith(("WHERE ", "WHY ", "DID ", "WHO ")) for s in sents)
    # normalised: upper-case words of letters (an apostrophe only inside a word),
    # one space between words, none at either end
    word = r"[A-Z]+(?:'[A-Z]+)*"
    assert all(re.fullmatch(rf"{word}(?: {word})*", s) for s in sents)
    assert len(vocabulary(5000)) > 1000
    assert SentenceGenerator(seed=0).sentences(5) == sents[:5]
    assert SentenceGenerator(seed=1).sentences(5) != sents[:5]


def test_seeded_sentences_stay_the_same():
    """The built-in corpus must stay byte for byte: its sentences for a seed
    may not change (not by renaming, adding or reordering a template either)."""
    first = SentenceGenerator(seed=0).sentences(300)
    assert first[:2] == [
        "THERE IS A NEW WHALE ABOVE THEIR COTTAGES",
        "MARY'S WHALE WAS THROUGH HER GOOSE",
    ]
    digest = hashlib.sha256("\n".join(first).encode()).hexdigest()
    assert digest[:16] == "32505112d23fa8f9"
    short = SentenceGenerator(seed=7, min_words=5, max_words=9).sentences(300)
    digest = hashlib.sha256("\n".join(short).encode()).hexdigest()
    assert digest[:16] == "11042992d2060345"


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("Mr. Smith's 'best' day -- ever!", "MR SMITH'S BEST DAY EVER"),
        ("  the  Doctor's   dog,\tran\nhome. ", "THE DOCTOR'S DOG RAN HOME"),
        ("Where did the girl go?", "WHERE DID THE GIRL GO"),
        ("'Tis the captains' ship", "TIS THE CAPTAINS SHIP"),
        ("well-known 42 cats", "WELL KNOWN CATS"),
        ("rock'n'roll", "ROCK'N'ROLL"),
        ("there is a new whale", "THERE IS A NEW WHALE"),
        (" ... ", ""),
    ],
)
def test_normalize_transcript_like_librispeech(raw, normalised):
    assert normalize_transcript(raw) == normalised


def test_speakers_differ_and_splits_are_disjoint():
    spks = make_speakers(num_train=60, num_dev=8, num_test=16, seed=0)
    assert len({s.spk_id for s in spks}) == 84
    assert len({s.voice for s in spks}) == 84
    by = {
        split: [s for s in spks if s.split == split]
        for split in ("train", "dev", "test")
    }
    test_variants = {s.voice.variant for s in by["test"]}
    assert len(test_variants) == 16  # every test speaker its own variant
    assert not test_variants & {s.voice.variant for s in by["train"] + by["dev"]}
    assert all(90 <= s.voice.rate <= 130 for s in spks)
    # a training variant used twice differs in dialect and by >= 20 in pitch
    seen = {}
    for s in by["train"]:
        if s.voice.variant in seen:
            other = seen[s.voice.variant]
            assert other.language != s.voice.language
            assert abs(other.pitch - s.voice.pitch) >= 20
        seen[s.voice.variant] = s.voice
    with pytest.raises(ValueError, match="distinct voice variants"):
        make_speakers(num_train=5, num_dev=40, num_test=40)


def test_espeak_voices_and_rates():
    text = "the quick brown fox jumps over the lazy dog"
    slow = synthesize(text, Voice("en-us", "m3", rate=90))
    fast = synthesize(text, Voice("en-us", "m3", rate=140))
    assert 1.3 < len(slow) / len(fast) < 1.8
    low = synthesize(text, Voice("en", "f2", pitch=10))
    high = synthesize(text, Voice("en", "f2", pitch=90))
    assert not np.allclose(low[:1000], high[:1000])
    with pytest.raises(ValueError, match="no voice 'xx-nowhere'"):
        synthesize(text, Voice("xx-nowhere"))
    with pytest.raises(ValueError, match="empty"):
        synthesize("  ", Voice())


def test_noise_categories_differ():
    rng = np.random.default_rng(0)
    n = 16000 * 2
    noise, _ = make_noise(n, rng)
    music, desc = make_music(n, rng)
    speech = make_babble(
        [
            synthesize("hello there my friend", Voice("en-us", v))
            for v in ("m1", "f3", "m5")
        ],
        n,
        rng,
    )
    for x in (noise, music, speech):
        assert x.shape == (n,) and 0.4 < np.abs(x).max() <= 0.5 + 1e-6
    assert "bpm" in desc

    def flatness(x):  # spectral flatness: tonal music is far less flat than noise
        p = np.abs(np.fft.rfft(x)) ** 2 + 1e-12
        return np.exp(np.mean(np.log(p))) / np.mean(p)

    white = coloured_noise(n, 0.0, rng)
    assert flatness(music) < flatness(white) / 10


def test_atomic_output_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out" / "t.pt"
    with atomic_output(target, suffix=".pt") as tmp:
        assert tmp.parent == target.parent and tmp != target
        torch.save(torch.arange(3), tmp)
        assert not target.exists()  # nothing at the final path before the end
    assert torch.equal(torch.load(target), torch.arange(3))
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed while writing")
    assert torch.equal(torch.load(target), torch.arange(3))  # old file kept
    assert sorted(p.name for p in target.parent.iterdir()) == ["t.pt"]


def test_atomic_writers_leave_no_temporary_file(tmp_path):
    wav = write_wav(tmp_path / "a.wav", np.full(160, 0.5, dtype="float32"))
    assert sf.info(str(wav)).frames == 160
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    rows = [dict(ID="u1", duration=1.0, wav="a.wav", spk_id="s", wrd="HI")]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    with pytest.raises(ValueError, match="duplicate utterance ID"):
        write_manifest(manifest, rows + rows)
    assert manifest.read_text().splitlines() == [
        "ID,duration,wav,spk_id,wrd",
        "u1,1.0,a.wav,s,HI",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.bin", "m.csv"]
