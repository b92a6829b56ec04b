"""The LibriSpeech chain: ASR (``recipes/LibriSpeech/ASR/CTC``), probes and
study (``recipes/LibriSpeech/Probe/Highway``).

The recipe rows of ``tests/recipes/LibriSpeech.csv`` run the chain on a tiny
LibriSpeech + MUSAN tree (``test_recipes.py``); here: that the study's noisy
test sets are the very mixtures the ASR recipe tested its models on, and
(after those rows, in the same session) that the study scored every paper
layer of both models.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from recipe_scripts import REPO, load_recipe  # noqa: E402
from test_data_prepare import fake_librispeech, fake_musan  # noqa: E402

from speechbrain_probe.data.librispeech_study import (  # noqa: E402
    prepare_probe_data,
    prepare_test_conditions,
)
from speechbrain_probe.data.manifest import read_manifest  # noqa: E402

ASR_SCRIPT = REPO / "recipes" / "LibriSpeech" / "ASR" / "CTC" / "train_asr.py"
STUDY = REPO / "tests" / "tmp" / "LibriSpeech" / "study"
PAPER_LAYERS = {
    "vgg_lstm_baseline": ["cnn1", "cnn2", "cnn4", "blstm1", "blstm3", "blstm5"],
    "blstm_robust": ["blstm1", "blstm2", "blstm3", "blstm4", "blstm5"],
}


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("ls")
    for seed, (split, speakers) in enumerate(
        {"train-clean-100": (19,), "dev-clean": (84,), "test-clean": (61, 121)}.items()
    ):
        fake_librispeech(root / "LibriSpeech", split, speakers, chapters=1, seed=seed)
    fake_musan(root, per_category=6)
    return root


def test_the_study_mixes_what_the_asr_recipe_tested_on(tree, tmp_path):
    """Same seeds and babble count: byte-identical noisy test audio."""
    asr_csv = tmp_path / "asr_csv"
    hparams = dict(
        librispeech_folder=str(tree / "LibriSpeech"),
        musan_folder=str(tree / "musan"),
        csv_folder=str(asr_csv),
        train_split="train-clean-100",
        valid_split="dev-clean",
        test_split="test-clean",
        test_csv=str(asr_csv / "test-clean.csv"),
        num_babble=2,
        noise_seed=0,
    )
    load_recipe(ASR_SCRIPT).prepare_data(hparams)
    study = prepare_test_conditions(
        tree / "LibriSpeech", tree / "musan", tmp_path / "study_csv", num_babble=2
    )
    assert sorted(study) == ["clean", "snr0", "snr10", "snr20"]
    assert [r["ID"] for r in read_manifest(study["clean"])] == [
        r["ID"] for r in read_manifest(asr_csv / "test-clean.csv")
    ]
    for snr in ("snr20", "snr10", "snr0"):
        ours = read_manifest(study[snr])
        theirs = read_manifest(asr_csv / f"test_{snr}.csv")
        assert [r["noise_id"] for r in ours] == [r["noise_id"] for r in theirs]
        for a, b in zip(ours, theirs):
            assert _digest(a["wav"]) == _digest(b["wav"])
            assert _digest(a["clean_wav"]) == _digest(b["clean_wav"])


def test_preparation_is_done_once(tree, tmp_path):
    out = prepare_probe_data(
        tree / "LibriSpeech", tree / "musan", tmp_path, num_babble=2, progress=False
    )
    first = {name: path.stat().st_mtime_ns for name, path in out.items()}
    again = prepare_probe_data(
        tree / "LibriSpeech", tree / "musan", tmp_path, num_babble=2, progress=False
    )
    assert {name: path.stat().st_mtime_ns for name, path in again.items()} == first
    noise = read_manifest(out["noise_train"])
    assert {r["category"] for r in noise} == {"music", "noise", "speech"}
    held_out = {r["ID"] for r in read_manifest(tmp_path / "noise_test.csv")}
    assert held_out and not held_out & {r["ID"] for r in noise}


@pytest.mark.slow
def test_the_study_scored_every_paper_layer():
    """After the LibriSpeech rows of test_recipes.py (same session)."""
    metrics = STUDY / "metrics.csv"
    if not metrics.is_file():
        # never a skip: in make test the rows run first (test_recipes.py)
        pytest.fail(
            f"{metrics} is missing: run tests/test_recipes.py -k LibriSpeech first"
        )
    with open(metrics, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    scored = {(r["model"], r["layer"], r["metric"]) for r in rows if r["value"]}
    for model, layers in PAPER_LAYERS.items():
        for layer in layers:
            for metric in ("eer_ge2e", "stoi", "pesq"):
                assert (model, layer, metric) in scored, (model, layer, metric)
    page = (STUDY / "report.html").read_text(encoding="utf-8")
    assert "VGG-LSTM" in page and "pure-LSTM" in page
