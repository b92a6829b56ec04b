"""Command line of the listening test.

``python -m speechbrain_probe.listening serve --samples samples.csv --db test.sqlite``
starts the app on localhost with waitress (a multi-threaded WSGI server);
``python -m speechbrain_probe.listening results --db test.sqlite --out-dir out
[--metrics metrics.csv]`` writes ``her.csv``, ``her_eer.png`` and ``answers.csv``;
``python -m speechbrain_probe.listening demo --out-dir demo`` writes generated
stimuli to try it without the rest of the pipeline.

Bad input (a missing or unusable file or folder, a stimulus outside the study,
an absurd setting, a port in use) ends with exit status 2 and a message naming
it, never a traceback; the database is created only once every check has passed
and the port is bound.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import math
import os
import secrets
import sqlite3
import sys
from pathlib import Path

from ..extras import require_extra

__all__ = ["main", "build_parser", "MAX_TRIALS_PER_RATER", "WARN_TRIALS_PER_RATER"]

#: ``serve`` refuses designs with more trials per rater (about 14 hours at 10 s each).
MAX_TRIALS_PER_RATER = 5000
#: ``serve`` warns above this many trials per rater (about an hour at 10 s each).
WARN_TRIALS_PER_RATER = 300


def _csv_list(text: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in text.split(",") if v.strip()) if text else None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m speechbrain_probe.listening``.

    Example
    -------
    >>> args = build_parser().parse_args(["results", "--db", "t.sqlite", "--out-dir", "o"])
    >>> args.command, args.eer_metric
    ('results', 'eer_ge2e')
    """
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_probe.listening",
        description="Triplet (ABX) listening test: human error rate per layer.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web app on localhost")
    arg = serve.add_argument
    arg("--samples", required=True, help="samples.csv (or model,layer,...,path)")
    arg("--db", required=True, help="SQLite file of the answers")
    arg("--host", default="127.0.0.1")
    arg("--port", type=int, default=8765, help="0 picks a free port")
    arg("--threads", type=int, default=16, help="waitress worker threads")
    arg("--connection-limit", type=int, help="open connections (4000, ulimit)")
    arg("--trials-per-layer", type=int, default=4)
    arg("--seed", type=int, default=0)
    arg("--kinds", default="reconstruction", help="comma list of kinds, e.g. original")
    arg("--models", help="comma list of models to keep")
    arg("--conditions", help="comma list of conditions to keep, e.g. clean")
    arg("--layers", help="comma list of layers to keep")
    arg(
        "--admin-token",
        default=os.environ.get("LISTENING_ADMIN_TOKEN"),
        help="admin secret (default: $LISTENING_ADMIN_TOKEN, else a random one)",
    )
    arg("--max-raters", type=int, default=1000, help="refuse more registrations")
    arg("--open", action="store_true", help="register without invitation codes")
    arg("--invites", type=int, default=0, metavar="N", help="print N new codes")
    arg("--invite-uses", type=int, default=1, help="registrations per code")
    arg(
        "--register-per-minute",
        type=float,
        default=10.0,
        help="registrations per client address and minute after the burst (0: any)",
    )
    arg("--register-burst", type=int, default=10, help="registration attempts at once")
    many = dict(action="append", default=[])
    arg("--stimuli-root", metavar="DIR", help="stimuli folder (repeatable)", **many)
    arg("--max-stimulus-mb", type=float, default=16.0, help="largest stimulus in MiB")
    arg(
        "--allowed-host", metavar="NAME", help="this server's name (repeatable)", **many
    )
    arg("--secure-cookies", action="store_true", help="mark cookies Secure (HTTPS)")
    arg(
        "--trust-proxy",
        nargs="?",
        const="127.0.0.1",
        metavar="ADDRESS",
        help="take client address, scheme and host from X-Forwarded-* of ADDRESS",
    )
    arg(
        "--allow-design-change",
        action="store_true",
        help="reuse a database of another seed, trials per layer or stimulus set",
    )
    demo = sub.add_parser(
        "demo",
        help="write generated (non-speech) stimuli and their samples.csv to try the app",
    )
    demo.add_argument("--out-dir", required=True)
    demo.add_argument("--speakers", type=int, default=6)
    demo.add_argument("--utterances", type=int, default=4)
    demo.add_argument("--layers", default="cnn1,cnn2,cnn4,blstm1,blstm3,blstm5")
    demo.add_argument("--seed", type=int, default=0)
    results = sub.add_parser("results", help="write her.csv and her_eer.png")
    results.add_argument("--db", required=True)
    results.add_argument("--out-dir", required=True)
    for p in (serve, results):
        p.add_argument(
            "--metrics", help="metrics.csv of the evaluation (EER per layer)"
        )
        p.add_argument("--eer-metric", default="eer_ge2e", help="metric to show")
    return parser


def _fingerprint(registry, trials_per_layer: int, seed: int) -> str:
    items = sorted(
        (s.model, s.condition, s.layer, s.speaker, s.utt_id) for s in registry.stimuli
    )
    blob = json.dumps([seed, trials_per_layer, items]).encode()
    return hashlib.sha256(blob).hexdigest()


def _eer(args):
    if not args.metrics:
        return None
    from .results import read_eer

    return read_eer(args.metrics, args.eer_metric)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_serve_args(args) -> str | None:
    """What is wrong with the numbers, addresses, folders and token of ``serve``
    (the first problem), or None."""
    from .app import admin_token_problem

    token = args.admin_token
    problem = admin_token_problem(token) if token is not None else None
    if problem:
        return (
            f"{problem}; give another --admin-token / $LISTENING_ADMIN_TOKEN, or none "
            "for a random one"
        )
    port, invites, uses = args.port, args.invites, args.invite_uses
    rate, size, limit = (
        args.register_per_minute,
        args.max_stimulus_mb,
        args.connection_limit,
    )
    checks = [  # option, its value, whether it is fine, what it must be
        ("--port", port, 0 <= port <= 65535, "0 (a free port) to 65535"),
        ("--invites", invites, 0 <= invites <= 10_000, "0 to 10000"),
        ("--invite-uses", uses, 1 <= uses <= 100_000, "1 to 100000"),
        ("--register-per-minute", rate, 0 <= rate < math.inf, "0 (no limit) or more"),
        (
            "--register-burst",
            args.register_burst,
            args.register_burst >= 1,
            "1 or more",
        ),
        ("--threads", args.threads, args.threads >= 1, "1 or more"),
        ("--connection-limit", limit, limit is None or limit >= 1, "1 or more"),
        ("--max-raters", args.max_raters, args.max_raters >= 1, "1 or more"),
        ("--max-stimulus-mb", size, 0 < size < math.inf, "a positive number"),
    ]
    for option, value, fine, what in checks:
        if not fine:
            return f"{option} must be {what}, got {value}"
    missing = [root for root in args.stimuli_root if not os.path.isdir(root)]
    if missing:
        return f"--stimuli-root {missing[0]} is not a folder; give a folder of stimuli"
    if args.trust_proxy is not None and not _is_ip(args.trust_proxy):
        return (
            "--trust-proxy takes the IP address of the proxy (e.g. 127.0.0.1), got "
            f"{args.trust_proxy!r}"
        )
    return None


def _check_trials(registry, trials_per_layer: int) -> tuple[str | None, str | None]:
    """(error, warning) about the trials each rater would get."""
    n_cells = len(registry.cells())
    per_rater = trials_per_layer * n_cells
    if per_rater > MAX_TRIALS_PER_RATER:
        return (
            f"--trials-per-layer {trials_per_layer} gives each rater {per_rater} trials "
            f"({n_cells} layers and conditions); at most {MAX_TRIALS_PER_RATER} are "
            "accepted: lower --trials-per-layer or select fewer --models, "
            "--conditions or --layers",
            None,
        )
    if per_rater > WARN_TRIALS_PER_RATER:
        return None, (
            f"warning: each rater gets {per_rater} trials ({trials_per_layer} per layer "
            f"x {n_cells} layers and conditions), about {per_rater * 10 // 60} minutes "
            "at 10 s a trial; consider a lower --trials-per-layer"
        )
    return None, None


def _study(args):
    """``(registry, design, problem)`` of ``serve``: problem is the message of
    what is wrong, or None."""
    from .design import TripletDesign
    from .registry import load_registry

    registry = load_registry(
        args.samples,
        kinds=_csv_list(args.kinds) or ("reconstruction",),
        models=_csv_list(args.models),
        conditions=_csv_list(args.conditions),
        layers=_csv_list(args.layers),
        roots=args.stimuli_root,
        max_bytes=math.ceil(args.max_stimulus_mb * 2**20),
    )
    if args.trials_per_layer >= 1:
        problem, warning = _check_trials(registry, args.trials_per_layer)
        if problem:
            return None, None, problem
        if warning:
            print(warning, file=sys.stderr, flush=True)
    design = TripletDesign(
        registry, trials_per_layer=args.trials_per_layer, seed=args.seed
    )
    return registry, design, None


def _open_study_db(args, registry):
    """``(store, problem)`` of ``serve``: problem says why the database cannot
    be used for this design, or is None."""
    from .store import Store

    store = Store(args.db)
    fingerprint = _fingerprint(registry, args.trials_per_layer, args.seed)
    stored = store.set_meta_once("design", fingerprint)
    if stored != fingerprint and not args.allow_design_change:
        store.close()
        return None, (
            f"{args.db} holds answers of a different design (seed, trials per layer "
            "or stimuli changed); use a new --db, the original settings, or "
            "--allow-design-change"
        )
    return store, None


def _announce(args, base: str, registry, design, store, token: str, connections):
    """Print what ``serve`` serves, the invitation codes and the admin URL."""
    groups = ", ".join(
        f"{m}/{c}: {len(ls)} layers" for (m, c), ls in design.groups.items()
    )
    lines = [
        f"listening test: {len(registry)} stimuli ({groups}), {design.trials_per_rater} "
        f"trials per rater, up to {connections} open connections"
    ]
    if args.trust_proxy:
        lines.append(
            "behind a reverse proxy: client address, scheme and host from the "
            f"X-Forwarded-* headers sent by {args.trust_proxy}"
        )
    if args.open:
        lines.append(
            "registration: open (--open): anyone who can reach the server can register"
        )
    else:
        lines.append(
            "registration: by invitation code (create codes with --invites N or on the "
            "admin page; --open for a lab where everyone is trusted)"
        )
    if args.invites and not args.open:
        codes = store.create_invites(
            args.invites, uses=args.invite_uses, label="serve --invites"
        )
        lines.append(
            f"{len(codes)} invitation codes ({args.invite_uses} registration(s) each; "
            "shown once, the database keeps only their hash):"
        )
        lines += [f"invite: {code} {base}#invite={code}" for code in codes]
    given = " (token given)" if args.admin_token else f"?token={token}"
    print(*lines, f"admin page: {base}admin{given}", sep="\n", flush=True)


def cmd_serve(args) -> int:
    require_extra("listening")  # flask and waitress, before anything is written
    from .app import create_app
    from .server import (
        DeferredApp,
        close_server,
        create_server,
        proxy_adjustments,
        quiet_waitress_log,
        reserve_descriptors,
    )
    from .store import check_db_path

    problem = _check_serve_args(args)
    if problem:
        return _fail(problem)
    check_db_path(args.db)
    connections = reserve_descriptors(args.threads, args.connection_limit)
    registry, design, problem = _study(args)
    if problem:
        return _fail(problem)
    metrics = _eer(args)
    deferred = DeferredApp()
    try:
        # bound before the database exists: a port in use leaves none behind
        server = create_server(
            deferred,
            host=args.host,
            port=args.port,
            threads=args.threads,
            connection_limit=connections,
            max_request_body_size=64 * 1024,
            ident="speechbrain-probe-listening",
            **proxy_adjustments(args.trust_proxy),
        )
    except OSError as err:
        return _fail(
            f"cannot listen on {args.host}:{args.port}: {err.strerror or err}; "
            "choose another --port (0 picks a free one) or --host"
        )
    try:
        store, problem = _open_study_db(args, registry)
        if problem:
            close_server(server)
            return _fail(problem)
        token = args.admin_token or secrets.token_urlsafe(18)
        deferred.app = create_app(
            registry,
            store,
            design,
            token,
            metrics=metrics,
            eer_metric=args.eer_metric,
            max_raters=args.max_raters,
            open_registration=args.open,
            register_per_minute=args.register_per_minute,
            register_burst=args.register_burst,
            secure_cookies=args.secure_cookies,
            allowed_hosts=(*args.allowed_host, args.host),
        )
        base = f"http://{args.host}:{server.effective_port}/"
        _announce(args, base, registry, design, store, token, connections)
        print(f"serving on {base}", flush=True)
        with quiet_waitress_log():
            server.run()
    except KeyboardInterrupt:
        pass
    except BaseException:
        close_server(server)
        raise
    return 0


def cmd_results(args) -> int:
    from speechbrain_probe.atomic import atomic_write_bytes, atomic_write_text

    from .results import answers_csv, figure_png, her_csv, her_table, merge_eer
    from .store import Store

    store = Store(args.db, readonly=True)  # an archived copy may be read-only
    out = Path(args.out_dir)
    blocker = next(
        (p for p in [out, *out.parents] if p.exists() and not p.is_dir()), None
    )
    if blocker is not None:
        return _fail(
            f"cannot write the results to --out-dir {out}: {blocker} is a file, not "
            "a folder; choose another --out-dir"
        )
    answers = store.answered_cells()
    table = merge_eer(her_table(answers), _eer(args), args.eer_metric)
    if not table:
        return _fail(f"{args.db} holds no answers yet")
    try:  # private files: atomic writes go through mkstemp (mode 0600)
        csv_path = atomic_write_text(out / "her.csv", her_csv(table))
        png_path = atomic_write_bytes(out / "her_eer.png", figure_png(table))
        answers_path = atomic_write_text(out / "answers.csv", answers_csv(answers))
    except OSError as err:
        return _fail(
            f"cannot write the results to --out-dir {out}: {err.strerror or err}; "
            "choose a folder you can write to"
        )
    for row in table:
        eer = f"  EER {100 * row['eer']:.1f}%" if row["eer"] != "" else ""
        print(
            f"{row['model']:>20} {row['condition']:>7} {row['layer']:>14}  "
            f"HER {100 * row['her']:5.1f}% [{100 * row['ci_low']:.1f}, "
            f"{100 * row['ci_high']:.1f}]  n={row['n']}{eer}"
        )
    unheard = sum(row["without_audio"] for row in table)
    if unheard:
        print(
            f"{unheard} of {len(answers)} answers came without all their audio "
            "fetched (column without_audio of her.csv, audio_fetched of answers.csv)"
        )
    print(f"wrote {csv_path}, {png_path} and {answers_path}")
    return 0


def cmd_demo(args) -> int:
    from .demo import write_demo_stimuli

    path = write_demo_stimuli(
        args.out_dir,
        n_speakers=args.speakers,
        n_utts=args.utterances,
        layers=_csv_list(args.layers),
        duration_s=1.5,
        seed=args.seed,
    )
    print(f"wrote {path}; serve it with:")
    print(
        f"python -m speechbrain_probe.listening serve --samples {path} --db listening.sqlite"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (2, with a one-line message, for
    bad input).

    Example
    -------
    >>> tmp = str(getfixture("tmp_path"))
    >>> main(["demo", "--out-dir", tmp, "--speakers", "2", "--utterances", "2"])
    wrote .../samples.csv; serve it with:
    python -m speechbrain_probe.listening serve --samples .../samples.csv --db listening.sqlite
    0
    >>> main(["results", "--db", tmp, "--out-dir", tmp])
    2
    """
    args = build_parser().parse_args(argv)
    try:
        commands = {"serve": cmd_serve, "results": cmd_results, "demo": cmd_demo}
        return commands[args.command](args)
    except (FileNotFoundError, ValueError) as err:
        return _fail(str(err))
    except OSError as err:  # a path the checks above did not foresee
        where = f" ({err.filename})" if err.filename else ""
        return _fail(f"{err.strerror or err}{where}")
    except sqlite3.Error as err:
        return _fail(
            f"database {getattr(args, 'db', '')}: {err}; give a listening-test "
            "database you may read (serve: and write, in a folder you may write to)"
        )
