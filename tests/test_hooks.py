"""Forward hooks on frozen models: capture, removal, RNN unrolling, measuring."""

import re

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from speechbrain_probe.frozen.list_layers import main
from speechbrain_probe.hooks import (
    LayerCapture,
    block_paths,
    candidate_paths,
    forward_order,
    measure_layers,
    resolve_module,
    to_frames,
    to_tensor,
    unroll_rnn,
)


class Encoder(nn.Module):
    """Conv front end (time /2), a stacked BLSTM, a tuple-returning block."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(8, 16, 3, stride=2, padding=1)
        self.rnn = nn.LSTM(16, 6, num_layers=3, batch_first=True, bidirectional=True)
        self.attn = nn.MultiheadAttention(12, 2, batch_first=True)

    def forward(self, x):  # x: [B, 8, T]
        h = torch.relu(self.conv(x)).transpose(1, 2)
        h, _ = self.rnn(h)
        out, _weights = self.attn(h, h, h)
        return out


def test_capture_matches_forward_and_removes_hooks():
    net = Encoder().eval()
    x = torch.randn(2, 8, 20)
    with torch.no_grad():
        plain = net(x)
        with LayerCapture(net, {"conv": "conv", "attn": "attn", "top": "rnn"}) as cap:
            hooked = net(x)
        assert torch.equal(plain, hooked)
        assert cap["attn"].shape == (2, 10, 12)  # tuple output -> first tensor
        assert torch.equal(cap["attn"], plain)
        assert cap["top"].shape == (2, 10, 12)  # (out, (h, c)) -> out
    for module in net.modules():
        assert not module._forward_hooks


def test_hooks_removed_even_when_forward_fails():
    net = Encoder()
    with pytest.raises(RuntimeError):
        with LayerCapture(net, ["conv", "rnn.l1"]):
            net(torch.randn(2, 5, 20))  # wrong channel count
    assert all(not m._forward_hooks for m in net.modules())


def test_unknown_layer_lists_available():
    net = Encoder()
    with pytest.raises(KeyError, match="available: conv rnn attn"):
        LayerCapture(net, ["blstm7"])
    with pytest.raises(KeyError, match="available: l0 l1 l2"):
        resolve_module(net, "rnn.l3")
    assert not net.conv._forward_hooks


def test_half_precision_and_packed_sequences_become_float_padded():
    packed_out = nn.GRU(4, 5, batch_first=True)(
        pack_padded_sequence(
            torch.randn(2, 6, 4), torch.tensor([6, 3]), batch_first=True
        )
    )[0]
    padded = to_tensor(packed_out)
    assert padded.shape == (2, 6, 5) and padded.dtype == torch.float32
    assert torch.all(padded[1, 3:] == 0)
    half = to_tensor((torch.ones(2, 2, dtype=torch.bfloat16), None))
    assert half.dtype == torch.float32


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("batch_first", [True, False])
def test_stacked_rnn_unrolling_equals_stacked_output(cls, batch_first):
    rnn = cls(5, 7, num_layers=3, bidirectional=True, batch_first=batch_first).eval()
    x = torch.randn(4, 9, 5) if batch_first else torch.randn(9, 4, 5)
    with torch.no_grad():
        full, _ = rnn(x)
        layers = unroll_rnn(rnn, x)
    assert len(layers) == 3
    assert torch.allclose(layers[-1], full, atol=1e-5)
    assert not torch.allclose(layers[0], full, atol=1e-2)  # inner layers differ
    # initial states are sliced per layer as the stacked module does
    h0 = torch.randn(6, 4, 7)
    hx = (h0, torch.randn(6, 4, 7)) if cls is nn.LSTM else h0
    with torch.no_grad():
        assert torch.allclose(unroll_rnn(rnn, x, hx)[-1], rnn(x, hx)[0], atol=1e-5)


def test_stacked_rnn_unrolling_with_packed_input_and_capture():
    rnn = nn.LSTM(5, 4, num_layers=2, batch_first=True, proj_size=3).eval()
    x = torch.randn(3, 7, 5)
    packed = pack_padded_sequence(x, torch.tensor([7, 5, 2]), batch_first=True)
    with torch.no_grad():
        full = to_tensor(rnn(packed)[0])
        with LayerCapture(rnn, ["l0", "l1"]) as cap:
            rnn(packed)
    assert torch.allclose(cap["l1"], full, atol=1e-5)
    assert cap["l0"].shape == (3, 7, 3)
    assert torch.all(cap["l0"][2, 2:] == 0)  # padding stays padding


def one_layer_rnns(rnn):
    """The layers of a stacked RNN as separate one-layer modules of its class
    holding its weights: PyTorch's own RNN as the reference."""
    dirs = 2 if rnn.bidirectional else 1
    singles = []
    for i in range(rnn.num_layers):
        single = type(rnn)(
            rnn.input_size if i == 0 else rnn.hidden_size * dirs,
            rnn.hidden_size,
            batch_first=rnn.batch_first,
            bidirectional=rnn.bidirectional,
        )
        own = re.compile(rf"_l{i}(?=$|_)")
        single.load_state_dict(
            {own.sub("_l0", k): v for k, v in rnn.state_dict().items() if own.search(k)}
        )
        singles.append(single.eval())
    return singles


def test_captured_inner_rnn_layers_equal_one_layer_rnns():
    rnn = nn.GRU(5, 4, num_layers=3, batch_first=True, bidirectional=True).eval()
    x = torch.randn(2, 6, 5)
    with torch.no_grad():
        expected, h = [], x
        for single in one_layer_rnns(rnn):
            h = single(h)[0]
            expected.append(h)
        with LayerCapture(rnn, ["l0"]) as cap:
            rnn(x)
        assert torch.allclose(cap["l0"], expected[0], atol=1e-6)
        with LayerCapture(rnn, ["l2", "l1"]) as cap:
            out = rnn(x)[0]
    assert torch.allclose(cap["l1"], expected[1], atol=1e-6)
    assert torch.equal(cap["l2"], out)  # the top layer is the module's own output
    assert list(cap.outputs) == ["l1", "l2"]  # in the order the layers run


def test_inner_rnn_layer_is_recomputed_from_weights_not_copied():
    net = Encoder().eval()
    x = torch.randn(2, 8, 20)
    with torch.no_grad(), LayerCapture(net, {"b1": "rnn.l0"}) as cap:
        net(x)
        first = cap["b1"].clone()
        net.rnn.weight_ih_l0.mul_(0.5)  # the view follows the live weights
        net(x)
    assert not torch.allclose(first, cap["b1"])


def test_measure_layers_reports_dims_and_downsampling():
    net = Encoder().eval()
    reports = measure_layers(net, lambda b, n: net(torch.randn(b, 8, n)))
    by_name = {r.name: r for r in reports}
    assert candidate_paths(net)[:5] == ["conv", "rnn", "rnn.l0", "rnn.l1", "rnn.l2"]
    assert by_name["conv"].time_axis == 2 and by_name["conv"].dim == 16
    assert by_name["conv"].downsample == 2.0
    assert by_name["rnn.l1"].dim == 12 and by_name["rnn.l1"].downsample == 2.0
    assert by_name["attn"].time_axis == 1
    h = torch.randn(3, 16, 10)
    assert to_frames(h, time_axis=2).shape == (3, 10, 16)


def test_cli_lists_layers_of_missing_dir_is_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: asr_source: local directory") and "does not exist" in err
    )


def test_block_paths_pick_top_level_layers_in_forward_order():
    class Net(nn.Module):
        """Registered out of forward order; a shared module; a norm; a list."""

        def __init__(self):
            super().__init__()
            self.head = nn.Linear(12, 4)
            self.blocks = nn.ModuleList(
                [nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(2)]
            )
            self.front = nn.Conv1d(8, 8, 3, padding=1)
            self.rnn = nn.LSTM(8, 6, num_layers=3, batch_first=True, bidirectional=True)
            self.norm = nn.LayerNorm(12)
            self.again = self.head  # shared: counted once

        def forward(self, x):  # [B, 8, T]
            h = self.front(x).transpose(1, 2)
            for block in self.blocks:
                h = block(h)
            h, _ = self.rnn(h)
            return self.head(self.norm(h))

    net = Net().eval()
    paths = block_paths(net)
    assert paths == [
        "head",
        "blocks.0",
        "blocks.1",
        "front",
        "rnn.l0",
        "rnn.l1",
        "rnn.l2",
    ]
    order = forward_order(net, lambda: net(torch.randn(2, 8, 5)), paths)
    assert order == [
        "front",
        "blocks.0",
        "blocks.1",
        "rnn.l0",
        "rnn.l1",
        "rnn.l2",
        "head",
    ]
    named = forward_order(
        net, lambda: net(torch.randn(2, 8, 5)), {"out": "head", "in": "front"}
    )
    assert named == ["in", "out"]
