"""Concurrent raters against a running server, and a server in a child process.

Used by the load/fault test and ``benchmarks/bench_listening_load.py``. Each
simulated rater registers, then answers trials over one keep-alive HTTP
connection, records every answer the server acknowledged (HTTP 201), and
survives the server going away: it reconnects, asks for its state and goes on.
:func:`warm_threads` and :func:`idle_connections` play the connection flood:
ordinary requests that make every worker thread open its database, then many
connections that send nothing. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .server import raise_open_files_limit

__all__ = [
    "ServerProcess",
    "LoadResult",
    "run_raters",
    "check_db",
    "warm_threads",
    "idle_connections",
]


class ServerProcess:
    """``python -m speechbrain_probe.listening serve`` in a child process.

    Parameters
    ----------
    samples, db : path
        Passed to ``serve``.
    port : int
        0 picks a free port (read back from the server's output).
    extra : list of str
        More ``serve`` arguments (``--open`` for open registration).
    invites : int
        Ask ``serve`` for this many invitation codes (``--invites``); they are
        read back into :attr:`invites`.
    launcher : list of str, optional
        What runs the command line instead of ``python -m
        speechbrain_probe.listening`` (e.g. ``[python, "-c", code]`` that changes
        settings for a benchmark); it gets ``serve ...`` as its arguments.
    """

    def __init__(
        self,
        samples,
        db,
        port: int = 0,
        extra: list[str] | None = None,
        invites: int = 0,
        launcher: list[str] | None = None,
    ):
        self.samples, self.db, self.port = Path(samples), Path(db), port
        self.launcher = launcher or [
            sys.executable,
            "-m",
            "speechbrain_probe.listening",
        ]
        self.extra = list(extra or [])
        if invites:
            self.extra += ["--invites", str(invites)]
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        self.invites: list[str] = []

    def start(self, timeout_s: float = 30.0) -> ServerProcess:
        cmd = [
            *self.launcher,
            "serve",
            "--samples",
            str(self.samples),
            "--db",
            str(self.db),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra,
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        deadline = time.monotonic() + timeout_s
        found = threading.Event()

        def reader():
            for line in self.proc.stdout:
                self.output.append(line)
                if line.startswith("invite: "):
                    self.invites.append(line.split()[1])
                if line.startswith("serving on http://127.0.0.1:"):
                    self.port = int(line.rsplit(":", 1)[1].strip().strip("/"))
                    found.set()

        threading.Thread(target=reader, daemon=True).start()
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "listening server did not start:\n" + "".join(self.output)
                )
        return self

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no flush, as in a crash."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@dataclass
class LoadResult:
    """What the simulated raters saw."""

    acknowledged: list[tuple[str, str, str]] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    connection_errors: int = 0
    unexpected: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    finished_raters: int = 0
    wall_s: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)


class _Target:
    """Where the raters send requests (changes when a server restarts)."""

    def __init__(self, port: int):
        self.port = port


class _Rater:
    def __init__(
        self, name, target, result, lock, deadline, audio_every, timeout_s, invite=None
    ):
        self.name, self.target, self.result, self.lock = name, target, result, lock
        self.invite = invite
        self.deadline, self.audio_every, self.timeout_s = (
            deadline,
            audio_every,
            timeout_s,
        )
        self.conn = None
        self.cookie = None

    def _request(self, method, path, body=None):
        """One request; returns (status, json or bytes); raises OSError on a dead server."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(
                "127.0.0.1", self.target.port, timeout=self.timeout_s
            )
        headers = {}
        if self.cookie:
            headers["Cookie"] = self.cookie
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        start = time.monotonic()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise ConnectionError(f"{method} {path} failed") from None
        elapsed = time.monotonic() - start
        cookie = resp.getheader("Set-Cookie")
        if cookie and cookie.startswith("lt_session="):
            self.cookie = cookie.split(";", 1)[0]
        with self.lock:
            self.result.statuses[resp.status] = (
                self.result.statuses.get(resp.status, 0) + 1
            )
            self.result.latencies_s.append(elapsed)
        is_json = resp.getheader("Content-Type", "").startswith("application/json")
        return resp.status, (json.loads(payload) if is_json else payload)

    def _retrying(self, method, path, body=None):
        """Retry across connection errors (a server being restarted) until the deadline."""
        while True:
            try:
                return self._request(method, path, body)
            except ConnectionError:
                with self.lock:
                    self.result.connection_errors += 1
                if time.monotonic() > self.deadline:
                    raise
                time.sleep(0.05 + random.random() * 0.1)

    def _unexpected(self, what):
        with self.lock:
            self.result.unexpected.append(f"{self.name}: {what}")

    def run(self, answers_each, registered: threading.Barrier | None):
        rng = random.Random(self.name)
        body = {"rater_id": self.name}
        if self.invite:
            body["invite"] = self.invite
        status, state = self._retrying("POST", "/api/raters", body)
        if registered is not None:
            registered.wait()
        if status != 201:
            self._unexpected(f"register -> {status} {state}")
            return
        n = 0
        while time.monotonic() < self.deadline:
            if state["done"] >= answers_each or state["trial"] is None:
                with self.lock:
                    self.result.finished_raters += 1
                return
            trial = state["trial"]
            if self.audio_every and n % self.audio_every == 0:
                status, audio = self._retrying("GET", trial["audio"]["X"])
                if status != 200 or audio[:4] != b"RIFF":
                    self._unexpected(f"audio -> {status}")
            n += 1
            answer = rng.choice("AB")
            body = {"trial_id": trial["trial_id"], "answer": answer, "response_ms": 500}
            try:
                status, reply = self._request("POST", "/api/answers", body)
            except ConnectionError:
                # unknown fate: maybe stored, maybe not; the server's state tells
                with self.lock:
                    self.result.connection_errors += 1
                status, state = self._retrying("GET", "/api/state")
                if status != 200:
                    self._unexpected(f"state -> {status}")
                    return
                continue
            if status == 201:
                with self.lock:
                    self.result.acknowledged.append(
                        (self.name, trial["trial_id"], answer)
                    )
                state = reply
            else:
                self._unexpected(f"answer -> {status} {reply}")
                status, state = self._retrying("GET", "/api/state")
        self._unexpected("deadline passed")


def run_raters(
    port_or_target,
    n_raters: int = 50,
    answers_each: int = 20,
    deadline_s: float = 120.0,
    audio_every: int = 5,
    timeout_s: float = 10.0,
    prefix: str = "load",
    on_start=None,
    invites: list[str] | None = None,
) -> LoadResult:
    """Run ``n_raters`` concurrent raters, each giving ``answers_each`` answers.

    ``invites``: one invitation code per rater (for a server without ``--open``).

    ``port_or_target`` is a port or an object with a mutable ``port`` attribute
    (so that a test can restart the server elsewhere). ``on_start(result)``, if
    given, runs as ``on_start(result, lock)`` in the calling thread once every rater
    has registered, while the raters answer (e.g. to kill and restart the server);
    it must return.

    Example
    -------
    >>> from speechbrain_probe.listening.demo import write_demo_stimuli
    >>> tmp = getfixture("tmp_path")
    >>> samples = write_demo_stimuli(tmp / "st", n_speakers=2, n_utts=2,
    ...                              layers=("cnn1",), duration_s=0.1)
    >>> with ServerProcess(samples, tmp / "db.sqlite", invites=3) as server:
    ...     result = run_raters(server.port, n_raters=3, answers_each=2, deadline_s=30,
    ...                         invites=server.invites)
    >>> len(result.acknowledged), result.server_errors, result.unexpected
    (6, 0, [])
    >>> check_db(tmp / "db.sqlite", result.acknowledged)["missing"]
    0
    """
    target = (
        port_or_target if hasattr(port_or_target, "port") else _Target(port_or_target)
    )
    result, lock = LoadResult(), threading.Lock()
    deadline = time.monotonic() + deadline_s
    barrier = threading.Barrier(n_raters + 1, timeout=deadline_s)
    if invites is not None and len(invites) < n_raters:
        raise ValueError(f"{n_raters} raters need as many invites, got {len(invites)}")
    raters = [
        _Rater(
            f"{prefix}{i:03d}",
            target,
            result,
            lock,
            deadline,
            audio_every,
            timeout_s,
            invite=invites[i] if invites else None,
        )
        for i in range(n_raters)
    ]

    def work(rater):
        try:
            rater.run(answers_each, barrier)
        except Exception as err:  # report, never hang the barrier
            rater._unexpected(f"{type(err).__name__}: {err}")
            barrier.abort()

    start = time.monotonic()
    threads = [threading.Thread(target=work, args=(r,), daemon=True) for r in raters]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    if on_start is not None:
        on_start(result, lock)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + timeout_s)
    result.wall_s = time.monotonic() - start
    return result


def warm_threads(port: int, clients: int = 32, requests_each: int = 20) -> dict:
    """Ordinary traffic before a flood: ``clients`` concurrent clients each send
    ``requests_each`` ``GET /api/state`` with a cookie that names no session
    (401), so that every worker thread opens its database connections, as
    raters' requests do. Returns the count of each status.

    Example
    -------
    >>> from speechbrain_probe.listening.demo import write_demo_stimuli
    >>> tmp = getfixture("tmp_path")
    >>> samples = write_demo_stimuli(tmp / "st", n_speakers=2, n_utts=2,
    ...                              layers=("cnn1",), duration_s=0.1)
    >>> with ServerProcess(samples, tmp / "db.sqlite") as server:
    ...     warm_threads(server.port, clients=4, requests_each=3)
    {401: 12}
    """

    def client(_):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        statuses = []
        try:
            for _ in range(requests_each):
                conn.request("GET", "/api/state", headers={"Cookie": "lt_session=x"})
                reply = conn.getresponse()
                reply.read()
                statuses.append(reply.status)
        finally:
            conn.close()
        return statuses

    counts: dict[int, int] = {}
    with ThreadPoolExecutor(clients) as pool:
        for statuses in pool.map(client, range(clients)):
            for status in statuses:
                counts[status] = counts.get(status, 0) + 1
    return counts


@contextlib.contextmanager
def idle_connections(port: int, n: int, timeout_s: float = 10.0):
    """Open ``n`` TCP connections to ``127.0.0.1:port`` that send nothing, and
    close them on leaving; yields the list of sockets.

    This process's soft limit of open files is raised for them (restored on
    leaving); :class:`ValueError` when the hard limit does not allow it.

    Example
    -------
    >>> with socket.create_server(("127.0.0.1", 0)) as listener:
    ...     with idle_connections(listener.getsockname()[1], 3) as idle:
    ...         [sock.getpeername()[0] for sock in idle]
    ['127.0.0.1', '127.0.0.1', '127.0.0.1']
    """
    import resource

    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    raise_open_files_limit(n + 256)  # and what the process holds already
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout_s))
        yield socks
    finally:
        for sock in socks:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def check_db(db, acknowledged) -> dict:
    """Compare the database with the acknowledged answers.

    Returns the counts ``answers`` (rows), ``missing`` (acknowledged but absent)
    and ``changed`` (present with another answer), and answers per rater.
    """
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    stored = dict(conn.execute("SELECT trial_id, answer FROM answers"))
    per_rater = dict(
        conn.execute("SELECT rater_id, COUNT(*) FROM answers GROUP BY rater_id")
    )
    conn.close()
    missing = [a for a in acknowledged if a[1] not in stored]
    changed = [a for a in acknowledged if a[1] in stored and stored[a[1]] != a[2]]
    return {
        "answers": len(stored),
        "missing": len(missing),
        "changed": len(changed),
        "per_rater": per_rater,
    }
