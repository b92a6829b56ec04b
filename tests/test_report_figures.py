"""Figures of the report: PNGs are written, decode, and show what they should."""

import numpy as np
import pytest
from matplotlib.image import imread

from speechbrain_probe.report.build import build_report
from speechbrain_probe.report.figures import (
    layer_curves,
    plot_layer_curves,
    plot_mel_grid,
    plot_metric_vs_layer,
    plot_robust_vs_baseline,
)
from speechbrain_probe.result_rows import (
    MetricRow,
    load_figure3_mels,
    read_metrics,
    save_figure3_mels,
)
from speechbrain_probe.study_info import StudyInfo, StudyModel
from tests.example_results import make_example_results

#: Line colours of the figures (report/figures.py): conditions, trainings.
CLEAN, SNR20, SNR10, SNR0 = "#1b7837", "#2166ac", "#b35806", "#b2182b"
ROBUST, BASELINE = "#1f78b4", "#e66101"


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


def _pixels_of(image, colour, tolerance=4):
    """How many pixels of ``image`` have ``colour`` (``#rrggbb``)."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    pixels = np.round(image[..., :3] * 255)
    return int((np.abs(pixels - rgb).max(axis=-1) <= tolerance).sum())


def test_eer_vs_layer_figure_draws_a_line_per_condition(results, tmp_path):
    metrics = read_metrics(results / "metrics.csv")
    image = _png(
        plot_metric_vs_layer(metrics, "eer_ge2e", tmp_path / "eer.png", note="example")
    )
    for colour in (CLEAN, SNR20, SNR10, SNR0):
        assert _pixels_of(image, colour) > 200, colour
    clean_only = [r for r in metrics if r.condition == "clean"]
    image = _png(plot_metric_vs_layer(clean_only, "eer_ge2e", tmp_path / "clean.png"))
    assert _pixels_of(image, CLEAN) > 200
    assert _pixels_of(image, SNR0) == 0 and _pixels_of(image, SNR20) == 0


def test_stoi_robust_vs_baseline_figure_draws_both_trainings(results, tmp_path):
    metrics = read_metrics(results / "metrics.csv")
    image = _png(plot_robust_vs_baseline(metrics, tmp_path / "fig4.png"))
    # A grid of 2 archs x 4 conditions is wider than tall.
    assert image.shape[1] > image.shape[0]
    assert _pixels_of(image, ROBUST) > 200 and _pixels_of(image, BASELINE) > 200
    robust = [r for r in metrics if r.training != "baseline"]
    image = _png(plot_robust_vs_baseline(robust, tmp_path / "robust.png"))
    assert _pixels_of(image, ROBUST) > 200 and _pixels_of(image, BASELINE) == 0


def test_an_eer_is_drawn_in_percent(tmp_path):
    """Two EERs (fractions) on one line: the line spans most of the 0-50% axis,
    so it is drawn x100 (a fraction drawn as is would sit flat at the bottom)."""
    rows = [
        MetricRow("m", "blstm", "baseline", layer, "clean", "eer_ge2e", value)
        for layer, value in (("blstm1", 0.05), ("blstm5", 0.45))
    ]
    image = _png(plot_metric_vs_layer(rows, "eer_ge2e", tmp_path / "eer.png"))
    ys = np.nonzero(
        np.abs(np.round(image[..., :3] * 255) - [0x1B, 0x78, 0x37]).max(axis=-1) <= 4
    )[0]
    assert ys.max() - ys.min() > 0.3 * image.shape[0]


def test_figures_survive_missing_models_and_conditions(tmp_path):
    rows = [MetricRow("m", "blstm", "robust", "blstm2", "snr0", "stoi", 0.6, n=2)]
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
    # the mels are drawn with the magma colour map: its bright yellow is there
    assert _pixels_of(image, "#fcfdbf", tolerance=30) > 100


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


def test_the_report_draws_figure3_from_the_saved_mels(tmp_path):
    make_example_results(tmp_path, n_utts=1, conditions=("clean", "snr0"), seconds=0.2)
    build_report(tmp_path, verbose=False)
    _png(tmp_path / "figures" / "fig3_mel_grid.png")
    (tmp_path / "figure3_mels.npz").unlink()
    (tmp_path / "figures" / "fig3_mel_grid.png").unlink()
    page = build_report(tmp_path, verbose=False)
    # without the evaluation's mels there is no Figure 3 (no mel is recomputed)
    assert not (tmp_path / "figures" / "fig3_mel_grid.png").exists()
    assert "fig3_mel_grid.png" not in page.read_text()


def test_generic_models_are_drawn_in_their_own_layer_order(tmp_path):
    whisper = StudyModel(
        "whisper_tiny", ("cnn", "layer1", "layer2", "layer3", "layer4")
    )
    other = StudyModel("conformer", ("enc1", "enc2", "enc10"))
    info = StudyInfo((whisper, other), ("clean", "snr5"), ("ge2e",))
    rows = [
        MetricRow(m.name, "", "", layer, cond, "eer_ge2e", 0.05 + 0.1 * i + noisy)
        for m in (whisper, other)
        for cond, noisy in (("snr5", 0.04), ("clean", 0.0))
        for i, layer in enumerate(m.layers)
    ]
    rows.append(MetricRow("", "", "", "copy_synthesis", "clean", "eer_ge2e", 0.03))
    panels = layer_curves(rows, "eer_ge2e", info)
    assert [p["model"].name for p in panels] == ["whisper_tiny", "conformer"]
    # cnn stays first (layer_sort_key would put it after layer4) and enc10 last
    assert panels[0]["layers"] == list(whisper.layers)
    assert panels[1]["layers"] == ["enc1", "enc2", "enc10"]
    assert list(panels[0]["lines"]) == ["clean", "snr5"]
    assert panels[0]["lines"]["clean"][1] == pytest.approx([5, 15, 25, 35, 45])
    assert panels[0]["copy_synthesis"] == {"clean": pytest.approx(3.0)}
    image = _png(plot_layer_curves(rows, "eer_ge2e", tmp_path / "eer.png", info))
    assert _pixels_of(image, CLEAN) > 200
    assert image.shape[1] > image.shape[0]  # two panels side by side


def test_a_paper_study_without_a_robust_model_still_plots_stoi_and_pesq(tmp_path):
    # the quick demo's study: one baseline model, so no Figure 4 to carry them
    from speechbrain_probe.report import build_report
    from speechbrain_probe.study_info import StudyModel
    from speechbrain_probe.vocabulary import ARCH_LAYERS
    from tests.example_results import make_example_results

    only = StudyModel(
        "vgg_lstm_baseline", ARCH_LAYERS["vgg_lstm"], "vgg_lstm", "baseline"
    )
    make_example_results(
        tmp_path,
        n_utts=1,
        conditions=("clean", "snr0"),
        seconds=0.2,
        missing=(),
        nan_cells=(),
        models=[only],
    )
    page = build_report(tmp_path, verbose=False).read_text()
    figures = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert "stoi_vs_layer.png" in figures and "pesq_vs_layer.png" in figures
    assert not any(name.startswith("fig4_") for name in figures)
    assert 'src="figures/stoi_vs_layer.png"' in page
