"""CTC ASR recipe on tiny eSpeak data: overfit, resume after kill, DDP, bad input.

The data (6 short sentences, one voice) is synthesised into a temporary folder;
nothing of the built-in corpus is used.
"""

import csv
import glob
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechbrain_probe.checkpoints import checkpoint_is_complete

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "recipes" / "Synthetic" / "ASR" / "CTC" / "train_asr.py"
HPARAMS = REPO / "recipes" / "Synthetic" / "ASR" / "CTC" / "hparams"

SENTENCES = [
    "THE CAT SAT ON THE MAT",
    "A DOG RAN HOME",
    "BIRDS SING IN THE MORNING",
    "WE LIKE GREEN APPLES",
    "THE SUN IS HOT TODAY",
    "MY FRIEND READS BOOKS",
]


def _write_csv(path, rows, header=("ID", "duration", "wav", "spk_id", "wrd")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow(r)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Six utterances of one eSpeak voice + manifests + a noise bank + tokenizer."""
    from speechbrain_probe.asr.tokenizer import train_tokenizer
    from speechbrain_probe.data.espeak import Voice, get_espeak

    root = tmp_path_factory.mktemp("asr_tiny")
    (root / "wav").mkdir()
    engine = get_espeak()
    rows = []
    for i, text in enumerate(SENTENCES):
        wav = engine.synthesize(text.lower(), Voice("en-us", "m3"))
        path = root / "wav" / f"u{i}.wav"
        sf.write(path, wav, 16000)
        rows.append((f"u{i}", f"{len(wav) / 16000:.4f}", str(path), "spk0", text))
    for name in ("train", "dev", "test"):
        _write_csv(root / f"{name}.csv", rows)
    noise = np.random.default_rng(0).standard_normal(16000).astype("float32") * 0.1
    sf.write(root / "noise0.wav", noise, 16000)
    _write_csv(
        root / "noise_train.csv",
        [("n0", "1.0", str(root / "noise0.wav"), "noise")],
        header=("ID", "duration", "wav", "category"),
    )
    tok = train_tokenizer(str(root / "train.csv"), str(root / "tok"), vocab_size=30)
    return {"root": root, "rows": rows, "vocab": tok.sp.vocab_size()}


def _args(tiny, out, yaml="vgg_lstm.yaml", **extra):
    opts = {
        "data_folder": str(tiny["root"]),
        "skip_prep": True,
        "output_root": str(out),
        "tokenizer_folder": str(tiny["root"] / "tok"),
        "vocab_size": tiny["vocab"],
        "test_snr20_csv": None,
        "test_snr10_csv": None,
        "test_snr0_csv": None,
        "hidden_size": 32,
        "dropout": 0.0,
        "augment": None,
        "num_threads": 1,
    }
    if "vgg" in yaml:
        opts["cnn_channels"] = "[4, 8]"
    else:
        # the blstm hparams' intermediate head has units of its own
        opts["inter_ctc_vocab_size"] = 25
    # tiny runs take a step or two per epoch: a short warm-up
    opts["lr_warmup_steps"] = 2
    opts.update(extra)
    args = [str(HPARAMS / yaml)]
    for k, v in opts.items():
        args.append(f"--{k}={'null' if v is None else v}")
    return args


def _recipe():
    from tests.recipe_scripts import load_recipe

    return load_recipe(SCRIPT)


def _log_epochs(path):
    text = Path(path).read_text()
    return [
        {k: float(v) for k, v in re.findall(r"valid (loss|CER): ([0-9.e+-]+)", line)}
        for line in text.splitlines()
        if line.startswith("epoch: ")
    ]


@pytest.mark.slow
def test_overfit_tiny_run_learns_and_exports(tiny, tmp_path):
    from speechbrain.inference.ASR import EncoderASR
    from speechbrain.utils.edit_distance import accumulatable_wer_stats

    main = _recipe().main

    out = tmp_path / "out"
    main(
        _args(
            tiny,
            out,
            number_of_epochs=150,
            batch_size=6,
            lr=0.01,
            num_blstm=2,
            model_name="overfit",
            ckpt_interval_minutes=0,
        )
    )
    folder = out / "overfit"
    epochs = _log_epochs(folder / "train_log.txt")
    assert len(epochs) == 150
    first, best = epochs[0], min(epochs, key=lambda e: e["CER"])
    # measured: valid loss 3.23 -> 2.15, CER 100 -> ~77 in 150 full-batch steps
    assert best["loss"] < 0.8 * first["loss"], epochs
    assert first["CER"] > 95 and best["CER"] < 90, epochs
    with open(folder / "asr_results.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == [
        "model",
        "arch",
        "training",
        "condition",
        "wer",
        "cer",
        "n",
    ]
    assert table[0]["condition"] == "clean" and table[0]["training"] == "baseline"
    assert float(table[0]["cer"]) < 90 and int(table[0]["n"]) == len(SENTENCES)
    assert (folder / "ctc_alignability.json").is_file()
    # the export loads offline and transcribes as well as the evaluated model
    export = str(folder / "export")
    asr = EncoderASR.from_hparams(source=export, savedir=export)
    hyps = [asr.transcribe_file(r[2]) for r in tiny["rows"]]
    errors = sum(
        accumulatable_wer_stats([list(r[4])], [list(h)])["num_edits"]
        for h, r in zip(hyps, tiny["rows"])
    )
    chars = sum(len(r[4]) for r in tiny["rows"])
    assert errors / chars < 0.9, hyps


def _intra_epoch_ckpts(save):
    """Intra-epoch checkpoints written in full (SpeechBrain writes CKPT.yaml
    first), oldest first: their names sort by time (``CKPT+date+time+NN``)."""
    found = []
    for meta in glob.glob(str(save / "CKPT+*" / "CKPT.yaml")):
        folder = Path(meta).parent
        if "intra_epoch" in Path(meta).read_text() and checkpoint_is_complete(folder):
            found.append(folder)
    return sorted(found)


def test_resume_after_kill_mid_epoch(tiny, tmp_path):
    root = tiny["root"]
    # a long epoch: the six utterances repeated, one per batch
    rows = [(f"r{k}_{r[0]}", *r[1:]) for k in range(12) for r in tiny["rows"]]
    _write_csv(root / "train_long.csv", rows)
    out = tmp_path / "out"
    cmd = [sys.executable, str(SCRIPT)] + _args(
        tiny,
        out,
        yaml="blstm.yaml",
        train_csv=str(root / "train_long.csv"),
        number_of_epochs=1,
        batch_size=1,
        sorting="ascending",
        ckpt_interval_minutes=0,
        ckpt_interval_steps=4,
        model_name="resume",
    )
    save = out / "resume" / "save"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while not _intra_epoch_ckpts(save) and time.time() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the kill can land after a newer checkpoint is saved and before the older
    # one is deleted: the run resumes from the newest
    ckpts = _intra_epoch_ckpts(save)
    assert killed and ckpts, "training ended before an intra-epoch checkpoint"
    brain_state = (ckpts[-1] / "brain.ckpt").read_text()
    step = int(re.search(r"step: (\d+)", brain_state).group(1))
    assert 0 < step < len(rows)
    assert not (out / "resume" / "train_log.txt").exists() or not _log_epochs(
        out / "resume" / "train_log.txt"
    )

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = rerun.stdout + rerun.stderr
    assert f"Loading a checkpoint from {ckpts[-1]}" in log
    assert len(_log_epochs(out / "resume" / "train_log.txt")) == 1


def test_ddp_two_processes_gloo(tiny, tmp_path):
    out = tmp_path / "out"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [
        str(torchrun),
        "--nproc_per_node=2",
        "--master_port=29533",
        str(SCRIPT),
    ] + _args(
        tiny,
        out,
        yaml="blstm.yaml",
        number_of_epochs=1,
        batch_size=2,
        model_name="ddp",
        distributed_backend="gloo",
        ckpt_interval_minutes=0,
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    ckpts = glob.glob(str(out / "ddp" / "save" / "CKPT+*"))
    assert len(ckpts) == 1, ckpts
    assert len(_log_epochs(out / "ddp" / "train_log.txt")) == 1
    assert (out / "ddp" / "export" / "hyperparams.yaml").is_file()


def test_missing_audio_is_a_clear_error(tiny, tmp_path):
    main = _recipe().main

    rows = list(tiny["rows"]) + [("gone", "1.0", str(tmp_path / "gone.wav"), "s", "HI")]
    _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(FileNotFoundError, match="do not exist.*gone.wav"):
        main(_args(tiny, tmp_path / "out", train_csv=str(tmp_path / "bad.csv")))


def test_zero_length_utterance_is_skipped_with_warning(tiny, tmp_path, caplog):
    from speechbrain_probe.asr.data import read_checked_manifest

    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype="float32"), 16000)
    rows = list(tiny["rows"]) + [("zero", "0.0", str(empty), "s", "HI")]
    _write_csv(tmp_path / "m.csv", rows)
    with caplog.at_level("WARNING"):
        kept = read_checked_manifest(str(tmp_path / "m.csv"))
    assert [r["ID"] for r in kept] == [r[0] for r in tiny["rows"]]
    assert "zero" in caplog.text and "skipping 1 utterance" in caplog.text


def test_noisy_copies_hit_their_snr(tiny):
    from speechbrain_probe.asr.data import (
        load_audio,
        make_noisy_copies,
        read_noise_bank,
    )
    from speechbrain_probe.data.noise import measure_snr
    from speechbrain_probe.vocabulary import NOISE_SNR_RANGES

    rows = [
        dict(zip(("ID", "duration", "wav", "spk_id", "wrd"), r)) for r in tiny["rows"]
    ]
    bank = read_noise_bank(str(tiny["root"]))
    assert bank == {"noise": [str(tiny["root"] / "noise0.wav")]}
    noisy, audio_fn = make_noisy_copies(rows, bank, seed=3)
    again, _ = make_noisy_copies(rows, bank, seed=3)
    assert [r["snr_db"] for r in noisy] == [r["snr_db"] for r in again]
    lo, hi = NOISE_SNR_RANGES["noise"]
    for r in noisy:
        assert lo <= r["snr_db"] <= hi
        mix = audio_fn(r)
        clean = load_audio(r["wav"])
        assert abs(float(measure_snr(clean, mix)) - r["snr_db"]) < 1e-3


def test_intermediate_head_gets_its_own_units(tiny):
    """Hierarchical CTC: the dataset carries the intermediate head's tokens."""
    import torch

    from speechbrain_probe.asr.brain import make_ctc_dataset
    from speechbrain_probe.asr.tokenizer import train_tokenizer

    top = train_tokenizer(
        str(tiny["root"] / "train.csv"), str(tiny["root"] / "tok"), 30
    )
    low = train_tokenizer(
        str(tiny["root"] / "train.csv"), str(tiny["root"] / "tok"), 25
    )
    rows = [{"ID": r[0], "duration": r[1], "wrd": r[4]} for r in tiny["rows"]]
    feats = {r["ID"]: torch.zeros(400, 4) for r in rows}
    ds, _ = make_ctc_dataset(rows, feats, top.sp, lambda t: t, "t", inter_sp=low.sp)
    item = ds[0]
    assert item["tokens"].tolist() == top.sp.encode_as_ids(rows[0]["wrd"])
    assert item["inter_tokens"].tolist() == low.sp.encode_as_ids(rows[0]["wrd"])
    assert len(item["inter_tokens"]) > len(item["tokens"])


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_sortagrad_batches_stay_bucketed_under_ddp(world_size):
    """Each DDP process reads items ``rank::world_size`` of the sampler's order
    (SpeechBrain's DistributedSamplerWrapper): with groups of batch x world
    utterances, every process's batches hold neighbours in duration, as in a
    one-process run, instead of lengths from two unrelated groups."""
    import torch
    from speechbrain.dataio.dataset import DynamicItemDataset
    from speechbrain.dataio.sampler import DistributedSamplerWrapper

    from speechbrain_probe.asr.training import train_order

    rng = np.random.default_rng(0)
    durations = rng.uniform(1.0, 8.0, size=240)
    data = {f"u{i}": {"duration": float(d)} for i, d in enumerate(durations)}
    batch = 4
    _, opts, sampler = train_order(
        DynamicItemDataset(data),
        {"batch_size": batch},
        "sortagrad",
        world_size=world_size,
    )
    sampler.set_epoch(2)  # a shuffled epoch (epoch 1 is sorted)
    ranks = [
        list(
            DistributedSamplerWrapper(
                sampler, num_replicas=world_size, rank=r, shuffle=False
            )
        )
        for r in range(world_size)
    ]
    spread = [
        np.ptp(durations[order[k : k + batch]])
        for order in ranks
        for k in range(0, len(order) - batch + 1, batch)
    ]
    random_spread = [
        np.ptp(durations[torch.randperm(240)[:batch].numpy()]) for _ in range(200)
    ]
    assert sorted(i for order in ranks for i in order) == list(range(240))
    # pools of 50 groups over 7 s of durations: neighbours differ by ~0.1 s
    assert np.median(spread) < 0.2 * np.median(random_spread), (
        np.median(spread),
        np.median(random_spread),
    )
