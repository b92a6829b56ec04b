"""The built-in corpus, checked for real on a small corpus built here."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechbrain_probe.data.audio import read_checked
from speechbrain_probe.data.manifest import read_manifest
from speechbrain_probe.data.noise import NOISE_CATEGORIES, measure_snr
from speechbrain_probe.data.synthetic import PRESETS, build_corpus

# every setting of a preset: 5/2/4 speakers, 3/2/3 utterances each, 2+2 noises
SMALL = dict(
    PRESETS["tiny"],
    num_train_speakers=5,
    train_utts_per_speaker=3,
    test_utts_per_speaker=3,
    num_train_noises=2,
    num_test_noises=2,
)


def _digest(folder):
    """Hash of every file under ``folder`` except corpus.json (timings differ)."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "corpus.json":
            h.update(str(path.relative_to(folder)).encode())
            data = path.read_bytes()
            if path.suffix == ".csv":  # manifests hold absolute paths
                data = data.replace(str(folder.resolve()).encode(), b"ROOT")
            h.update(data)
    return h.hexdigest()


def _stamps(folder):
    """``path -> (mtime_ns, size)`` of every file under ``folder``."""
    return {
        str(p): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return out, build_corpus(out, seed=7, progress=False, **SMALL)


def test_speakers_and_splits(corpus):
    out, info = corpus
    splits = {s: read_manifest(out / f"{s}.csv") for s in ("train", "dev", "test")}
    spk = {s: {r["spk_id"] for r in rows} for s, rows in splits.items()}
    assert len(spk["train"]) == 5 and len(spk["dev"]) == 2 and len(spk["test"]) == 4
    assert not spk["train"] & spk["test"]
    assert not spk["train"] & spk["dev"]
    assert not spk["dev"] & spk["test"]
    voices = {(s["language"], s["variant"], s["pitch"]) for s in info["speakers"]}
    assert len(voices) == len(info["speakers"]) == 11
    assert info["sizes"]["test"]["utterances"] == 12


def test_transcripts_match_audio(corpus):
    out, _ = corpus
    rows = [
        r for s in ("train", "dev", "test") for r in read_manifest(out / f"{s}.csv")
    ]
    wavs = sorted((out / "wav").rglob("*.wav"))
    assert len(wavs) == len(rows) == 15 + 4 + 12
    assert {str(p.resolve()) for p in wavs} == {r["wav"] for r in rows}
    for row in rows:
        words = row["wrd"].split()
        assert len(words) >= 4
        assert row["wrd"] == row["wrd"].upper()
        assert all(w.replace("'", "").isalpha() for w in words)
        info = sf.info(row["wav"])
        assert info.samplerate == 16000 and info.channels == 1
        assert abs(info.frames / 16000 - float(row["duration"])) < 1e-3
        # roughly 90-140 wpm plus the trimmed pauses: CTC-alignable rates
        chars_per_s = len(row["wrd"]) / float(row["duration"])
        assert 6 < chars_per_s < 20, (row["ID"], chars_per_s)


def test_noise_bank(corpus):
    out, _ = corpus
    train = read_manifest(out / "noise_train.csv")
    test = read_manifest(out / "noise_test.csv")
    assert {r["category"] for r in train} == set(NOISE_CATEGORIES)
    assert not {r["wav"] for r in train} & {r["wav"] for r in test}
    for cat in NOISE_CATEGORIES:
        per_cat = read_manifest(out / f"noise_train_{cat}.csv")
        assert len(per_cat) == 2 and {r["category"] for r in per_cat} == {cat}
    for row in train + test:
        wav = read_checked(row["wav"])
        assert len(wav) == 3 * 16000 and np.sqrt(np.mean(wav**2)) > 1e-3


def test_noisy_sets_have_exact_snr(corpus):
    out, _ = corpus
    test_ids = {r["ID"] for r in read_manifest(out / "test.csv")}
    held_out = {r["ID"] for r in read_manifest(out / "noise_test.csv")}
    for snr in (20, 10, 0):
        rows = read_manifest(out / f"test_snr{snr}.csv")
        assert {r["ID"] for r in rows} == test_ids
        for row in rows:
            assert float(row["snr_db"]) == snr and row["noise_id"] in held_out
            clean, mix = read_checked(row["clean_wav"]), read_checked(row["wav"])
            assert len(clean) == len(mix)
            assert abs(float(measure_snr(clean, mix)) - snr) < 0.1, row["ID"]
            assert np.abs(mix).max() <= 1.0


def test_idempotent_deterministic_and_resumable(corpus, tmp_path, monkeypatch):
    import speechbrain_probe.data.synthetic as synthetic

    out, info = corpus
    before, stamps = _digest(out), _stamps(out)
    # a second call on a built corpus reuses it: no step of a build runs
    work = []
    for step in (
        "_run_synthesis",
        "_build_noise_bank",
        "build_noisy_test_sets",
        "write_manifest",
        "atomic_write_text",
    ):
        monkeypatch.setattr(synthetic, step, lambda *a, _s=step, **k: work.append(_s))
    again = build_corpus(out, seed=7, progress=False, **SMALL)
    monkeypatch.undo()
    assert work == [] and _stamps(out) == stamps  # not one file written again
    assert again == info and _digest(out) == before

    # the same seed elsewhere gives byte-identical audio and manifests
    other = tmp_path / "b"
    assert (
        build_corpus(other, seed=7, progress=False, **SMALL)["sizes"] == info["sizes"]
    )
    assert _digest(other) == before

    # a killed build (no corpus.json, a manifest and some audio missing) resumes
    # to the very same corpus
    (other / "corpus.json").unlink()
    (other / "test_snr0.csv").unlink()
    (other / "noise" / "speech" / "train_speech_001.wav").unlink()
    for path in sorted((other / "wav").rglob("*.wav"))[::4]:
        path.unlink()
    build_corpus(other, seed=7, progress=False, **SMALL)
    assert _digest(other) == before
    assert json.loads((other / "corpus.json").read_text())["seed"] == 7


def test_another_seed_gives_another_corpus(corpus, tmp_path):
    out, _ = corpus
    tiny = dict(SMALL, num_train_speakers=2, num_dev_speakers=1, num_test_speakers=2)
    tiny.update(num_train_noises=1, num_test_noises=1)
    build_corpus(tmp_path, seed=8, progress=False, **tiny)
    ours = [r["wrd"] for r in read_manifest(out / "train.csv")]
    theirs = [r["wrd"] for r in read_manifest(tmp_path / "train.csv")]
    assert not set(ours) & set(theirs)


def test_other_settings_in_same_folder_are_refused(corpus):
    out, _ = corpus
    with pytest.raises(ValueError, match="other settings"):
        build_corpus(out, seed=8, progress=False, **SMALL)
    with pytest.raises(ValueError, match="unknown corpus setting"):
        build_corpus(out, seed=7, progress=False, num_speakers=3)
    with pytest.raises(ValueError, match="unknown preset"):
        build_corpus(out, preset="huge")


def test_speakers_really_differ_for_a_speaker_verifier(corpus):
    """resemblyzer's GE2E (shipped weights) separates the unseen test speakers."""
    from resemblyzer import VoiceEncoder, preprocess_wav

    out, _ = corpus
    rows = read_manifest(out / "test.csv") + read_manifest(out / "dev.csv")
    encoder = VoiceEncoder("cpu", verbose=False)
    emb = np.stack(
        [
            encoder.embed_utterance(
                preprocess_wav(read_checked(r["wav"]), source_sr=16000)
            )
            for r in rows
        ]
    )
    spk = np.array([r["spk_id"] for r in rows])
    iu = np.triu_indices(len(rows), 1)
    scores, same = (emb @ emb.T)[iu], (spk[:, None] == spk[None, :])[iu]
    pos, neg = scores[same], scores[~same]
    # equal error rate from the sorted scores
    thresholds = np.sort(scores)
    frr = np.array([(pos < t).mean() for t in thresholds])
    far = np.array([(neg >= t).mean() for t in thresholds])
    eer = float(np.min(np.maximum(frr, far)))
    assert pos.mean() > neg.mean() + 0.1
    assert eer < 0.15, eer


def test_new_snr_extends_a_corpus_without_touching_it(tmp_path):
    """A corpus built before an SNR joined the defaults gains that SNR's test
    set; every file it had stays byte for byte (its models stay valid), and
    the new set mixes the same noise pieces at the new level."""
    settings = {k: v for k, v in SMALL.items() if k != "snrs"}
    out = tmp_path / "c"
    old = build_corpus(out, seed=3, progress=False, snrs=[20, 0], **settings)
    stamps = _stamps(out)
    assert not (out / "test_snr5.csv").exists()
    new = build_corpus(out, seed=3, progress=False, **settings)
    assert new["settings"]["snrs"] == [20.0, 10.0, 5.0, 0.0]
    assert old["settings"]["snrs"] == [20.0, 0.0]
    after = _stamps(out)
    changed = [p for p, st in stamps.items() if after.get(p) != st]
    # only the bookkeeping is rewritten (the manifests with the same rows)
    assert {Path(p).name for p in changed} <= {
        "corpus.json",
        "test_snr20.csv",
        "test_snr0.csv",
        ".lock",
    }, changed
    rows5 = read_manifest(out / "test_snr5.csv")
    rows0 = {r["ID"]: r for r in read_manifest(out / "test_snr0.csv")}
    for row in rows5:
        assert row["noise_id"] == rows0[row["ID"]]["noise_id"]
        clean, mix = read_checked(row["clean_wav"]), read_checked(row["wav"])
        assert abs(float(measure_snr(clean, mix)) - 5.0) < 0.1
    # asking for fewer SNRs than the corpus has reuses it as it is
    again = build_corpus(out, seed=3, progress=False, snrs=[0], **settings)
    assert again["settings"]["snrs"] == [20.0, 10.0, 5.0, 0.0]
    # any other setting still refuses
    with pytest.raises(ValueError, match="other settings"):
        build_corpus(out, seed=4, progress=False, **settings)
