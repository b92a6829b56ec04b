"""A folder lock makes a second process wait for the first one's preparation."""

import subprocess
import sys

from speechbrain_probe.data.locks import folder_lock

HOLDER = """
import sys, time
from speechbrain_probe.data.locks import folder_lock
with folder_lock(sys.argv[1], "test files"):
    print("holding", flush=True)
    time.sleep(1.5)
    open(sys.argv[1] + "/built.txt", "w").write("done")
"""


def test_second_process_waits_and_then_finds_the_work_done(tmp_path):
    folder = tmp_path / "shared"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    said = []
    with folder_lock(folder, "test files", echo=said.append):
        # the holder finished its work before letting go
        assert (folder / "built.txt").read_text() == "done"
    holder.wait(timeout=10)
    assert said and "waiting for another process preparing test files" in said[0]


def test_a_second_demo_on_the_same_results_refuses_and_does_nothing(tmp_path):
    import pytest

    from speechbrain_probe import demo

    held = tmp_path / "results" / "demo_quick"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(held)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    argv = ["--quick", "--data-dir", str(tmp_path / "data")]
    with pytest.raises(SystemExit, match="another process is using .*demo_quick"):
        demo.main(argv + ["--results-dir", str(tmp_path / "results")])
    holder.wait(timeout=10)
    assert not (tmp_path / "data").exists()  # not even the corpus was started


def test_lock_is_exclusive_and_released_on_exit(tmp_path):
    """While the lock is held, a second taker that may not wait is refused
    with a message naming the folder; once released, it can be taken again."""
    import pytest

    from speechbrain_probe.data.locks import FolderBusy

    folder = tmp_path / "shared"
    with folder_lock(folder, "test files", wait=False):
        with pytest.raises(FolderBusy, match=r"another process is using .*shared"):
            with folder_lock(folder, "test files", wait=False):
                pass
    with folder_lock(folder, "test files", wait=False):
        pass
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]
