"""The study's data model: round trips, units, and refusals of bad files."""

from __future__ import annotations

import pytest

from speechbrain_probe.result_rows import (
    AsrResult,
    MetricRow,
    Sample,
    read_asr_results,
    read_metrics,
    read_samples,
    write_asr_results,
    write_metrics,
    write_samples,
)
from speechbrain_probe.study_info import (
    STUDY_INFO,
    StudyInfo,
    StudyModel,
    infer_study_info,
    read_study_info,
    write_study_info,
)
from speechbrain_probe.vocabulary import (
    ARCH_LAYERS,
    CONDITIONS,
    ModelId,
    condition_label,
    condition_snr_db,
    condition_sort_key,
    display_scale,
    layer_sort_key,
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
    # the paper's 20/10/0 dB plus 5 dB, clean first, then falling SNR
    assert CONDITIONS == ("clean", "snr20", "snr10", "snr5", "snr0")
    assert [condition_snr_db(c) for c in CONDITIONS] == [None, 20.0, 10.0, 5.0, 0.0]
    assert sorted(reversed(CONDITIONS), key=condition_sort_key) == list(CONDITIONS)


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
    assert back[0].value * display_scale("eer_ge2e") == 25.0


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


def test_any_snr_condition_is_shown_in_db():
    assert [condition_label(c) for c in ("clean", "snr20", "snr5", "snr-5")] == [
        "clean",
        "20 dB",
        "5 dB",
        "-5 dB",
    ]
    assert condition_snr_db("snr5") == 5.0 and condition_snr_db("clean") is None
    with pytest.raises(ValueError, match="'babble'"):
        condition_snr_db("babble")


WHISPER = StudyModel(
    "whisper_tiny",
    ("cnn", "layer1", "layer2", "layer3", "layer4"),
    source="openai/whisper-tiny",
    label="Whisper tiny",
)


def test_study_info_round_trip(tmp_path):
    info = StudyInfo(
        (
            WHISPER,
            StudyModel(
                "vgg_lstm_robust", ARCH_LAYERS["vgg_lstm"], "vgg_lstm", "robust"
            ),
        ),
        ("clean", "snr5", "snr-5"),
        ("ge2e", "ecapa"),
    )
    path = write_study_info(tmp_path / STUDY_INFO, info)
    assert path == tmp_path / "study.json"
    back = read_study_info(path)
    assert back == info
    assert back.models[0].layers == ("cnn", "layer1", "layer2", "layer3", "layer4")
    assert back.models[0].source == "openai/whisper-tiny"
    assert not back.is_paper_layout()
    assert StudyInfo(back.models[1:], ("clean",), ()).is_paper_layout()
    assert StudyModel("w", ["a"]).label == "w"  # label defaults to the name


@pytest.mark.parametrize(
    "text, says",
    [
        ("{not json", "Expecting property name"),
        ('{"conditions": ["clean"]}', "lacks models"),
        ('{"models": [], "conditions": ["loud"]}', "condition 'loud'"),
        ('{"models": [{"name": "m", "layers": "l1"}], "conditions": []}', "not a list"),
        (
            '{"models": [{"name": "m", "layers": [], "colour": 1}], "conditions": []}',
            "colour",
        ),
        ('{"models": [], "conditions": [], "version": 7}', "version 7"),
    ],
)
def test_a_bad_study_file_is_named(tmp_path, text, says):
    path = tmp_path / STUDY_INFO
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        read_study_info(path)
    assert str(path) in str(err.value) and says in str(err.value)


def test_study_info_inferred_from_the_rows_of_an_older_study():
    rows = [MetricRow("", "", "", "copy_synthesis", "snr5", "stoi", 0.9)]
    for condition in ("snr5", "clean"):
        for layer in ("cnn", "layer1", "layer2", "layer3", "layer4"):
            rows.append(MetricRow("w", "", "", layer, condition, "eer_ecapa", 0.2))
        for layer in ("blstm5", "cnn1"):
            rows.append(
                MetricRow("v", "vgg_lstm", "baseline", layer, condition, "stoi", 0.5)
            )
    samples = [Sample("u", "s", "x", "enc2", "snr0", "reconstruction", "a.wav")]
    info = infer_study_info(rows, samples)
    assert [m.name for m in info.models] == ["w", "v", "x"]
    # model order as written (never layer_sort_key: cnn stays before layer1)
    assert info.models[0].layers == ("cnn", "layer1", "layer2", "layer3", "layer4")
    assert info.models[1].layers == ("cnn1", "blstm5")  # the paper's order
    assert (info.models[1].arch, info.models[1].training) == ("vgg_lstm", "baseline")
    assert info.conditions == ("clean", "snr5", "snr0")
    assert info.verifiers == ("ecapa",)
    assert not info.is_paper_layout()
