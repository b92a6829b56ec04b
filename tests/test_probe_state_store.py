"""Hidden states computed once per noise draw and reused by later epochs
(``ProbeBrain(state_store=...)``, :mod:`speechbrain_probe.probe.state_store`)."""

import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_probe.probe.noise_mixer import NoiseMixer
from speechbrain_probe.probe.state_store import StateStore
from tests.test_probe import loader, make_asr, make_brain, make_data

LAYERS = ["cnn", "blstm2"]


class Killed(Exception):
    pass


@pytest.fixture
def noise_csv(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for k in range(2):
        path = tmp_path / f"noise{k}.wav"
        sf.write(path, rng.normal(size=16000) * 0.1, 16000)
        rows.append(f"n{k},1.0,{path},noise\n")
    csv = tmp_path / "noise.csv"
    csv.write_text("ID,duration,wav,category\n" + "".join(rows))
    return csv


def counted(asr):
    """Count the ASR's forwards (a list that grows by one per forward)."""
    calls = []
    encode = asr.encode
    asr.encode = lambda w, lens: calls.append(1) or encode(w, lens)
    return calls


def store_for(asr, folder, dtype="float16"):
    return StateStore(folder, asr.fingerprint, LAYERS, key={"seed": 3}, dtype=dtype)


def noisy_brain(asr, tmp_path, store, noise_csv, epochs, prob):
    """A ProbeBrain on ``store`` with noise mixed into a ``prob`` share."""
    return make_brain(
        asr,
        LAYERS,
        tmp_path / "ckpt",
        epochs=epochs,
        add_noise=NoiseMixer(noise_csv, prob=prob, seed=3),
        state_store=store,
    )


def test_later_epochs_run_no_asr_forward(tmp_path, noise_csv):
    data = make_data(6)
    asr = make_asr()
    calls = counted(asr)
    store = store_for(asr, tmp_path / "states")
    brain, counter = noisy_brain(asr, tmp_path, store, noise_csv, 3, 0.5)
    calls.clear()  # geometry was measured while building
    per_epoch = {}
    fit_batch = brain.fit_batch

    def counted_step(batch):
        before = len(calls)
        loss = fit_batch(batch)
        epoch = counter.current
        per_epoch[epoch] = per_epoch.get(epoch, 0) + len(calls) - before
        return loss

    brain.fit_batch = counted_step
    brain.fit(counter, loader(data), loader(data))
    # training forwards: the first epoch's 2 batches only
    assert per_epoch == {1: 2, 2: 0, 3: 0}
    # and every epoch's validation runs the ASR (2 batches of clean input)
    assert len(calls) == 2 + 3 * 2
    assert len(list(store.folder.glob("*.pt"))) == 6
    assert all(math.isfinite(v) for v in brain.layer_losses().values())


def test_stored_states_equal_a_fresh_forward_on_the_same_noisy_input(
    tmp_path, noise_csv
):
    data = make_data(6)
    asr = make_asr()
    store = store_for(asr, tmp_path / "states")
    brain, counter = noisy_brain(asr, tmp_path, store, noise_csv, 1, 1.0)
    brain.fit(counter, loader(data), loader(data))
    batch = PaddedBatch(data[3:])
    wavs, lens = batch.sig
    # a new mixer of the same seed draws the same noise for these ids
    noisy = NoiseMixer(noise_csv, prob=1.0, seed=3).mix_utterances(wavs, lens, batch.id)
    assert not torch.allclose(noisy, wavs)
    fresh = asr.hidden_states(noisy, lens, LAYERS)
    clean = asr.hidden_states(wavs, lens, LAYERS)
    states, target = store.get(batch.id)
    for name in LAYERS:
        assert states[name].shape == fresh[name].shape
        n = torch.round(lens * fresh[name].shape[1]).long()
        for i in range(len(n)):
            got, want = states[name][i, : n[i]], fresh[name][i, : n[i]]
            scale = want.abs().max()
            assert torch.allclose(got, want, atol=2e-3 * scale, rtol=1e-3)
    assert not torch.allclose(states["blstm2"][0], clean["blstm2"][0], atol=1e-2)
    want = brain.target(noisy)
    assert target.shape == want.shape
    for i, n in enumerate(torch.round(lens * want.shape[1]).long()):
        assert torch.allclose(target[i, :n], want[i, :n], atol=1e-5)


def test_a_resumed_run_reuses_the_same_draws(tmp_path, noise_csv):
    data = make_data(6)
    asr = make_asr()

    calls = counted(asr)

    def run(folder, kill=False):
        store = store_for(asr, folder / "states")
        brain, counter = make_brain(
            asr,
            LAYERS,
            folder / "ckpt",
            epochs=2,
            add_noise=NoiseMixer(noise_csv, prob=0.5, seed=3),
            state_store=store,
        )
        calls.clear()
        if kill:
            orig = brain.compute_objectives

            def dying(predictions, batch, stage):
                if stage == sb.Stage.TRAIN:
                    raise Killed  # in the first batch, after its states were stored
                return orig(predictions, batch, stage)

            brain.compute_objectives = dying
        brain.fit(counter, loader(data), loader(data))
        return store

    reference = run(tmp_path / "reference")
    with pytest.raises(Killed):
        run(tmp_path / "resumed", kill=True)
    assert len(list((tmp_path / "resumed").rglob("*.pt"))) == 3  # batch 1 only
    resumed = run(tmp_path / "resumed")
    # the second batch of epoch 1 (the first one was read back), validations
    assert len(calls) == 1 + 2 * 2
    ids = [item["id"] for item in data]
    ref_states, ref_target = reference.get(ids)
    states, target = resumed.get(ids)
    assert torch.equal(ref_target, target)
    assert all(torch.equal(ref_states[n], states[n]) for n in LAYERS)


def test_a_store_of_another_asr_is_not_read(tmp_path, noise_csv):
    data = make_data(6)
    first = make_asr(0)
    store = store_for(first, tmp_path / "states")
    brain, counter = make_brain(
        first, LAYERS, tmp_path / "a", epochs=1, state_store=store
    )
    brain.fit(counter, loader(data), loader(data))
    ids = [item["id"] for item in data]
    assert store.get(ids) is not None

    other = make_asr(1)
    assert other.fingerprint != first.fingerprint
    other_store = store_for(other, tmp_path / "states")
    assert other_store.folder != store.folder and other_store.get(ids) is None
    # records copied under the other ASR's folder are refused too
    shutil.copytree(store.folder, other_store.folder)
    assert other_store.get(ids) is None
    calls = counted(other)
    brain, counter = make_brain(
        other, LAYERS, tmp_path / "b", epochs=1, state_store=other_store
    )
    calls.clear()
    brain.fit(counter, loader(data), loader(data))
    assert len(calls) == 2 + 2  # its own training forwards, and validation
    # settings other than the ASR's are another store as well
    assert StateStore(tmp_path / "states", first.fingerprint, LAYERS).get(ids) is None


def test_reuse_on_and_off_both_train_to_finite_losses(tmp_path, noise_csv):
    data = make_data(6)
    asr = make_asr()
    losses = {}
    for reuse in (False, True):
        torch.manual_seed(0)
        brain, counter = make_brain(
            asr,
            LAYERS,
            tmp_path / f"ckpt{reuse}",
            epochs=2,
            add_noise=NoiseMixer(noise_csv, prob=0.5, seed=3),
            state_store=store_for(asr, tmp_path / "states") if reuse else None,
        )
        brain.fit(counter, loader(data), loader(data))
        brain.evaluate(loader(data), min_key="loss")
        losses[reuse] = brain.layer_losses()
    for values in losses.values():
        assert all(math.isfinite(v) and 0 < v < 1.0 for v in values.values())


def test_a_mixer_without_per_utterance_draws_is_refused(tmp_path):
    asr = make_asr()
    with pytest.raises(ValueError, match="mix_utterances"):
        make_brain(
            asr,
            LAYERS,
            tmp_path / "ckpt",
            add_noise=lambda wavs, lens: wavs,
            state_store=store_for(asr, tmp_path / "states"),
        )
    with pytest.raises(ValueError, match="no layer"):
        make_brain(
            asr,
            ["blstm1"],
            tmp_path / "ckpt",
            state_store=store_for(asr, tmp_path / "states"),
        )


def test_recipe_stores_states_in_epoch_one_and_removes_them_at_the_end(
    tmp_path, noise_csv, monkeypatch
):
    import sys

    from tests.recipe_scripts import PROBE_RECIPE, load_recipe
    from tests.test_pretrained import make_export, write_corpus

    export = make_export(tmp_path / "asr")
    data = write_corpus(tmp_path / "data", n=4)
    out = tmp_path / "out"
    puts, reads = [], []
    put, get = StateStore.put, StateStore.get

    def counting_put(self, ids, *args):
        puts.append(list(ids))
        return put(self, ids, *args)

    def counting_get(self, ids, device="cpu"):
        found = get(self, ids, device)
        reads.append(found is not None)
        return found

    monkeypatch.setattr(StateStore, "put", counting_put)
    monkeypatch.setattr(StateStore, "get", counting_get)
    argv = [
        str(PROBE_RECIPE / "hparams" / "all_layers.yaml"),
        "--skip_prep=True",
        f"--asr_source={export}",
        f"--data_folder={data}",
        f"--noise_csv={noise_csv}",
        f"--output_folder={out}",
        "--layers=[feats,rnn2]",
        "--train_utts=4",
        "--valid_utts=2",
        "--number_of_epochs=2",
        "--early_stopping_patience=null",
        "--prefetch=False",
        "--batch_size=2",
        "--device=cpu",
    ]
    monkeypatch.setattr(sys, "argv", ["train_probe.py", *argv])
    losses = load_recipe(PROBE_RECIPE / "train_probe.py").main(argv)
    assert all(math.isfinite(v) for v in losses.values())
    # epoch 1: 2 batches missing, then stored; epoch 2: both read back
    assert reads == [False, False, True, True] and len(puts) == 2
    assert sorted(i for ids in puts for i in ids) == [f"train{i}" for i in range(4)]
    assert not list((out / "states").rglob("*.pt"))  # removed (keep_states: False)


def test_a_full_disk_stops_after_one_batch_keeping_its_records(tmp_path, monkeypatch):
    from speechbrain_probe.probe import state_store

    data = make_data(6)
    asr = make_asr()
    store = store_for(asr, tmp_path / "states")
    store.expect(len(data))
    brain, counter = make_brain(
        asr, LAYERS, tmp_path / "ckpt", epochs=2, state_store=store
    )
    real = shutil.disk_usage
    monkeypatch.setattr(
        state_store.shutil,
        "disk_usage",
        lambda path: real(path)._replace(free=state_store.HEADROOM_BYTES),
    )
    with pytest.raises(state_store.StoreSpaceError) as err:
        brain.fit(counter, loader(data), loader(data))
    assert "--reuse_states=False" in str(err.value)
    assert "3 utterances" in str(err.value)  # 6 planned, one batch of 3 stored
    kept = {p: p.stat().st_mtime_ns for p in store.folder.glob("*.pt")}
    assert len(kept) == 3
    assert store_for(asr, tmp_path / "states").get([d["id"] for d in data[:3]])

    monkeypatch.setattr(state_store.shutil, "disk_usage", real)
    again = store_for(asr, tmp_path / "states")
    again.expect(len(data))
    brain, counter = make_brain(
        asr, LAYERS, tmp_path / "ckpt2", epochs=2, state_store=again
    )
    brain.fit(counter, loader(data), loader(data))
    assert len(list(again.folder.glob("*.pt"))) == 6
    # the next run read the first batch's records instead of writing them again
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
