"""The Highway probe, frame alignment and ProbeBrain on a tiny frozen ASR."""

import math

import pytest
import speechbrain as sb
import torch
import torchaudio
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from torch import nn

from speechbrain_probe.features import HIFIGAN_MEL, ASRFeatures, LogMelSpectrogram
from speechbrain_probe.frozen.interface import ModuleASR
from speechbrain_probe.probe.brain import HiddenStateCache, ProbeBrain
from speechbrain_probe.probe.identity import (
    ProbeIdentity,
    ProbeMismatchError,
    probe_target_config,
)
from speechbrain_probe.probe.inference import load_trained_probes, reconstruct_mel
from speechbrain_probe.probe.model import FrameAligner, HighwayProbe, build_probes


class FrameLayer(nn.Module):
    """Linear + BatchNorm + ReLU on ``[B, T, D]`` frames."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(240, 16)
        self.norm = nn.BatchNorm1d(16)

    def forward(self, x):
        return torch.relu(self.norm(self.lin(x).transpose(1, 2)).transpose(1, 2))


class TinyASR(nn.Module):
    """Features -> frame layer with BatchNorm -> /2 -> stacked BLSTM (2 layers)."""

    def __init__(self):
        super().__init__()
        self.features = ASRFeatures()
        self.cnn = FrameLayer()
        self.rnn = nn.LSTM(32, 8, num_layers=2, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(0.5)

    def forward(self, wavs, lens):
        x = self.features(wavs)
        b, t, _ = x.shape
        h = self.cnn(x)
        h = h[:, : t // 2 * 2].reshape(b, t // 2, 32)
        return self.rnn(self.drop(h))[0]


LAYERS = {"cnn": "cnn", "blstm1": "rnn.l0", "blstm2": "rnn.l1"}


def make_asr(seed=0):
    torch.manual_seed(seed)
    return ModuleASR(TinyASR(), LAYERS, source=f"tiny-{seed}")


def make_data(n=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        length = 4000 + 800 * i
        t = torch.arange(length) / 16000
        f0 = 120 + 40 * i
        sig = 0.3 * torch.sin(2 * math.pi * f0 * t) * torch.sin(math.pi * t * 3) ** 2
        sig = sig + 0.01 * torch.randn(length, generator=gen)
        items.append({"id": f"utt{i}", "sig": sig})
    return items


def loader(items, batch_size=3):
    return torch.utils.data.DataLoader(
        items, batch_size=batch_size, collate_fn=PaddedBatch
    )


def make_brain(asr, layers, save_dir, epochs=2, **kwargs):
    probes = build_probes(asr, layers, target_mel=kwargs.get("target_mel"))
    counter = EpochCounter(epochs)
    ckpt = Checkpointer(save_dir, recoverables={"probes": probes, "counter": counter})
    brain = ProbeBrain(
        asr,
        layers,
        modules=probes,
        opt_class=lambda p: torch.optim.Adam(p, lr=3e-3),
        checkpointer=ckpt,
        run_opts={"device": "cpu"},
        **kwargs,
    )
    return brain, counter


def test_probe_is_non_contextual():
    probe = HighwayProbe(input_dim=10, r=4).eval()
    hidden = torch.randn(1, 6, 10)
    changed = hidden.clone()
    changed[0, 2] += 1.0
    with torch.no_grad():
        diff = (probe(hidden) - probe(changed)).abs().sum(-1)[0]
    assert diff.shape == (24,)
    assert torch.all(diff[8:12] > 0)
    assert torch.all(diff[:8] == 0) and torch.all(diff[12:] == 0)


def test_probe_architecture_is_the_papers():
    probe = HighwayProbe(input_dim=640, r=4)
    assert (probe.pre.in_features, probe.pre.out_features) == (640, 320)
    assert len(probe.highways) == 3
    assert all(float(h.gate.bias.detach().mean()) == -1.0 for h in probe.highways)
    assert (probe.post.in_features, probe.post.out_features) == (320, 320)


@pytest.mark.parametrize("downsample", [1.0, 2.0, 1.6, 0.8, 8.0])
def test_aligned_frames_depend_on_one_hidden_frame(downsample):
    aligner = FrameAligner(downsample, offset=0.3)
    probe = HighwayProbe(input_dim=5, r=aligner.r).eval()
    num_hidden, num_target = 7, int(7 * downsample)
    hidden = torch.randn(1, num_hidden, 5)
    source = aligner.source(num_target, num_hidden)
    for k in range(num_hidden):
        changed = hidden.clone()
        changed[0, k] += 1.0
        with torch.no_grad():
            diff = aligner(probe(hidden), num_target) - aligner(
                probe(changed), num_target
            )
        moved = diff.abs().sum(-1)[0] > 0
        assert torch.equal(moved, source == k)
    # every target frame has a source, in order, and hidden frames are all used
    assert torch.all(source[1:] >= source[:-1])


def test_probebrain_trains_keeps_asr_frozen_and_shares_one_forward(tmp_path):
    asr = make_asr()
    before = {k: v.clone() for k, v in asr.root.state_dict().items()}
    calls = []
    encode = asr.encode
    asr.encode = lambda w, lens: calls.append(1) or encode(w, lens)
    brain, counter = make_brain(
        asr, ["cnn", "blstm1", "blstm2"], tmp_path / "ckpt", epochs=3
    )
    calls.clear()  # geometry was measured on dummy input while building
    assert not any(
        p is q for p in brain.modules.parameters() for q in asr.root.parameters()
    )
    data = make_data()
    brain.fit(counter, loader(data), loader(data))
    # one ASR forward per batch for all three probes: 3 epochs x (2 train + 2 valid)
    assert len(calls) == 3 * 4
    assert not asr.root.training
    after = asr.root.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BN stats
    first = brain.train_stats  # last epoch's train stats
    assert set(first) >= {"loss", "l1_cnn", "l1_blstm1", "l1_blstm2"}
    brain.evaluate(loader(data), min_key="loss")
    losses = brain.layer_losses()
    assert all(0 < v < 0.5 for v in losses.values())
    # a fresh probe is worse than the trained one
    fresh, _ = make_brain(asr, ["cnn"], tmp_path / "fresh")
    fresh.evaluate(loader(data))
    assert fresh.layer_losses()["cnn"] > losses["cnn"]


def test_one_pass_trains_each_probe_exactly_as_its_own_run():
    """Same weights after a few steps, with gradient clipping active."""
    asr = make_asr()
    layers = ["cnn", "blstm1", "blstm2"]
    batch = PaddedBatch(make_data(3))

    def brain_for(names, probes):
        brain = ProbeBrain(
            asr,
            names,
            modules=probes,
            opt_class=lambda p: torch.optim.Adam(p, lr=3e-3, fused=True),
            run_opts={"device": "cpu", "max_grad_norm": 1e-3},
        )
        brain.init_optimizers()
        brain.on_stage_start(sb.Stage.TRAIN)
        return brain

    torch.manual_seed(0)
    together = brain_for(layers, build_probes(asr, layers))
    alone = {}
    for name in layers:
        probes = build_probes(asr, [name])
        probes[name].load_state_dict(together.modules[name].state_dict())
        alone[name] = brain_for([name], probes)
    start = {n: together.modules[n].post.weight.detach().clone() for n in layers}
    for _ in range(3):
        loss = together.fit_batch(batch)
        parts = sum(float(alone[n].fit_batch(batch)) for n in layers)
        assert math.isclose(float(loss), parts, rel_tol=1e-5)
    for name in layers:
        mine = together.modules[name].state_dict()
        theirs = alone[name].modules[name].state_dict()
        assert all(torch.allclose(mine[k], theirs[k], atol=1e-6) for k in mine)
        assert not torch.allclose(mine["post.weight"], start[name])  # it trained
    losses = together.layer_losses()
    for name in layers:
        assert math.isclose(
            losses[name], alone[name].layer_losses()[name], rel_tol=1e-5
        )


def test_checkpoint_for_other_asr_or_layer_is_refused(tmp_path):
    asr = make_asr(0)
    brain, counter = make_brain(asr, ["blstm1"], tmp_path / "ckpt", epochs=1)
    data = make_data(3)
    brain.fit(counter, loader(data), loader(data))

    other, counter2 = make_brain(make_asr(1), ["blstm1"], tmp_path / "ckpt", epochs=2)
    with pytest.raises(ProbeMismatchError, match="another ASR"):
        other.fit(counter2, loader(data), loader(data))
    wrong_layer, counter3 = make_brain(asr, ["blstm2"], tmp_path / "ckpt", epochs=2)
    with pytest.raises(ProbeMismatchError, match=r"holds layers \['blstm1'\]"):
        wrong_layer.fit(counter3, loader(data), loader(data))
    with pytest.raises(ProbeMismatchError, match="another ASR"):
        load_trained_probes(tmp_path / "ckpt", make_asr(1))
    probes = load_trained_probes(tmp_path / "ckpt", asr)
    trained = brain.modules["blstm1"].state_dict()
    assert all(
        torch.equal(v, probes["blstm1"].state_dict()[k]) for k, v in trained.items()
    )
    # inference gives what training scored, frame for frame
    batch = PaddedBatch(data)
    with torch.no_grad():
        preds, target = brain.compute_forward(batch, sb.Stage.VALID)
    mels = reconstruct_mel(asr, probes, *batch.sig)
    assert mels["blstm1"].shape == target.shape
    assert torch.allclose(mels["blstm1"], preds["blstm1"].clamp(0, 1), atol=1e-5)
    with pytest.raises(KeyError, match="available: cnn blstm1 blstm2"):
        load_trained_probes(tmp_path / "ckpt", asr, layers=["blstm9"])


class Killed(Exception):
    pass


def test_resume_after_kill_continues_from_last_epoch(tmp_path):
    data = make_data(6)
    asr = make_asr()
    brain, counter = make_brain(asr, ["blstm1"], tmp_path / "ckpt", epochs=3)
    seen = []
    orig = brain.compute_objectives

    def dying(predictions, batch, stage):
        if stage == sb.Stage.TRAIN:
            seen.append(counter.current)
            if counter.current == 2 and len([e for e in seen if e == 2]) == 2:
                raise Killed  # mid-epoch 2, after the epoch-1 checkpoint
        return orig(predictions, batch, stage)

    brain.compute_objectives = dying
    with pytest.raises(Killed):
        brain.fit(counter, loader(data), loader(data))
    saved = {
        k: v.clone()
        for k, v in torch.load(
            next((tmp_path / "ckpt").glob("CKPT+*")) / "probes.ckpt"
        ).items()
    }

    resumed, counter2 = make_brain(asr, ["blstm1"], tmp_path / "ckpt", epochs=3)
    epochs = []
    orig2 = resumed.on_stage_start

    def record(stage, epoch=None):
        if stage == sb.Stage.TRAIN:
            epochs.append(epoch)
            state = resumed.modules["blstm1"].state_dict()
            if len(epochs) == 1:
                assert all(
                    torch.equal(state[k[len("blstm1.") :]], v) for k, v in saved.items()
                )
        return orig2(stage, epoch)

    resumed.on_stage_start = record
    resumed.fit(counter2, loader(data), loader(data))
    assert epochs == [2, 3]


def test_hidden_state_cache_replaces_asr_forward(tmp_path):
    asr = make_asr()
    calls = []
    encode = asr.encode
    asr.encode = lambda w, lens: calls.append(1) or encode(w, lens)
    cache = HiddenStateCache(tmp_path / "cache", asr.fingerprint)
    brain, counter = make_brain(
        asr, ["blstm2"], tmp_path / "ckpt", epochs=3, cache=cache
    )
    calls.clear()
    data = make_data(6)
    brain.fit(counter, loader(data), loader(data))
    assert len(calls) == 2  # first epoch's training batches only (valid = same utts)
    cached = cache.get("utt5", "blstm2")
    batch = PaddedBatch(data[3:])
    direct = asr.hidden_states(batch.sig[0], batch.sig[1], ["blstm2"])["blstm2"][2]
    assert torch.allclose(cached, direct[: cached.shape[0]], atol=1e-2)
    with pytest.raises(ValueError, match="clean input only"):
        make_brain(asr, ["cnn"], tmp_path / "x", cache=cache, add_noise=lambda w, n: w)


def test_noisy_training_uses_the_noisy_inputs_own_mel(tmp_path):
    asr = make_asr()
    noise = []

    def add_noise(wavs, lens):
        noisy = wavs + 0.05 * torch.randn_like(wavs)
        noise.append(noisy)
        return noisy

    brain, counter = make_brain(
        asr, ["cnn"], tmp_path / "ckpt", epochs=1, add_noise=add_noise
    )
    batch = PaddedBatch(make_data(3))
    preds, target = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert torch.allclose(target, brain.mel(noise[-1]))
    _, clean_target = brain.compute_forward(batch, sb.Stage.VALID)
    assert len(noise) == 1 and not torch.allclose(target, clean_target)


def test_half_precision_run_option_trains_in_float_targets(tmp_path):
    asr = make_asr()
    probes = build_probes(asr, ["blstm1"])
    brain = ProbeBrain(
        asr,
        ["blstm1"],
        modules=probes,
        opt_class=lambda p: torch.optim.Adam(p, lr=3e-3),
        run_opts={"device": "cpu", "precision": "bf16"},
    )
    data = make_data(3)
    brain.fit(EpochCounter(1), loader(data), loader(data))
    assert math.isfinite(brain.valid_stats["loss"])
    # hooks under autocast hand float32 frames to the probes
    batch = PaddedBatch(data)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        states = asr.hidden_states(batch.sig[0], batch.sig[1], ["cnn"])
        _, target = brain.compute_forward(batch, sb.Stage.VALID)
    assert states["cnn"].dtype == torch.float32
    # the target is the float32 mel, not one computed in bfloat16
    assert target.dtype == torch.float32
    assert torch.allclose(target, brain.mel(batch.sig[0]), atol=1e-6)


def test_half_written_checkpoint_is_set_aside_not_loaded(tmp_path):
    import shutil

    import yaml

    data = make_data(3)
    asr = make_asr()
    brain, counter = make_brain(asr, ["blstm1"], tmp_path / "ckpt", epochs=1)
    brain.fit(counter, loader(data), loader(data))
    (good,) = (tmp_path / "ckpt").glob("CKPT+*")
    # a later checkpoint killed while SpeechBrain was writing its files
    bad = good.with_name(good.name + "9")
    shutil.copytree(good, bad)
    meta = yaml.safe_load((bad / "CKPT.yaml").read_text())
    meta["unixtime"] += 100
    (bad / "CKPT.yaml").write_text(yaml.safe_dump(meta))
    (bad / "counter.ckpt").write_text("5")
    (bad / "probes.ckpt").write_bytes((bad / "probes.ckpt").read_bytes()[:100])

    resumed, counter2 = make_brain(asr, ["blstm1"], tmp_path / "ckpt", epochs=2)
    resumed.fit(counter2, loader(data), loader(data))
    assert counter2.current == 2  # went on from the complete epoch-1 checkpoint
    assert (tmp_path / "ckpt" / f"incomplete-{bad.name}").is_dir()  # kept, not lost


def test_prefetched_batches_train_exactly_as_without(tmp_path):
    """The next batch's ASR forward on a second thread changes no number."""
    data = make_data()
    kwargs = dict(batch_size=3, collate_fn=PaddedBatch)
    weights, valid = {}, {}
    for prefetch in (False, True):
        asr = make_asr()
        torch.manual_seed(1)
        brain, counter = make_brain(
            asr, ["cnn", "blstm2"], tmp_path / str(prefetch), prefetch=prefetch
        )
        brain.fit(
            counter,
            data,
            data,
            train_loader_kwargs=kwargs,
            valid_loader_kwargs=kwargs,
        )
        weights[prefetch] = {
            k: v.clone() for k, v in brain.modules.state_dict().items()
        }
        valid[prefetch] = brain.layer_losses()  # the last validation, prefetched too
    assert weights[False].keys() == weights[True].keys()
    assert all(torch.equal(weights[False][k], weights[True][k]) for k in weights[False])
    assert valid[False] == valid[True] and set(valid[True]) == {"cnn", "blstm2"}


def test_prefetch_saves_the_position_of_batches_trained_not_prepared(tmp_path):
    import time

    from speechbrain.dataio.dataloader import SaveableDataLoader

    from speechbrain_probe.probe.prefetch import PrefetchedBatches

    prepared = []
    loader = SaveableDataLoader(list(range(10)), batch_size=1)
    batches = PrefetchedBatches(
        loader, lambda b: prepared.append(int(b)) or int(b), depth=2
    )
    iterator = iter(batches)
    assert [next(iterator) for _ in range(3)] == [0, 1, 2]
    deadline = time.time() + 10
    while len(prepared) < 5 and time.time() < deadline:
        time.sleep(0.01)
    assert len(prepared) >= 5  # the thread is ahead of the trainer
    loader._speechbrain_save(tmp_path / "position")
    assert (tmp_path / "position").read_text() == "3"
    iterator.close()  # stops the thread

    resumed = SaveableDataLoader(list(range(10)), batch_size=1)
    resumed._speechbrain_load(tmp_path / "position", end_of_epoch=False)
    assert [int(b) for b in PrefetchedBatches(resumed, lambda b: b)] == list(
        range(3, 10)
    )


def test_probes_on_the_hifigan_mel(tmp_path):
    """target_mel: hifigan: the input resampled to 22,050 Hz, frames of hop 256."""
    asr = make_asr()
    data = make_data(3)
    layers = ["cnn", "blstm2"]
    brain, counter = make_brain(
        asr, layers, tmp_path / "ckpt", epochs=1, target_mel="hifigan"
    )
    assert brain.target_mel == HIFIGAN_MEL
    brain.fit(counter, loader(data), loader(data))
    batch = PaddedBatch(data)
    with torch.no_grad():
        preds, target = brain.compute_forward(batch, sb.Stage.VALID)
    resampled = torchaudio.functional.resample(batch.sig[0], 16000, 22050)
    assert target.shape == (3, 1 + resampled.shape[1] // 256, 80)
    assert torch.allclose(target, LogMelSpectrogram(HIFIGAN_MEL)(resampled))
    # loaded probes know their target and predict its frames: a layer frame of
    # 12.5 ms (25 ms) covers 1.08 (2.15) hifigan frames
    assert probe_target_config(tmp_path / "ckpt") == HIFIGAN_MEL
    probes = load_trained_probes(tmp_path / "ckpt", asr)
    assert probes.target_mel == HIFIGAN_MEL
    assert (probes["cnn"].r, probes["blstm2"].r) == (2, 3)
    mels = reconstruct_mel(asr, probes, *batch.sig)
    for name in layers:
        assert torch.allclose(mels[name], preds[name].clamp(0, 1), atol=1e-5)
    for samples in (8000, 8001, 12345):
        wav = torch.randn(1, samples) * 0.1
        at_22050 = torchaudio.functional.resample(wav, 16000, 22050).shape[1]
        out = reconstruct_mel(asr, probes, wav, torch.ones(1))
        assert out["blstm2"].shape == (1, 1 + at_22050 // 256, 80)

    # another target refuses the checkpoint, naming both
    paper, counter2 = make_brain(asr, layers, tmp_path / "ckpt", epochs=2)
    with pytest.raises(ProbeMismatchError, match=r"mel 'hifigan' .*now 'paper'"):
        paper.fit(counter2, loader(data), loader(data))
    with pytest.raises(ProbeMismatchError, match=r"mel 'hifigan' .*now 'paper'"):
        load_trained_probes(tmp_path / "ckpt", asr, target_mel="paper")
    # probes sized for one target cannot train on another
    with pytest.raises(ValueError, match="build_probes"):
        ProbeBrain(
            asr, ["cnn"], modules=build_probes(asr, ["cnn"]), target_mel="hifigan"
        )


def test_paper_target_is_the_asrs_own_mel(tmp_path):
    asr = make_asr()
    same = ProbeIdentity(asr, ["cnn"]).data
    assert ProbeIdentity(asr, ["cnn"], target_mel="paper").data == same
    assert same["mel_config"] == asr.mel_config.to_dict()
    assert same["layers"]["cnn"]["downsample"] == asr.geometry("cnn").downsample
    brain, counter = make_brain(asr, ["cnn"], tmp_path / "ckpt", epochs=1)
    brain.fit(counter, loader(make_data(3)), loader(make_data(3)))
    assert probe_target_config(tmp_path / "ckpt") == asr.mel_config
    assert load_trained_probes(tmp_path / "ckpt", asr).target_mel == asr.mel_config
