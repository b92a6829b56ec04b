"""Tables of the report: layout, values, missing cells, bad input.

Expected cells are literal strings (not built with the formatter under test);
the study-shaped files are written through :mod:`speechbrain_probe.result_rows`
in the layout ``run_study`` writes (see ``tests/example_results.py``).
"""

import csv

import pytest

from speechbrain_probe.report.result_tables import layer_tables, table1, table2
from speechbrain_probe.report.table import MISSING
from speechbrain_probe.result_rows import (
    AsrResult,
    MetricRow,
    read_asr_results,
    read_metrics,
    write_asr_results,
    write_metrics,
)
from speechbrain_probe.study_info import StudyInfo, StudyModel
from speechbrain_probe.vocabulary import CONDITIONS, condition_label
from tests.example_results import EXAMPLE_MODELS, make_example_results

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
#: Table 2's row blocks: every study condition (clean, 20, 10, 5 and 0 dB)
CONDITION_LABEL = {c: condition_label(c) for c in CONDITIONS}
PAPER_ROWS = [
    [snr, training]
    for snr in CONDITION_LABEL.values()
    for training in ("robust", "baseline")
]
ARCH_LABEL = {"vgg_lstm": "VGG-LSTM", "blstm": "pure-LSTM"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    out = make_example_results(folder, seed=3, n_utts=1, seconds=0.1)
    return folder, out


def _row(layer, value, low=None, high=None, metric="eer_ge2e", **kw):
    base = dict(
        model="vgg_lstm_baseline",
        arch="vgg_lstm",
        training="baseline",
        condition="clean",
        n=60,
    )
    base.update(kw)
    return MetricRow(
        base["model"],
        base["arch"],
        base["training"],
        layer,
        base["condition"],
        metric,
        value,
        low,
        high,
        base["n"],
    )


def cell(table, row_label, column) -> str:
    """The cell of ``table`` at a row (tuple of labels) and a ``(group, name)`` column."""
    i = [tuple(r) for r in table.row_labels].index(tuple(row_label))
    j = [tuple(c) for c in table.columns].index(tuple(column))
    return table.cells[i][j]


def _number(cell):
    """The value a cell shows (its first number), parsed back."""
    return float(cell.split()[0])


def test_table2_layout_matches_the_paper(results):
    folder, _ = results
    table = table2(read_metrics(folder / "metrics.csv"), "stoi")
    assert table.columns == PAPER_COLUMNS
    assert table.row_labels == PAPER_ROWS
    assert table.row_header == ["SNR", "ASR training"]
    assert all(len(row) == len(PAPER_COLUMNS) for row in table.cells)


def test_table2_cells_from_a_written_metrics_file(tmp_path):
    rows = [
        _row("cnn1", 0.04471, 0.039, 0.051),
        _row("blstm3", 0.3287, 0.3010, 0.35519),
        _row("blstm5", 0.48126),
        _row("cnn1", 0.71, 0.69, 0.73, metric="stoi", condition="snr0"),
        _row("cnn1", 1.2349, metric="pesq", training="robust", model="vgg_lstm_robust"),
        _row("cnn1", 0.51234, metric="mindcf_ge2e"),
    ]
    metrics = read_metrics(write_metrics(tmp_path / "metrics.csv", rows))
    eer = table2(metrics, "eer_ge2e")
    assert cell(eer, ("clean", "baseline"), ("VGG-LSTM", "cnn1")) == "4.47 [3.90, 5.10]"
    assert (
        cell(eer, ("clean", "baseline"), ("VGG-LSTM", "blstm3"))
        == "32.87 [30.10, 35.52]"
    )
    assert cell(eer, ("clean", "baseline"), ("VGG-LSTM", "blstm5")) == "48.13"
    assert cell(eer, ("clean", "robust"), ("VGG-LSTM", "cnn1")) == MISSING
    assert eer.title == (
        "Table 2 layout: EER (%), GE2E verifier of speech reconstructed from each layer"
    )
    assert "metrics.csv holds fractions; shown here x100." in eer.notes
    assert "n per cell: 60." in eer.notes
    stoi = table2(metrics, "stoi")
    assert (
        cell(stoi, ("0 dB", "baseline"), ("VGG-LSTM", "cnn1")) == "0.710 [0.690, 0.730]"
    )
    assert not any("x100" in note for note in stoi.notes)
    pesq = table2(metrics, "pesq")
    assert cell(pesq, ("clean", "robust"), ("VGG-LSTM", "cnn1")) == "1.23"
    mindcf = table2(metrics, "mindcf_ge2e")
    assert cell(mindcf, ("clean", "baseline"), ("VGG-LSTM", "cnn1")) == "0.512"
    assert mindcf.to_csv().splitlines()[2].split(",")[:3] == [
        "clean",
        "baseline",
        "0.512",
    ]


def test_table2_shows_5_db_only_where_a_study_ran_it():
    paper = [_row("cnn1", 0.7, metric="stoi", condition=c) for c in ("clean", "snr0")]
    blocks = [label for label, _ in table2(paper, "stoi").row_labels[::2]]
    assert blocks == ["clean", "20 dB", "10 dB", "0 dB"]  # the paper's, dashes kept
    with_5 = table2(
        paper + [_row("cnn1", 0.6, metric="stoi", condition="snr5")], "stoi"
    )
    assert [label for label, _ in with_5.row_labels[::2]] == [
        "clean",
        "20 dB",
        "10 dB",
        "5 dB",
        "0 dB",
    ]
    assert cell(with_5, ("5 dB", "baseline"), ("VGG-LSTM", "cnn1")) == "0.600"


@pytest.mark.parametrize("metric", ["eer_ge2e", "eer_ecapa", "stoi", "pesq"])
def test_table2_shows_every_value_of_the_study_files(results, metric):
    folder, _ = results
    table = table2(read_metrics(folder / "metrics.csv"), metric)
    scale = 100.0 if metric.startswith("eer") else 1.0
    checked = 0
    with open(folder / "metrics.csv", newline="") as handle:
        raw_rows = [r for r in csv.DictReader(handle) if r["metric"] == metric]
    for raw in raw_rows:
        if raw["layer"] in ("original", "copy_synthesis"):
            assert raw["model"] == ""  # run_study's references have no model
            column = ("reference", raw["layer"].replace("_", " "))
            rows = [
                (CONDITION_LABEL[raw["condition"]], t) for t in ("robust", "baseline")
            ]
        else:
            column = (ARCH_LABEL[raw["arch"]], raw["layer"])
            rows = [(CONDITION_LABEL[raw["condition"]], raw["training"])]
        for row in rows:
            shown = cell(table, row, column)
            if raw["value"] == "":
                assert shown == MISSING
                continue
            assert _number(shown) == pytest.approx(
                float(raw["value"]) * scale, abs=0.006
            )
            low, high = shown.split("[")[1].rstrip("]").split(", ")
            assert float(low) == pytest.approx(float(raw["ci_low"]) * scale, abs=0.006)
            assert float(high) == pytest.approx(
                float(raw["ci_high"]) * scale, abs=0.006
            )
            checked += 1
    assert checked > 80


def test_missing_and_empty_cells_are_an_explicit_dash(results):
    folder, _ = results
    table = table2(read_metrics(folder / "metrics.csv"), "eer_ge2e")
    # make_example_results leaves vgg_lstm_robust/cnn2/snr10 out, writes no value
    # for blstm_baseline/blstm4/snr20.
    assert cell(table, ("10 dB", "robust"), ("VGG-LSTM", "cnn2")) == MISSING
    assert cell(table, ("20 dB", "baseline"), ("pure-LSTM", "blstm4")) == MISSING
    assert cell(table, ("10 dB", "baseline"), ("VGG-LSTM", "cnn2")) != MISSING
    for text in (table.to_csv(), table.to_markdown(), table.to_html()):
        assert "nan" not in text.lower()
    rows = list(csv.reader(table.to_csv().splitlines()))
    assert rows[0][:3] == ["SNR", "ASR training", "VGG-LSTM cnn1"]
    assert rows[5][2 + 1] == "-"  # 10 dB robust, VGG-LSTM cnn2
    assert '<td class="missing">-</td>' in table.to_html()


def test_a_condition_without_any_result_is_a_row_of_dashes(tmp_path):
    make_example_results(tmp_path, n_utts=1, conditions=("clean", "snr0"), seconds=0.1)
    table = table2(read_metrics(tmp_path / "metrics.csv"), "stoi")
    # the paper's four conditions; 5 dB (not the paper's) only where it ran
    assert table.row_labels == [row for row in PAPER_ROWS if row[0] != "5 dB"]
    row = table.row_labels.index(["10 dB", "robust"])
    assert set(table.cells[row]) == {"-"}
    assert "-" not in table.cells[table.row_labels.index(["0 dB", "robust"])]


def test_model_independent_reference_rows_fill_every_training():
    rows = [
        MetricRow("", "", "", "copy_synthesis", "clean", "stoi", 0.91, n=10),
        MetricRow("", "", "", "original", "clean", "eer_ge2e", 0.0212, 0.01, 0.03, 10),
    ]
    table = table2(rows, "stoi")
    for training in ("robust", "baseline"):
        assert (
            cell(table, ("clean", training), ("reference", "copy synthesis")) == "0.910"
        )
    assert cell(table, ("clean", "robust"), ("reference", "original")) == "-"
    eer = table2(rows, "eer_ge2e")
    assert (
        cell(eer, ("clean", "baseline"), ("reference", "original"))
        == "2.12 [1.00, 3.00]"
    )


def test_an_eer_is_a_fraction_shown_in_percent():
    rows = [_row("cnn1", 0.0447), _row("blstm5", 0.4812)]
    table = table2(rows, "eer_ge2e")
    assert cell(table, ("clean", "baseline"), ("VGG-LSTM", "cnn1")) == "4.47"
    assert cell(table, ("clean", "baseline"), ("VGG-LSTM", "blstm5")) == "48.12"
    assert table.values[1][0] == pytest.approx(4.47)


def test_layers_outside_the_layout_are_named_not_dropped_silently():
    rows = [
        _row("cnn3", 0.8, metric="stoi", model="m", training="robust"),
        _row("blstm2", 0.7, metric="stoi", model="x", arch="crdnn", training="robust"),
        _row("cnn1", 0.6, metric="stoi", model="x", arch="crdnn", training="robust"),
    ]
    table = table2(rows, "stoi")
    assert any("vgg_lstm/cnn3" in note for note in table.notes)
    assert table.columns[-4:-2] == [("crdnn", "cnn1"), ("crdnn", "blstm2")]
    assert cell(table, ("clean", "robust"), ("crdnn", "blstm2")) == "0.700"


def test_two_models_for_one_cell_is_a_clear_error():
    rows = [
        _row("cnn1", 0.8, metric="stoi", model="a", training="robust"),
        _row("cnn1", 0.6, metric="stoi", model="b", training="robust"),
    ]
    with pytest.raises(ValueError, match="models=") as err:
        table2(rows, "stoi")
    assert "'a'" in str(err.value) and "'b'" in str(err.value)
    table = table2(rows, "stoi", models=["b"])
    assert cell(table, ("clean", "robust"), ("VGG-LSTM", "cnn1")) == "0.600"


def test_table1_from_a_written_asr_results_file(tmp_path):
    rows = [
        AsrResult("blstm_robust", "blstm", "robust", "clean", 25.234, 10.5, 40),
        AsrResult(
            "vgg_lstm_baseline", "vgg_lstm", "baseline", "snr0", 61.0, 30.119, 40
        ),
        AsrResult(
            "vgg_lstm_baseline", "vgg_lstm", "baseline", "clean", 29.02, 12.5, 40
        ),
    ]
    asr = read_asr_results(write_asr_results(tmp_path / "asr_results.csv", rows))
    table = table1(asr)
    assert table.row_labels == [
        ["VGG-LSTM", "baseline", "vgg_lstm_baseline"],
        ["pure-LSTM", "robust", "blstm_robust"],
    ]
    assert table.columns == [
        ("clean", "WER"),
        ("clean", "CER"),
        ("0 dB", "WER"),
        ("0 dB", "CER"),
    ]
    assert table.cells == [
        ["29.02", "12.50", "61.00", "30.12"],
        ["25.23", "10.50", "-", "-"],
    ]
    assert table.notes == [
        "WER and CER in %; - marks a model/condition without a result.",
        "Utterances per condition: 40.",
    ]


def test_table1_of_the_study_files_has_every_model(results):
    folder, _ = results
    table = table1(read_asr_results(folder / "asr_results.csv"))
    assert [label[2] for label in table.row_labels] == list(EXAMPLE_MODELS)
    assert "-" not in {c for row in table.cells for c in row}


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
    rows = [_row("l1", 0.5, metric="stoi", model="m", arch="a|<b>", training="robust")]
    table = table2(rows, "stoi")
    assert "a\\|<b>" in table.to_markdown()
    html_text = table.to_html()
    assert "<b>" not in html_text and "a|&lt;b&gt;" in html_text


# --- a study of other models (no paper layout) ---------------------------------

WHISPER = StudyModel(
    "whisper_tiny",
    ("cnn", "layer1", "layer2", "layer3", "layer4"),
    source="openai/whisper-tiny",
    label="Whisper tiny",
)
WAV2VEC2 = StudyModel("wav2vec2", tuple(f"layer{i}" for i in range(1, 8)))


def test_a_generic_study_has_no_empty_row_or_column(tmp_path):
    out = make_example_results(
        tmp_path, n_utts=1, conditions=("clean", "snr5"), seconds=0.1, models=[WHISPER]
    )
    metrics = read_metrics(out["metrics"])
    [(suffix, table)] = layer_tables(metrics, "eer_ge2e", out["info"])
    assert suffix == ""
    assert [name for _, name in table.columns] == [
        "original",
        "copy synthesis",
        "cnn",  # the model's order: cnn first, never sorted after layer4
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]
    assert table.row_labels == [["Whisper tiny", "clean"], ["Whisper tiny", "5 dB"]]
    for j in range(len(table.columns)):
        assert any(row[j] != MISSING for row in table.cells), table.columns[j]
    assert all(set(row) != {MISSING} for row in table.cells)
    assert cell(table, ("Whisper tiny", "5 dB"), ("Whisper tiny", "cnn")) != MISSING
    assert any("openai/whisper-tiny" in note for note in table.notes)
    t1 = table1(read_asr_results(out["asr"]), info=out["info"])
    assert t1.row_labels == [["Whisper tiny", "whisper_tiny"]]
    assert [c for c, _ in t1.columns] == ["clean", "clean", "5 dB", "5 dB"]


def test_two_generic_models_with_their_own_layers(tmp_path):
    out = make_example_results(
        tmp_path,
        n_utts=1,
        conditions=("clean", "snr0"),
        seconds=0.1,
        models=[WHISPER, WAV2VEC2],
    )
    metrics = read_metrics(out["metrics"])
    # wav2vec2 was not evaluated at 0 dB: its row is left out, not dashed
    metrics = [
        r for r in metrics if not (r.model == "wav2vec2" and r.condition == "snr0")
    ]
    tables = layer_tables(metrics, "stoi", out["info"])
    assert [suffix for suffix, _ in tables] == ["_whisper_tiny", "_wav2vec2"]
    whisper, wav2vec2 = (t for _, t in tables)
    assert [n for _, n in whisper.columns][2:] == list(WHISPER.layers)
    assert [n for _, n in wav2vec2.columns][2:] == list(WAV2VEC2.layers)
    assert wav2vec2.row_labels == [["wav2vec2", "clean"]]
    assert whisper.row_labels == [["Whisper tiny", "clean"], ["Whisper tiny", "0 dB"]]
    # the same layers: one table, both models as rows
    twin = StudyModel("whisper_twin", WHISPER.layers)
    info = StudyInfo((WHISPER, twin), ("clean",), ())
    rows = [
        MetricRow(m.name, "", "", layer, "clean", "stoi", 0.5)
        for m in (WHISPER, twin)
        for layer in m.layers[:2]
    ]
    [(suffix, table)] = layer_tables(rows, "stoi", info)
    assert table.row_labels == [["Whisper tiny", "clean"], ["whisper_twin", "clean"]]
    assert [n for _, n in table.columns] == ["cnn", "layer1"]  # no empty column
