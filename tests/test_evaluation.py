"""The evaluation end to end on a tiny corpus, a tiny exported ASR and real probes."""

import csv
import json

import pytest
import torch

from speechbrain_probe.data import synthetic
from speechbrain_probe.evaluation import ModelSpec, run_study
from speechbrain_probe.evaluation.selection import select_subset
from speechbrain_probe.report import build_report
from tests.recipe_scripts import load_recipe
from tests.test_pretrained import RECIPE, make_export


def probe_main(argv):
    return load_recipe(RECIPE / "train_probe.py").main(argv)


def evaluate_main(argv):
    return load_recipe(RECIPE / "evaluate.py").main(argv)


TINY = dict(
    num_train_speakers=3,
    num_dev_speakers=1,
    num_test_speakers=3,
    train_utts_per_speaker=3,
    dev_utts_per_speaker=3,
    test_utts_per_speaker=3,
    num_train_noises=1,
    num_test_noises=1,
    noise_seconds=3.0,
)


@pytest.fixture(scope="module")
def study_inputs(tmp_path_factory):
    """A built corpus, an exported ASR and its trained probes (1 epoch)."""
    root = tmp_path_factory.mktemp("study")
    corpus, probes = root / "corpus", root / "probes"
    synthetic.build_corpus(corpus, seed=3, preset="tiny", **TINY)  # every setting
    export = make_export(root / "asr")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        probe_main(
            [
                str(RECIPE / "hparams" / "blstm3.yaml"),
                "--skip_prep=True",
                f"--asr_source={export}",
                f"--data_folder={corpus}",
                f"--output_folder={probes}",
                "--layers=[feats,rnn2]",
                "--noisy_training=False",
                "--number_of_epochs=1",
                "--train_utts=6",
                "--valid_utts=3",
                "--batch_size=3",
            ]
        )
    finally:
        torch.set_num_threads(threads)
    return root, corpus, export, probes / "save"


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_subset_is_the_same_utterances_under_every_condition(study_inputs):
    _, corpus, _, _ = study_inputs
    subset = select_subset(corpus, ["clean", "snr0"], utts_per_speaker=2, seed=1)
    clean_ids = [u.utt_id for u in subset["clean"]]
    assert clean_ids == [u.utt_id for u in subset["snr0"]]
    assert len(clean_ids) == 6 and len({u.spk_id for u in subset["clean"]}) == 3
    # the noisy condition hears the mixture but keeps the clean reference
    noisy = subset["snr0"][0]
    assert noisy.wav != noisy.clean_wav and "clean" in noisy.clean_wav
    with pytest.raises(ValueError, match="unknown condition 'loud'"):
        select_subset(corpus, ["loud"], 2)
    # any snr<N> is a condition; one the corpus lacks names its manifest
    with pytest.raises(FileNotFoundError, match="test_snr15.csv, which does not exist"):
        select_subset(corpus, ["snr15"], 2)


def test_study_scores_every_cell_and_resumes_without_recomputing(study_inputs):
    root, corpus, export, probes = study_inputs
    out = root / "out"
    models = [
        ModelSpec("blstm_baseline", str(export), str(probes), "blstm", "baseline"),
        ModelSpec("blstm_robust", str(export), str(probes), "blstm", "robust"),
    ]
    kwargs = dict(
        conditions=["clean", "snr0"],
        utts_per_speaker=2,
        griffin_lim_iters=2,
        n_boot=20,
        n_jobs=1,
    )
    assert run_study(corpus, out, models, **kwargs) == out
    page = build_report(out, verbose=False)
    assert page.exists() and page.name == "report.html"
    # the paired robust - baseline statistics and the claims' verdicts
    paired = _rows(out / "paired.csv")
    assert {(r["layer"], r["condition"], r["metric"]) for r in paired} == {
        (x, c, m) for x in ("feats", "rnn2") for c in ("clean", "snr0")
        for m in ("eer_ge2e", "stoi", "pesq")
    }  # fmt: skip
    assert {r["claim"] for r in _rows(out / "claims.csv")} == {"C1", "C2", "C3"}

    rows = _rows(out / "metrics.csv")
    cells = {(r["model"], r["layer"], r["condition"], r["metric"]) for r in rows}
    for cond in ("clean", "snr0"):
        for model in ("blstm_baseline", "blstm_robust"):
            for layer in ("feats", "rnn2"):
                for metric in ("eer_ge2e", "mindcf_ge2e", "stoi", "pesq"):
                    assert (model, layer, cond, metric) in cells
        for ref in ("original", "copy_synthesis"):
            assert ("", ref, cond, "eer_ge2e") in cells
    for r in rows:
        value, low, high = float(r["value"]), float(r["ci_low"]), float(r["ci_high"])
        assert low <= value + 1e-9 and value <= high + 1e-9
        if r["metric"].startswith("eer"):
            assert 0.0 <= value <= 1.0
    # the noisy input itself is less intelligible than clean input
    stoi = {
        r["condition"]: float(r["value"])
        for r in rows
        if r["layer"] == "original" and r["metric"] == "stoi"
    }
    assert stoi["snr0"] < stoi["clean"]

    samples = _rows(out / "samples.csv")
    kinds = {s["kind"] for s in samples}
    assert kinds == {"original", "copy_synthesis", "mixture", "noise", "reconstruction"}
    for s in samples:
        assert (out / s["path"]).is_file(), s["path"]
    trials = _rows(out / "trials.csv")
    assert sum(int(t["label"]) for t in trials) * 2 == len(trials)

    # a second run recomputes nothing: every audio file and cell keeps its mtime
    stamps = {
        p: p.stat().st_mtime_ns
        for p in list((out / "samples").rglob("*.wav"))
        + list(out.rglob("cells/**/*.json"))
    }
    run_study(corpus, out, models, **kwargs)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert _rows(out / "metrics.csv") == rows

    # a cell lost mid-run is recomputed, the rest is kept
    lost = out / "cells" / "snr0" / "blstm_robust" / "rnn2.json"
    lost.unlink()
    run_study(corpus, out, models, **kwargs)
    assert lost.exists()

    # a cell whose intervals an older version resampled from trials gets them
    # from its per-item values again, its scores kept
    cell = json.loads(lost.read_text())
    old = cell | {
        "metrics": {k: [v[0], 0.0, 1.0, v[3]] for k, v in cell["metrics"].items()}
    }
    del old["intervals"]
    lost.write_text(json.dumps(old))
    run_study(corpus, out, models, **kwargs)
    assert json.loads(lost.read_text()) == cell
    assert _rows(out / "metrics.csv") == rows


def test_worker_pool_writes_the_same_audio_and_scores_as_one_process(
    study_inputs, tmp_path
):
    _, corpus, export, probes = study_inputs
    models = [ModelSpec("blstm_robust", str(export), str(probes), "blstm", "robust")]
    kwargs = dict(
        conditions=["snr0"],
        utts_per_speaker=2,
        griffin_lim_iters=2,
        n_boot=20,
        pesq_per_speaker=1,
    )
    run_study(corpus, tmp_path / "serial", models, n_jobs=1, **kwargs)
    run_study(corpus, tmp_path / "pool", models, n_jobs=2, **kwargs)
    wavs = sorted((tmp_path / "serial" / "samples").rglob("*.wav"))
    assert len(wavs) == 6 * (4 + 2)  # 4 reference kinds + 2 probed layers
    for wav in wavs:
        twin = tmp_path / "pool" / wav.relative_to(tmp_path / "serial")
        assert twin.read_bytes() == wav.read_bytes(), wav
    serial = _rows(tmp_path / "serial" / "metrics.csv")
    pooled = _rows(tmp_path / "pool" / "metrics.csv")
    assert {r["metric"] for r in serial} >= {"eer_ge2e", "stoi", "pesq"}
    assert pooled == serial
    # PESQ on one utterance per speaker (3), STOI on all 6, in both paths
    counts = {(r["layer"], r["metric"]): r["n"] for r in serial}
    assert counts[("rnn2", "pesq")] == "3" and counts[("rnn2", "stoi")] == "6"
    # cells scored under other settings are not mixed into the same study
    with pytest.raises(ValueError, match="pesq_per_speaker: 1 -> None"):
        run_study(
            corpus,
            tmp_path / "serial",
            models,
            n_jobs=1,
            **kwargs | {"pesq_per_speaker": None},
        )


def test_evaluate_recipe_refuses_unknown_models_and_missing_corpus(tmp_path):
    study = RECIPE / "hparams" / "evaluate.yaml"
    out = f"--output_folder={tmp_path / 'out'}"
    missing = f"--data_folder={tmp_path / 'nothing'}"
    with pytest.raises(
        ValueError, match=r"unknown model\(s\) \['b'\]; available: vgg_lstm_baseline"
    ):
        evaluate_main([str(study), out, missing, "--use_models=[b]"])
    with pytest.raises(FileNotFoundError, match="build the corpus"):
        evaluate_main([str(study), out, missing, "--use_models=[blstm_robust]"])


def test_study_workers_wait_on_success_and_drop_queued_jobs_on_error():
    import time as _time

    import torch as _torch

    from speechbrain_probe.evaluation.study import _study_workers

    before = _torch.get_num_threads()
    with _study_workers(2, 1) as pool:
        assert _torch.get_num_threads() == 1
        done = [pool.submit(abs, -k) for k in range(4)]
    assert [f.result() for f in done] == [0, 1, 2, 3]
    assert _torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="stop"):
        with _study_workers(2, 1) as pool:
            running = [pool.submit(_time.sleep, 1.0) for _ in range(2)]
            pool.submit(_time.sleep, 0.5).result()  # workers up, both busy
            queued = [pool.submit(abs, -1) for _ in range(20)]
            raise RuntimeError("stop")
    assert all(f.done() for f in running)
    assert any(f.cancelled() for f in queued)
    assert _torch.get_num_threads() == before
