"""The study's data model: round trips, units, and refusals of bad files."""

from __future__ import annotations

import pytest

from speechbrain_probe.study_data import (
    ARCH_LAYERS,
    CONDITION_SNR_DB,
    CONDITIONS,
    AsrResult,
    MetricRow,
    ModelId,
    Sample,
    format_value,
    layer_sort_key,
    read_asr_results,
    read_metrics,
    read_samples,
    write_asr_results,
    write_metrics,
    write_samples,
)


def test_model_id_round_trip():
    for arch in ARCH_LAYERS:
        for training in ("baseline", "robust"):
            model = ModelId(arch, training)
            assert ModelId.parse(model.name) == model
    assert ModelId("vgg_lstm", "robust").name == "vgg_lstm_robust"
    with pytest.raises(ValueError, match="vgg_lstm_fast"):
        ModelId.parse("vgg_lstm_fast")


def test_conditions_and_their_snr():
    assert CONDITIONS == ("clean", "snr20", "snr10", "snr0")
    assert [CONDITION_SNR_DB[c] for c in CONDITIONS] == [None, 20.0, 10.0, 0.0]


def test_layer_sort_key_orders_the_paper_layers():
    shuffled = ["blstm5", "copy_synthesis", "cnn4", "blstm10", "cnn1", "original"]
    assert sorted(shuffled, key=layer_sort_key) == [
        "original",
        "copy_synthesis",
        "cnn1",
        "cnn4",
        "blstm5",
        "blstm10",
    ]
    for layers in ARCH_LAYERS.values():
        assert sorted(layers, key=layer_sort_key) == list(layers)


def test_metrics_round_trip_keeps_eer_a_fraction(tmp_path):
    rows = [
        MetricRow(
            "m", "blstm", "robust", "blstm1", "clean", "eer_ge2e", 0.25, 0.2, 0.3, 60
        ),
        MetricRow("", "", "", "original", "snr0", "stoi", None, None, None, None),
    ]
    path = write_metrics(tmp_path / "metrics.csv", rows)
    assert path.read_text().splitlines() == [
        "model,arch,training,layer,condition,metric,value,ci_low,ci_high,n",
        "m,blstm,robust,blstm1,clean,eer_ge2e,0.25,0.2,0.3,60",
        ",,,original,snr0,stoi,,,,",
    ]
    back = read_metrics(path)
    assert back == rows
    assert back[0].value == 0.25
    assert format_value("eer_ge2e", back[0].value) == "25.0"


def test_asr_results_round_trip_in_percent(tmp_path):
    rows = [AsrResult("m", "vgg_lstm", "baseline", "snr0", 29.02, 12.5, 100)]
    path = write_asr_results(tmp_path / "asr_results.csv", rows)
    assert (
        path.read_text().splitlines()[1] == "m,vgg_lstm,baseline,snr0,29.02,12.50,100"
    )
    assert read_asr_results(path) == rows


def test_samples_round_trip_resolves_files(tmp_path):
    rows = [
        Sample(
            "u1", "s1", "", "", "clean", "original", "samples/clean/original/u1.wav"
        ),
        Sample("u1", "s1", "m", "cnn1", "snr0", "reconstruction", "samples/x/u1.wav"),
    ]
    back = read_samples(write_samples(tmp_path / "samples.csv", rows))
    assert back == rows
    assert back[1].file == (tmp_path / "samples" / "x" / "u1.wav").resolve()


@pytest.mark.parametrize(
    "reader, header, missing",
    [
        (
            read_metrics,
            "model,arch,training,layer,condition,metric,value",
            "ci_low,ci_high,n",
        ),
        (read_asr_results, "model,arch,training,condition,cer,n", "wer"),
        (read_samples, "utt_id,model,layer,condition,kind,path", "spk_id"),
    ],
)
def test_a_missing_column_names_the_file_and_columns(tmp_path, reader, header, missing):
    path = tmp_path / "results.csv"
    path.write_text(header + "\n")
    with pytest.raises(ValueError) as err:
        reader(path)
    assert str(path) in str(err.value)
    assert f"lacks column(s) {missing}" in str(err.value)


def test_bad_cells_name_the_line(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "model,arch,training,layer,condition,metric,value,ci_low,ci_high,n\n"
        "m,blstm,robust,blstm1,clean,stoi,abc,,,\n"
    )
    with pytest.raises(ValueError, match="line 2: not a number: 'abc'"):
        read_metrics(path)
    samples = tmp_path / "samples.csv"
    samples.write_text(
        "utt_id,spk_id,model,layer,condition,kind,path\nu,s,,,clean,noisy,a.wav\n"
    )
    with pytest.raises(ValueError, match="line 2: unknown kind 'noisy'"):
        read_samples(samples)
    with pytest.raises(FileNotFoundError, match="run the evaluation first"):
        read_metrics(tmp_path / "nope.csv")
