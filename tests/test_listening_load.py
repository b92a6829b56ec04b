"""Load and fault tests of the listening test on loopback, against a real
multi-threaded server (waitress) in a child process.

50 concurrent raters x 20 answers: zero lost answers, zero 5xx. Then the same
load with the server killed by SIGKILL mid-way and restarted on the same
database: every answer it had acknowledged is in the database, unchanged.
Bounded: 50 x 20 answers, a 60 s deadline per run. The raters register with
invitation codes printed by ``serve --invites`` (one client address: the
registration limit is raised for them). Then the attacks of issue 26 through
the real server: a flood of idle connections after warm worker threads, and
``X-Forwarded-*`` headers of a trusted (and of an untrusted) reverse proxy.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import sys
import time

import pytest

from benchmarks.listening_load import (
    ServerProcess,
    check_db,
    demo_samples,
    idle_connections,
    late_rater,
    run_raters,
    warm_threads,
)

N_RATERS, N_ANSWERS = 50, 20
LAYERS = ("cnn1", "cnn2", "blstm1", "blstm3")
# 4 layers x 5 trials per layer = 20 trials per rater; 50 raters from one address
SERVE_ARGS = [
    "--trials-per-layer",
    "5",
    "--threads",
    "16",
    "--register-burst",
    str(2 * N_RATERS),
]


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return demo_samples(tmp_path_factory.mktemp("stimuli"), LAYERS, duration_s=0.2)


def test_50_concurrent_raters_lose_nothing_and_get_no_5xx(samples, tmp_path):
    db = tmp_path / "answers.sqlite"
    with ServerProcess(samples, db, extra=SERVE_ARGS, invites=N_RATERS) as server:
        result = run_raters(
            server.port, N_RATERS, N_ANSWERS, deadline_s=60, invites=server.invites
        )
        assert server.proc.poll() is None, "server died under load"
    assert result.unexpected == []
    assert result.server_errors == 0 and result.connection_errors == 0
    assert result.finished_raters == N_RATERS
    assert len(result.acknowledged) == N_RATERS * N_ANSWERS
    check = check_db(db, result.acknowledged)
    assert (check["answers"], check["missing"], check["changed"]) == (
        N_RATERS * N_ANSWERS,
        0,
        0,
    )
    assert set(check["per_rater"].values()) == {N_ANSWERS}
    print(
        f"\n{N_RATERS}x{N_ANSWERS} answers in {result.wall_s:.1f} s, statuses {result.statuses}"
    )


def test_sigkill_mid_load_keeps_every_acknowledged_answer(samples, tmp_path):
    db = tmp_path / "answers.sqlite"
    server = ServerProcess(samples, db, extra=SERVE_ARGS, invites=N_RATERS).start()
    servers = [server]
    kill_info = {}

    def kill_and_restart(result):
        # wait for a good part of the load, then crash the server hard
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(result.acknowledged) < 300:
            time.sleep(0.005)
        server.kill()
        with result.lock:
            kill_info["acked_before_kill"] = list(result.acknowledged)
        time.sleep(0.3)  # raters hit a dead port meanwhile
        # restart on the same port and database (what a supervisor would do)
        restarted = ServerProcess(
            samples, db, port=server.port, extra=SERVE_ARGS
        ).start()
        servers.append(restarted)

    try:
        result = run_raters(
            server,
            N_RATERS,
            N_ANSWERS,
            deadline_s=60,
            on_start=kill_and_restart,
            invites=server.invites,
        )
    finally:
        for s in servers:
            s.stop()
    acked_before = kill_info["acked_before_kill"]
    assert 300 <= len(acked_before) < N_RATERS * N_ANSWERS, (
        "the kill did not land mid-load"
    )
    assert result.connection_errors > 0, "no rater noticed the kill"
    assert result.unexpected == []
    assert result.server_errors == 0
    # every answer acknowledged before the kill survived, unchanged ...
    before = check_db(db, acked_before)
    assert (before["missing"], before["changed"]) == (0, 0)
    # ... and so did every one acknowledged by either server; each rater completed
    check = check_db(db, result.acknowledged)
    assert (check["missing"], check["changed"]) == (0, 0)
    assert result.finished_raters == N_RATERS
    assert check["answers"] == N_RATERS * N_ANSWERS
    assert set(check["per_rater"].values()) == {N_ANSWERS}
    # answers stored but never acknowledged (in flight at the kill) are at most one per rater
    assert N_RATERS * N_ANSWERS - len(result.acknowledged) <= N_RATERS
    print(
        f"\nkilled after {len(acked_before)} acknowledged answers; "
        f"{result.connection_errors} connection errors; {len(result.acknowledged)} acknowledged "
        f"in all, {check['answers']} stored; statuses {result.statuses}"
    )


def test_serve_starts_where_python_has_no_resource_module(samples, tmp_path):
    """As on Windows: the server module imports, the open-file limit is left
    alone with a warning, and raters are served."""
    blocked = (
        "import sys; sys.modules['resource'] = None; "
        "from speechbrain_probe.listening.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    launcher = [sys.executable, "-c", blocked]
    db = tmp_path / "answers.sqlite"
    with ServerProcess(samples, db, invites=1, launcher=launcher) as server:
        result = late_rater(server)
    assert (len(result.acknowledged), result.unexpected) == (2, [])
    assert "limit of open files is left as it is" in "".join(server.output)


def _raw_head(port: int, request: bytes) -> tuple[int, dict[str, str]]:
    """Send raw bytes; return the reply's status and headers (lower-case names)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return _head_on(sock, request)


def _head_on(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str]]:
    """Send raw bytes on an open socket; return the reply's status and headers."""
    try:
        sock.sendall(request)
    except OSError:
        pass  # the server may answer and close before reading everything
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(head[0].split(" ", 2)[1]), headers


def test_real_server_answers_bad_raw_requests_with_4xx(samples, tmp_path):
    with ServerProcess(
        samples, tmp_path / "answers.sqlite", extra=[*SERVE_ARGS, "--open"]
    ) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request(
            "POST",
            "/api/raters",
            body=json.dumps({"rater_id": "raw"}),
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        resp.read()
        cookie = resp.getheader("Set-Cookie").split(";", 1)[0]
        head = (
            f"Host: 127.0.0.1\r\nCookie: {cookie}\r\nContent-Type: application/json\r\n"
        )
        port = server.port
        unknown = b'{"trial_id": "nope", "answer": "A"}'
        cases = [
            # path traversal, not normalised by any client
            (
                b"GET /audio/../../../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                404,
            ),
            (
                f"GET /audio/..%2f..%2fetc%2fpasswd/X HTTP/1.1\r\n{head}\r\n".encode(),
                404,
            ),
            # oversized body (declared and sent)
            (
                f"POST /api/answers HTTP/1.1\r\n{head}Content-Length: 100000\r\n\r\n".encode()
                + b"{"
                + b" " * 99_998
                + b"}",
                413,
            ),
            # malformed JSON, a malformed Content-Length
            (
                f"POST /api/answers HTTP/1.1\r\n{head}Content-Length: 5\r\n\r\n{{bad}}".encode(),
                400,
            ),
            (
                f"POST /api/answers HTTP/1.1\r\n{head}Content-Length: x\r\n\r\n".encode(),
                400,
            ),
            # unknown trial
            (
                f"POST /api/answers HTTP/1.1\r\n{head}Content-Length: {len(unknown)}\r\n\r\n".encode()
                + unknown,
                404,
            ),
            # garbage request line
            (
                b"BLAH\r\n\r\n",
                400,
            ),
        ]
        statuses = [_raw_head(port, req)[0] for req, _ in cases]
        assert statuses == [code for _, code in cases], statuses
        assert server.proc.poll() is None
    import sqlite3

    assert sqlite3.connect(tmp_path / "answers.sqlite").execute(
        "SELECT COUNT(*) FROM answers"
    ).fetchone() == (0,)


def test_many_open_browser_connections_do_not_lock_out_new_raters(samples, tmp_path):
    """Browsers keep connections open; waitress's default limit of 100 would make
    the 101st rater wait until an idle one times out (2 minutes): its request
    would get no answer within the client's 10 s timeout."""
    db = tmp_path / "answers.sqlite"
    with ServerProcess(samples, db, extra=SERVE_ARGS) as server:
        idle = []
        try:
            answered = 0
            for _ in range(150):  # each new one answered while all earlier stay open
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                conn.request("GET", "/healthz")
                reply = conn.getresponse()
                reply.read()
                answered += reply.status == 200
                idle.append(conn)  # kept open, idle
            status, _ = _raw_head(
                server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            )
            assert (answered, status) == (150, 200)
            # the held connections were really held: each answers again on its socket
            again = 0
            for conn in idle:
                sock = conn.sock
                assert sock is not None  # not closed by the server's reply
                conn.request("GET", "/healthz")
                reply = conn.getresponse()
                reply.read()
                again += reply.status == 200 and conn.sock is sock
            assert again == 150
        finally:
            for conn in idle:
                conn.close()


def test_waitress_own_error_replies_carry_the_security_headers(samples, tmp_path):
    """400, 413 and 431 that waitress writes itself, without asking the app."""
    with ServerProcess(
        samples, tmp_path / "answers.sqlite", extra=SERVE_ARGS
    ) as server:
        cases = {
            400: b"BLAH\r\n\r\n",
            413: b"POST /api/answers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            + b" "
            * 100_000,
            431: b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
            + b"a" * 300_000
            + b"\r\n\r\n",
        }
        for code, request in cases.items():
            status, headers = _raw_head(server.port, request)
            assert status == code, (code, status)
            assert headers.get("x-content-type-options") == "nosniff", (code, headers)
            assert "default-src 'self'" in headers.get("content-security-policy", "")
            assert headers.get("x-frame-options") == "DENY"
            assert headers.get("cache-control") == "no-store"


# -- issue 26: a flood of idle connections, a reverse proxy -----------------------------

N_IDLE = 1100
PROXY_TOKEN = "proxy-test-admin-token-0123"
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def test_idle_connection_flood_after_warm_threads_leaves_the_server_answering(
    samples, tmp_path
):
    """Ordinary requests warm every worker thread (each opens its database), then
    1,100 connections send nothing. Waitress's select() loop ended the server once
    a descriptor reached 1024 ("filedescriptor out of range in select()"); at its
    open-file limit it would spin on accept() failing with EMFILE. Meanwhile a new
    rater registers and answers, each request within the client's 10 s; every
    idle connection is still held, and the log holds no traceback."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < N_IDLE + 512:
        pytest.skip(f"the hard limit of open files ({hard}) is below the flood")
    db = tmp_path / "answers.sqlite"
    with ServerProcess(samples, db, extra=SERVE_ARGS, invites=1) as server:
        assert warm_threads(server.port) == {401: 32 * 20}
        with idle_connections(server.port, N_IDLE) as idle:
            # accepted in order: once this rater is answered, all of the flood is in
            result = late_rater(server)
            assert server.proc.poll() is None, "the flood ended the server"
            assert result.unexpected == [] and result.connection_errors == 0
            assert len(result.acknowledged) == 2
            held = sum(_head_on(sock, HEALTHZ)[0] == 200 for sock in idle)
            assert held == N_IDLE
    assert check_db(db, result.acknowledged)["missing"] == 0
    log = "".join(server.output)
    for sign in ("Traceback", "Too many open files", "out of range", "error:"):
        assert sign not in log, log[-2000:]


def _register(port, rater, forwarded_for, source="127.0.0.1"):
    """POST /api/raters from ``source`` with an ``X-Forwarded-For``; the status."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    try:
        conn.request(
            "POST",
            "/api/raters",
            body=json.dumps({"rater_id": rater}),
            headers={
                "Content-Type": "application/json",
                "X-Forwarded-For": forwarded_for,
            },
        )
        reply = conn.getresponse()
        reply.read()
        return reply.status
    finally:
        conn.close()


def _admin(port, method, path, headers, body=None):
    """An admin request with the token; (status, text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            method,
            path,
            body=body,
            headers={"Authorization": f"Bearer {PROXY_TOKEN}", **headers},
        )
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def test_trust_proxy_through_waitress_limits_each_forwarded_client(samples, tmp_path):
    """Behind ``--trust-proxy`` (a proxy at 127.0.0.1) 15 raters forwarded from 15
    addresses all register with the default limit (a burst of 10 per address),
    one forwarded address is still limited, and the admin page's invitation links
    follow the forwarded scheme and host (an allowed one; any other gets 400).
    Waitress removed the headers before the app (and werkzeug's ProxyFix) saw
    them: every rater shared the proxy's bucket."""
    extra = [
        "--open",
        "--trust-proxy",
        "--allowed-host",
        "listen.example.org",
        "--admin-token",
        PROXY_TOKEN,
    ]
    with ServerProcess(samples, tmp_path / "answers.sqlite", extra=extra) as server:
        port = server.port
        statuses = [_register(port, f"p{i}", f"198.51.100.{i}") for i in range(15)]
        assert statuses == [201] * 15
        again = [_register(port, f"q{i}", "198.51.100.1") for i in range(10)]
        assert again == [201] * 9 + [429]  # 198.51.100.1 registered once above
        forwarded = {
            "X-Forwarded-Host": "listen.example.org",
            "X-Forwarded-Proto": "https",
        }
        status, page = _admin(port, "GET", "/admin", forwarded)
        assert status == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        status, page = _admin(
            port,
            "POST",
            "/admin/invites",
            {**forwarded, "Content-Type": "application/x-www-form-urlencoded"},
            body=f"csrf={csrf}&count=1&uses=1&label=proxy",
        )
        assert status == 200 and "https://listen.example.org/#invite=" in page
        forged = {"X-Forwarded-Host": "rebound.example", "X-Forwarded-Proto": "https"}
        assert _admin(port, "GET", "/admin", forged)[0] == 400
        rebound = b"GET /healthz HTTP/1.1\r\nHost: rebound.example\r\n\r\n"
        assert _raw_head(port, rebound)[0] == 400
        # no Host at all (HTTP/1.0, e.g. a health check) comes from no browser
        assert _raw_head(port, b"GET /healthz HTTP/1.0\r\n\r\n")[0] == 200


def test_forwarded_headers_of_any_other_sender_are_ignored(samples, tmp_path):
    """With the proxy at 127.0.0.2, a client at 127.0.0.1 that forwards addresses
    of its own is one client: its 11th registration is refused."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.2", 0))
        except OSError:
            pytest.skip("127.0.0.2 is not a loopback address here")
    extra = ["--open", "--trust-proxy", "127.0.0.2"]
    with ServerProcess(samples, tmp_path / "answers.sqlite", extra=extra) as server:
        port = server.port
        proxied = [
            _register(port, f"p{i}", f"198.51.100.{i}", source="127.0.0.2")
            for i in range(12)
        ]
        direct = [_register(port, f"d{i}", f"203.0.113.{i}") for i in range(11)]
    assert proxied == [201] * 12
    assert direct == [201] * 10 + [429]
