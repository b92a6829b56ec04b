"""Checkpoint selection: the complete checkpoint with the lowest loss, never a half-written one."""

import json

import pytest
import yaml
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_probe.checkpoints import (
    find_complete_checkpoint,
    mark_checkpoint_complete,
)


def make_ckpt(folder, name, meta, complete=True, unixtime=0.0):
    ckpt = folder / f"CKPT+{name}"
    ckpt.mkdir(parents=True)
    (ckpt / "CKPT.yaml").write_text(
        yaml.safe_dump({"unixtime": unixtime, "end-of-epoch": True, **meta})
    )
    (ckpt / "probes.ckpt").write_bytes(b"x" * 64)
    if complete:
        mark_checkpoint_complete(ckpt)
    return ckpt


# checkpoints (name, meta[, complete]) in the order saved -> the one picked
LAYOUTS = {
    "lowest loss wins": (
        [("a", {"loss": 0.5}), ("b", {"loss": 0.2}), ("c", {"loss": 0.9})],
        "b",
    ),
    "a half-written one with a lower loss is never picked": (
        [("a", {"loss": 0.5}), ("b", {"loss": 0.1}, False), ("c", {"loss": 0.3})],
        "c",
    ),
    "one without loss (intra-epoch) ranks last": (
        [("a", {}), ("b", {"loss": 0.7})],
        "b",
    ),
    "among equal losses the most recent": (
        [("a", {"loss": 0.2}), ("b", {"loss": 0.2}), ("c", {"loss": 0.4})],
        "b",
    ),
    "only one without loss is still found": ([("a", {})], "a"),
    "only half-written ones: none": ([("a", {"loss": 0.1}, False)], None),
    "empty folder: none": ([], None),
}


@pytest.mark.parametrize("layout,picked", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_find_complete_checkpoint_picks_the_lowest_complete(tmp_path, layout, picked):
    for i, (name, meta, *complete) in enumerate(layout):
        make_ckpt(tmp_path, name, meta, *complete, unixtime=float(i))
    # folders that are no checkpoints
    (tmp_path / "incomplete-CKPT+z").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    found = find_complete_checkpoint(tmp_path, "loss")
    assert (found.path.name if found else None) == (picked and f"CKPT+{picked}")


def test_half_written_probe_file_is_not_complete(tmp_path):
    ckpt = make_ckpt(tmp_path, "a", {"loss": 0.1})
    (ckpt / "probes.ckpt").write_bytes(b"x" * 10)  # cut short by a kill
    good = make_ckpt(tmp_path, "b", {"loss": 0.4})
    assert find_complete_checkpoint(tmp_path, "loss").path == good
    marker = json.loads((good / "PROBE_COMPLETE.json").read_text())
    assert marker == {
        "CKPT.yaml": (good / "CKPT.yaml").stat().st_size,
        "probes.ckpt": 64,
    }


def test_missing_folder_is_none_and_not_created(tmp_path):
    assert find_complete_checkpoint(tmp_path / "nope", "loss") is None
    assert not (tmp_path / "nope").exists()


def test_real_checkpointer_saves_are_found(tmp_path):
    ckpter = Checkpointer(tmp_path)
    for loss in (0.3, 0.1, 0.2):
        mark_checkpoint_complete(ckpter.save_checkpoint(meta={"loss": loss}).path)
    ckpter.save_checkpoint(meta={"loss": 0.0})  # SpeechBrain's, never marked
    assert find_complete_checkpoint(tmp_path, "loss").meta["loss"] == 0.1
