"""Two studies that differ only in the vocoder: the paired comparison, its
files, its refusals and the side-by-side listening page, on constructed
study folders whose answers are known."""

import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from speechbrain_probe.compare import main
from speechbrain_probe.data.audio import write_wav
from speechbrain_probe.data.manifest import write_manifest
from speechbrain_probe.evaluation.compare_studies import compare_studies
from speechbrain_probe.evaluation.scoring import save_cell
from speechbrain_probe.metrics.bootstrap import paired_eer, paired_mean
from speechbrain_probe.metrics.trials import load_trials, make_trials, save_trials
from speechbrain_probe.result_rows import (
    COMPARISON_CSV,
    MetricRow,
    Sample,
    read_comparison,
    sample_path,
    write_metrics,
    write_samples,
)
from speechbrain_probe.study_info import StudyInfo, StudyModel, write_study_info

LAYERS = ("cnn1", "blstm1")
UTTS = [(f"spk{s}_u{u}", f"spk{s}") for s in range(10) for u in range(3)]
#: how well each cell separates speakers (A, B): B is better at cnn1 and in
#: copy synthesis, the same at blstm1
SEPARATION = {
    "original": (4.0, 4.0),
    "copy_synthesis": (1.0, 3.0),
    "cnn1": (1.0, 3.0),
    "blstm1": (0.5, 0.5),
}


def _cell(folder, owner, layer, scores, stoi):
    save_cell(
        folder / "cells" / "clean" / owner / f"{layer}.json",
        {
            "metrics": {},
            "excluded": [],
            "trial_scores": {"ge2e": [float(s) for s in scores]},
            "utt_scores": {
                "stoi": {u: float(v) for (u, _), v in zip(UTTS, stoi)},
                "pesq": {u: 1.0 + 2 * float(v) for (u, _), v in zip(UTTS, stoi)},
            },
        },
    )


def _write_pair(root: Path):
    """Study folders A (Griffin-Lim, model vgg_gl) and B (HiFi-GAN, model
    vgg_hifi) of the same utterances and trials."""
    rng = np.random.default_rng(0)
    trials = make_trials(UTTS, seed=0)
    labels = np.array([t.label for t in trials])
    base = rng.normal(0, 1, labels.size)
    stoi = 0.6 + rng.normal(0, 0.02, len(UTTS))
    folders = {}
    for side, (name, vocoder) in enumerate(
        (("vgg_gl", "griffin_lim"), ("vgg_hifi", "hifigan"))
    ):
        folder = root / vocoder
        save_trials(folder / "trials.csv", trials)
        write_manifest(
            folder / "subset.csv",
            [dict(ID=u, spk_id=s, wrd="w") for u, s in UTTS],
            fields=("ID", "spk_id", "wrd"),
        )
        write_study_info(
            folder / "study.json",
            StudyInfo(
                [StudyModel(name, LAYERS, "vgg_lstm", "baseline")],
                ["clean"],
                ["ge2e"],
                vocoder,
            ),
        )
        samples, metrics = [], []
        for layer, separation in SEPARATION.items():
            owner = "_reference" if layer in ("original", "copy_synthesis") else name
            gain = 0.05 * side if layer != "original" else 0.0
            noise = rng.normal(0, 0.01, labels.size) if layer != "original" else 0
            _cell(
                folder,
                owner,
                layer,
                base + labels * separation[side] + noise,
                stoi + gain,
            )
            metrics.append(
                MetricRow(
                    "" if owner == "_reference" else name,
                    "" if owner == "_reference" else "vgg_lstm",
                    "" if owner == "_reference" else "baseline",
                    layer,
                    "clean",
                    "stoi",
                    float(np.mean(stoi + gain)),
                )
            )
        for utt, spk in UTTS[:2]:
            for kind in ("original", "copy_synthesis"):
                path = sample_path("samples", "clean", kind, utt)
                samples.append(Sample(utt, spk, "", "", "clean", kind, path.as_posix()))
            for layer in LAYERS:
                path = sample_path("samples", "clean", name, utt, layer)
                samples.append(
                    Sample(
                        utt,
                        spk,
                        name,
                        layer,
                        "clean",
                        "reconstruction",
                        path.as_posix(),
                    )
                )
        for s in samples:
            write_wav(folder / s.path, np.zeros(160, dtype="float32"))
        write_samples(folder / "samples.csv", samples)
        write_metrics(folder / "metrics.csv", metrics)
        folders[vocoder] = folder
    return folders["griffin_lim"], folders["hifigan"]


@pytest.fixture
def pair(tmp_path):
    return _write_pair(tmp_path)


def _row(rows, layer, metric):
    (row,) = [r for r in rows if r.layer == layer and r.metric == metric]
    return row


def test_every_shared_cell_is_compared_paired(pair):
    a, b = pair
    rows = compare_studies(a, b, n_boot=300)
    # models matched by architecture and training; reference rows first
    assert {(r.model_a, r.model_b) for r in rows} == {("", ""), ("vgg_gl", "vgg_hifi")}
    assert [r.layer for r in rows[:6]] == ["original"] * 3 + ["copy_synthesis"] * 3
    assert {r.metric for r in rows} == {"eer_ge2e", "stoi", "pesq"}
    assert (rows[0].label_a, rows[0].label_b) == ("griffin_lim", "hifigan")

    # each row is the paired speaker bootstrap over the two cells' items
    trials = load_trials(a / "trials.csv")
    cells = [
        json.loads((f / "cells" / "clean" / m / "cnn1.json").read_text())
        for f, m in ((a, "vgg_gl"), (b, "vgg_hifi"))
    ]
    expected = paired_eer(
        cells[0]["trial_scores"]["ge2e"],
        cells[1]["trial_scores"]["ge2e"],
        [t.label for t in trials],
        [t.enrol_spk for t in trials],
        [t.test_spk for t in trials],
        n_boot=300,
    )
    eer = _row(rows, "cnn1", "eer_ge2e")
    assert (eer.value_a, eer.value_b, eer.diff, eer.ci_low, eer.ci_high) == (
        expected.a,
        expected.b,
        expected.diff,
        expected.low,
        expected.high,
    )
    assert (eer.n_speakers, eer.n_items) == (10, len(trials))
    # B separates speakers better: its EER is lower, the interval below 0
    assert eer.diff < 0 and eer.ci_high < 0 and eer.excludes_zero
    assert _row(rows, "copy_synthesis", "eer_ge2e").ci_high < 0
    # the same separation at blstm1: the interval contains 0
    same = _row(rows, "blstm1", "eer_ge2e")
    assert same.ci_low <= 0 <= same.ci_high and not same.excludes_zero
    # STOI 0.05 higher for every utterance; PESQ (1 + 2 STOI) 0.1
    stoi = _row(rows, "cnn1", "stoi")
    utts = sorted(u for u, _ in UTTS)
    want = paired_mean(
        [cells[0]["utt_scores"]["stoi"][u] for u in utts],
        [cells[1]["utt_scores"]["stoi"][u] for u in utts],
        [u.split("_")[0] for u in utts],
        n_boot=300,
    )
    assert (stoi.value_a, stoi.diff, stoi.ci_low) == (want.a, want.diff, want.low)
    assert stoi.diff == pytest.approx(0.05) and stoi.ci_low > 0
    assert _row(rows, "cnn1", "pesq").diff == pytest.approx(0.1)
    # the original audio is the same in both: no difference at all
    for r in rows[:3]:
        assert r.diff == 0 and r.value_a == r.value_b
    # an explicit mapping pairs the same models
    assert compare_studies(a, b, n_boot=300, models={"vgg_gl": "vgg_hifi"}) == rows
    with pytest.raises(
        ValueError, match="model 'vgg' is not in study A; it has: vgg_gl"
    ):
        compare_studies(a, b, models={"vgg": "vgg_hifi"})


def test_studies_of_other_utterances_trials_or_audio_are_refused(pair, tmp_path):
    a, b = pair
    other = tmp_path / "other"
    shutil.copytree(b, other)
    trials = load_trials(other / "trials.csv")
    save_trials(other / "trials.csv", trials[1:])
    with pytest.raises(ValueError, match=r"trials.csv differ: .* other trials"):
        compare_studies(a, other)
    save_trials(other / "trials.csv", trials)
    subset = (other / "subset.csv").read_text().replace("spk9_u2", "spk9_u3")
    (other / "subset.csv").write_text(subset)
    with pytest.raises(ValueError, match=r"subset.csv differ: .* other utterances"):
        compare_studies(a, other)
    shutil.copy(a / "subset.csv", other / "subset.csv")
    # the original audio scoring differently: not the same audio
    cell = other / "cells" / "clean" / "_reference" / "original.json"
    data = json.loads(cell.read_text())
    data["utt_scores"]["stoi"]["spk0_u0"] += 0.1
    cell.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="original audio of condition clean has stoi"):
        compare_studies(a, other)
    with pytest.raises(FileNotFoundError, match="nothing.subset.csv does not exist"):
        compare_studies(a, tmp_path / "nothing")


def test_command_line_writes_table_figure_and_a_page_of_both_vocoders(
    pair, tmp_path, capsys
):
    a, b = pair
    out = tmp_path / "compare"
    rows = main(
        [
            str(a),
            str(b),
            "--out",
            str(out),
            "--label-a",
            "griffin_lim",
            "--label-b",
            "hifigan",
            "--n-boot",
            "200",
        ]
    )
    printed = capsys.readouterr().out
    assert (
        "HiFi-GAN - Griffin-Lim [95% CI]" in printed and "vgg_gl / vgg_hifi" in printed
    )
    assert read_comparison(out / COMPARISON_CSV) == rows
    assert "**Griffin-Lim vs HiFi-GAN" in (out / "vocoder_comparison.md").read_text()
    assert (out / "vocoder_comparison.png").stat().st_size > 0

    page = (out / "listen.html").read_text()
    data = json.loads(
        re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1)
    )
    # one table for the model, a row per vocoder, copy synthesis first
    models = {m["id"]: m for m in data["models"]}
    assert set(models) == {"vgg_gl (Griffin-Lim)", "vgg_hifi (HiFi-GAN)"}
    assert {m["group"] for m in models.values()} == {"vgg_gl"}
    assert [m["row_label"] for m in data["models"]] == ["Griffin-Lim", "HiFi-GAN"]
    assert all(m["layers"] == ["copy synthesis", *LAYERS] for m in models.values())
    # every clip of both vocoders is listed, from its own study, and exists
    assert len(data["utterances"]) == 2
    for by_condition in data["audio"].values():
        slot = by_condition["clean"]
        assert "copy_synthesis" not in slot  # it is per vocoder, in the table
        layers = slot["layers"]
        for model, folder in (("vgg_gl (Griffin-Lim)", a), ("vgg_hifi (HiFi-GAN)", b)):
            assert set(layers[model]) == {"copy synthesis", *LAYERS}
            for url in layers[model].values():
                assert (out / unquote(url)).resolve().is_relative_to(folder)
        urls = [slot["original"], *(u for m in layers.values() for u in m.values())]
        for url in urls:
            assert (out / unquote(url)).is_file(), url
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (out / unquote(src)).is_file(), src
    assert re.findall(r'<img src="([^"]+)"', page) == ["vocoder_comparison.png"]
    # each clip's score comes from its own study
    scores = data["scores"]["layers"]
    assert (
        scores["vgg_hifi (HiFi-GAN)"]["clean"]["cnn1"]
        != (scores["vgg_gl (Griffin-Lim)"]["clean"]["cnn1"])
    )
