"""ASR encoders: named layers, dims, downsampling; export + offline reload."""

import numpy as np
import pytest
import soundfile as sf
import torch
from speechbrain.inference.ASR import EncoderASR
from speechbrain.processing.features import InputNormalization

from speechbrain_probe.asr.export import export_asr
from speechbrain_probe.asr.models import VGGLSTM, PureBLSTM, build_encoder
from speechbrain_probe.asr.tokenizer import train_tokenizer
from speechbrain_probe.features import ASRFeatures, MelConfig


def _capture(model, names, x):
    seen = {}
    hooks = [
        model.layer(n).register_forward_hook(
            lambda m, i, o, n=n: seen.__setitem__(n, o)
        )
        for n in names
    ]
    model(x)
    for h in hooks:
        h.remove()
    return seen


def test_vgg_lstm_layers_dims_and_downsampling():
    model = VGGLSTM(n_mels=80, cnn_channels=[8, 16], hidden_size=24).eval()
    names = [f"cnn{i}" for i in range(1, 5)] + [f"blstm{i}" for i in range(1, 6)]
    assert model.layer_names == names
    info = model.layer_info()
    expected = {
        "cnn1": (8 * 80, 1),
        "cnn2": (8 * 40, 2),
        "cnn3": (16 * 40, 2),
        "cnn4": (16 * 20, 4),
        **{f"blstm{i}": (48, 4) for i in range(1, 6)},
    }
    assert {n: (i.dim, i.downsample) for n, i in info.items()} == expected
    T = 101
    seen = _capture(model, names, torch.randn(2, T, 240))
    for n in names:
        out = seen[n]
        assert isinstance(out, torch.Tensor) and out.dim() == 3, n
        assert out.shape[2] == info[n].dim, n
        assert out.shape[1] == T // info[n].downsample, n
    assert model.output_frames(T) == seen["blstm5"].shape[1]


def test_pure_blstm_layers_dims_and_downsampling():
    model = PureBLSTM(input_dim=240, hidden_size=12).eval()
    names = [f"blstm{i}" for i in range(1, 6)]
    assert model.layer_names == names
    info = model.layer_info()
    assert [info[n].downsample for n in names] == [1, 1, 2, 4, 8]
    assert all(info[n].dim == 24 for n in names)
    T = 97
    seen = _capture(model, names, torch.randn(3, T, 240))
    assert [seen[n].shape[1] for n in names] == [97, 97, 48, 24, 12]
    assert model.output_frames(T) == 12


def test_padding_does_not_change_blstm_outputs():
    torch.manual_seed(0)
    model = PureBLSTM(hidden_size=8).eval()
    x = torch.randn(1, 64, 240)
    alone = model(x)
    padded = torch.cat([x, torch.zeros(1, 32, 240)], dim=1)
    batch = torch.cat([padded, torch.randn(1, 96, 240)])
    out = model(batch, lengths=torch.tensor([64 / 96, 1.0]))
    assert torch.allclose(out[0, : alone.shape[1]], alone[0], atol=1e-5)


def test_unknown_arch_and_layer_are_clear_errors():
    with pytest.raises(ValueError, match="unknown ASR architecture 'lstm9'"):
        build_encoder("lstm9")
    model = build_encoder("blstm", hidden_size=4)
    with pytest.raises(KeyError, match="unknown layer 'cnn1'.*blstm1 blstm2"):
        model.layer("cnn1")
    with pytest.raises(ValueError, match="expects \\[batch, time, 240\\]"):
        model(torch.randn(1, 20, 80))
    with pytest.raises(ValueError, match="shorter than the model's time reduction"):
        model(torch.randn(1, 5, 240))


@pytest.mark.parametrize("arch", ["vgg_lstm", "blstm"])
def test_export_reload_matches_live_model(tmp_path, arch):
    torch.manual_seed(1)
    csv_path = tmp_path / "train.csv"
    words = ["ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX"]
    rows = ["ID,duration,wav,spk_id,wrd"] + [
        f"u{i},1.0,x.wav,s,THE CAT NUMBER {w} SAT ON THE MAT"
        for i, w in enumerate(words)
    ]
    csv_path.write_text("\n".join(rows) + "\n")
    tok = train_tokenizer(str(csv_path), str(tmp_path / "tok"), vocab_size=22)
    vocab = tok.sp.vocab_size()
    kwargs = {"cnn_channels": [4, 8], "hidden_size": 16}
    if arch == "blstm":
        kwargs = {"hidden_size": 16}
    model = build_encoder(arch, **kwargs).eval()
    ctc_lin = torch.nn.Linear(model.output_dim, vocab)
    # make the output layer prefer real tokens so the transcript is non-trivial
    torch.nn.init.normal_(ctc_lin.weight, std=2.0)
    mel = MelConfig(hop_length_ms=10.0)
    feats = ASRFeatures(mel)
    norm = InputNormalization(norm_type="global")
    wav = torch.from_numpy(
        np.random.default_rng(0).standard_normal(24000) * 0.1
    ).float()
    wav = wav.unsqueeze(0)
    ones = torch.ones(1)
    norm(feats(wav), ones)  # one update of the global statistics
    norm.eval()
    with torch.no_grad():
        live = torch.log_softmax(ctc_lin(model(norm(feats(wav), ones), ones)), -1)
    out_dir = tmp_path / "export"
    export_asr(
        str(out_dir), model, ctc_lin, norm, tok.prefix_model_file + ".model", mel
    )

    asr = EncoderASR.from_hparams(source=str(out_dir), savedir=str(out_dir))
    with torch.no_grad():
        reloaded = asr.encode_batch(wav, ones)
    assert torch.allclose(reloaded, live, atol=1e-5)
    # the YAML carries what the probe needs, and the paths resolve to modules
    hp = asr.hparams
    assert hp.mel_config == mel.to_dict()
    assert list(hp.probe_layers) == model.layer_names
    for name, dotted in hp.probe_layers.items():
        module = asr.mods
        for part in dotted.split("."):
            module = getattr(module, part)
        assert module is asr.mods.encoder.model.layer(name)
        assert hp.layer_info[name]["dim"] == model.layer_info()[name].dim
    sf.write(tmp_path / "a.wav", wav[0].numpy(), 16000)
    text = asr.transcribe_file(str(tmp_path / "a.wav"))
    ids = live.argmax(-1)[0].tolist()
    collapsed = [t for j, t in enumerate(ids) if t != 0 and (j == 0 or ids[j - 1] != t)]
    assert text == tok.sp.decode_ids(collapsed)
