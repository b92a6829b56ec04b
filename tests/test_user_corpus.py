"""A user's corpus: checked row by row before any long work, converted to
16 kHz mono, prepared once; and the one-command recipe's early errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechbrain_probe.data.user_corpus import (
    ManifestError,
    load_audio,
    prepare_user_corpus,
    read_user_manifest,
)
from tests.recipe_scripts import REPO, load_recipe

RECIPE = REPO / "recipes" / "AnyCorpus" / "Probe" / "Highway"


def _tone(seconds, rate, freq=220.0, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    wav = (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wav] * channels, 1) if channels > 1 else wav


def _manifest(folder: Path, name: str, rows, header="ID,wav,spk_id") -> Path:
    path = folder / name
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return path


@pytest.fixture
def corpus(tmp_path):
    """4 utterances of 2 speakers at 22.05 kHz stereo, one of them 3 s long."""
    rows = []
    for i in range(4):
        seconds = 3.0 if i == 0 else 0.5
        path = tmp_path / f"u{i}.wav"
        sf.write(path, _tone(seconds, 22050, 200 + 50 * i, channels=2), 22050)
        rows.append((f"u{i}", str(path), f"s{i % 2}"))
    return tmp_path, _manifest(tmp_path, "m.csv", rows)


def test_a_bad_row_is_named_with_its_file_and_the_fix(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(0.5, 16000), 16000)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav file")
    missing = _manifest(
        tmp_path, "a.csv", [("u1", str(good), "s1"), ("u2", "gone.wav", "s1")]
    )
    with pytest.raises(
        ManifestError,
        match=r"train_csv .*a\.csv row 3 \(ID u2\): audio file .*gone\.wav does not exist",
    ):
        read_user_manifest(missing, "train_csv")
    unreadable = _manifest(tmp_path, "b.csv", [("u1", str(broken), "s1")])
    with pytest.raises(
        ManifestError, match=r"row 2 \(ID u1\): audio file .*broken\.wav cannot be read"
    ):
        read_user_manifest(unreadable, "test_csv")
    no_speaker = _manifest(tmp_path, "c.csv", [("u1", str(good))], header="ID,wav")
    with pytest.raises(
        ManifestError, match=r"lacks column\(s\) spk_id \(it has: ID, wav\)"
    ):
        read_user_manifest(no_speaker, "test_csv")
    with pytest.raises(
        ManifestError,
        match="valid_csv: .*nothing.csv does not exist; give a SpeechBrain CSV",
    ):
        read_user_manifest(tmp_path / "nothing.csv", "valid_csv")


def test_test_sets_without_trials_are_refused_before_any_audio_is_written(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, _tone(0.5, 16000), 16000)
    one_speaker = _manifest(
        tmp_path, "one.csv", [("a", str(wav), "s1"), ("b", str(wav), "s1")]
    )
    single = _manifest(
        tmp_path, "single.csv", [("a", str(wav), "s1"), ("b", str(wav), "s2")]
    )
    for manifest, message in (
        (one_speaker, "one speaker"),
        (single, "no same-speaker trials"),
    ):
        out = tmp_path / f"prep_{manifest.stem}"
        with pytest.raises(ManifestError, match=message):
            prepare_user_corpus(out, one_speaker, one_speaker, manifest, progress=False)
        assert not out.exists()


def test_any_rate_and_channel_count_becomes_16k_mono_and_is_prepared_once(
    corpus, caplog
):
    folder, manifest = corpus
    noise = folder / "noise.wav"
    sf.write(
        noise, np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 8000
    )
    noises = _manifest(folder, "n.csv", [("n1", str(noise))], header="ID,wav")
    out = folder / "prep"
    settings = dict(noise_csv=noises, snrs=[5, -5], max_test_seconds=1.0)
    with caplog.at_level("WARNING"):
        first = prepare_user_corpus(
            out, manifest, manifest, manifest, progress=False, **settings
        )
    assert first["conditions"] == ["clean", "snr5", "snr-5"]
    assert (
        "4 of 4 files are not 16 kHz mono (4 at 22050 Hz with 2 channel(s))"
        in caplog.text
    )
    assert "1 of 4 files are longer than max_test_seconds=1 s" in caplog.text
    info = sf.info(str(out / "test_audio" / "u0.wav"))
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 16000)
    assert sf.info(str(out / "test_audio" / "u1.wav")).frames == 8000
    assert (out / "test_snr-5.csv").is_file() and (out / "noise_test.csv").is_file()
    # a second call changes nothing; other inputs in the same folder are refused
    stamp = (out / "test_audio" / "u1.wav").stat().st_mtime_ns
    again = prepare_user_corpus(
        out, manifest, manifest, manifest, progress=False, **settings
    )
    assert again == first
    assert (out / "test_audio" / "u1.wav").stat().st_mtime_ns == stamp
    with pytest.raises(
        ManifestError, match="prepared from other manifests or settings"
    ):
        prepare_user_corpus(out, manifest, manifest, manifest, progress=False)


def test_long_training_files_give_one_fixed_piece(corpus):
    folder, _ = corpus
    long = folder / "u0.wav"
    piece = load_audio(long, max_seconds=1.0, offset_seed="u0")
    assert piece.shape == (16000,)
    assert np.array_equal(piece, load_audio(long, max_seconds=1.0, offset_seed="u0"))
    whole = load_audio(long)
    assert whole.shape == (48000,) and abs(float(np.abs(whole).max()) - 0.2) < 0.01


def test_recipe_stops_on_a_wrong_layer_before_preparing_data(tmp_path):
    from tests.user_inputs import tiny_wav2vec2

    model = tiny_wav2vec2(tmp_path / "w2v")
    script = load_recipe(RECIPE / "probe_model.py")
    out = tmp_path / "out"
    with pytest.raises(
        KeyError,
        match=r"model my_asr .*unknown layer 'layer9'; available: cnn layer1 layer2",
    ):
        script.main(
            [
                str(RECIPE / "hparams" / "probe_model.yaml"),
                f"--asr_source={model}",
                "--layers=[layer9]",
                f"--output_folder={out}",
                f"--train_csv={tmp_path / 'x.csv'}",
                f"--valid_csv={tmp_path / 'x.csv'}",
                f"--test_csv={tmp_path / 'x.csv'}",
            ]
        )
    assert not (out / "data").exists()
    with pytest.raises(ValueError, match="no model to probe: give --asr_source"):
        script.main(
            [str(RECIPE / "hparams" / "probe_model.yaml"), f"--output_folder={out}"]
        )
