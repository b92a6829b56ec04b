"""Early stopping of each probe on its own validation L1: what stops, what is
kept, and that a killed run resumes to the same probes.

The validation losses are scripted (a sequence per layer), so which probe
stops when is known; everything else (training, checkpoints, resume) is real.
"""

import csv
import sys
from pathlib import Path

import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_probe.probe.brain import ProbeBrain
from speechbrain_probe.probe.early_stopping import LayerEarlyStopping
from speechbrain_probe.probe.inference import load_trained_probes
from speechbrain_probe.probe.model import build_probes
from tests.test_probe import make_asr, make_data

LAYERS = ["cnn", "blstm1"]
# validation losses, one per validation; patience 2, min_delta 0.01:
# cnn: best 0.30 at validation 2; 0.35 (bad 1), 0.295 (< 0.01 better: bad 2) -> stops at 4
# blstm1: improves to 0.20 at validation 4; 0.195 (bad 1), 0.25 (bad 2) -> stops at 6
SCRIPT = {
    "cnn": [0.5, 0.3, 0.35, 0.295],
    "blstm1": [0.5, 0.4, 0.3, 0.2, 0.195, 0.25],
}
LOADER = dict(batch_size=3, collate_fn=PaddedBatch)


class Killed(Exception):
    pass


class Run:
    """A ProbeBrain on the tiny ASR whose validation losses follow SCRIPT,
    recording every probe's state at every validation and each ASR forward.

    ``done``: validations of an earlier (killed) run in the same folder, so the
    script goes on where it was.
    """

    def __init__(self, save_dir, epochs=10, done=0, **kwargs):
        self.asr = make_asr()
        torch.manual_seed(1)
        self.probes = build_probes(self.asr, LAYERS)
        self.counter = EpochCounter(epochs)
        checkpointer = Checkpointer(
            save_dir, recoverables={"probes": self.probes, "counter": self.counter}
        )
        kwargs.setdefault("early_stopping_patience", 2)
        kwargs.setdefault("early_stopping_min_delta", 0.01)
        self.brain = brain = ProbeBrain(
            self.asr,
            LAYERS,
            modules=self.probes,
            opt_class=lambda p: torch.optim.Adam(p, lr=3e-3),
            checkpointer=checkpointer,
            run_opts={"device": "cpu"},
            **kwargs,
        )
        self.validations = done
        self.states = []  # per validation of this run: {layer: state} before the update
        self.forwards = []  # the layers of each ASR forward
        self.in_valid = False
        start, end = brain.on_stage_start, brain.on_stage_end
        losses, hidden = brain.layer_losses, brain.hidden_states

        def on_stage_start(stage, epoch=None):
            self.in_valid = stage == sb.Stage.VALID
            return start(stage, epoch)

        def on_stage_end(stage, stage_loss, epoch=None):
            if stage == sb.Stage.VALID:
                self.validations += 1
                self.states.append(
                    {
                        n: {k: v.clone() for k, v in p.state_dict().items()}
                        for n, p in self.probes.items()
                    }
                )
            try:
                return end(stage, stage_loss, epoch)
            finally:
                self.in_valid = False

        def layer_losses():
            out = losses()
            if not self.in_valid:
                return out
            k = self.validations - 1
            return {n: SCRIPT[n][min(k, len(SCRIPT[n]) - 1)] for n in out}

        def hidden_states(ids, wavs, lens, layers=None):
            self.forwards.append(tuple(layers))
            return hidden(ids, wavs, lens, layers)

        brain.on_stage_start = on_stage_start
        brain.on_stage_end = on_stage_end
        brain.layer_losses = layer_losses
        brain.hidden_states = hidden_states

    def fit(self, data):
        self.brain.fit(
            self.counter,
            data,
            data,
            train_loader_kwargs=LOADER,
            valid_loader_kwargs=LOADER,
        )


def test_each_probe_stops_on_its_own_and_keeps_its_best_state(tmp_path):
    run = Run(tmp_path / "save")
    data = make_data(6)  # 2 training batches per epoch
    run.fit(data)
    es = run.brain.early_stopping
    # training ended when the last probe stopped: 6 validations, not 10 epochs
    assert run.validations == 6 and run.counter.current == 6
    assert es.stopped == {"cnn": True, "blstm1": True}
    assert (es.best_epoch, es.best_loss) == (
        {"cnn": 2, "blstm1": 4},
        {"cnn": 0.3, "blstm1": 0.2},
    )
    assert es.best_step == {"cnn": 4, "blstm1": 8}  # 2 optimizer steps per epoch
    # a stopped probe gets no ASR features, no forward, no update: epochs 5
    # and 6 train (and validate) blstm1 alone
    train_forwards = [f for f in run.forwards if f != tuple(LAYERS)]
    assert train_forwards == [("blstm1",)] * 8  # 2 epochs x (2 train + 2 valid)
    # what the final checkpoint holds (and load_trained_probes reads): each
    # probe's state of its best validation
    loaded = load_trained_probes(tmp_path / "save", run.asr)
    for name, k in (("cnn", 1), ("blstm1", 3)):
        best = run.states[k][name]
        assert all(
            torch.equal(loaded[name].state_dict()[p], v) for p, v in best.items()
        )
        live = run.probes[name].state_dict()
        assert all(torch.equal(live[p], v) for p, v in best.items())
    # one checkpoint is kept: the final one, marked with the probes' best
    (ckpt,) = (tmp_path / "save").glob("CKPT+*")
    meta = (ckpt / "CKPT.yaml").read_text()
    assert "l1_cnn: 0.3" in meta and "l1_blstm1: 0.2" in meta
    assert run.brain.best_validation() == {
        "cnn": {"best_epoch": 2, "best_step": 4, "stopped_early": True},
        "blstm1": {"best_epoch": 4, "best_step": 8, "stopped_early": True},
    }
    # the test stage scores every probe (stopped ones too), at its best state
    run.brain.evaluate(data, min_key="loss", test_loader_kwargs=dict(LOADER))
    assert set(run.brain.test_stats) == {"loss", "l1_cnn", "l1_blstm1"}


def test_epoch_limit_ends_training_with_the_best_states(tmp_path):
    run = Run(tmp_path / "save", epochs=3)
    run.fit(make_data(6))
    es = run.brain.early_stopping
    assert run.validations == 3 and not any(es.stopped.values())
    loaded = load_trained_probes(tmp_path / "save", run.asr)
    # cnn's best was validation 2, blstm1's the last one (3)
    for name, k in (("cnn", 1), ("blstm1", 2)):
        best = run.states[k][name]
        assert all(
            torch.equal(loaded[name].state_dict()[p], v) for p, v in best.items()
        )
    # started again, a finished run trains nothing and saves nothing new
    (before,) = (tmp_path / "save").glob("CKPT+*")
    again = Run(tmp_path / "save", epochs=3)
    again.fit(make_data(6))
    assert again.validations == 0 and list((tmp_path / "save").glob("CKPT+*")) == [
        before
    ]


@pytest.mark.parametrize("prefetch", [False, True])
def test_killed_run_resumes_to_the_same_probes(tmp_path, prefetch):
    """Killed in epoch 5 (cnn stopped in epoch 4), then the same command: the
    probes end exactly as those of a run never killed."""
    data = make_data(6)
    whole = Run(tmp_path / "whole", prefetch=prefetch)
    whole.fit(data)

    killed = Run(tmp_path / "killed", prefetch=prefetch)
    fit_batch = killed.brain.fit_batch

    def dying(batch):
        if killed.counter.current == 5:
            raise Killed
        return fit_batch(batch)

    killed.brain.fit_batch = dying
    with pytest.raises(Killed):
        killed.fit(data)
    assert killed.brain.early_stopping.stopped == {"cnn": True, "blstm1": False}

    resumed = Run(tmp_path / "killed", done=4, prefetch=prefetch)
    resumed.fit(data)
    es = resumed.brain.early_stopping
    assert resumed.validations == 6  # validations 5 and 6 only
    assert es.stopped == {"cnn": True, "blstm1": True}
    assert es.best_epoch == whole.brain.early_stopping.best_epoch
    assert es.bad_validations == whole.brain.early_stopping.bad_validations
    # blstm1 alone trained after the resume
    assert set(resumed.forwards) == {("blstm1",)}
    a = load_trained_probes(tmp_path / "whole", whole.asr).state_dict()
    b = load_trained_probes(tmp_path / "killed", resumed.asr).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_validation_every_n_steps_and_resume_inside_an_epoch(tmp_path):
    """``valid_every_steps=1`` with 2 batches per epoch: a validation after the
    first batch and one at the epoch's end (none twice after the last batch).
    Killed after epoch 2's first validation, the run resumes at its 2nd batch."""
    data = make_data(6)
    kwargs = dict(valid_every_steps=1, prefetch=True)
    whole = Run(tmp_path / "whole", **kwargs)
    whole.fit(data)
    # 6 validations (3 epochs x 2): blstm1 stops at the 6th
    assert whole.validations == 6 and whole.counter.current == 3
    # cnn's best: the end of epoch 1 (step 2); blstm1's: the end of epoch 2
    assert whole.brain.early_stopping.best_step == {"cnn": 2, "blstm1": 4}

    killed = Run(tmp_path / "killed", **kwargs)
    fit_batch = killed.brain.fit_batch
    seen = []

    def dying(batch):
        seen.append(killed.counter.current)
        if seen.count(2) == 2:  # epoch 2's second batch, after its mid validation
            raise Killed
        return fit_batch(batch)

    killed.brain.fit_batch = dying
    with pytest.raises(Killed):
        killed.fit(data)
    assert killed.validations == 3
    resumed = Run(tmp_path / "killed", done=3, **kwargs)
    batches = []
    fit_batch2 = resumed.brain.fit_batch
    resumed.brain.fit_batch = lambda b: (
        batches.append(resumed.counter.current) or (fit_batch2(b))
    )
    resumed.fit(data)
    assert batches == [2, 3, 3]  # the rest of epoch 2, then epoch 3
    assert resumed.validations == 6
    a = load_trained_probes(tmp_path / "whole", whole.asr).state_dict()
    b = load_trained_probes(tmp_path / "killed", resumed.asr).state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_patience_off_is_the_fixed_number_of_epochs(tmp_path):
    for patience in (None, 0):
        run = Run(tmp_path / str(patience), epochs=3, early_stopping_patience=patience)
        assert run.brain.early_stopping is None
        run.fit(make_data(3))
        assert run.counter.current == 3 and run.validations == 3
        assert "early_stopping" not in run.brain.checkpointer.recoverables
    with pytest.raises(ValueError, match="patience >= 1"):
        LayerEarlyStopping(["a"], patience=-1)
    with pytest.raises(ValueError, match="valid_every_steps must be >= 0"):
        Run(tmp_path / "x", valid_every_steps=-5)


def test_early_stopping_state_roundtrips_and_refuses_other_layers(tmp_path):
    probes = {"a": torch.nn.Linear(2, 2), "b": torch.nn.Linear(2, 2)}
    stopper = LayerEarlyStopping(["a", "b"], patience=1)
    stopper.update({"a": 0.5, "b": 0.5}, probes, epoch=1, step=3)
    stopper.update({"a": 0.6, "b": 0.4}, probes, epoch=2, step=6)
    stopper.save(tmp_path / "es.ckpt")
    again = LayerEarlyStopping(["a", "b"], patience=1)
    again.load(tmp_path / "es.ckpt")
    assert again.summary() == stopper.summary()
    assert again.active == ["b"] and again.best_step == {"a": 3, "b": 6}
    assert torch.equal(again.best_state["a"]["weight"], probes["a"].weight)
    with pytest.raises(ValueError, match=r"for layers \['a', 'b'\]"):
        LayerEarlyStopping(["a"], patience=1).load(tmp_path / "es.ckpt")


# --------------------------------------------------------------------------
# the recipe: hparams, overrides, valid_l1.csv
# --------------------------------------------------------------------------


def test_recipe_early_stopping_and_valid_l1_columns(tmp_path, monkeypatch):
    from tests.recipe_scripts import PROBE_RECIPE, load_recipe
    from tests.test_pretrained import make_export, write_corpus

    export = make_export(tmp_path / "asr")
    data = write_corpus(tmp_path / "data", n=3)
    out = tmp_path / "out"
    main = load_recipe(PROBE_RECIPE / "train_probe.py").main
    argv = [
        str(PROBE_RECIPE / "hparams" / "all_layers.yaml"),
        "--skip_prep=True",
        f"--asr_source={export}",
        f"--data_folder={data}",
        f"--output_folder={out}",
        "--layers=[feats,rnn2]",
        "--noisy_training=False",
        # the demo's overrides
        "--train_utts=3",
        "--valid_utts=2",
        "--number_of_epochs=3",
        "--early_stopping_patience=1",
        "--early_stopping_min_delta=1.0",  # nothing counts as better: stop at once
        "--batch_size=3",
        "--device=cpu",
    ]
    monkeypatch.setattr(sys, "argv", ["train_probe.py", *argv])
    main(argv)
    with open(out / "valid_l1.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["layer"] for r in rows] == ["feats", "rnn2"]
    for row in rows:
        assert (row["best_epoch"], row["stopped_early"], row["target_mel"]) == (
            "1",
            "True",
            "custom 16000 Hz/hop 200/40 mels",  # the export's own mel (paper)
        )
        assert row["n_utts"] == "2" and 0 < float(row["valid_l1"]) < 1
    log = (out / "train_log.txt").read_text()
    assert log.count("epoch:") == 2  # stopped after the 2nd validation, not 3


def test_early_stopping_under_ddp(tmp_path):
    """torchrun, 2 processes (gloo), prefetch, a validation inside each epoch:
    both processes stop the probes at the same validation and training ends."""
    import os
    import subprocess

    from speechbrain_probe.data import synthetic
    from tests.test_evaluation import TINY
    from tests.test_pretrained import RECIPE, make_export

    synthetic.build_corpus(tmp_path / "corpus", seed=5, preset="tiny", **TINY)
    out = tmp_path / "out"
    cmd = [
        str(Path(sys.executable).parent / "torchrun"),
        "--nproc_per_node=2",
        "--master_port=29547",
        str(RECIPE / "train_probe.py"),
        str(RECIPE / "hparams" / "all_layers.yaml"),
        "--skip_prep=True",
        f"--asr_source={make_export(tmp_path / 'asr')}",
        f"--data_folder={tmp_path / 'corpus'}",
        f"--output_folder={out}",
        "--layers=[feats,rnn2]",
        "--train_utts=8",
        "--valid_utts=4",
        "--batch_size=2",  # 2 steps per process and epoch
        "--number_of_epochs=3",
        "--valid_every_steps=1",
        "--early_stopping_patience=1",
        "--early_stopping_min_delta=1.0",  # the 2nd validation stops every probe
        "--distributed_backend=gloo",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    log = (out / "train_log.txt").read_text().splitlines()
    # epoch 1: one validation after its first step, one at its end; no epoch 2
    assert len(log) == 2 and "step: 1" in log[0] and log[1].startswith("epoch: 1")
    with open(out / "valid_l1.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["layer"], r["best_epoch"], r["stopped_early"]) for r in rows] == [
        ("feats", "1", "True"),
        ("rnn2", "1", "True"),
    ]
    assert len(list((out / "save").glob("CKPT+*"))) == 1
