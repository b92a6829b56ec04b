"""Paired robust - baseline statistics: the per-item values a cell keeps,
the verdicts on the paper's claims and their report section, on constructed
data whose answers are known (the speaker bootstrap itself:
tests/test_metrics.py)."""

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_probe.data.manifest import write_manifest
from speechbrain_probe.evaluation.paired import (
    NoPerItemValues,
    write_paired_results,
)
from speechbrain_probe.evaluation.scoring import (
    has_items,
    load_cell,
    save_cell,
    score_cell,
)
from speechbrain_probe.metrics.quality import Exclusion
from speechbrain_probe.metrics.trials import Trial, make_trials, save_trials
from speechbrain_probe.report.build import build_report
from speechbrain_probe.report.paired_section import claim_summaries
from speechbrain_probe.result_rows import (
    CLAIMS_CSV,
    PAIRED_CSV,
    read_claims,
    read_paired,
    write_samples,
)
from speechbrain_probe.study_info import StudyInfo, StudyModel, write_study_info

LAYERS = ("cnn1", "cnn2", "blstm1", "blstm3")


# --- what a cell keeps ----------------------------------------------------------


class _FakeVerifier:
    """Embeds every utterance but one as its speaker's direction."""

    def __init__(self, missing):
        self.missing = missing

    def embed(self, audio, utt_ids):
        emb = {}
        for wav, utt in zip(audio, utt_ids):
            if utt != self.missing:
                spk = int(utt[1])
                emb[utt] = torch.tensor([1.0, 0.3 * spk + 0.01 * float(wav[0])])
        return emb, [Exclusion(self.missing, "eer_fake", "too short")]


def test_score_cell_keeps_per_trial_and_per_utterance_values(tmp_path):
    sr = 16000
    t = np.arange(sr) / sr
    ids = [f"s{s}_u{u}" for s in range(3) for u in range(2)]
    wavs = []
    for k, utt in enumerate(ids):
        wav = 0.3 * np.sin(2 * np.pi * (180 + 20 * k) * t) * (1 + np.sin(6 * t))
        wav[0] = 0.001 * k
        wavs.append(tmp_path / f"{utt}.wav")
        sf.write(wavs[-1], wav.astype(np.float32), sr)
    trials = make_trials([(u, u[:2]) for u in ids], seed=0)
    trials.append(Trial(0, "s0_u0", "s2_u1", "s0", "s2"))
    result = score_cell(
        ids,
        wavs,
        wavs,
        trials,
        {"fake": _FakeVerifier(missing="s2_u1")},
        n_boot=20,
        pesq_ids={"s0_u0", "s1_u0"},
        speaker_of={u: u[:2] for u in ids},
    )
    scores = result["trial_scores"]["fake"]
    assert len(scores) == len(trials)
    dropped = [i for i, tr in enumerate(trials) if "s2_u1" in (tr.enrol, tr.test)]
    assert dropped and all(scores[i] is None for i in dropped)
    assert all(isinstance(s, float) for i, s in enumerate(scores) if i not in dropped)
    assert sorted(result["utt_scores"]["stoi"]) == sorted(ids)
    assert set(result["utt_scores"]["pesq"]) == {"s0_u0", "s1_u0"}
    # the aggregates are as before: [value, low, high, n]
    assert len(result["metrics"]["eer_fake"]) == 4
    assert result["metrics"]["stoi"][3] == len(ids)
    path = tmp_path / "cells" / "clean" / "m" / "cnn1.json"
    save_cell(path, result)
    assert has_items(load_cell(path, require_items=True))
    # a cell of an older version (aggregates only) is not trusted
    old = {"metrics": result["metrics"], "excluded": result["excluded"]}
    save_cell(path, old)
    assert load_cell(path) == old and load_cell(path, require_items=True) is None


# --- a synthetic study ------------------------------------------------------------


def _write_study(
    folder,
    models,
    conditions=("clean", "snr20", "snr5", "snr0"),
    stoi_gain=0.05,
    old_cells=False,
    seed=0,
):
    """A study folder of constructed cells: EER grows with depth, the robust
    model separates speakers better in the middle layers under noise, and
    its STOI is ``stoi_gain`` higher from blstm1 upward under noise."""
    rng = np.random.default_rng(seed)
    utts = [(f"spk{s}_u{u}", f"spk{s}") for s in range(12) for u in range(4)]
    trials = make_trials(utts, seed=0)
    save_trials(folder / "trials.csv", trials)
    write_manifest(
        folder / "subset.csv",
        [dict(ID=u, spk_id=s, wrd="w") for u, s in utts],
        fields=("ID", "spk_id", "wrd"),
    )
    labels = np.array([t.label for t in trials])
    speaker_effect = {s: rng.normal(0, 0.3) for _, s in utts}
    base = rng.normal(0, 1, labels.size) + [speaker_effect[t.enrol_spk] for t in trials]
    utt_noise = rng.normal(0, 0.01, len(utts))
    info = StudyInfo(
        [StudyModel(name, LAYERS, arch, training) for name, arch, training in models],
        conditions,
        ["ge2e"],
    )
    write_study_info(folder / "study.json", info)
    for name, _, training in models:
        robust = training == "robust"
        for depth, layer in enumerate(LAYERS):
            for condition in conditions:
                noisy = condition in ("snr5", "snr0")
                d = 4.0 - 1.2 * depth - (1.0 if noisy else 0.0)
                if robust and noisy and layer in ("cnn2", "blstm1"):
                    d += 1.5
                scores = base + labels * d + rng.normal(0, 0.05, labels.size)
                stoi = 0.9 - 0.1 * depth - (0.2 if noisy else 0.0) + utt_noise
                if robust and noisy and layer.startswith("blstm") and stoi_gain:
                    stoi = stoi + stoi_gain + rng.normal(0, 0.005, stoi.size)
                cell = {"metrics": {}, "excluded": []}
                if not old_cells:
                    cell["trial_scores"] = {"ge2e": scores.tolist()}
                    cell["utt_scores"] = {
                        "stoi": {u: float(v) for (u, _), v in zip(utts, stoi)},
                        "pesq": {u: 2.0 + float(v) for (u, _), v in zip(utts, stoi)},
                    }
                save_cell(folder / "cells" / condition / name / f"{layer}.json", cell)
    write_samples(folder / "samples.csv", [])  # a result file, so a report builds
    return folder


PAIR = [("vgg_base", "vgg_lstm", "baseline"), ("vgg_rob", "vgg_lstm", "robust")]


def _csv_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_paired_table_and_claims_on_a_synthetic_study(tmp_path):
    _write_study(tmp_path, PAIR)
    paired, claims = write_paired_results(tmp_path, n_boot=300)
    # every shared layer x condition x metric, robust - baseline
    assert len(paired) == 4 * 4 * 3
    header = next(csv.reader(open(tmp_path / PAIRED_CSV)))
    assert header == [
        "arch", "layer", "condition", "metric", "baseline_model", "robust_model",
        "baseline", "robust", "diff", "ci_low", "ci_high", "n_speakers", "n_items",
    ]  # fmt: skip
    assert read_paired(tmp_path / PAIRED_CSV) == paired
    stoi = {(r.layer, r.condition): r for r in paired if r.metric == "stoi"}
    assert stoi[("blstm3", "snr0")].diff == pytest.approx(0.05, abs=0.005)
    assert stoi[("blstm3", "snr0")].n_speakers == 12
    assert stoi[("cnn1", "snr0")].diff == pytest.approx(0.0)

    assert read_claims(tmp_path / CLAIMS_CSV) == claims
    by_claim = {c: [r for r in claims if r.claim == c] for c in ("C1", "C2", "C3")}
    # C1: each model's deepest minus shallowest layer, clean input
    assert [(r.model_a, r.layer_a, r.layer_b) for r in by_claim["C1"]] == [
        ("vgg_base", "cnn1", "blstm3"),
        ("vgg_rob", "cnn1", "blstm3"),
    ]
    # C2: middle layers at 10 dB or less (not 20 dB); C3: blstm1 upward
    assert {(r.layer_a, r.condition) for r in by_claim["C2"]} == {
        (x, c) for x in ("cnn2", "blstm1") for c in ("snr5", "snr0")
    }
    assert {(r.layer_b, r.condition) for r in by_claim["C3"]} == {
        (x, c) for x in ("blstm1", "blstm3") for c in ("snr5", "snr0")
    }
    assert all(r.verdict == "holds" for r in claims), claims
    assert all(r.diff < 0 for r in by_claim["C2"])
    summaries = claim_summaries(claims)
    assert summaries["C2"] == "holds in 4 of 4 cells, reversed in 0, cannot tell in 0"


def test_claims_reversed_or_not_applicable(tmp_path):
    worse = _write_study(tmp_path / "worse", PAIR, stoi_gain=-0.05)
    claims = write_paired_results(worse, n_boot=200)[1]
    assert {r.verdict for r in claims if r.claim == "C3"} == {"reversed"}
    no_gap = _write_study(tmp_path / "same", PAIR, stoi_gain=0.0)  # equal STOI
    c3 = [r for r in write_paired_results(no_gap, n_boot=200)[1] if r.claim == "C3"]
    assert {(r.diff, r.verdict) for r in c3} == {(0.0, "cannot tell")}

    alone = _write_study(tmp_path / "alone", [("w", "", "")], ("clean", "snr20"))
    paired, claims = write_paired_results(alone, n_boot=100)
    assert paired == [] and _csv_rows(alone / PAIRED_CSV) == []
    assert [(r.claim, r.verdict) for r in claims] == [
        ("C1", "holds"),
        ("C2", "not applicable"),
        ("C3", "not applicable"),
    ]
    assert claim_summaries(claims)["C3"] == (
        "not applicable: the study has no robust and baseline model of one architecture"
    )


def test_report_shows_the_paired_section_and_the_claims(tmp_path):
    study = _write_study(tmp_path / "study", PAIR, conditions=("clean", "snr0"))
    write_paired_results(study)
    page = build_report(study, verbose=False).read_text()
    assert "Robust - baseline, paired, and the paper&#x27;s claims" in page
    assert "<caption>The paper&#x27;s claims</caption>" in page
    assert "holds in 2 of 2 cells" in page  # C1 of both models
    assert "Robust - baseline, paired: EER (%), GE2E verifier" in page
    assert '<td class="marked">' in page
    assert 'src="figures/paired_eer_robust_minus_baseline.png"' in page
    for stem in ("claims", "claims_cells", "paired_eer_ge2e", "paired_stoi"):
        assert (study / "tables" / f"{stem}.md").is_file(), stem
    rows = _csv_rows(study / "tables" / "paired_stoi.csv")
    assert rows[3]["architecture"] == "VGG-LSTM" and rows[3]["layer"] == "blstm3"
    assert rows[3]["robust - baseline 0 dB"].endswith("*")

    # the report reads the files, never computes them: the same page again
    # from the files alone
    shutil.rmtree(study / "cells")
    assert build_report(study, verbose=False).read_text() == page

    # an older study folder: no files, a one-line note how to make them
    old = _write_study(tmp_path / "old", PAIR, ("clean", "snr0"), old_cells=True)
    with pytest.raises(NoPerItemValues, match="run the evaluation again"):
        write_paired_results(old)
    assert not (old / PAIRED_CSV).exists()
    page = build_report(old, verbose=False).read_text()
    assert (
        "Not available: the study folder has no paired.csv or claims.csv; run "
        "the evaluation again to write them"
    ) in page
    assert (
        json.loads((old / "study.json").read_text())["models"][0]["name"] == "vgg_base"
    )
