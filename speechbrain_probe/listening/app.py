"""The Flask app of the listening test.

Rater side (session cookie, set at registration):

* ``GET /``: the rater page; ``GET /api/state``: progress and the next trial;
* ``POST /api/raters`` ``{"rater_id": ...}``: register, get all trials;
* ``POST /api/answers`` ``{"trial_id", "answer": "A"|"B", "response_ms"}``;
* ``GET /audio/<trial_id>/<A|B|X>``: audio of one of *your own* trials.

A rater sees only opaque trial ids and audio URLs, never a path, a speaker, a
layer, the key or anyone's answers. Audio comes only from the registered
stimuli. Every request is validated; bad ones get a 4xx JSON error.

Admin side (token as ``Authorization: Bearer``, ``?token=`` or the cookie set by
it): ``GET /admin``, ``/admin/her.csv``, ``/admin/her.png``, ``/admin/answers.csv``.
"""

from __future__ import annotations

import hmac
import io
import os
import re
import threading

from flask import Flask, Response, jsonify, make_response, redirect, request, send_file
from werkzeug.exceptions import HTTPException

from .design import TripletDesign
from .pages import APP_CSS, APP_JS, RATER_HTML, admin_html
from .registry import Registry
from .results import (
    figure_png_bytes,
    her_table,
    merge_eer,
    write_answers_csv,
    write_her_csv,
)
from .store import AlreadyAnswered, RaterExists, Store, TooManyRaters, UnknownTrial

__all__ = ["create_app", "MAX_BODY_BYTES"]

#: Larger request bodies are refused with 413.
MAX_BODY_BYTES = 1024
SESSION_COOKIE = "lt_session"
ADMIN_COOKIE = "lt_admin"
_RATER_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_TRIAL_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
}
_CSP = (
    "default-src 'self'; media-src 'self'; img-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _json_body(allowed: dict[str, type], required: tuple[str, ...]) -> dict:
    """The request's JSON object, checked against ``allowed`` field types."""
    if request.mimetype != "application/json":
        raise BadRequest(415, "send the body as application/json")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest(400, "the body must be one JSON object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise BadRequest(400, f"unknown fields {unknown}; allowed: {sorted(allowed)}")
    for name in required:
        if name not in data:
            raise BadRequest(400, f"missing field {name!r}")
    for name, kind in allowed.items():
        value = data.get(name)
        if value is None and name not in required:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise BadRequest(400, f"field {name!r} must be a {kind.__name__}")
    return data


def create_app(
    registry: Registry,
    store: Store,
    design: TripletDesign,
    admin_token: str,
    metrics: dict | None = None,
    eer_metric: str = "eer_ge2e",
    secure_cookies: bool = False,
    max_raters: int | None = 1000,
) -> Flask:
    """Build the app.

    Parameters
    ----------
    registry, store, design
        The stimuli, the database and the triplet design.
    admin_token : str
        Secret of the admin pages (at least 16 characters).
    metrics : dict, optional
        EER per (model, condition, layer), from :func:`results.read_eer`.
    eer_metric : str
        Name of that EER metric, for the table and the figure.
    secure_cookies : bool
        Mark cookies ``Secure`` (behind HTTPS).
    max_raters : int, optional
        Registrations beyond this many get 403 (None: no limit).

    Example
    -------
    >>> from speechbrain_probe.listening.registry import Stimulus
    >>> tmp = getfixture("tmp_path")
    >>> stims = [Stimulus(f"u{u}", f"s{s}", "m", "cnn1", "clean", str(tmp / f"{u}.wav"))
    ...          for s in range(2) for u in range(s * 5, s * 5 + 2)]
    >>> reg = Registry(stims)
    >>> app = create_app(reg, Store(tmp / "db.sqlite"), TripletDesign(reg, 2), "x" * 16)
    >>> client = app.test_client()
    >>> client.get("/api/state").status_code
    401
    >>> r = client.post("/api/raters", json={"rater_id": "alice"})
    >>> r.status_code, r.get_json()["total"]
    (201, 2)
    """
    if len(admin_token) < 16:
        raise ValueError("the admin token must have at least 16 characters")
    app = Flask("speechbrain_probe.listening")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    figure_lock = threading.Lock()

    def state_of(rater_id: str) -> dict:
        progress = store.progress(rater_id)
        nxt = store.next_trial(rater_id)
        trial = None
        if nxt is not None:
            tid = nxt["trial_id"]
            trial = {
                "trial_id": tid,
                "number": nxt["seq"] + 1,
                "audio": {s: f"/audio/{tid}/{s}" for s in ("A", "B", "X")},
            }
        return {"rater_id": rater_id, **progress, "trial": trial}

    def current_rater() -> str:
        token = request.cookies.get(SESSION_COOKIE, "")
        rater = store.rater_for_token(token) if 0 < len(token) <= 128 else None
        if rater is None:
            raise BadRequest(
                401, "no rater session: register with POST /api/raters first"
            )
        return rater

    def is_admin() -> bool:
        header = request.headers.get("Authorization", "")
        candidates = [
            header[7:] if header.startswith("Bearer ") else "",
            request.args.get("token", ""),
            request.cookies.get(ADMIN_COOKIE, ""),
        ]
        return any(
            c and hmac.compare_digest(c.encode(), admin_token.encode())
            for c in candidates
        )

    def require_admin():
        if not is_admin():
            raise BadRequest(403, "admin token required")

    def results_table():
        table = her_table(store.answered_cells())
        return merge_eer(table, metrics, eer_metric)

    @app.errorhandler(BadRequest)
    def _bad(err: BadRequest):
        return jsonify(error=err.message), err.status

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        return jsonify(error=err.description or err.name), err.code

    @app.after_request
    def _headers(resp: Response):
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Content-Security-Policy"] = _CSP
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        if request.path.startswith(("/api/", "/audio/", "/admin")):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/")
    def index():
        return Response(RATER_HTML, mimetype="text/html")

    @app.get("/static/app.js")
    def app_js():
        return Response(APP_JS, mimetype="text/javascript")

    @app.get("/static/app.css")
    def app_css():
        return Response(APP_CSS, mimetype="text/css")

    @app.get("/favicon.ico")
    def favicon():
        return Response(status=204)

    @app.get("/healthz")
    def healthz():
        return jsonify(
            ok=True, stimuli=len(registry), trials_per_rater=design.trials_per_rater
        )

    @app.post("/api/raters")
    def register():
        data = _json_body({"rater_id": str}, required=("rater_id",))
        rater_id = data["rater_id"].strip()
        if not _RATER_ID.fullmatch(rater_id):
            raise BadRequest(
                400,
                "rater_id must be 1-64 letters, digits, dots, dashes or underscores",
            )
        token = request.cookies.get(SESSION_COOKIE, "")
        if token and store.rater_for_token(token) is not None:
            raise BadRequest(409, "this browser is registered already; reload the page")
        try:
            token = store.create_rater(rater_id, design, max_raters=max_raters)
        except TooManyRaters:
            raise BadRequest(403, "this test takes no more raters") from None
        except RaterExists:
            raise BadRequest(
                409,
                f"rater id {rater_id!r} is taken; choose another or resume in its browser",
            ) from None
        resp = make_response(jsonify(state_of(rater_id)), 201)
        resp.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=secure_cookies,
            max_age=60 * 60 * 24 * 30,
        )
        return resp

    @app.get("/api/state")
    def state():
        return jsonify(state_of(current_rater()))

    @app.post("/api/answers")
    def answer():
        rater_id = current_rater()
        data = _json_body(
            {"trial_id": str, "answer": str, "response_ms": int},
            required=("trial_id", "answer"),
        )
        if not _TRIAL_ID.fullmatch(data["trial_id"]):
            raise BadRequest(404, "unknown trial")
        if data["answer"] not in ("A", "B"):
            raise BadRequest(400, "answer must be 'A' or 'B'")
        response_ms = data.get("response_ms")
        if response_ms is not None and not 0 <= response_ms <= 24 * 3600 * 1000:
            raise BadRequest(400, "response_ms must lie between 0 and one day")
        try:
            store.answer(rater_id, data["trial_id"], data["answer"], response_ms)
        except UnknownTrial:
            raise BadRequest(404, "unknown trial") from None
        except AlreadyAnswered:
            raise BadRequest(409, "this trial has been answered already") from None
        return jsonify(state_of(rater_id)), 201

    @app.get("/audio/<trial_id>/<slot>")
    def audio(trial_id: str, slot: str):
        rater_id = current_rater()
        if slot not in ("A", "B", "X") or not _TRIAL_ID.fullmatch(trial_id):
            raise BadRequest(404, "no such audio")
        try:
            path = store.trial_audio_path(rater_id, trial_id, slot)
        except UnknownTrial:
            raise BadRequest(404, "no such audio") from None
        if not registry.is_registered(path):
            raise BadRequest(410, "this audio is no longer part of the test")
        # read into memory: no file name, ETag or modification time reaches the rater
        with open(path, "rb") as handle:
            payload = handle.read()
        mimetype = _AUDIO_TYPES.get(
            os.path.splitext(path)[1].lower(), "application/octet-stream"
        )
        return send_file(
            io.BytesIO(payload), mimetype=mimetype, etag=False, conditional=False
        )

    @app.get("/admin")
    def admin():
        require_admin()
        if "token" in request.args:
            # move the token from the URL into an HttpOnly cookie
            resp = redirect("/admin", code=303)
            resp.set_cookie(
                ADMIN_COOKIE,
                request.args["token"],
                httponly=True,
                samesite="Strict",
                secure=secure_cookies,
                path="/admin",
            )
            return resp
        answers = store.answered_cells()
        table = merge_eer(her_table(answers), metrics, eer_metric)
        n_raters = len({a["rater_id"] for a in answers})
        return Response(admin_html(table, n_raters, len(answers)), mimetype="text/html")

    @app.get("/admin/her.csv")
    def admin_csv():
        require_admin()
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            text = write_her_csv(results_table(), Path(tmp) / "her.csv").read_text()
        return Response(text, mimetype="text/csv")

    @app.get("/admin/answers.csv")
    def admin_answers_csv():
        require_admin()
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            path = write_answers_csv(store.answered_cells(), Path(tmp) / "answers.csv")
            text = path.read_text()
        return Response(text, mimetype="text/csv")

    @app.get("/admin/her.png")
    def admin_png():
        require_admin()
        table = results_table()
        if not table:
            raise BadRequest(404, "no answers yet")
        with figure_lock:
            png = figure_png_bytes(table)
        return Response(png, mimetype="image/png")

    return app
