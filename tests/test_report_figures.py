"""Figures of the report: PNGs are written, decode, and show what they should."""

import numpy as np
import pytest
from matplotlib.image import imread

from speechbrain_probe.report.build import (
    figure3_from_samples,
    load_figure3_mels,
    save_figure3_mels,
)
from speechbrain_probe.report.example import make_example_results
from speechbrain_probe.report.figures import (
    plot_mel_grid,
    plot_metric_vs_layer,
    plot_robust_vs_baseline,
)
from speechbrain_probe.report.results import read_metrics, read_samples


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    make_example_results(folder, seed=1, n_utts=1, seconds=0.3)
    return folder


def _png(path):
    assert path.is_file() and path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    # Not a blank canvas: a real plot has many distinct colours.
    pixels = image[..., :3].reshape(-1, 3)
    assert len(np.unique(np.round(pixels[::7] * 255), axis=0)) > 20
    return image


def test_eer_vs_layer_figure(results, tmp_path):
    metrics = read_metrics(results / "metrics.csv")
    out = plot_metric_vs_layer(
        metrics, "eer_ge2e", tmp_path / "eer.png", note="example"
    )
    _png(out)


def test_stoi_robust_vs_baseline_figure(results, tmp_path):
    metrics = read_metrics(results / "metrics.csv")
    out = plot_robust_vs_baseline(metrics, tmp_path / "fig4.png")
    image = _png(out)
    # A grid of 2 archs x 4 conditions is wider than tall.
    assert image.shape[1] > image.shape[0]


def test_figures_survive_missing_models_and_conditions(tmp_path):
    rows = [
        dict(model="m", arch="blstm", training="robust", layer="blstm2",
             condition="snr0", metric="stoi", value=0.6, ci_low=None, ci_high=None, n=2)
    ]  # fmt: skip
    _png(plot_robust_vs_baseline(rows, tmp_path / "a.png"))
    _png(plot_metric_vs_layer(rows, "stoi", tmp_path / "b.png"))


def test_mel_grid_from_arrays(tmp_path):
    rng = np.random.default_rng(0)
    layers = ("cnn1", "cnn2", "cnn4", "blstm1", "blstm3", "blstm5")
    mels = {
        t: {layer: rng.random((60, 80)) for layer in layers}
        for t in ("baseline", "robust")
    }
    out = plot_mel_grid(
        mels, tmp_path / "fig3.png", {"mixture": rng.random((60, 80))}, "utt u, 0 dB"
    )
    image = _png(out)
    assert image.shape[1] > image.shape[0]


def test_mel_grid_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        plot_mel_grid(
            {"robust": {"cnn1": np.full((5, 80), np.nan)}}, tmp_path / "x.png"
        )
    with pytest.raises(ValueError, match=r"expected \[T, n_mels\]"):
        plot_mel_grid({"robust": {"cnn1": np.zeros(80)}}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one"):
        plot_mel_grid({}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_figure3_mels_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    mels = {"baseline": {"cnn1": rng.random((7, 80)).astype(np.float32)}}
    save_figure3_mels(tmp_path / "m.npz", mels, {"clean": np.zeros((7, 80))}, "t")
    loaded, refs, title = load_figure3_mels(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded["baseline"]["cnn1"], mels["baseline"]["cnn1"])
    assert list(refs) == ["clean"] and title == "t"


def test_figure3_from_the_wavs_of_samples_csv(results, tmp_path):
    rows = read_samples(results / "samples.csv")
    out = figure3_from_samples(rows, tmp_path / "fig3.png")
    _png(out)
    # Nothing to show: no reconstructions at all.
    no_recs = [r for r in rows if r["kind"] != "reconstruction"]
    assert figure3_from_samples(no_recs, tmp_path / "none.png") is None
