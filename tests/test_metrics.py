"""EER/minDCF, the speaker bootstrap, trials, STOI/PESQ exclusions, verifiers."""

import os

import numpy as np
import pytest
import torch
from speechbrain.utils.metric_stats import EER, minDCF

from speechbrain_probe.metrics.bootstrap import (
    _SpeakerTrials,
    mean_interval,
    paired_eer,
    paired_mean,
    verification_metrics,
)
from speechbrain_probe.metrics.ecapa import build_ecapa, export_ecapa
from speechbrain_probe.metrics.eer import SortedTrials, eer, min_dcf
from speechbrain_probe.metrics.quality import (
    Exclusion,
    score_utterance,
    stoi_pesq,
    write_exclusions,
)
from speechbrain_probe.metrics.speaker import (
    ECAPAVerifier,
    build_verifier,
    ge2e_mel,
    score_trials,
)
from speechbrain_probe.metrics.trials import load_trials, make_trials, save_trials


# ---------------------------------------------------------------- EER / minDCF
@pytest.mark.parametrize("seed", range(8))
def test_eer_and_mindcf_equal_speechbrain(seed):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(int(torch.randint(5, 400, (1,), generator=g)), generator=g)
    neg = torch.randn(int(torch.randint(5, 400, (1,), generator=g)), generator=g)
    pos = pos + float(torch.rand(1, generator=g)) * 3
    if seed % 2:  # many tied scores
        pos, neg = (pos * 3).round() / 3, (neg * 3).round() / 3
    assert eer(pos, neg) == EER(pos, neg)
    assert min_dcf(pos, neg) == minDCF(pos, neg)
    assert min_dcf(pos, neg, p_target=0.05) == minDCF(pos, neg, p_target=0.05)


def test_eer_extremes_and_bad_input():
    assert eer([2.0, 3.0], [0.0, 1.0])[0] == 0.0
    assert eer([0.0, 1.0], [2.0, 3.0])[0] == 1.0
    with pytest.raises(ValueError, match="NaN"):
        eer([0.1, float("nan")], [0.0])
    with pytest.raises(ValueError, match="at least one"):
        eer([], [0.0])


def test_integer_weights_count_trials_that_many_times():
    rng = np.random.default_rng(3)
    for n in (2, 7, 50, 999):
        for decimals in (0, 1, 6):  # many ties, some, none
            labels = rng.integers(0, 2, n)
            labels[:2] = (1, 0)
            scores = np.round(rng.normal(labels, 1.0), decimals)
            trials = SortedTrials(scores, labels)
            plain = eer(scores[labels == 1], scores[labels == 0])[0]
            assert trials.errors().eer()[0][0] == plain
            w = rng.integers(0, 4, n)
            w[:2] = 1
            s, lab = np.repeat(scores, w), np.repeat(labels, w)
            weighted = trials.errors(w[trials.pos_at], w[trials.neg_at])
            assert weighted.eer()[0][0] == eer(s[lab == 1], s[lab == 0])[0]
            assert weighted.min_dcf()[0][0] == min_dcf(s[lab == 1], s[lab == 0])[0]
    # a weighting without a negative trial has no EER
    assert np.isnan(SortedTrials([0.1, 0.2], [1, 0]).errors([[1]], [[0]]).eer()[0][0])


def _trial_data(n_speakers=40, per_speaker=20, seed=0):
    """Trials of ``n_speakers`` (half same-speaker): scores with a separation
    of 2, labels, the two speakers of each trial, and the generator."""
    rng = np.random.default_rng(seed)
    enrol = np.repeat(np.arange(n_speakers), per_speaker)
    labels = np.tile(np.arange(per_speaker) % 2, n_speakers)
    other = (enrol + rng.integers(1, n_speakers, enrol.size)) % n_speakers
    test = np.where(labels == 1, enrol, other)
    scores = 2.0 * labels + rng.normal(0, 1, enrol.size)
    return scores, labels, enrol, test, rng


def test_a_speaker_resample_is_the_trial_list_of_the_drawn_speakers():
    scores, labels, enrol, test, rng = _trial_data(n_speakers=6, per_speaker=10)
    cell = _SpeakerTrials(scores, labels.astype(bool), enrol, test)
    for counts in ([1, 1, 1, 1, 1, 1], [2, 0, 1, 3, 0, 1], [0, 0, 4, 0, 0, 2]):
        # each copy of a speaker brings its same-speaker trials, each pair of
        # copies of two speakers the trials between them
        c = np.asarray(counts)
        copies = np.where(labels == 1, c[enrol], c[enrol] * c[test])
        s, lab = np.repeat(scores, copies), np.repeat(labels, copies)
        errors = cell.errors(np.array([counts], dtype=np.int32))
        assert errors.eer()[0][0] == eer(s[lab == 1], s[lab == 0])[0]
        assert errors.min_dcf()[0][0] == min_dcf(s[lab == 1], s[lab == 0])[0]


def test_cell_intervals_contain_the_value_and_are_seeded():
    scores, labels, enrol, test, _ = _trial_data()
    out = verification_metrics(scores, labels, enrol, test, n_boot=300, seed=1)
    pos, neg = scores[labels == 1], scores[labels == 0]
    assert (out["eer"][0], out["mindcf"][0]) == (eer(pos, neg)[0], min_dcf(pos, neg)[0])
    for value, low, high in (out["eer"], out["mindcf"]):
        assert low <= value <= high and low < high
    assert out["n"] == 800 and out["n_speakers"] == 40
    assert verification_metrics(scores, labels, enrol, test, 300, seed=1) == out
    assert verification_metrics(scores, labels, enrol, test, 300, seed=2) != out
    # a trial without a score is left out
    dropped = scores.copy()
    dropped[:3] = np.nan
    assert verification_metrics(dropped, labels, enrol, test, 20)["n"] == 797
    with pytest.raises(ValueError, match="one entry per trial"):
        verification_metrics(scores[:5], labels, enrol, test)


def test_more_items_of_the_same_speakers_do_not_narrow_an_interval():
    """Trials and utterances of one speaker are not independent: copies of
    every speaker's items leave each interval as it is; more speakers narrow it."""
    scores, labels, enrol, test, rng = _trial_data(n_speakers=30, per_speaker=20)
    twice = [np.tile(x, 2) for x in (scores, labels, enrol, test)]
    once = verification_metrics(scores, labels, enrol, test, 500)
    assert verification_metrics(*twice, 500) == once | {"n": 2 * once["n"]}
    better = scores + labels
    pair = paired_eer(scores, better, labels, enrol, test, 500)
    pair2 = paired_eer(twice[0], np.tile(better, 2), *twice[1:], 500)
    assert (pair2.low, pair2.high, pair2.n_items) == (pair.low, pair.high, 1200)
    more = verification_metrics(*_trial_data(n_speakers=120, per_speaker=20)[:4], 500)
    assert more["eer"][2] - more["eer"][1] < once["eer"][2] - once["eer"][1]

    speakers = np.repeat(np.arange(30), 8)
    stoi = rng.normal(0.6, 0.05, 30)[speakers] + rng.normal(0, 0.005, speakers.size)
    mean, low, high = mean_interval(stoi, speakers, 1000)
    thrice = mean_interval(np.tile(stoi, 3), np.tile(speakers, 3), 1000)
    assert thrice == pytest.approx((mean, low, high), rel=1e-12)
    # far wider than an interval that takes the 240 utterances as independent
    assert high - low > 2 * 2 * 1.96 * stoi.std() / np.sqrt(stoi.size)


def test_paired_differences_know_better_identical_and_reversed_cells():
    scores, labels, enrol, test, _ = _trial_data()
    better = scores + 1.0 * labels  # wider separation: lower EER
    out = paired_eer(scores, better, labels, enrol, test, n_boot=500)
    assert out.b < out.a and out.low <= out.diff <= out.high < 0
    assert (out.n_speakers, out.n_items) == (40, 800)
    same = paired_eer(scores, scores.copy(), labels, enrol, test, n_boot=200)
    assert (same.diff, same.low, same.high) == (0.0, 0.0, 0.0)
    worse = paired_eer(better, scores, labels, enrol, test, n_boot=500)
    assert worse.diff == pytest.approx(-out.diff) and worse.low > 0
    better[[0, 1]] = np.nan  # a trial dropped in either cell is left out of both
    assert paired_eer(scores, better, labels, enrol, test, n_boot=50).n_items == 798

    speakers = np.repeat(np.arange(10), 4)
    a = np.linspace(0.5, 0.7, 40)
    b = a + np.where(speakers < 5, 0.02, 0.08)
    b[0] = np.nan
    stoi = paired_mean(a, b, speakers, n_boot=500)
    assert (stoi.n_items, stoi.n_speakers) == (39, 10)
    assert stoi.diff == pytest.approx(np.nanmean(b - a))
    assert 0.02 < stoi.low < stoi.diff < stoi.high < 0.08


# --------------------------------------------------------------------- trials
UTTS = [(f"spk{s}-{u:02d}", f"spk{s}") for s in range(5) for u in range(6)]


def test_trials_balanced_valid_deterministic(tmp_path):
    trials = make_trials(UTTS, n_pairs=40, seed=7)
    pos = [t for t in trials if t.label == 1]
    neg = [t for t in trials if t.label == 0]
    assert len(pos) == len(neg) == 40
    assert all(t.enrol_spk == t.test_spk and t.enrol != t.test for t in pos)
    assert all(t.enrol_spk != t.test_spk for t in neg)
    keys = {(min(t.enrol, t.test), max(t.enrol, t.test)) for t in trials}
    assert len(keys) == 80  # no repeated pair
    spk = dict(UTTS)
    assert all(
        spk[t.enrol] == t.enrol_spk and spk[t.test] == t.test_spk for t in trials
    )
    assert make_trials(list(reversed(UTTS)), n_pairs=40, seed=7) == trials
    assert make_trials(UTTS, n_pairs=40, seed=8) != trials
    # all positive pairs by default, capped when more are requested
    assert len(make_trials(UTTS)) == 2 * 5 * 15
    assert len(make_trials(UTTS, n_pairs=10_000)) == 2 * 5 * 15
    path = tmp_path / "trials.csv"
    save_trials(path, trials)
    assert load_trials(path) == trials


def test_trials_refuse_impossible_lists():
    with pytest.raises(ValueError, match="2 speakers"):
        make_trials([("a", "s"), ("b", "s")])
    with pytest.raises(ValueError, match="two utterances"):
        make_trials([("a", "s"), ("b", "t")])
    with pytest.raises(ValueError, match="unique"):
        make_trials([("a", "s"), ("a", "t")])


# ------------------------------------------------------------ STOI / PESQ
def _speechlike(seconds=2.0, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 * (1 + np.sin(2 * np.pi * 3 * t))
    tone = sum(
        np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 720, 1400), 1)
    )
    return (0.2 * env * tone + 0.005 * rng.standard_normal(t.shape)).astype(np.float64)


def test_quality_exclusions_are_recorded(tmp_path):
    ref = _speechlike()
    noisy = ref + 0.01 * np.random.default_rng(1).standard_normal(ref.shape)
    nan = ref.copy()
    nan[100] = np.nan
    ids = ["good", "nan", "silent", "short", "mismatch"]
    refs = [ref, ref, ref, ref[:3000], ref]
    degs = [noisy, nan, np.zeros_like(ref), noisy[:3000], noisy[:8000]]
    rows, excluded = stoi_pesq(ids, refs, degs, n_jobs=1)
    good = rows[0]
    assert 0.5 < good["stoi"] <= 1 and 1 <= good["pesq"] <= 4.7
    assert all(r["stoi"] is None and r["pesq"] is None for r in rows[1:])
    reasons = {(e.utt_id, e.metric): e.reason for e in excluded}
    assert set(reasons) == {(u, m) for u in ids[1:] for m in ("stoi", "pesq")}
    assert "non-finite" in reasons["nan", "stoi"]
    assert "silent" in reasons["silent", "pesq"]
    assert "too short" in reasons["short", "stoi"]
    assert "length mismatch" in reasons["mismatch", "stoi"]
    # no NaN anywhere in what would go into a table
    assert not any(
        isinstance(v, float) and np.isnan(v) for r in rows for v in r.values()
    )
    write_exclusions(tmp_path / "excluded.csv", excluded)
    assert len((tmp_path / "excluded.csv").read_text().splitlines()) == 1 + len(
        excluded
    )


def test_wrong_sample_rate_excludes_pesq_only():
    ref = _speechlike(sr=8000)
    scores, excluded = score_utterance("u8k", ref, ref, sample_rate=8000)
    assert scores["stoi"] > 0.99
    assert excluded == [Exclusion("u8k", "pesq", excluded[0].reason)]
    assert "16000 Hz" in excluded[0].reason


def test_parallel_equals_serial():
    refs = [_speechlike()] * 4
    rng = np.random.default_rng(5)
    degs = [r + 0.01 * k * rng.standard_normal(r.shape) for k, r in enumerate(refs)]
    ids = [f"u{k}" for k in range(4)]
    serial, ex1 = stoi_pesq(ids, refs, degs, n_jobs=1)
    parallel, ex2 = stoi_pesq(ids, refs, degs, n_jobs=2)
    assert serial == parallel and ex1 == ex2 == []
    stoi = [r["stoi"] for r in serial]
    assert stoi[0] > 0.99 and max(stoi[1:]) < stoi[0]  # u0 is the reference itself


def test_pool_handles_equal_serial_and_read_wav_paths(tmp_path):
    from speechbrain_probe.data.audio import read_checked, write_wav
    from speechbrain_probe.evaluation.pool import WORKER_NICENESS, EvaluationPool
    from speechbrain_probe.metrics.quality import collect_stoi_pesq, submit_stoi_pesq

    rng = np.random.default_rng(6)
    ids, refs, degs = [], [], []
    for k in range(3):
        ref = write_wav(tmp_path / f"r{k}.wav", _speechlike() * 0.5)
        clean = read_checked(ref)
        noisy = clean + 0.02 * k * rng.standard_normal(clean.shape)
        deg = write_wav(tmp_path / f"d{k}.wav", noisy)
        ids.append(f"u{k}")
        refs.append(str(ref))
        degs.append(str(deg))
    serial = stoi_pesq(ids, refs, [read_checked(d) for d in degs], n_jobs=1)
    with EvaluationPool(2) as pool:
        pooled = collect_stoi_pesq(submit_stoi_pesq(pool, ids, refs, degs))
        # the workers yield the CPU to the study's own (serial) process
        if hasattr(os, "nice"):
            expected = min(19, os.nice(0) + WORKER_NICENESS)
            assert pool.submit(os.nice, 0).result() == expected
    assert pooled == serial and serial[1] == []


# ------------------------------------------------------------------ verifiers
def test_ge2e_batched_partials_equal_resemblyzer_per_utterance():
    from resemblyzer import preprocess_wav

    verifier = build_verifier("ge2e", device="cpu")
    rng = np.random.default_rng(7)
    # 1.2 s (one partial), 2.5 s and 4 s (several partials of one batch)
    wavs = [
        (_speechlike(seconds=s) + 0.01 * rng.standard_normal(int(16000 * s))).astype(
            np.float32
        )
        for s in (1.2, 2.5, 4.0)
    ]
    batched = verifier._embed(wavs).numpy()
    one_by_one = np.stack(
        [verifier.encoder.embed_utterance(preprocess_wav(w)) for w in wavs]
    )
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_ecapa_verifier_from_local_directory(tmp_path):
    arch = dict(channels=[16, 16, 16, 16, 48], lin_neurons=8)
    emb, clf = build_ecapa(3, **arch)
    model_dir = export_ecapa(tmp_path / "ecapa", emb, clf, ["a", "b", "c"], **arch)
    verifier = build_verifier("ecapa", source=model_dir, device="cpu")
    wavs = [_speechlike(1.0, seed=s).astype(np.float32) for s in range(3)]
    wavs.append(np.zeros(16000, dtype=np.float32))
    embeddings, excluded = verifier.embed(wavs, ["u0", "u1", "u2", "u3"])
    assert sorted(embeddings) == ["u0", "u1", "u2"]
    assert embeddings["u0"].shape == (8,)
    assert torch.allclose(embeddings["u0"].norm(), torch.tensor(1.0))
    assert [(e.utt_id, e.metric) for e in excluded] == [("u3", "eer_ecapa")]
    none, wrong_rate = verifier.embed(wavs[:1], ["x"], sample_rate=8000)
    assert none == {} and "8000 Hz" in wrong_rate[0].reason
    # an utterance embedded alone or in a padded batch gets the same embedding
    alone, _ = verifier.embed(wavs[:1], ["u0"])
    assert torch.allclose(alone["u0"], embeddings["u0"], atol=1e-4)
    trials = make_trials([("u0", "a"), ("u1", "a"), ("u2", "b"), ("u3", "b")])
    scores, labels, dropped = score_trials(embeddings, trials)
    assert len(scores) + len(dropped) == len(trials)
    assert all(d.utt_id == "u3" for d in dropped) and dropped


def test_ecapa_missing_directory_never_goes_online(tmp_path, monkeypatch):
    from speechbrain.inference.classifiers import EncoderClassifier

    loads = []
    monkeypatch.setattr(
        EncoderClassifier, "from_hparams", lambda **kw: loads.append(kw)
    )
    monkeypatch.chdir(tmp_path)  # a relative path, wherever the checkout has results
    (tmp_path / "empty").mkdir()
    for source, match in (
        (tmp_path / "not_trained_yet", "does not exist"),
        ("results/ecapa/1986/model", "does not exist"),
        (tmp_path / "empty", "hyperparams.yaml"),
    ):
        with pytest.raises(FileNotFoundError, match=match):
            ECAPAVerifier(source)
    assert loads == []  # no download was tried
    with pytest.raises(ValueError, match="unknown verifier"):
        build_verifier("thinresnet")


def test_more_negatives_per_positive_for_the_full_study():
    """The full preset's trial list: 16 speakers x 25 utterances, all 4,800
    same-speaker pairs and twice as many distinct different-speaker pairs;
    one negative per positive is exactly the list the demo has always used."""
    utts = [(f"s{s:02d}_u{u:02d}", f"s{s:02d}") for s in range(16) for u in range(25)]
    trials = make_trials(utts, seed=0, negatives_per_positive=2)
    pos = [t for t in trials if t.label == 1]
    neg = [t for t in trials if t.label == 0]
    assert len(pos) == 4800 and len(neg) == 9600
    assert all(t.enrol_spk != t.test_spk for t in neg)
    assert len({(t.enrol, t.test) for t in neg}) == len(neg)
    assert make_trials(utts, seed=0, negatives_per_positive=1) == make_trials(
        utts, seed=0
    )
    with pytest.raises(ValueError, match="negatives_per_positive"):
        make_trials(utts, negatives_per_positive=0)


def test_ge2e_mel_equals_resemblyzers_librosa_mel():
    """GE2E reads the mel that resemblyzer computes with librosa; ours is
    the same spectrogram (frames, bands, values) on speech-like audio of
    several lengths, silence included."""
    from resemblyzer.audio import wav_to_mel_spectrogram

    for seconds in (0.3, 1.0, 2.37):
        wav = _speechlike(seconds, seed=3).astype(np.float32)
        ours, theirs = ge2e_mel(wav), wav_to_mel_spectrogram(wav)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * theirs.max())
    silence = np.zeros(4000, np.float32)
    np.testing.assert_array_equal(ge2e_mel(silence), wav_to_mel_spectrogram(silence))


def test_ge2e_embeds_without_compiling_librosas_numba_functions():
    """A fresh process that builds GE2E and embeds audio never imports
    librosa's utilities, whose numba functions compile on import (about 20 s
    in a fresh install, with every compilation step in a recipe's DEBUG
    log)."""
    import subprocess
    import sys

    child = (
        "import sys, numpy as np\n"
        "from speechbrain_probe.metrics.speaker import GE2EVerifier\n"
        "t = np.arange(24000) / 16000\n"
        "emb, _ = GE2EVerifier(device='cpu').embed([0.1 * np.sin(2 * np.pi * 200 * t)])\n"
        "print(len(emb), 'librosa.util.utils' in sys.modules, 'numba' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["1", "False", "False"]
