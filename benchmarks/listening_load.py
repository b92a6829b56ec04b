"""The listening server's load client, shared by ``bench_listening_load.py``
and the listening tests (``from benchmarks.listening_load import ...``):
demo stimuli, a ``serve`` in a child process, and simulated raters.

Each simulated rater registers, then answers trials over one keep-alive HTTP
connection, records every answer the server acknowledged (HTTP 201), and
survives the server going away: it reconnects, asks for its state and goes on.
:func:`warm_threads` and :func:`idle_connections` play the connection flood:
ordinary requests that make every worker thread open its database, then many
connections that send nothing. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from speechbrain_probe.listening.demo import write_demo_stimuli
from speechbrain_probe.listening.server import raise_open_files_limit


def demo_samples(folder, layers, duration_s=0.1, speakers=4, utterances=3) -> Path:
    """``samples.csv`` of generated stimuli in ``folder``."""
    return write_demo_stimuli(
        folder, speakers, utterances, layers=tuple(layers), duration_s=duration_s
    )


class ServerProcess:
    """``python -m speechbrain_probe.listening serve`` in a child process, as a
    context manager; ``port=0`` picks a free port, read back from its output
    with the codes of ``invites`` (``serve --invites``). ``launcher`` replaces
    ``python -m speechbrain_probe.listening`` (a benchmark's settings)."""

    def __init__(self, samples, db, port=0, extra=(), invites=0, launcher=None):
        self.samples, self.db, self.port = Path(samples), Path(db), port
        self.launcher = launcher or [
            sys.executable,
            "-m",
            "speechbrain_probe.listening",
        ]
        self.extra = [*extra, *(["--invites", str(invites)] if invites else [])]
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        self.invites: list[str] = []

    def start(self, timeout_s: float = 30.0) -> ServerProcess:
        cmd = [*self.launcher, "serve", "--samples", str(self.samples)]
        cmd += ["--db", str(self.db), "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*cmd, *self.extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
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
        deadline = time.monotonic() + timeout_s
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start:\n" + "".join(self.output))
        return self

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no flush, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
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
    statuses: Counter = field(default_factory=Counter)
    connection_errors: int = 0
    unexpected: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    finished_raters: int = 0
    wall_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)


@dataclass
class _Rater:
    name: str
    target: object  # has a ``port``, which a restarted server may change
    result: LoadResult
    deadline: float
    audio_every: int
    timeout_s: float
    invite: str | None = None
    conn: http.client.HTTPConnection | None = None
    cookie: str | None = None

    def request(self, method, path, body=None):
        """(status, json or bytes); :class:`ConnectionError` on a dead server."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(
                "127.0.0.1", self.target.port, timeout=self.timeout_s
            )
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body).encode()
        start = time.monotonic()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise ConnectionError(f"{method} {path} failed") from None
        with self.result.lock:
            self.result.statuses[resp.status] += 1
            self.result.latencies_s.append(time.monotonic() - start)
        cookie = resp.getheader("Set-Cookie") or ""
        if cookie.startswith("lt_session="):
            self.cookie = cookie.split(";", 1)[0]
        is_json = resp.getheader("Content-Type", "").startswith("application/json")
        return resp.status, (json.loads(payload) if is_json else payload)

    def retrying(self, method, path, body=None):
        """Retry across connection errors (a server restarting) until the deadline."""
        while True:
            try:
                return self.request(method, path, body)
            except ConnectionError:
                self.count_connection_error()
                if time.monotonic() > self.deadline:
                    raise
                time.sleep(0.05 + random.random() * 0.1)

    def count_connection_error(self):
        with self.result.lock:
            self.result.connection_errors += 1

    def unexpected(self, what):
        with self.result.lock:
            self.result.unexpected.append(f"{self.name}: {what}")

    def run(self, answers_each: int, registered: threading.Barrier):
        rng = random.Random(self.name)
        body = {
            "rater_id": self.name,
            **({"invite": self.invite} if self.invite else {}),
        }
        status, state = self.retrying("POST", "/api/raters", body)
        registered.wait()
        if status != 201:
            return self.unexpected(f"register -> {status} {state}")
        for n in itertools.count():
            if time.monotonic() >= self.deadline:
                return self.unexpected("deadline passed")
            if state["done"] >= answers_each or state["trial"] is None:
                with self.result.lock:
                    self.result.finished_raters += 1
                return
            state = self.answer(rng.choice("AB"), state["trial"], n)

    def answer(self, answer: str, trial: dict, n: int) -> dict:
        """Answer ``trial`` (fetching its X audio every ``audio_every``); the
        rater's state afterwards."""
        if self.audio_every and n % self.audio_every == 0:
            status, audio = self.retrying("GET", trial["audio"]["X"])
            if status != 200 or audio[:4] != b"RIFF":
                self.unexpected(f"audio -> {status}")
        body = {"trial_id": trial["trial_id"], "answer": answer, "response_ms": 500}
        try:
            status, reply = self.request("POST", "/api/answers", body)
        except ConnectionError:
            # unknown fate: maybe stored, maybe not; the server's state tells
            self.count_connection_error()
            status, reply = self.retrying("GET", "/api/state")
            if status != 200:
                raise RuntimeError(f"state -> {status}") from None
            return reply
        if status == 201:
            with self.result.lock:
                self.result.acknowledged.append((self.name, trial["trial_id"], answer))
            return reply
        self.unexpected(f"answer -> {status} {reply}")
        return self.retrying("GET", "/api/state")[1]


class _Port:
    def __init__(self, port: int):
        self.port = port


def run_raters(
    target,
    n_raters=50,
    answers_each=20,
    deadline_s=120.0,
    audio_every=5,
    timeout_s=10.0,
    prefix="load",
    on_start=None,
    invites=None,
) -> LoadResult:
    """``n_raters`` concurrent raters, each giving ``answers_each`` answers.

    ``target`` is a port or has a ``port`` attribute (a test may restart the
    server on another). ``invites``: one code per rater. ``on_start(result)``
    runs in this thread once every rater has registered, while they answer
    (e.g. to kill and restart the server); it must return.
    """
    target = target if hasattr(target, "port") else _Port(target)
    if invites is not None and len(invites) < n_raters:
        raise ValueError(f"{n_raters} raters need as many invites, got {len(invites)}")
    result = LoadResult()
    deadline = time.monotonic() + deadline_s
    barrier = threading.Barrier(n_raters + 1, timeout=deadline_s)
    raters = [
        _Rater(f"{prefix}{i:03d}", target, result, deadline, audio_every, timeout_s)
        for i in range(n_raters)
    ]
    for rater, invite in zip(raters, invites or []):
        rater.invite = invite

    def work(rater):
        try:
            rater.run(answers_each, barrier)
        except Exception as err:  # report, never hang the barrier
            rater.unexpected(f"{type(err).__name__}: {err}")
            barrier.abort()

    start = time.monotonic()
    threads = [threading.Thread(target=work, args=(r,), daemon=True) for r in raters]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    if on_start is not None:
        on_start(result)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + timeout_s)
    result.wall_s = time.monotonic() - start
    return result


def late_rater(server: ServerProcess, deadline_s: float = 60.0) -> LoadResult:
    """One new rater (invited) who fetches every X and gives two answers: what a
    flood of idle connections must leave possible."""
    return run_raters(
        server.port,
        1,
        2,
        deadline_s,
        audio_every=1,
        prefix="late",
        invites=server.invites,
    )


def warm_threads(port: int, clients: int = 32, requests_each: int = 20) -> dict:
    """Ordinary traffic before a flood: ``clients`` concurrent clients each send
    ``requests_each`` ``GET /api/state`` with a cookie of no session (401), so
    that every worker thread opens its database; the count of each status."""

    def client(_):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(requests_each):
                conn.request("GET", "/api/state", headers={"Cookie": "lt_session=x"})
                reply = conn.getresponse()
                reply.read()
                yield reply.status
        finally:
            conn.close()

    with ThreadPoolExecutor(clients) as pool:
        runs = pool.map(lambda i: list(client(i)), range(clients))
        return dict(Counter(status for run in runs for status in run))


@contextlib.contextmanager
def idle_connections(port: int, n: int, timeout_s: float = 10.0):
    """``n`` TCP connections to ``127.0.0.1:port`` that send nothing (yielded,
    closed on leaving), under a soft open-file limit raised for them."""
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
    """The database against the acknowledged answers: ``answers`` (rows),
    ``missing`` (acknowledged, absent), ``changed`` (another answer stored) and
    ``per_rater`` (answers of each rater)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        stored = dict(conn.execute("SELECT trial_id, answer FROM answers"))
        per_rater = dict(
            conn.execute("SELECT rater_id, COUNT(*) FROM answers GROUP BY rater_id")
        )
    missing = [a for a in acknowledged if a[1] not in stored]
    changed = [a for a in acknowledged if a[1] in stored and stored[a[1]] != a[2]]
    return {
        "answers": len(stored),
        "missing": len(missing),
        "changed": len(changed),
        "per_rater": per_rater,
    }
