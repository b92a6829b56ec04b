"""Load benchmark of the listening test on loopback.

Starts ``python -m speechbrain_probe.listening serve`` (waitress) on generated
stimuli in a child process, runs N concurrent simulated raters giving M answers
each, optionally SIGKILLs the server mid-load and restarts it on the same
database, then checks the database against every acknowledged answer. The
raters register with invitation codes printed by ``serve --invites`` (or without,
with ``--open``); all come from one address, so the registration burst is raised
to twice the raters.

    python benchmarks/bench_listening_load.py --raters 50 --answers 20 [--kill] [--open]

Prints throughput, latency percentiles, status counts and the loss check; exits
1 on any lost or changed answer, any 5xx or any rater that did not finish.
Bounded by --deadline seconds. Loopback only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from speechbrain_probe.listening.demo import write_demo_stimuli
from speechbrain_probe.listening.loadtest import ServerProcess, check_db, run_raters


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
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args(argv)

    layers = ("cnn1", "cnn2", "blstm1", "blstm3")
    per_layer = -(-args.answers // len(layers))  # enough trials for every answer
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        samples = write_demo_stimuli(tmp / "st", n_speakers=6, n_utts=4, layers=layers)
        db = tmp / "answers.sqlite"
        extra = [
            "--trials-per-layer",
            str(per_layer),
            "--threads",
            str(args.threads),
            "--register-burst",
            str(2 * args.raters),
        ]
        if args.open:
            extra.append("--open")
        invites = 0 if args.open else args.raters
        server = ServerProcess(samples, db, extra=extra, invites=invites).start()
        servers, killed_at = [server], {}
        total = args.raters * args.answers

        def kill_and_restart(result, lock):
            if not args.kill:
                return
            stop = time.monotonic() + args.deadline / 2
            while time.monotonic() < stop:
                with lock:
                    if len(result.acknowledged) >= args.kill_after * total:
                        break
                time.sleep(0.005)
            server.kill()
            with lock:
                killed_at["acked"] = list(result.acknowledged)
            t0 = time.monotonic()
            servers.append(
                ServerProcess(samples, db, port=server.port, extra=extra).start()
            )
            killed_at["restart_s"] = time.monotonic() - t0

        try:
            result = run_raters(
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
        check = check_db(db, result.acknowledged)
        lat = sorted(result.latencies_s)

        def pct(q):
            return (
                1000 * lat[min(len(lat) - 1, int(q * len(lat)))]
                if lat
                else float("nan")
            )

        print(
            f"raters {args.raters} x answers {args.answers}, server threads {args.threads}, "
            f"registration {'open' if args.open else 'by invitation'}"
        )
        print(
            f"wall {result.wall_s:.2f} s, {len(lat) / result.wall_s:.0f} requests/s, "
            f"{len(result.acknowledged) / result.wall_s:.0f} acknowledged answers/s"
        )
        print(
            f"latency ms: p50 {pct(0.5):.1f}  p95 {pct(0.95):.1f}  p99 {pct(0.99):.1f}"
        )
        print(
            f"statuses {dict(sorted(result.statuses.items()))}, connection errors "
            f"{result.connection_errors}"
        )
        if args.kill:
            before = check_db(db, killed_at["acked"])
            print(
                f"killed after {len(killed_at['acked'])} acknowledged answers, restart "
                f"{killed_at['restart_s']:.2f} s; of those: missing {before['missing']}, "
                f"changed {before['changed']}"
            )
        print(
            f"database: {check['answers']} answers (expected {total}); acknowledged "
            f"{len(result.acknowledged)}; missing {check['missing']}, changed {check['changed']}; "
            f"finished raters {result.finished_raters}/{args.raters}"
        )
        for problem in result.unexpected[:10]:
            print("unexpected:", problem)
        ok = (
            check["missing"] == 0
            and check["changed"] == 0
            and check["answers"] == total
            and result.server_errors == 0
            and result.finished_raters == args.raters
            and not result.unexpected
        )
        print("OK" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
