"""train_probe.py under torchrun: 2 processes, gloo, with and without prefetch."""

import csv
import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechbrain_probe.data import synthetic
from tests.test_evaluation import TINY
from tests.test_pretrained import RECIPE, make_export


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_ddp")
    synthetic.build_corpus(root / "corpus", seed=5, preset="tiny", **TINY)
    return root / "corpus", make_export(root / "asr")


def _train(corpus, export, out, port, prefetch):
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [
        str(torchrun),
        "--nproc_per_node=2",
        f"--master_port={port}",
        str(RECIPE / "train_probe.py"),
        str(RECIPE / "hparams" / "blstm3.yaml"),
        "--skip_prep=True",  # the test's own corpus, not the built-in one
        f"--asr_source={export}",
        f"--data_folder={corpus}",
        f"--output_folder={out}",
        "--layers=[feats,rnn2]",
        "--number_of_epochs=2",
        "--train_utts=8",
        "--valid_utts=4",
        "--batch_size=2",
        "--distributed_backend=gloo",
        f"--prefetch={prefetch}",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(out / "valid_l1.csv", newline="") as handle:
        return {r["layer"]: r["valid_l1"] for r in csv.DictReader(handle)}


def test_ddp_probe_training_with_and_without_prefetch(inputs, tmp_path):
    corpus, export = inputs
    plain = _train(corpus, export, tmp_path / "plain", 29541, False)
    prefetched = _train(corpus, export, tmp_path / "prefetch", 29542, True)
    assert set(plain) == {"feats", "rnn2"}
    assert all(0 < float(v) < 1 for v in plain.values())
    # noise mixing, ASR forward and mel target on the prefetch thread change nothing
    assert prefetched == plain
    for out in ("plain", "prefetch"):
        assert len(glob.glob(str(tmp_path / out / "save" / "CKPT+*"))) >= 1
        epochs = (tmp_path / out / "train_log.txt").read_text().count("epoch:")
        assert epochs == 2
