"""LibriSpeech and MUSAN preparation on fake trees in the real layouts, bad input."""

import numpy as np
import pytest
import soundfile as sf

from speechbrain_probe.data.audio import AudioError, read_checked
from speechbrain_probe.data.librispeech import prepare_librispeech
from speechbrain_probe.data.manifest import read_manifest
from speechbrain_probe.data.musan import prepare_musan
from speechbrain_probe.data.noise import measure_snr
from speechbrain_probe.data.noisy import build_noisy_test_sets
from tests.recipe_rows import fake_librispeech, fake_musan


def test_librispeech_manifests(tmp_path):
    root = fake_librispeech(tmp_path / "LibriSpeech", "dev-clean")
    fake_librispeech(root, "test-clean", speakers=(61,), seed=1)
    out = prepare_librispeech(
        root, tmp_path / "csv", ["dev-clean", "test-clean"], progress=False
    )
    rows = read_manifest(out["dev-clean"])
    assert len(rows) == 2 * 2 * 3
    assert {r["spk_id"] for r in rows} == {"19", "84"}  # no chapter part
    for row in rows:
        assert row["ID"].startswith(row["spk_id"] + "-")
        assert abs(float(row["duration"]) - 0.5) < 1e-3
        assert row["wrd"] == row["wrd"].upper() and len(row["wrd"].split()) == 4
        assert read_checked(row["wav"]).shape == (8000,)
    assert {r["spk_id"] for r in read_manifest(out["test-clean"])} == {"61"}


def test_librispeech_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="openslr.org/12"):
        prepare_librispeech(tmp_path / "nope", tmp_path / "csv", progress=False)
    root = fake_librispeech(tmp_path / "LS", "dev-clean")
    with pytest.raises(
        FileNotFoundError, match=r"train-clean-100.*found: \['dev-clean'\]"
    ):
        prepare_librispeech(root, tmp_path / "csv", ["train-clean-100"], progress=False)
    flat = tmp_path / "flat" / "dev-clean"  # flac files without speaker/chapter
    flat.mkdir(parents=True)
    sf.write(flat / "1-2-0000.flac", np.zeros(1600), 16000)
    with pytest.raises(FileNotFoundError, match="expected the layout"):
        prepare_librispeech(
            flat.parent, tmp_path / "csv2", ["dev-clean"], progress=False
        )
    assert not (tmp_path / "csv2" / "dev-clean.csv").exists()


def test_librispeech_skips_bad_utterances_with_a_list(tmp_path):
    root = fake_librispeech(tmp_path / "LS", "dev-clean")
    chap = root / "dev-clean" / "19" / "1190"
    trans = chap / "19-1190.trans.txt"
    trans.write_text(trans.read_text() + "19-1190-0099 A LINE WITHOUT AUDIO\n")
    (chap / "19-1190-0001.flac").write_bytes(b"not a flac file")
    sf.write(chap / "19-1190-0002.flac", np.zeros(0), 16000)
    with pytest.warns(UserWarning, match="skipped 3 utterance") as record:
        out = prepare_librispeech(root, tmp_path / "csv", ["dev-clean"], progress=False)
    message = str(record[0].message)
    for name in ("19-1190-0099.flac", "19-1190-0001.flac", "19-1190-0002.flac"):
        assert name in message
    ids = {r["ID"] for r in read_manifest(out["dev-clean"])}
    assert len(ids) == 12 - 2 and "19-1190-0001" not in ids


@pytest.mark.parametrize(
    "data, rate, match",
    [
        (np.zeros((1600, 2)), 16000, "2 channels.*mono"),
        (np.zeros(800), 8000, "8000 Hz.*resample"),
    ],
)
def test_librispeech_wrong_format_is_an_error(tmp_path, data, rate, match):
    root = fake_librispeech(tmp_path / "LS", "dev-clean")
    bad = root / "dev-clean" / "84" / "1840" / "84-1840-0000.flac"
    sf.write(bad, data, rate)
    with pytest.raises(AudioError, match=match) as err:
        prepare_librispeech(root, tmp_path / "csv", ["dev-clean"], progress=False)
    assert str(bad) in str(err.value)
    assert not (tmp_path / "csv" / "dev-clean.csv").exists()


def test_musan_split_and_per_category_files(tmp_path):
    musan = fake_musan(tmp_path, per_category=5)
    out = prepare_musan(tmp_path, tmp_path / "csv", test_fraction=0.4, progress=False)
    train, test = read_manifest(out["noise_train"]), read_manifest(out["noise_test"])
    assert len(train) == 9 and len(test) == 6
    assert not {r["wav"] for r in train} & {r["wav"] for r in test}
    for split in ("train", "test"):
        for cat in ("music", "noise", "speech"):
            rows = read_manifest(out[f"noise_{split}_{cat}"])
            assert rows and {r["category"] for r in rows} == {cat}
            assert all(r["wav"].startswith(str(musan / cat)) for r in rows)
    # the same seed gives the same split
    again = prepare_musan(musan, tmp_path / "csv2", test_fraction=0.4, progress=False)
    assert [r["ID"] for r in read_manifest(again["noise_test"])] == [
        r["ID"] for r in test
    ]


def test_musan_babble_and_bad_input(tmp_path):
    musan = fake_musan(tmp_path, per_category=6)
    out = prepare_musan(
        musan, tmp_path / "csv", num_babble=2, babble_seconds=2.0, progress=False
    )
    babble = read_manifest(out["noise_train_speech"])
    assert len(babble) == 2
    assert read_checked(babble[0]["wav"]).shape == (32000,)

    with pytest.raises(FileNotFoundError, match="openslr.org/17"):
        prepare_musan(tmp_path / "missing", tmp_path / "x", progress=False)
    wrong = tmp_path / "wrong"
    (wrong / "songs").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="expected sub-folders"):
        prepare_musan(wrong, tmp_path / "x", progress=False)
    (musan / "noise" / "free-sound" / "empty.wav").write_bytes(b"")
    with pytest.warns(UserWarning, match="empty.wav"):
        prepare_musan(musan, tmp_path / "y", progress=False)
    sf.write(musan / "music" / "fma" / "stereo.wav", np.zeros((800, 2)), 16000)
    with pytest.raises(AudioError, match="stereo.wav has 2 channels"):
        prepare_musan(musan, tmp_path / "z", progress=False)


def test_noisy_sets_on_librispeech_and_musan(tmp_path):
    root = fake_librispeech(tmp_path / "LS", "test-clean", speakers=(61, 62), utts=2)
    test_csv = prepare_librispeech(
        root, tmp_path / "csv", ["test-clean"], progress=False
    )
    noise = prepare_musan(fake_musan(tmp_path), tmp_path / "csv", progress=False)
    out = build_noisy_test_sets(
        test_csv["test-clean"], noise["noise_test"], tmp_path / "noisy", progress=False
    )
    held_out = {r["ID"] for r in read_manifest(noise["noise_test"])}
    for snr, path in out.items():
        rows = read_manifest(path)
        assert len(rows) == 8 and path.name == f"test_snr{snr}.csv"
        for row in rows:
            assert row["noise_id"] in held_out
            mix, clean = read_checked(row["wav"]), read_checked(row["clean_wav"])
            assert abs(float(measure_snr(clean, mix)) - snr) < 0.1


def test_noisy_sets_refuse_bad_noise(tmp_path):
    root = fake_librispeech(tmp_path / "LS", "test-clean", speakers=(61,), chapters=1)
    test_csv = prepare_librispeech(
        root, tmp_path / "csv", ["test-clean"], progress=False
    )
    noise_dir = fake_musan(tmp_path)
    noise = prepare_musan(noise_dir, tmp_path / "csv", progress=False)
    for row in read_manifest(noise["noise_test"]):
        sf.write(row["wav"], np.zeros(100), 22050)
    with pytest.raises(AudioError, match="22050 Hz"):
        build_noisy_test_sets(
            test_csv["test-clean"], noise["noise_test"], tmp_path / "n", progress=False
        )
    assert not list((tmp_path / "n").glob("*.csv"))
