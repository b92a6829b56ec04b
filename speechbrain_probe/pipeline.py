"""Run recipe stages as subprocesses: dependencies, parallel lanes, peak memory.

The demo is a chain of SpeechBrain recipes (corpus -> ASR -> probes ->
evaluation). Each :class:`Stage` is one recipe command and the file that says
it finished, so a stage whose marker exists is skipped and a killed stage
resumes from its own checkpoints when it runs again.

:func:`run_stages` starts every stage whose ``needs`` have finished, up to
``lanes`` at a time, in list order. With one lane a stage writes to the
terminal (its progress bars live); with several, each writes to its own log
file and a status line per running stage (its latest progress bar) is printed
every ``status_every_s`` seconds. A failed stage stops new stages from
starting; the running ones finish their work (it is kept), then the failure
is raised with the tail of the failed stage's log. On Linux a stage process
is stopped (SIGTERM) when the runner dies, however it dies, so a killed demo
leaves no stage running behind it.

While stages run, the resident memory of all child processes together is
sampled (Linux ``/proc``), so the peak reported is that of the whole run, not
of its largest process.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Stage", "StageFailed", "RunSummary", "run_stages"]


@dataclass
class Stage:
    """One step of a pipeline: a command, the file that says it is done, and
    the names of the stages it needs first.

    Example
    -------
    >>> s = Stage("train", ["python", "-c", "pass"], Path("nowhere/done.txt"))
    >>> s.done(), s.needs
    (False, ())
    """

    name: str
    command: list[str]
    done_marker: Path
    needs: tuple[str, ...] = ()

    def done(self) -> bool:
        """Whether the stage's final output exists."""
        return Path(self.done_marker).exists()

    @property
    def slug(self) -> str:
        """A file-name-safe form of the name (``ASR vgg_lstm`` -> ``ASR_vgg_lstm``)."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_")


#: Seconds between samples of the proportional set sizes between RSS peaks.
PSS_EVERY_S = 5.0


class StageFailed(RuntimeError):
    """A stage exited with an error or without writing its done marker."""


@dataclass
class RunSummary:
    """What :func:`run_stages` measured: minutes per stage that ran, the peak
    resident memory of all stage processes together (None off Linux; RSS
    sum, and the sum with shared pages counted once), the
    stages running at that peak, and each stage's start and end in minutes
    from the start of the run (where the cores idled, and what the critical
    path was)."""

    minutes: dict
    peak_rss_bytes: int | None
    peak_during: tuple = ()
    spans: dict = field(default_factory=dict)
    #: the peak of the proportional set sizes' sum (shared pages counted once)
    peak_pss_bytes: int | None = None


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # the command name (field 2) may hold spaces: split after its ')'
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _process_tree(pids) -> list[int]:
    """``pids`` and all their descendants (one scan of ``/proc``)."""
    tree = _children_of()
    found, todo, seen = [], list(pids), set()
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            found.append(pid)
            todo.extend(tree.get(pid, []))
    return found


def _resident_bytes(pid: int, proportional: bool) -> int:
    """One process's resident memory (0 once it has ended, or off Linux): its
    RSS, or (``proportional``) its proportional set size, where a page shared
    by n processes counts 1/n (RSS where the kernel has no ``smaps_rollup``).
    A sum of RSS counts every shared page (torch's libraries, a forked
    worker's inherited heap) once per process; a sum of PSS once in all.

    Example
    -------
    >>> rss = _resident_bytes(os.getpid(), proportional=False)
    >>> not os.path.isdir("/proc") or 0 < _resident_bytes(os.getpid(), True) <= rss
    True
    """
    try:
        if proportional:
            try:
                with open(f"/proc/{pid}/smaps_rollup") as handle:
                    for line in handle:
                        if line.startswith("Pss:"):
                            return int(line.split()[1]) * 1024
            except OSError:
                pass
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _say(*args) -> None:
    print(*args, flush=True)  # in order with the stages' output, through pipes too


def _die_with_parent() -> None:
    """In a stage process (Linux): get SIGTERM when the runner dies, even by
    SIGKILL, so that no orphaned stage keeps writing into a folder that the
    next run will use."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _last_progress(log: Path, limit: int = 110) -> str:
    """The latest progress-bar line (or last line) of a stage's log."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - 4096))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [x.strip() for x in _lines(tail)]
    bars = [x for x in lines if "%|" in x]
    text = (bars or lines or [""])[-1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _lines(text: str) -> list[str]:
    """Non-empty lines of a log, a progress bar's ``\\r`` updates each its own."""
    return [x for x in re.split(r"[\r\n]", text) if x.strip()]


def _tail(log: Path, lines: int = 30) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(_lines(text)[-lines:])


@dataclass
class _Running:
    stage: Stage
    proc: subprocess.Popen
    started: float
    log: Path | None
    handle: object = None


def _check_stages(stages: list[Stage], lanes: int, log_dir) -> None:
    """Refuse what :func:`run_stages` cannot run, before anything starts."""
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique: {names}")
    for s in stages:
        unknown = [n for n in s.needs if n not in names]
        if unknown:
            raise ValueError(f"stage {s.name!r} needs unknown stage(s) {unknown}")
    if lanes > 1 and log_dir is None:
        raise ValueError("several lanes need a log_dir for the stages' output")


class _Runner:
    """The state of one :func:`run_stages` call: what is pending, running,
    finished or failed, the minutes each took and the peak memory."""

    def __init__(self, stages, lanes, log_dir, env, cwd, echo):
        self.lanes, self.log_dir, self.echo = lanes, log_dir, echo
        self.popen_kwargs = {"env": env, "cwd": cwd}
        self.finished = {s.name for s in stages if s.done()}
        for s in stages:
            if s.name in self.finished:
                echo(f"[done already] {s.name} ({s.done_marker})")
        self.pending = [s for s in stages if s.name not in self.finished]
        self.running: list[_Running] = []
        self.failures: list[str] = []
        self.minutes: dict[str, float] = {}
        self.peak = 0 if os.path.isdir("/proc") else None  # memory is read from /proc
        self.peak_pss, self.pss_read = self.peak, 0.0
        self.peak_during: tuple = ()
        self.spans: dict[str, tuple[float, float]] = {}
        self.t0 = self.last_status = time.time()

    def start(self, stage: Stage) -> None:
        self.echo(f"\n[start] {stage.name}\n$ {shlex.join(stage.command)}")
        log, handle = None, None
        if self.lanes > 1:
            log = Path(self.log_dir) / f"{stage.slug}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            handle = open(log, "ab")
            self.echo(f"  (output: {log})")
        proc = subprocess.Popen(
            stage.command,
            stdout=handle,
            stderr=subprocess.STDOUT if handle else None,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            **self.popen_kwargs,
        )
        self.running.append(_Running(stage, proc, time.time(), log, handle))

    def start_ready(self) -> None:
        """Start pending stages whose needs are done, in order, while lanes
        are free (none after a failure)."""
        for stage in list(self.pending):
            if self.failures or len(self.running) >= self.lanes:
                return
            if all(n in self.finished for n in stage.needs):
                self.pending.remove(stage)
                self.start(stage)

    def finish(self, run: _Running) -> None:
        if run.handle is not None:
            run.handle.close()
        took = time.time() - run.started
        code = run.proc.returncode
        if code == 0 and run.stage.done():
            self.minutes[run.stage.name] = took / 60
            self.spans[run.stage.name] = (
                (run.started - self.t0) / 60,
                (time.time() - self.t0) / 60,
            )
            self.finished.add(run.stage.name)
            self.echo(f"[finished] {run.stage.name} in {took / 60:.1f} min")
            return
        why = (
            f"exit {code}"
            if code != 0
            else f"it ended without writing {run.stage.done_marker}"
        )
        where = f"; its log: {run.log}\n{_tail(run.log)}" if run.log else ""
        self.failures.append(f"stage '{run.stage.name}' failed ({why}){where}")
        self.echo(f"[failed] {run.stage.name} ({why})")

    def poll(self) -> None:
        """Sample the memory, then finish the stages that have ended."""
        if self.peak is not None:
            tree = _process_tree(r.proc.pid for r in self.running)
            rss = sum(_resident_bytes(pid, False) for pid in tree)
            new_peak = rss > self.peak
            if new_peak:
                self.peak = rss
                self.peak_during = tuple(r.stage.name for r in self.running)
            # reading smaps_rollup walks the page tables (~23 ms for 2 GB):
            # at each new RSS peak, else every PSS_EVERY_S
            if new_peak or time.time() - self.pss_read >= PSS_EVERY_S:
                self.pss_read = time.time()
                pss = sum(_resident_bytes(pid, True) for pid in tree)
                self.peak_pss = max(self.peak_pss, pss)
        for run in list(self.running):
            if run.proc.poll() is not None:
                self.running.remove(run)
                self.finish(run)

    def status(self, every_s: float) -> None:
        """Each running stage's latest progress, every ``every_s`` seconds
        (several lanes only: with one, the stage writes to the terminal)."""
        if self.lanes == 1 or not self.running:
            return
        if time.time() - self.last_status < every_s:
            return
        self.last_status = time.time()
        for run in self.running:
            spent = (time.time() - run.started) / 60
            self.echo(
                f"  [{spent:4.1f} min] {run.stage.name}: {_last_progress(run.log)}"
            )

    def stop(self) -> None:
        """After a Ctrl-C (the terminal sent SIGINT to the stages too): give
        them time to stop."""
        for run in self.running:
            try:
                run.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                run.proc.kill()


def run_stages(
    stages: list[Stage],
    lanes: int = 1,
    log_dir=None,
    env: dict | None = None,
    cwd=None,
    status_every_s: float = 30.0,
    poll_s: float = 0.5,
    echo=None,
) -> RunSummary:
    """Run ``stages`` (skipping finished ones), up to ``lanes`` at a time.

    Arguments
    ---------
    stages : list of Stage
        In priority order; a stage starts once every stage it ``needs`` is done.
    lanes : int
        Stages run at the same time.
    log_dir : path, optional
        Where each stage's output goes when ``lanes > 1`` (required then).
    env : dict, optional
        Environment of the stage processes (default: this one's).
    status_every_s : float
        Seconds between status lines (several lanes only).
    echo : callable, optional
        Where progress lines go (default: printed and flushed).

    Returns
    -------
    RunSummary

    Raises
    ------
    StageFailed
        After the running stages finished, if any stage failed.

    Example
    -------
    >>> import sys
    >>> tmp = getfixture("tmp_path")
    >>> def touch(name, needs=()):
    ...     marker = tmp / name
    ...     cmd = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    ...     return Stage(name, cmd, marker, needs)
    >>> out = run_stages([touch("a"), touch("b", ("a",))], lanes=2, log_dir=tmp / "logs",
    ...                  echo=lambda *a: None)
    >>> sorted(out.minutes), (tmp / "b").exists()
    (['a', 'b'], True)
    >>> out.spans["a"][1] <= out.spans["b"][0]  # b started after a ended
    True
    """
    _check_stages(stages, lanes, log_dir)
    runner = _Runner(stages, lanes, log_dir, env, cwd, echo or _say)
    try:
        while runner.pending or runner.running:
            runner.start_ready()
            if not runner.running:
                if runner.failures:
                    break
                blocked = ", ".join(s.name for s in runner.pending)
                raise StageFailed(f"stages wait on stages that cannot run: {blocked}")
            time.sleep(poll_s)
            runner.poll()
            runner.status(status_every_s)
    except KeyboardInterrupt:
        runner.stop()
        raise
    if runner.failures:
        raise StageFailed("\n\n".join(runner.failures))
    return RunSummary(
        runner.minutes, runner.peak, runner.peak_during, runner.spans, runner.peak_pss
    )
