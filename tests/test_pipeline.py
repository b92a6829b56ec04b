"""The demo's stage runner: lanes, dependencies, failures, resume, peak memory."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speechbrain_probe.demo import DemoSettings, plan_stages, stage_env
from speechbrain_probe.pipeline import Stage, StageFailed, run_stages

# a stage that records when it ran, optionally holds memory, sleeps, may fail
SCRIPT = """
import sys, time
name, folder, seconds, fail, megabytes = sys.argv[1:6]
ballast = bytearray(int(megabytes) * 2**20)
ballast[::4096] = b"x" * len(ballast[::4096])
start = time.time()
time.sleep(float(seconds))
print(f"{name} working 50%|#####", flush=True)
if fail == "1":
    print("something went wrong in " + name, flush=True)
    sys.exit(3)
with open(f"{folder}/{name}.done", "w") as f:
    f.write(f"{start} {time.time()}")
"""


def _stage(tmp_path, name, seconds=0.5, needs=(), fail=False, megabytes=0):
    script = tmp_path / "stage.py"
    script.write_text(SCRIPT)
    command = [
        sys.executable,
        str(script),
        name,
        str(tmp_path),
        str(seconds),
        "1" if fail else "0",
        str(megabytes),
    ]
    return Stage(name, command, tmp_path / f"{name}.done", tuple(needs))


def _span(tmp_path, name):
    start, end = (tmp_path / f"{name}.done").read_text().split()
    return float(start), float(end)


def test_two_lanes_run_side_by_side_and_respect_needs(tmp_path):
    stages = [
        _stage(tmp_path, "a", 1.0),
        _stage(tmp_path, "b", 1.0),
        _stage(tmp_path, "c", 0.1, needs=("a", "b")),
    ]
    lines = []
    summary = run_stages(stages, lanes=2, log_dir=tmp_path / "logs", echo=lines.append)
    assert sorted(summary.minutes) == ["a", "b", "c"]
    a, b, c = (_span(tmp_path, n) for n in "abc")
    assert a[0] < b[1] and b[0] < a[1]  # a and b overlapped
    assert c[0] >= max(a[1], b[1])  # c waited for both
    assert "b working 50%" in (tmp_path / "logs" / "b.log").read_text()


def test_a_failed_stage_stops_new_ones_keeps_finished_work_and_resumes(tmp_path):
    stages = [
        _stage(tmp_path, "slow", 1.0),
        _stage(tmp_path, "broken", 0.1, fail=True),
        _stage(tmp_path, "after", 0.1, needs=("slow",)),
    ]
    with pytest.raises(StageFailed) as failure:
        run_stages(stages, lanes=2, log_dir=tmp_path / "logs", echo=lambda *a: None)
    text = str(failure.value)
    assert "stage 'broken' failed (exit 3)" in text
    assert "something went wrong in broken" in text  # the log's tail
    assert str(tmp_path / "logs" / "broken.log") in text
    assert (tmp_path / "slow.done").exists()  # the running stage finished
    assert not (tmp_path / "after.done").exists()  # no new stage started

    # fixed: the next run skips the finished stage and runs the rest
    stages[1] = _stage(tmp_path, "broken", 0.1)
    lines = []
    summary = run_stages(stages, lanes=2, log_dir=tmp_path / "logs", echo=lines.append)
    assert sorted(summary.minutes) == ["after", "broken"]
    assert any("[done already] slow" in line for line in lines)


def test_peak_memory_counts_all_stage_processes_together(tmp_path):
    stages = [
        _stage(tmp_path, "one", 3.0, megabytes=150),
        _stage(tmp_path, "two", 3.0, megabytes=150),
    ]
    summary = run_stages(
        stages, lanes=2, log_dir=tmp_path / "logs", echo=lambda *a: None
    )
    if sys.platform.startswith("linux"):
        assert summary.peak_rss_bytes > 300 * 2**20
        # the peak names the stages that ran side by side at that moment
        assert sorted(summary.peak_during) == ["one", "two"]
    # both ran at once: each started before the other ended
    (a0, a1), (b0, b1) = summary.spans["one"], summary.spans["two"]
    assert a0 < b1 and b0 < a1 and min(a1 - a0, b1 - b0) > 0.04


FORKED = """
import os, sys, time
ballast = bytearray(200 * 2**20)
ballast[::4096] = b"x" * len(ballast[::4096])
if os.fork() == 0:  # the child shares the parent's 200 MB until either writes
    time.sleep(3.0)
    os._exit(0)
time.sleep(3.0)
os.wait()
open(sys.argv[1], "w").close()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_shared_pages_count_once_in_the_proportional_peak(tmp_path):
    script = tmp_path / "forked.py"
    script.write_text(FORKED)
    done = tmp_path / "forked.done"
    stage = Stage("forked", [sys.executable, str(script), str(done)], done)
    summary = run_stages([stage], echo=lambda *a: None)
    # the parent and its forked child: 200 MB each by RSS, 200 MB in all by PSS
    assert summary.peak_rss_bytes > 400 * 2**20
    assert 200 * 2**20 < summary.peak_pss_bytes < 300 * 2**20


def test_bad_plans_are_refused(tmp_path):
    with pytest.raises(ValueError, match="needs unknown stage"):
        run_stages([_stage(tmp_path, "a", needs=("nope",))])
    with pytest.raises(ValueError, match="log_dir"):
        run_stages([_stage(tmp_path, "a")], lanes=2)


def test_demo_plan_runs_probes_after_their_asr_and_evaluation_last(tmp_path):
    settings = DemoSettings.make(quick=False, data_dir="d", results_dir="r")
    settings.lanes = 2
    stages = {s.name: s for s in plan_stages(settings)}
    assert stages["probes blstm_robust"].needs == ("ASR blstm_robust",)
    assert set(stages["evaluation + report"].needs) == set(stages) - {
        "evaluation + report"
    }
    assert stages["ASR vgg_lstm_baseline"].needs == ()
    with pytest.raises(ValueError, match="none.so: no such library"):
        stage_env(1, base={"SBPROBE_MALLOC": str(tmp_path / "none.so")})
    env, _ = stage_env(1, base={"SBPROBE_MALLOC": "glibc"})
    assert "LD_PRELOAD" not in env and env["OMP_NUM_THREADS"] == "1"


def test_quick_asr_overrides_name_keys_of_its_hparams_file():
    # a misspelt override would fail only minutes into a demo
    stage = plan_stages(DemoSettings.make(True, "d", "r"))[0]
    yaml_file = Path(stage.command[2])
    keys = {
        line.split(":")[0]
        for line in yaml_file.read_text().splitlines()
        if line and line[0].isalpha()
    }
    overrides = [a[2:].split("=")[0] for a in stage.command[3:]]
    assert {"batch_size", "inter_ctc_layer"} <= set(overrides)
    assert set(overrides) <= keys


def test_full_preset_reuses_the_demo_and_evaluates_everything():
    """``make study``: the default demo's stages with the same commands (a
    finished demo is reused), then one evaluation into its own folder with
    every test utterance, five conditions and 14,400 trials per cell."""
    demo = {s.name: s for s in plan_stages(DemoSettings.make(False, "d", "r"))}
    full = {
        s.name: s for s in plan_stages(DemoSettings.make(False, "d", "r", full=True))
    }
    assert set(full) - set(demo) == {"full evaluation + report"}
    assert set(demo) - set(full) == {"evaluation + report"}
    for name in set(full) & set(demo):
        assert full[name].command == demo[name].command
    evaluation = full["full evaluation + report"]
    assert evaluation.done_marker.parent.name == "study_full"
    assert {
        "--utts_per_speaker=null",
        "--conditions=[clean,snr20,snr10,snr5,snr0]",
        "--negatives_per_positive=2",
    } <= set(evaluation.command)
    with pytest.raises(ValueError, match="no quick version"):
        DemoSettings.make(True, "d", "r", full=True)


def test_stages_preload_the_mimalloc_the_project_installs():
    env, library = stage_env(2, base={})
    assert library is not None and library.endswith("libmimalloc.so")
    assert env["LD_PRELOAD"] == library and "GLIBC_TUNABLES" not in env
    # a process started with it really runs on mimalloc
    probe = subprocess.run(
        [sys.executable, "-c", "print(open('/proc/self/maps').read())"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "libmimalloc" in probe.stdout


RUNNER = """
import os
import subprocess
import sys
from pathlib import Path
from speechbrain_probe.pipeline import Stage, run_stages
folder = Path(sys.argv[1])
child = (
    "import os, time, pathlib; "
    f"pathlib.Path({str(folder / 'pid')!r}).write_text(str(os.getpid())); time.sleep(60)"
)
run_stages([Stage("long", [sys.executable, "-c", child], folder / "never")])
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")
def test_a_killed_runner_leaves_no_stage_running(tmp_path):
    import signal
    import subprocess

    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path)])
    pid_file = tmp_path / "pid"
    deadline = time.time() + 30
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    stage_pid = int(pid_file.read_text())
    assert _running(stage_pid)
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    deadline = time.time() + 10
    while _running(stage_pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not _running(stage_pid)
