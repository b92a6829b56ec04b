"""The LibriSpeech chain: ASR (``recipes/LibriSpeech/ASR/CTC``), probes and
study (``recipes/LibriSpeech/Probe/Highway``).

The recipe rows of ``tests/recipes/LibriSpeech.csv`` run the chain on a tiny
LibriSpeech + MUSAN tree (``test_recipes.py``); here: that the study's noisy
test sets are the very mixtures the ASR recipe tested its models on, and that
the study row (run here, or reused from test_recipes.py in the same session)
scored every paper layer of both models.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from speechbrain_probe.data.librispeech_study import (
    prepare_probe_data,
    prepare_test_conditions,
)
from speechbrain_probe.data.manifest import read_manifest
from tests.recipe_rows import (
    fake_librispeech,
    fake_musan,
    output_folder,
    read_rows,
    run_row,
    session_workdir,
)
from tests.recipe_scripts import REPO, load_recipe

ASR_SCRIPT = REPO / "recipes" / "LibriSpeech" / "ASR" / "CTC" / "train_asr.py"
STUDY_SCRIPT = "recipes/LibriSpeech/Probe/Highway/evaluate.py"
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
def test_the_study_scored_every_paper_layer(tmp_path_factory):
    """The study row of tests/recipes/LibriSpeech.csv, with its set-up (the
    ASR models and their probes of every paper layer)."""
    (row,) = [r for _, r in read_rows() if r["Script_file"] == STUDY_SCRIPT]
    workdir = session_workdir(tmp_path_factory)
    run = run_row(row, workdir)
    assert run.ok, run.report()
    study = workdir / output_folder(row["test_debug_flags"])
    with open(study / "metrics.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    scored = {(r["model"], r["layer"], r["metric"]) for r in rows if r["value"]}
    for model, layers in PAPER_LAYERS.items():
        for layer in layers:
            for metric in ("eer_ge2e", "stoi", "pesq"):
                assert (model, layer, metric) in scored, (model, layer, metric)
    page = (study / "report.html").read_text(encoding="utf-8")
    assert "VGG-LSTM" in page and "pure-LSTM" in page
