"""Command line of the listening test.

``python -m speechbrain_probe.listening serve --samples samples.csv --db test.sqlite``
starts the app on localhost with waitress (a multi-threaded WSGI server);
``python -m speechbrain_probe.listening results --db test.sqlite --out-dir out
[--metrics metrics.csv]`` writes ``her.csv``, ``her_eer.png`` and ``answers.csv``;
``python -m speechbrain_probe.listening demo --out-dir demo`` writes generated
stimuli to try it without the rest of the pipeline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


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

    def eer_args(p):
        p.add_argument(
            "--metrics", help="metrics.csv of the evaluation (EER per layer)"
        )
        p.add_argument(
            "--eer-metric", default="eer_ge2e", help="metric of metrics.csv to show"
        )
        p.add_argument(
            "--eer-unit",
            default="auto",
            choices=("auto", "fraction", "percent"),
            help="how metrics.csv holds EER (auto: percent if any value > 1)",
        )

    serve = sub.add_parser("serve", help="run the web app on localhost")
    serve.add_argument(
        "--samples", required=True, help="samples.csv (or model,layer,...,path)"
    )
    serve.add_argument("--db", required=True, help="SQLite file of the answers")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    serve.add_argument(
        "--threads", type=int, default=16, help="waitress worker threads"
    )
    serve.add_argument(
        "--connection-limit",
        type=int,
        default=1000,
        help="open connections the server accepts (browsers keep several open each)",
    )
    serve.add_argument("--trials-per-layer", type=int, default=4)
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument(
        "--kinds",
        default="reconstruction",
        help="comma list of samples.csv kinds to test, e.g. reconstruction,copy_synthesis",
    )
    serve.add_argument("--models", help="comma list of models to keep")
    serve.add_argument(
        "--conditions", help="comma list of conditions to keep, e.g. clean"
    )
    serve.add_argument("--layers", help="comma list of layers to keep")
    serve.add_argument(
        "--admin-token",
        default=os.environ.get("LISTENING_ADMIN_TOKEN"),
        help="secret of the admin page (default: $LISTENING_ADMIN_TOKEN, else a new random one)",
    )
    serve.add_argument(
        "--max-raters", type=int, default=1000, help="refuse more registrations"
    )
    serve.add_argument(
        "--allow-design-change",
        action="store_true",
        help="reuse a database made with another seed, trials per layer or stimulus set",
    )
    eer_args(serve)

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
    eer_args(results)
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

    return read_eer(args.metrics, args.eer_metric, unit=args.eer_unit)


def cmd_serve(args) -> int:
    from waitress import create_server

    from .app import create_app
    from .design import TripletDesign
    from .registry import load_registry
    from .store import Store

    registry = load_registry(
        args.samples,
        kinds=_csv_list(args.kinds) or ("reconstruction",),
        models=_csv_list(args.models),
        conditions=_csv_list(args.conditions),
        layers=_csv_list(args.layers),
    )
    design = TripletDesign(
        registry, trials_per_layer=args.trials_per_layer, seed=args.seed
    )
    store = Store(args.db)
    fingerprint = _fingerprint(registry, args.trials_per_layer, args.seed)
    stored = store.set_meta_once("design", fingerprint)
    if stored != fingerprint and not args.allow_design_change:
        print(
            f"error: {args.db} holds answers of a different design (seed, trials per layer "
            "or stimuli changed); use a new --db, the original settings, or "
            "--allow-design-change",
            file=sys.stderr,
        )
        return 2
    token = args.admin_token or secrets.token_urlsafe(18)
    app = create_app(
        registry,
        store,
        design,
        token,
        metrics=_eer(args),
        eer_metric=args.eer_metric,
        max_raters=args.max_raters,
    )
    server = create_server(
        app,
        host=args.host,
        port=args.port,
        threads=args.threads,
        connection_limit=args.connection_limit,
        max_request_body_size=64 * 1024,
        ident="speechbrain-probe-listening",
    )
    port = server.effective_port
    groups = ", ".join(
        f"{m}/{c}: {len(ls)} layers" for (m, c), ls in design.groups.items()
    )
    print(
        f"listening test: {len(registry)} stimuli ({groups}), "
        f"{design.trials_per_rater} trials per rater",
        flush=True,
    )
    print(f"serving on http://{args.host}:{port}/", flush=True)
    if not args.admin_token:
        print(f"admin page: http://{args.host}:{port}/admin?token={token}", flush=True)
    else:
        print(f"admin page: http://{args.host}:{port}/admin (token given)", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_results(args) -> int:
    from .results import (
        her_table,
        merge_eer,
        plot_her_eer,
        write_answers_csv,
        write_her_csv,
    )
    from .store import Store

    if not Path(args.db).is_file():
        print(f"error: database {args.db} does not exist", file=sys.stderr)
        return 2
    store = Store(args.db)
    answers = store.answered_cells()
    table = merge_eer(her_table(answers), _eer(args), args.eer_metric)
    if not table:
        print(f"error: {args.db} holds no answers yet", file=sys.stderr)
        return 2
    out = Path(args.out_dir)
    csv_path = write_her_csv(table, out / "her.csv")
    png_path = plot_her_eer(table, out / "her_eer.png")
    answers_path = write_answers_csv(answers, out / "answers.csv")
    for row in table:
        eer = f"  EER {100 * row['eer']:.1f}%" if row["eer"] != "" else ""
        print(
            f"{row['model']:>20} {row['condition']:>7} {row['layer']:>14}  "
            f"HER {100 * row['her']:5.1f}% [{100 * row['ci_low']:.1f}, "
            f"{100 * row['ci_high']:.1f}]  n={row['n']}{eer}"
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
    """Run the CLI; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        commands = {"serve": cmd_serve, "results": cmd_results, "demo": cmd_demo}
        return commands[args.command](args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
