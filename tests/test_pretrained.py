"""Frozen ASRs from local directories: SpeechBrain exports and HF encoders, offline."""

import importlib.util
import math
import sys
import textwrap
from pathlib import Path

import pytest
import soundfile as sf
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_probe.frozen.hf_encoder import HFEncoderASR
from speechbrain_probe.frozen.list_layers import main as list_layers_main
from speechbrain_probe.frozen.load import load_asr
from speechbrain_probe.frozen.source import check_local, is_hub_id, resolve_source
from speechbrain_probe.vocabulary import ARCH_LAYERS
from tests.recipe_scripts import PROBE_RECIPE as RECIPE
from tests.recipe_scripts import load_recipe
from tests.user_inputs import tiny_wav2vec2, tiny_whisper


def recipe_main(argv):
    return load_recipe(RECIPE / "train_probe.py").main(argv)


EXPORT_YAML = textwrap.dedent(
    """\
    mel_config:
        n_mels: 40
        n_fft: 1024
    compute_features: !new:speechbrain_probe.features.ASRFeatures
        config: !ref <mel_config>
    rnn: !new:speechbrain.nnet.RNN.LSTM
        input_shape: [null, null, 120]
        hidden_size: 16
        num_layers: 2
        bidirectional: True
    lin: !new:speechbrain.nnet.linear.Linear
        input_size: 32
        n_neurons: 10
    encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
        compute_features: !ref <compute_features>
        rnn: !ref <rnn>
        lin: !ref <lin>
    tokenizer: !new:speechbrain.dataio.encoder.CTCTextEncoder
    decoding_function: !name:speechbrain.decoders.ctc_greedy_decode
        blank_id: 0
    modules:
        encoder: !ref <encoder>
    pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
        loadables:
            encoder: !ref <encoder>
    probe_layers:
        feats: encoder.compute_features
        rnn1: encoder.rnn.rnn.l0
        rnn2: encoder.rnn.rnn.l1
    """
)


def refuse_downloads(monkeypatch):
    """Make any attempt to reach a hub fail the test."""
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(
        "speechbrain.utils.fetching.huggingface_hub.hf_hub_download", refuse
    )


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach a hub fails the test."""
    refuse_downloads(monkeypatch)


def make_export(directory: Path) -> Path:
    """A SpeechBrain pretrained-format directory of a tiny CTC encoder."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hyperparams.yaml").write_text(EXPORT_YAML)
    torch.manual_seed(0)
    hp = load_hyperpyyaml(EXPORT_YAML)
    torch.save(hp["encoder"].state_dict(), directory / "encoder.ckpt")
    return directory


def probe_args(export, data, out, epochs=1) -> list[str]:
    """train_probe.py's arguments: probe ``rnn1`` of ``export``, clean training."""
    return [
        str(RECIPE / "hparams" / "blstm3.yaml"),
        "--skip_prep=True",
        f"--asr_source={export}",
        f"--data_folder={data}",
        f"--output_folder={out}",
        "--layers=[rnn1]",
        "--noisy_training=False",
        f"--number_of_epochs={epochs}",
        "--batch_size=3",
    ]


def write_corpus(folder: Path, n=6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, offset in (("train", 0), ("dev", 100)):
        rows = ["ID,duration,wav,spk_id,wrd"]
        for i in range(n):
            dur = 0.4 + 0.1 * i
            t = torch.arange(int(dur * 16000)) / 16000
            wav = 0.3 * torch.sin(2 * math.pi * (150 + 30 * i + offset) * t)
            path = folder / f"{split}{i}.wav"
            sf.write(path, wav.numpy(), 16000)
            rows.append(f"{split}{i},{dur:.2f},{path},spk{i % 2},HELLO")
        (folder / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_export_dir_loads_offline_and_declares_layers(tmp_path, no_network):
    export = make_export(tmp_path / "asr")
    asr = load_asr(export)
    assert asr.kind == "speechbrain" and list(asr.layers) == ["feats", "rnn1", "rnn2"]
    assert asr.mel_config.n_mels == 40 and asr.mel_config.n_fft == 1024
    geo = {n: asr.geometry(n) for n in asr.layers}
    assert (geo["feats"].dim, geo["feats"].downsample) == (120, 1.0)
    assert (geo["rnn1"].dim, geo["rnn2"].downsample) == (32, 1.0)
    wavs = torch.randn(2, 8000) * 0.1
    lens = torch.tensor([1.0, 0.5])
    states = asr.hidden_states(wavs, lens, ["rnn1", "rnn2"])
    assert states["rnn1"].shape == (2, 41, 32)
    # the recomputed top layer equals what the stacked module gives
    with torch.no_grad():
        feats = asr.pretrained.mods.encoder.compute_features(wavs)
        top, _ = asr.pretrained.mods.encoder.rnn(feats, lengths=lens)
    assert torch.allclose(states["rnn2"], top, atol=1e-5)
    with pytest.raises(KeyError, match="available: feats rnn1 rnn2"):
        asr.hidden_states(wavs, lens, ["blstm7"])
    # the declared layers are the defaults, in their order
    assert asr.default_layers() == ["feats", "rnn1", "rnn2"]
    assert asr.validate_layers(["encoder.rnn.rnn.l0"]) == ["rnn1"]


def test_missing_local_sources_never_reach_the_network(
    tmp_path, no_network, monkeypatch
):
    for bad in [tmp_path / "nope", "./no/such/asr", "results/asr/vgg/export"]:
        with pytest.raises(FileNotFoundError, match="does not exist"):
            load_asr(bad)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exported").mkdir()
    with pytest.raises(FileNotFoundError, match="neither hyperparams.yaml"):
        load_asr(tmp_path / "exported")


def test_hub_ids_and_local_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert is_hub_id("speechbrain/asr-crdnn-rnnlm-librispeech")
    assert resolve_source("speechbrain/spkrec-ecapa-voxceleb") == (
        "speechbrain/spkrec-ecapa-voxceleb",
        False,
    )
    for local in ["./a/b", "/a/b", "~/a/b", "a/b/c", "a", Path("a/b")]:
        assert not is_hub_id(local), local
    with pytest.raises(ValueError, match="hub id, not a local directory"):
        check_local("speechbrain/asr-crdnn-rnnlm-librispeech")
    folder = tmp_path / "asr"
    folder.mkdir()
    (folder / "notes.txt").write_text("")
    assert check_local("asr") == folder.resolve()
    assert resolve_source(folder, needs="") == (str(folder.resolve()), True)
    with pytest.raises(FileNotFoundError, match="has no hyperparams.yaml"):
        resolve_source(folder)
    with pytest.raises(FileNotFoundError, match="is a file"):
        resolve_source(folder / "notes.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_local("missing")


def load_ecapa(source):
    from speechbrain_probe.metrics.speaker import ECAPAVerifier

    return ECAPAVerifier(source, device="cpu")


@pytest.mark.parametrize("load", [load_asr, load_ecapa], ids=["asr", "ecapa"])
def test_owner_slash_name_under_an_existing_folder_is_a_missing_local_folder(
    load, tmp_path, monkeypatch, no_network
):
    """``exported/vgg`` reads like a hub id, but ``exported/`` exists here: a
    local folder that does not exist, never a download."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exported").mkdir()
    assert not is_hub_id("exported/vgg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load("exported/vgg")
    assert is_hub_id("elsewhere/vgg")  # without the folder: a hub id


def test_cli_lists_layers(tmp_path, capsys, no_network):
    export = make_export(tmp_path / "asr")
    assert list_layers_main([str(export)]) == 0
    out = capsys.readouterr().out
    assert "rnn1" in out and "encoder.rnn.rnn.l0" in out and "downsample" in out
    list_layers_main([str(export), "--all"])
    out = capsys.readouterr().out
    assert "encoder.lin" in out and "encoder.rnn.rnn.l1" in out


def test_train_probe_recipe_on_local_export(tmp_path, no_network, monkeypatch):
    export = make_export(tmp_path / "asr")
    data = write_corpus(tmp_path / "data")
    out = tmp_path / "out"
    argv = [*probe_args(export, data, out), "--device=cpu"]
    monkeypatch.setattr(sys, "argv", ["train_probe.py", *argv])
    losses = recipe_main(argv)
    assert set(losses) == {"rnn1"} and 0 < losses["rnn1"] < 1
    table = (out / "valid_l1.csv").read_text().splitlines()
    assert table[0].startswith("asr_source,layer,path") and ",rnn1," in table[1]
    assert list((out / "save").glob("CKPT+*/probe_identity.ckpt"))
    # the same output folder with another layer is refused, not silently mixed
    from speechbrain_probe.probe.identity import ProbeMismatchError

    with pytest.raises(ProbeMismatchError, match="holds layers"):
        recipe_main([*argv[:-5], "--layers=[rnn2]", *argv[-4:]])


def test_train_probe_resumes_after_sigkill(tmp_path):
    """A real kill -9 of train_probe.py, then the same command: it goes on.

    The kill may land while a checkpoint is being written (``CKPT.yaml``
    there, ``counter.ckpt`` still empty): only complete checkpoints count,
    judged by the project's marker as the resume judges them."""
    import os
    import signal
    import subprocess
    import time

    from speechbrain_probe.checkpoints import checkpoint_is_complete

    export = make_export(tmp_path / "asr")
    data = write_corpus(tmp_path / "data", n=3)
    out = tmp_path / "out"

    def command(epochs):
        script = str(RECIPE / "train_probe.py")
        return [sys.executable, script, *probe_args(export, data, out, epochs)]

    def complete_checkpoints():
        return [c for c in (out / "save").glob("CKPT+*") if checkpoint_is_complete(c)]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        command(1000), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    try:
        while not complete_checkpoints() and time.time() < deadline:
            assert proc.poll() is None, (
                "train_probe.py stopped before its first checkpoint"
            )
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ckpts = complete_checkpoints()
    assert ckpts, "no complete checkpoint within 120 s"
    done = max(int((c / "counter.ckpt").read_text()) for c in ckpts)
    logged = (out / "train_log.txt").read_text().count("epoch:")
    assert logged >= done >= 1
    result = subprocess.run(
        command(done + 1), env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-6000:]
    log = (out / "train_log.txt").read_text().splitlines()
    epochs = [
        int(line.split("epoch: ")[1].split(",")[0]) for line in log if "epoch:" in line
    ]
    assert epochs[-1] == done + 1  # resumed after the saved epoch, not from scratch
    assert epochs.count(1) == 1
    assert "valid_l1 rnn1" in result.stdout


def test_probe_hparams_name_the_paper_layers_of_the_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the Checkpointer creates its folder on load
    for name, arch, layers, folder in (
        ("blstm3.yaml", "vgg_lstm", ["blstm3"], "vgg_lstm_baseline/blstm3"),
        ("all_layers.yaml", "blstm", "paper", "blstm_baseline/all_layers"),
    ):
        with open(RECIPE / "hparams" / name, encoding="utf-8") as fin:
            hp = load_hyperpyyaml(fin, {"arch": arch})
        assert hp["layers"] == layers
        assert hp["output_folder"] == f"results/{folder}"
        # the YAML's paper layers are the study's (the tables' columns)
        assert {k: tuple(v) for k, v in hp["paper_layers"].items()} == dict(ARCH_LAYERS)


def test_train_probe_names_the_command_that_makes_a_missing_asr(tmp_path):
    data = write_corpus(tmp_path / "data")
    with pytest.raises(
        FileNotFoundError,
        match=r"python train_asr.py hparams/blstm.yaml --training=robust",
    ):
        recipe_main(
            [
                str(RECIPE / "hparams" / "blstm3.yaml"),
                "--skip_prep=True",
                f"--data_folder={data}",
                f"--asr_folder={tmp_path / 'no_asr_here'}",
                "--arch=blstm",
                "--training=robust",
                f"--output_folder={tmp_path / 'out'}",
            ]
        )


# --------------------------------------------------------------------------
# Hugging Face encoders, built tiny and random with save_pretrained (no download)
# --------------------------------------------------------------------------

#: the Hugging Face tests need the hf extra; the rest of this module (and the
#: modules importing its helpers) does not
needs_hf = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None,
    reason="the hf extra is not installed",
)


@needs_hf
@pytest.mark.parametrize("cls", ["Wav2Vec2", "Hubert"])
def test_hf_ssl_encoder_layers(tmp_path, cls, no_network):
    asr = load_asr(tiny_wav2vec2(tmp_path / cls.lower(), cls))
    assert isinstance(asr, HFEncoderASR)
    assert list(asr.layers) == ["cnn", "layer1", "layer2"]
    geo = asr.geometry("layer2")
    assert geo.dim == 16 and geo.downsample == pytest.approx(1.6)  # 20 ms vs 12.5 ms
    wavs = torch.randn(2, 16000) * 0.1
    states = asr.hidden_states(
        wavs, torch.tensor([1.0, 0.5]), ["cnn", "layer1", "layer2"]
    )
    assert states["layer2"].shape == (2, 49, 16) and states["cnn"].shape == (2, 49, 8)
    # each transformer layer is its own representation
    assert not torch.allclose(states["layer1"], states["layer2"])
    reports = asr.measure()
    assert [r.name for r in reports] == ["cnn", "layer1", "layer2"]
    assert asr.default_layers() == ["cnn", "layer1", "layer2"]
    assert asr.validate_layers(None) == ["cnn", "layer1", "layer2"]


@needs_hf
def test_whisper_padding_is_cut_and_long_audio_is_windowed(tmp_path, no_network):
    asr = load_asr(tiny_whisper(tmp_path / "whisper"))  # window: 100 mel frames = 1 s
    assert list(asr.layers) == ["cnn", "layer1", "layer2"]
    assert asr.geometry("layer1").downsample == pytest.approx(1.6)
    wavs = torch.randn(2, 12000) * 0.1
    states = asr.hidden_states(wavs, torch.tensor([1.0, 0.5]), ["layer2"])
    # 0.75 s at 20 ms per frame, not the 50 frames of the padded window
    assert states["layer2"].shape == (2, 38, 16)
    long = torch.randn(1, 40000) * 0.1  # 2.5 s: three windows
    frames = asr.hidden_states(long, torch.ones(1), ["layer1"])["layer1"]
    assert frames.shape[1] == 50 + 50 + 25
    # the probe target and the hidden frames cover the same time span
    from speechbrain_probe.features import LogMelSpectrogram
    from speechbrain_probe.probe.model import FrameAligner

    target = LogMelSpectrogram(asr.mel_config)(wavs)
    geo = asr.geometry("layer2")
    source = FrameAligner(geo.downsample, geo.offset).source(target.shape[1], 38)
    assert int(source[-1]) == 37 and int(source[0]) == 0


def train_probes_a_few_steps(asr, probes, steps=3):
    """ProbeBrain on a handful of random utterances; the per-layer L1 losses."""
    from speechbrain.dataio.batch import PaddedBatch
    from speechbrain.utils.epoch_loop import EpochCounter

    from speechbrain_probe.probe.brain import ProbeBrain

    brain = ProbeBrain(
        asr,
        list(probes),
        modules=probes,
        opt_class=lambda p: torch.optim.Adam(p, lr=3e-3),
        run_opts={"device": "cpu"},
    )
    gen = torch.Generator().manual_seed(0)
    items = [
        {"id": f"u{i}", "sig": 0.1 * torch.randn(6000 + 800 * i, generator=gen)}
        for i in range(2 * steps)
    ]
    batches = torch.utils.data.DataLoader(items, batch_size=2, collate_fn=PaddedBatch)
    before = {n: p.clone() for n, p in probes.named_parameters()}
    brain.fit(EpochCounter(1), batches, batches)
    changed = any(not torch.equal(before[n], p) for n, p in probes.named_parameters())
    assert changed, "the probes did not train"
    return brain.layer_losses()


@needs_hf
def test_probe_trains_on_hf_encoder_with_fractional_frame_rate(tmp_path, no_network):
    from speechbrain_probe.probe.inference import reconstruct_mel
    from speechbrain_probe.probe.model import build_probes

    asr = load_asr(tiny_wav2vec2(tmp_path / "w2v"))
    probes = build_probes(asr, ["layer1", "layer2"])
    assert probes["layer1"].r == 2  # 1.6 target frames per hidden frame
    losses = train_probes_a_few_steps(asr, probes)
    assert all(math.isfinite(v) for v in losses.values())
    wavs = 0.1 * torch.randn(2, 7000, generator=torch.Generator().manual_seed(1))
    mels = reconstruct_mel(asr, probes, wavs, torch.tensor([1.0, 6 / 7]))
    assert mels["layer2"].shape == (2, 1 + 7000 // 200, 80)


@needs_hf
def test_whisper_trim_window_is_an_explicit_option(tmp_path, no_network):
    directory = tiny_whisper(tmp_path / "whisper")  # window: 1 s
    full = load_asr(directory)
    trim = load_asr(directory, whisper_window="trim")
    assert (full.whisper_window, trim.whisper_window) == ("full", "trim")
    with pytest.raises(
        ValueError, match="whisper_window='half'; choose one of full trim"
    ):
        HFEncoderASR(directory, whisper_window="half")
    gen = torch.Generator().manual_seed(0)
    wavs = torch.randn(2, 12000, generator=gen) * 0.1
    lens = torch.tensor([1.0, 0.5])
    names = ["cnn", "layer1", "layer2"]
    a = full.hidden_states(wavs, lens, names)
    b = trim.hidden_states(wavs, lens, names)
    for n in names:
        assert a[n].shape == b[n].shape == (2, 38, 16)
    # the conv front end sees the same audio; attention layers see no padding
    # when trimmed, so their frames differ (by how much: bench_whisper.py)
    assert torch.allclose(a["cnn"][0, :30], b["cnn"][0, :30], atol=1e-4)
    assert not torch.allclose(a["layer2"], b["layer2"], atol=1e-3)
    # trimmed, an utterance's frames do not depend on the rest of its batch
    alone = trim.hidden_states(wavs[1:, :6000], torch.ones(1), names)
    for n in names:
        assert torch.allclose(b[n][1, :19], alone[n][0], atol=1e-4)
    # a full window is the same computation in both modes
    one = torch.randn(1, 16000, generator=gen) * 0.1
    x = full.hidden_states(one, torch.ones(1), ["layer2"])["layer2"]
    y = trim.hidden_states(one, torch.ones(1), ["layer2"])["layer2"]
    assert torch.allclose(x, y, atol=1e-5)
    # long audio: windows of all utterances batched, frames concatenated back
    long = torch.randn(2, 40000, generator=gen) * 0.1  # 2.5 s and 1.5 s
    for asr in (full, trim):
        h = asr.hidden_states(long, torch.tensor([1.0, 0.6]), ["layer1"])["layer1"]
        assert h.shape == (2, 50 + 50 + 25, 16)
        assert torch.all(h[1, 75:] == 0)  # after the second utterance's end
        alone = asr.hidden_states(long[1:, :24000], torch.ones(1), ["layer1"])
        assert torch.allclose(h[1, :75], alone["layer1"][0], atol=1e-5)
