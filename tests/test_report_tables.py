"""Tables of the report: layout, values, missing cells, bad input."""

import csv

import pytest

from speechbrain_probe.report.example import EXAMPLE_MODELS, make_example_results
from speechbrain_probe.report.results import (
    ARCH_LAYERS,
    read_asr_results,
    read_metrics,
    read_samples,
)
from speechbrain_probe.report.tables import MISSING, format_cell, table1, table2

PAPER_COLUMNS = [
    ("VGG-LSTM", "cnn1"),
    ("VGG-LSTM", "cnn2"),
    ("VGG-LSTM", "cnn4"),
    ("VGG-LSTM", "blstm1"),
    ("VGG-LSTM", "blstm3"),
    ("VGG-LSTM", "blstm5"),
    ("pure-LSTM", "blstm1"),
    ("pure-LSTM", "blstm2"),
    ("pure-LSTM", "blstm3"),
    ("pure-LSTM", "blstm4"),
    ("pure-LSTM", "blstm5"),
    ("reference", "original"),
    ("reference", "copy synthesis"),
]
PAPER_ROWS = [
    [snr, training]
    for snr in ("clean", "20 dB", "10 dB", "0 dB")
    for training in ("robust", "baseline")
]
CONDITION_LABEL = {"clean": "clean", "snr20": "20 dB", "snr10": "10 dB", "snr0": "0 dB"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    out = make_example_results(folder, seed=3, n_utts=1, seconds=0.1)
    return folder, out


def _raw_rows(folder):
    with open(folder / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_table2_layout_matches_the_paper(results):
    folder, _ = results
    table = table2(read_metrics(folder / "metrics.csv"), "stoi")
    assert table.columns == PAPER_COLUMNS
    assert table.row_labels == PAPER_ROWS
    assert table.row_header == ["SNR", "ASR training"]
    assert all(len(row) == len(PAPER_COLUMNS) for row in table.cells)


@pytest.mark.parametrize("metric", ["eer_ge2e", "eer_ecapa", "stoi", "pesq"])
def test_table2_values_come_from_metrics_csv(results, metric):
    folder, _ = results
    table = table2(read_metrics(folder / "metrics.csv"), metric)
    arch_label = {"vgg_lstm": "VGG-LSTM", "blstm": "pure-LSTM"}
    checked = 0
    for raw in _raw_rows(folder):
        if raw["metric"] != metric or raw["layer"] in ("original", "copy_synthesis"):
            continue
        if raw["layer"] not in ARCH_LAYERS[raw["arch"]]:
            continue
        cell = table.cell(
            (CONDITION_LABEL[raw["condition"]], raw["training"]),
            (arch_label[raw["arch"]], raw["layer"]),
        )
        value = float(raw["value"])
        if value != value:  # nan in the file
            assert cell == MISSING
            continue
        scale = 100.0 if metric.startswith("eer") else 1.0  # example EERs are fractions
        digits = 3 if metric == "stoi" else 2
        expected = format_cell(
            value * scale,
            float(raw["ci_low"]) * scale,
            float(raw["ci_high"]) * scale,
            digits,
        )
        assert cell == expected
        assert "[" in cell and "nan" not in cell.lower()
        checked += 1
    assert checked > 80


def test_missing_and_nan_cells_are_an_explicit_dash(results):
    folder, _ = results
    table = table2(read_metrics(folder / "metrics.csv"), "eer_ge2e")
    # make_example_results leaves vgg_lstm_robust/cnn2/snr10 out, writes nan for
    # blstm_baseline/blstm4/snr20.
    assert table.cell(("10 dB", "robust"), ("VGG-LSTM", "cnn2")) == MISSING
    assert table.cell(("20 dB", "baseline"), ("pure-LSTM", "blstm4")) == MISSING
    assert table.cell(("10 dB", "baseline"), ("VGG-LSTM", "cnn2")) != MISSING
    for text in (table.to_csv(), table.to_markdown(), table.to_html()):
        assert "nan" not in text.lower()
    rows = list(csv.reader(table.to_csv().splitlines()))
    assert rows[0][:3] == ["SNR", "ASR training", "VGG-LSTM cnn1"]
    assert rows[5][2 + 1] == MISSING  # 10 dB robust, VGG-LSTM cnn2


def test_a_condition_without_any_result_is_a_row_of_dashes(tmp_path):
    make_example_results(tmp_path, n_utts=1, conditions=("clean", "snr0"), seconds=0.1)
    table = table2(read_metrics(tmp_path / "metrics.csv"), "stoi")
    assert table.row_labels == PAPER_ROWS
    row = table.row_labels.index(["10 dB", "robust"])
    assert set(table.cells[row]) == {MISSING}
    assert MISSING not in table.cells[table.row_labels.index(["0 dB", "robust"])][:11]


def test_reference_columns_prefer_the_rows_own_training(results):
    folder, _ = results
    rows = read_metrics(folder / "metrics.csv")
    table = table2(rows, "pesq")
    expected = next(
        r
        for r in rows
        if r["metric"] == "pesq"
        and r["layer"] == "copy_synthesis"
        and r["condition"] == "snr0"
        and r["model"] == "vgg_lstm_baseline"
    )
    cell = table.cell(("0 dB", "baseline"), ("reference", "copy synthesis"))
    assert cell == format_cell(
        expected["value"], expected["ci_low"], expected["ci_high"], 2
    )


def test_model_independent_reference_rows_fill_every_training(tmp_path):
    rows = [
        dict(model="", arch="", training="", layer="copy_synthesis", condition="clean",
             metric="stoi", value=0.91, ci_low=None, ci_high=None, n=10),
    ]  # fmt: skip
    table = table2(rows, "stoi")
    for training in ("robust", "baseline"):
        assert (
            table.cell(("clean", training), ("reference", "copy synthesis")) == "0.910"
        )
    assert table.cell(("clean", "robust"), ("reference", "original")) == MISSING


def test_percent_values_are_not_scaled_again():
    rows = [
        dict(model="m", arch="vgg_lstm", training="baseline", layer=layer,
             condition="clean", metric="eer_ge2e", value=value, ci_low=None,
             ci_high=None, n=10)
        for layer, value in (("cnn1", 4.47), ("blstm5", 48.12))
    ]  # fmt: skip
    table = table2(rows, "eer_ge2e")
    assert table.cell(("clean", "baseline"), ("VGG-LSTM", "cnn1")) == "4.47"
    assert not any("x100" in note for note in table.notes)
    fractions = [dict(r, value=r["value"] / 100) for r in rows]
    table = table2(fractions, "eer_ge2e")
    assert table.cell(("clean", "baseline"), ("VGG-LSTM", "blstm5")) == "48.12"
    assert any("x100" in note for note in table.notes)


def test_layers_outside_the_layout_are_named_not_dropped_silently():
    rows = [
        dict(model="m", arch="vgg_lstm", training="robust", layer="cnn3",
             condition="clean", metric="stoi", value=0.8, ci_low=None, ci_high=None, n=3),
        dict(model="x", arch="crdnn", training="robust", layer="blstm2",
             condition="clean", metric="stoi", value=0.7, ci_low=None, ci_high=None, n=3),
    ]  # fmt: skip
    table = table2(rows, "stoi")
    assert any("vgg_lstm/cnn3" in note for note in table.notes)
    assert ("crdnn", "blstm2") in table.columns
    assert table.cell(("clean", "robust"), ("crdnn", "blstm2")) == "0.700"


def test_two_models_for_one_cell_is_a_clear_error():
    base = dict(arch="vgg_lstm", training="robust", layer="cnn1", condition="clean",
                metric="stoi", ci_low=None, ci_high=None, n=3)  # fmt: skip
    rows = [dict(base, model="a", value=0.8), dict(base, model="b", value=0.6)]
    with pytest.raises(ValueError, match="models=") as err:
        table2(rows, "stoi")
    assert "'a'" in str(err.value) and "'b'" in str(err.value)
    table = table2(rows, "stoi", models=["b"])
    assert table.cell(("clean", "robust"), ("VGG-LSTM", "cnn1")) == "0.600"


def test_table1_rows_models_columns_conditions(results):
    folder, _ = results
    asr = read_asr_results(folder / "asr_results.csv")
    table = table1(asr)
    assert [label[2] for label in table.row_labels] == [
        "vgg_lstm_baseline",
        "vgg_lstm_robust",
        "blstm_baseline",
        "blstm_robust",
    ]
    assert table.columns[:4] == [
        ("clean", "WER"),
        ("clean", "CER"),
        ("20 dB", "WER"),
        ("20 dB", "CER"),
    ]
    for row in asr:
        label = (
            {"vgg_lstm": "VGG-LSTM", "blstm": "pure-LSTM"}[row["arch"]],
            row["training"],
            row["model"],
        )
        condition = CONDITION_LABEL[row["condition"]]
        assert table.cell(label, (condition, "WER")) == f"{row['wer']:.2f}"
        assert table.cell(label, (condition, "CER")) == f"{row['cer']:.2f}"
    assert len(EXAMPLE_MODELS) == len(table.row_labels)


def test_tables_written_as_csv_and_markdown(results, tmp_path):
    folder, _ = results
    table = table2(read_metrics(folder / "metrics.csv"), "eer_ge2e")
    paths = table.write(tmp_path / "tables", "t2")
    with open(paths["csv"], newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 1 + len(PAPER_ROWS)
    assert len(rows[0]) == 2 + len(PAPER_COLUMNS)
    md = paths["md"].read_text().splitlines()
    table_lines = [line for line in md if line.startswith("|")]
    assert len(table_lines) == 2 + len(PAPER_ROWS)
    assert all(line.count(" | ") == 1 + len(PAPER_COLUMNS) for line in table_lines[2:])


def test_markdown_and_html_escape_text():
    rows = [
        dict(model="m", arch="a|<b>", training="robust", layer="l1",
             condition="clean", metric="stoi", value=0.5, ci_low=None, ci_high=None, n=1)
    ]  # fmt: skip
    table = table2(rows, "stoi")
    assert "a\\|<b>" in table.to_markdown()
    html_text = table.to_html()
    assert "<b>" not in html_text and "a|&lt;b&gt;" in html_text


def test_bad_files_give_clear_errors(tmp_path):
    (tmp_path / "metrics.csv").write_text("model,arch,value\nm,a,1\n")
    with pytest.raises(ValueError, match="lacks column"):
        read_metrics(tmp_path / "metrics.csv")
    with pytest.raises(FileNotFoundError, match="run the evaluation"):
        read_asr_results(tmp_path / "nope.csv")
    (tmp_path / "samples.csv").write_text(
        "utt_id,spk_id,model,layer,condition,kind,path\nu,s,,,clean,bogus,a.wav\n"
    )
    with pytest.raises(ValueError, match="line 2: unknown kind 'bogus'"):
        read_samples(tmp_path / "samples.csv")
    header = "model,arch,training,layer,condition,metric,value,ci_low,ci_high,n\n"
    (tmp_path / "metrics.csv").write_text(header + "m,a,t,l,clean,stoi,zero,,,1\n")
    with pytest.raises(ValueError, match="line 2: not a number: 'zero'"):
        read_metrics(tmp_path / "metrics.csv")
