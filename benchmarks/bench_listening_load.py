"""Load and flood benchmark of the listening test on loopback: the server's old
settings beside its new ones, in one run.

Starts ``python -m speechbrain_probe.listening serve`` (waitress) on generated
stimuli in a child process, twice: with the settings before issue 26 (waitress's
``select()`` loop, the inherited limit of open files, 1,000 connections) and with
the current ones (``poll()``, the open-file limit raised to what the connections
need, up to 4,000 connections, one-line waitress log). For each:

* load: N concurrent simulated raters give M answers each (optionally the
  server is SIGKILLed mid-load and restarted on the same database), then the
  database is checked against every acknowledged answer;
* flood (``--flood K``, 0 to skip): ordinary requests warm every worker thread,
  K idle connections are opened and held, then a new rater registers and gives
  two answers; the idle connections are asked whether they are still served,
  and the server's log is searched for tracebacks and EMFILE.

``--soft-limit 1024`` starts both servers under a soft limit of 1,024 open files
(a common ``ulimit -n``): the old settings then stay up but spin on ``accept()``
failing with EMFILE instead of ending on ``select()``.

    python benchmarks/bench_listening_load.py --raters 50 --answers 20 --flood 1100 \
        [--soft-limit 1024] [--kill] [--open]

The raters register with invitation codes printed by ``serve --invites`` (or
without, with ``--open``); all come from one address, so the registration burst
is raised to twice the raters. Prints the figures side by side; exits 1 when the
new settings lose or change an answer, give a 5xx, leave a rater unfinished, or
fail the flood. Every wait is bounded (--deadline). Loopback only.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

# the load client, shared with tests/test_listening_load.py
import listening_load as lt

#: Runs ``serve`` with the settings of the argv's first word (``old``/``new``)
#: under the soft open-file limit of its second (0: inherited).
LAUNCHER = """
import contextlib, resource, sys
settings, soft = sys.argv.pop(1), int(sys.argv.pop(1))
if soft:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
if settings == "old":
    import waitress
    from speechbrain_probe.listening import server
    create = waitress.create_server
    waitress.create_server = lambda app, **kw: create(
        app, **{**kw, "asyncore_use_poll": False})
    server.raise_open_files_limit = lambda needed: None
    server.quiet_waitress_log = contextlib.nullcontext
from speechbrain_probe.listening.cli import main
sys.exit(main(sys.argv[1:]))
"""
SETTINGS = ("old", "new")
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _server(args, settings, samples, db, extra, port=0, invites=0) -> lt.ServerProcess:
    launcher = [sys.executable, "-c", LAUNCHER, settings, str(args.soft_limit)]
    if settings == "old":
        extra = [*extra, "--connection-limit", "1000"]
    return lt.ServerProcess(
        samples, db, port=port, extra=extra, invites=invites, launcher=launcher
    )


def _percentile(values, q) -> float:
    values = sorted(values)
    return 1000 * values[min(len(values) - 1, int(q * len(values)))]


def _load(args, settings, samples, tmp: Path) -> dict:
    """One load run; its figures and whether it lost nothing."""
    db = tmp / f"load-{settings}.sqlite"
    per_layer = -(-args.answers // 4)  # enough trials for every answer
    extra = [
        "--trials-per-layer",
        str(per_layer),
        "--threads",
        str(args.threads),
        "--register-burst",
        str(2 * args.raters),
        *(["--open"] if args.open else []),
    ]
    invites = 0 if args.open else args.raters
    server = _server(args, settings, samples, db, extra, invites=invites).start()
    servers, killed = [server], {}
    total = args.raters * args.answers

    def kill_and_restart(result):
        if not args.kill:
            return
        stop = time.monotonic() + args.deadline / 2
        while (
            time.monotonic() < stop
            and len(result.acknowledged) < args.kill_after * total
        ):
            time.sleep(0.005)
        server.kill()
        with result.lock:
            killed["acked"] = list(result.acknowledged)
        t0 = time.monotonic()
        servers.append(_server(args, settings, samples, db, extra, server.port).start())
        killed["restart_s"] = time.monotonic() - t0

    try:
        result = lt.run_raters(
            server,
            args.raters,
            args.answers,
            deadline_s=args.deadline,
            audio_every=args.audio_every,
            on_start=kill_and_restart,
            invites=None if args.open else server.invites,
        )
    finally:
        for s in servers:
            s.stop()
    check = lt.check_db(db, result.acknowledged)
    lat = result.latencies_s or [float("nan")]
    figures = {
        "wall s": f"{result.wall_s:.2f}",
        "requests/s": f"{len(result.latencies_s) / result.wall_s:.0f}",
        "answers/s": f"{len(result.acknowledged) / result.wall_s:.0f}",
        "latency p50/p95/p99 ms": "/".join(
            f"{_percentile(lat, q):.1f}" for q in (0.5, 0.95, 0.99)
        ),
        "statuses": str(dict(sorted(result.statuses.items()))),
        "connection errors": str(result.connection_errors),
        "answers stored/expected": f"{check['answers']}/{total}",
        "missing/changed": f"{check['missing']}/{check['changed']}",
        "finished raters": f"{result.finished_raters}/{args.raters}",
    }
    if args.kill:
        before = lt.check_db(db, killed["acked"])
        figures["killed after (acked)"] = str(len(killed["acked"]))
        figures["restart s"] = f"{killed['restart_s']:.2f}"
        figures["lost of those"] = f"{before['missing']}/{before['changed']}"
    ok = (
        check["missing"] == check["changed"] == 0
        and check["answers"] == total
        and result.server_errors == 0
        and result.finished_raters == args.raters
        and not result.unexpected
    )
    return {"figures": figures, "ok": ok}


def _still_served(idle: list[socket.socket]) -> str:
    """``served/held``: how many held connections still get a reply (the count
    stops after 3 silent ones)."""
    served = silent = 0
    for sock in idle:
        sock.settimeout(2)
        try:
            sock.sendall(HEALTHZ)
            served += sock.recv(12).startswith(b"HTTP/1.1 200")
        except OSError:
            silent += 1
            if silent == 3:
                return f"{served}/{len(idle)}, then 3 silent"
    return f"{served}/{len(idle)}"


def _flood(args, settings, samples, tmp: Path) -> dict:
    """Warm threads, hold ``args.flood`` idle connections, then one new rater."""
    db = tmp / f"flood-{settings}.sqlite"
    extra = ["--threads", str(args.threads)]
    server = _server(args, settings, samples, db, extra, invites=1).start()
    try:
        warm = lt.warm_threads(server.port)
        t0 = time.monotonic()
        with lt.idle_connections(server.port, args.flood) as idle:
            opened_s = time.monotonic() - t0
            result = lt.late_rater(server, deadline_s=20)
            alive = server.proc.poll() is None
            held = _still_served(idle) if alive else f"0/{args.flood}"
    finally:
        server.stop()
    log = "".join(server.output)
    rater_ok = len(result.acknowledged) == 2 and not result.unexpected
    exit_status = "" if alive else f" (exit {server.proc.returncode})"
    return {
        "figures": {
            "warm-up statuses": str(warm),
            f"open {args.flood} idle connections s": f"{opened_s:.2f}",
            "server alive after the flood": f"{'yes' if alive else 'no'}{exit_status}",
            "new rater: register + 2 answers s": (
                f"{result.wall_s:.2f}" if rater_ok else "failed"
            ),
            "its slowest request ms": (
                f"{1000 * max(result.latencies_s):.1f}" if result.latencies_s else "-"
            ),
            "idle connections still served": held,
            "log lines": str(len(server.output)),
            "tracebacks in the log": str(log.count("Traceback")),
            "'Too many open files' in the log": str(log.count("Too many open files")),
        },
        "ok": alive
        and rater_ok
        and held == f"{args.flood}/{args.flood}"
        and "Traceback" not in log,
    }


def _print_side_by_side(title: str, runs: dict) -> None:
    print(f"\n{title}")
    names = list(runs["new"]["figures"])
    width = max(len(n) for n in names) + 2
    print(f"{'':<{width}}{'old settings':>28}{'new settings':>28}")
    for name in names:
        old = runs["old"]["figures"].get(name, "-")
        print(f"{name:<{width}}{old:>28}{runs['new']['figures'][name]:>28}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--answers", type=int, default=20)
    parser.add_argument("--threads", type=int, default=16, help="server worker threads")
    parser.add_argument(
        "--audio-every", type=int, default=5, help="fetch X audio every k trials"
    )
    parser.add_argument(
        "--kill", action="store_true", help="SIGKILL and restart mid-load"
    )
    parser.add_argument(
        "--kill-after", type=float, default=0.3, help="share of answers"
    )
    parser.add_argument(
        "--open", action="store_true", help="open registration instead of invitations"
    )
    parser.add_argument(
        "--flood", type=int, default=1100, help="idle connections (0: no flood)"
    )
    parser.add_argument(
        "--soft-limit",
        type=int,
        default=0,
        help="soft limit of open files the servers start with (0: inherited)",
    )
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        layers = ("cnn1", "cnn2", "blstm1", "blstm3")
        samples = lt.demo_samples(
            tmp / "st", layers, duration_s=0.5, speakers=6, utterances=4
        )
        load = {s: _load(args, s, samples, tmp) for s in SETTINGS}
        flood = (
            {s: _flood(args, s, samples, tmp) for s in SETTINGS} if args.flood else None
        )
    print(
        f"raters {args.raters} x answers {args.answers}, server threads {args.threads}, "
        f"registration {'open' if args.open else 'by invitation'}, soft limit of open "
        f"files {args.soft_limit or 'inherited'}{', SIGKILL mid-load' if args.kill else ''}"
    )
    _print_side_by_side("load", load)
    if flood:
        _print_side_by_side(f"flood of {args.flood} idle connections", flood)
    ok = load["new"]["ok"] and (flood is None or flood["new"]["ok"])
    print("new settings: OK" if ok else "new settings: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
