"""The Flask app of the listening test.

Rater side (session cookie, set at registration):

* ``GET /``: the rater page; ``GET /api/state``: progress and the next trial;
* ``POST /api/raters`` ``{"rater_id": ..., "invite": ...}``: register (with an
  invitation code unless registration is open), get all trials; rate-limited
  per client address (429 with ``Retry-After``);
* ``POST /api/answers`` ``{"trial_id", "answer": "A"|"B", "response_ms"}``: the
  answer to the rater's current trial (trials are answered in their order);
* ``GET /audio/<trial_id>/<A|B|X>``: audio of one of *your own* trials (single
  byte ranges answered with 206). A slot counts as fetched once a GET reply has
  carried all of its bytes.

A request that has a ``Host`` header must name this server in it: an IP
address, ``localhost`` or a name given with ``allowed_hosts`` (a page on another
domain that resolves to this server, DNS rebinding, gets 400).

A rater sees only opaque trial ids and audio URLs, never a path, a speaker, a
layer, the key or anyone's answers. Audio comes only from the registered
stimuli, exactly as checked at start (:meth:`Registry.read_audio`). Every
request is validated (JSON objects with duplicate keys included); bad ones get a
4xx JSON error.

Admin side (token as ``Authorization: Bearer``, or the cookie that ``GET
/admin?token=...`` sets, which holds a hash of the token): ``GET /admin`` (results
and invitation codes), ``POST /admin/invites`` (create codes; form with a CSRF
field, same-origin only), ``/admin/her.csv``, ``/admin/her.png``,
``/admin/answers.csv``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from flask import Flask, Response, abort, jsonify, make_response, redirect, request
from werkzeug.exceptions import HTTPException

from .design import TripletDesign
from .pages import APP_CSS, APP_JS, RATER_HTML, admin_html
from .registry import AudioChanged, Registry
from .results import (
    answers_csv,
    figure_png,
    her_csv,
    her_table,
    merge_eer,
    without_audio,
)
from .store import (
    AlreadyAnswered,
    InvalidInvite,
    NotCurrentTrial,
    RaterExists,
    Store,
    TooManyRaters,
    UnknownTrial,
    normalize_invite,
)

__all__ = [
    "create_app",
    "admin_token_problem",
    "RateLimiter",
    "MAX_BODY_BYTES",
    "SECURITY_HEADERS",
]

log = logging.getLogger("speechbrain_probe.listening")

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
#: Headers of every reply, the server's own error replies included.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", _CSP),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
_INVITE_REQUIRED = (
    "a valid invitation code is required: use the code or link you were given "
    "(each code registers one rater)"
)
_ID_UNAVAILABLE = (
    "this rater id cannot be used: choose another one (to resume, use the "
    "browser you started in)"
)


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    data = {}
    for key, value in pairs:
        if key in data:
            raise _DuplicateKey(key)
        data[key] = value
    return data


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def _json_body(allowed: dict[str, type], required: tuple[str, ...]) -> dict:
    """The request's JSON object, checked against ``allowed`` field types.

    A key given twice (``{"answer": "A", "answer": "B"}``, which most parsers
    resolve silently to the last) and ``NaN``/``Infinity`` are refused.
    """
    if request.mimetype != "application/json":
        abort(415, "send the body as application/json")
    raw = request.get_data()  # 413 beyond MAX_CONTENT_LENGTH
    try:
        data = json.loads(
            raw,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_no_constants,
        )
    except _DuplicateKey as err:
        abort(400, f"duplicate field {err.args[0]!r} in the JSON body")
    except (ValueError, RecursionError):
        abort(400, "the body must be one JSON object")
    if not isinstance(data, dict):
        abort(400, "the body must be one JSON object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        abort(400, f"unknown fields {unknown}; allowed: {sorted(allowed)}")
    for name in required:
        if name not in data:
            abort(400, f"missing field {name!r}")
    for name, kind in allowed.items():
        value = data.get(name)
        if value is None and name not in required:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            abort(400, f"field {name!r} must be a {kind.__name__}")
    return data


def admin_token_problem(token: str) -> str | None:
    """What makes ``token`` unfit to guard the admin pages, or None.

    Example
    -------
    >>> admin_token_problem("x" * 16) is None, admin_token_problem(" " * 16)[:24]
    (True, 'the admin token must hav')
    """
    if len(token) < 16 or not token.isprintable() or any(c.isspace() for c in token):
        return (
            "the admin token must have at least 16 characters and no spaces or "
            "control characters"
        )
    return None


class RateLimiter:
    """A token bucket per client: ``burst`` attempts at once, then
    ``per_minute`` more each minute. Thread-safe; remembers at most
    ``max_clients`` clients (the least recently seen are forgotten).

    Parameters
    ----------
    per_minute : float
        Refill rate; 0: no limit. Negative or not finite: :class:`ValueError`.
    burst : int
        Bucket size.

    Example
    -------
    >>> now = [0.0]
    >>> limit = RateLimiter(per_minute=6, burst=2)
    >>> limit.clock = lambda: now[0]
    >>> [limit.take("10.0.0.1") for _ in range(3)], limit.take("10.0.0.2")
    ([0, 0, 10], 0)
    >>> now[0] = 10.0; limit.take("10.0.0.1")
    0
    """

    #: Seconds, monotonic.
    clock = staticmethod(time.monotonic)
    max_clients = 10_000

    def __init__(self, per_minute: float, burst: int):
        if not 0 <= per_minute < math.inf:
            raise ValueError(
                f"registrations per minute must be 0 (no limit) or a positive "
                f"number, got {per_minute}"
            )
        self.per_s = float(per_minute) / 60.0
        self.burst = max(1, int(burst))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> int:
        """Spend one attempt of ``client``; return 0, or the seconds to wait."""
        if self.per_s == 0:
            return 0
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.per_s)
            wait = 0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = max(1, math.ceil((1.0 - tokens) / self.per_s))
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


def _client_key(address: str | None) -> str:
    """The registration limit's key of a client address: the address itself, or
    its /64 for IPv6 (one host usually holds a whole /64).

    Example
    -------
    >>> _client_key("10.0.0.7"), _client_key("2001:db8:1:2:a::1"), _client_key(None)
    ('10.0.0.7', '2001:db8:1:2::/64', 'unknown')
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _named_host(host: str, allowed: frozenset[str]) -> bool:
    """True when the ``Host`` of a request is an IP address, ``localhost`` or a
    name of ``allowed`` (lower case), with any port.

    Example
    -------
    >>> names = frozenset({"lab.example.org"})
    >>> [_named_host(h, names) for h in ("127.0.0.1:8765", "[::1]", "LAB.example.org",
    ...                                   "localhost:80", "evil.example", "")]
    [True, True, True, True, False, False]
    """
    name = SplitResult("", host, "", "", "").hostname
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name == "localhost" or name in allowed
    return True


def _admin_cookie_value(admin_token: str) -> str:
    """What the admin cookie holds: a hash of the token, never the token."""
    return hashlib.sha256(f"speechbrain-probe-admin:{admin_token}".encode()).hexdigest()


def create_app(
    registry: Registry,
    store: Store,
    design: TripletDesign,
    admin_token: str,
    metrics: dict | None = None,
    eer_metric: str = "eer_ge2e",
    secure_cookies: bool = False,
    max_raters: int | None = 1000,
    open_registration: bool = False,
    register_per_minute: float = 10.0,
    register_burst: int = 10,
    allowed_hosts: tuple[str, ...] = (),
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
    open_registration : bool
        Anyone may register (a lab where everyone is trusted); otherwise a rater
        needs an invitation code of :meth:`Store.create_invites`.
    register_per_minute, register_burst : float, int
        Registration attempts per client address (:class:`RateLimiter`);
        ``register_per_minute <= 0``: no limit.
    allowed_hosts : tuple of str
        Names besides IP addresses and ``localhost`` that requests may give as
        their ``Host`` (the name raters use; behind a reverse proxy, the public
        one). Any other name gets 400. Behind a proxy, the client address,
        scheme and host come from the server (:func:`server.proxy_adjustments`).

    Example
    -------
    >>> from speechbrain_probe.listening.registry import Stimulus
    >>> tmp = getfixture("tmp_path")
    >>> stims = [Stimulus(f"u{u}", f"s{s}", "m", "cnn1", "clean", str(tmp / f"{u}.wav"))
    ...          for s in range(2) for u in range(s * 5, s * 5 + 2)]
    >>> for s in stims: _ = open(s.path, "wb").write(b"RIFF" + s.utt_id.encode())
    >>> reg, store = Registry(stims), Store(tmp / "db.sqlite")
    >>> app = create_app(reg, store, TripletDesign(reg, 2), "x" * 16)
    >>> client = app.test_client()
    >>> client.get("/api/state").status_code
    401
    >>> client.post("/api/raters", json={"rater_id": "alice"}).status_code
    403
    >>> (code,) = store.create_invites(1)
    >>> r = client.post("/api/raters", json={"rater_id": "alice", "invite": code})
    >>> r.status_code, r.get_json()["total"]
    (201, 2)
    """
    problem = admin_token_problem(admin_token)
    if problem:
        raise ValueError(problem)
    if not registry.verified:
        registry.verify()
    app = Flask("speechbrain_probe.listening")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    limiter = RateLimiter(register_per_minute, register_burst)
    hosts = frozenset(h.lower() for h in allowed_hosts)
    settings = (metrics, eer_metric, secure_cookies, max_raters, open_registration)
    _Views(registry, store, design, admin_token, *settings, limiter, hosts).install(app)
    return app


@dataclass
class _Views:
    """The request handlers of :func:`create_app`, sharing its settings."""

    registry: Registry
    store: Store
    design: TripletDesign
    admin_token: str
    metrics: dict | None
    eer_metric: str
    secure_cookies: bool
    max_raters: int | None
    open_registration: bool
    limiter: RateLimiter
    allowed_hosts: frozenset[str]

    def __post_init__(self):
        self.registration = "open" if self.open_registration else "invite"
        self.admin_cookie = _admin_cookie_value(self.admin_token)
        self.csrf_value = hmac.new(
            self.admin_token.encode(), b"speechbrain-probe-admin-form", hashlib.sha256
        ).hexdigest()
        self.figure_lock = threading.Lock()

    def install(self, app: Flask) -> None:
        """Register the handlers, hooks and routes on ``app``."""
        app.register_error_handler(HTTPException, _http_error)
        app.before_request(self.known_host)
        app.after_request(_security_headers)
        routes = [
            ("/", "GET", self.index),
            ("/static/app.js", "GET", self.app_js),
            ("/static/app.css", "GET", self.app_css),
            ("/favicon.ico", "GET", self.favicon),
            ("/healthz", "GET", self.healthz),
            ("/api/raters", "POST", self.register),
            ("/api/state", "GET", self.state),
            ("/api/answers", "POST", self.answer),
            ("/audio/<trial_id>/<slot>", "GET", self.audio),
            ("/admin", "GET", self.admin),
            ("/admin/invites", "POST", self.admin_invites),
            ("/admin/her.csv", "GET", self.admin_csv),
            ("/admin/answers.csv", "GET", self.admin_answers_csv),
            ("/admin/her.png", "GET", self.admin_png),
        ]
        for rule, method, view in routes:
            app.add_url_rule(rule, view.__name__, view, methods=[method])

    # -- helpers -----------------------------------------------------------------
    def state_of(self, rater_id: str) -> dict:
        progress = self.store.progress(rater_id)
        nxt = self.store.next_trial(rater_id)
        trial = None
        if nxt is not None:
            tid = nxt["trial_id"]
            trial = {
                "trial_id": tid,
                "number": nxt["seq"] + 1,
                "audio": {s: f"/audio/{tid}/{s}" for s in ("A", "B", "X")},
            }
        return {"rater_id": rater_id, **progress, "trial": trial}

    def current_rater(self) -> str:
        token = request.cookies.get(SESSION_COOKIE, "")
        rater = self.store.rater_for_token(token) if 0 < len(token) <= 128 else None
        if rater is None:  # the page asks how to register: open or by invitation
            error = "no rater session: register with POST /api/raters first"
            abort(
                make_response(jsonify(error=error, registration=self.registration), 401)
            )
        return rater

    def is_admin(self) -> bool:
        header = request.headers.get("Authorization", "")
        bearer = header[7:] if header.startswith("Bearer ") else ""
        cookie = request.cookies.get(ADMIN_COOKIE, "")
        return bool(
            bearer and hmac.compare_digest(bearer.encode(), self.admin_token.encode())
        ) or bool(
            cookie and hmac.compare_digest(cookie.encode(), self.admin_cookie.encode())
        )

    def with_cookie(self, resp: Response, name: str, value: str, **options) -> Response:
        """``resp``, setting an HttpOnly, SameSite=Strict cookie (and Secure
        with ``secure_cookies``)."""
        resp.set_cookie(
            name,
            value,
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookies,
            **options,
        )
        return resp

    def require_admin(self):
        if not self.is_admin():
            abort(403, "admin token required")

    def results_table(self):
        table = her_table(self.store.answered_cells())
        return merge_eer(table, self.metrics, self.eer_metric)

    # -- hooks -------------------------------------------------------------------
    def known_host(self):
        # no Host header (HTTP/1.0): no browser, so no rebinding
        host = request.environ.get("HTTP_HOST")
        if host is not None and not _named_host(host, self.allowed_hosts):
            abort(
                400,
                "this server does not answer to the host name of this request; "
                "the experimenter can allow it with serve --allowed-host",
            )

    # -- rater side --------------------------------------------------------------
    def index(self):
        return Response(RATER_HTML, mimetype="text/html")

    def app_js(self):
        return Response(APP_JS, mimetype="text/javascript")

    def app_css(self):
        return Response(APP_CSS, mimetype="text/css")

    def favicon(self):
        return Response(status=204)

    def healthz(self):
        return jsonify(
            ok=True,
            stimuli=len(self.registry),
            trials_per_rater=self.design.trials_per_rater,
        )

    def register(self):
        wait = self.limiter.take(_client_key(request.remote_addr))
        if wait:
            resp = jsonify(
                error=f"too many registrations from your address; try again in {wait} s"
            )
            resp.status_code = 429
            resp.headers["Retry-After"] = str(wait)
            return resp
        data = _json_body({"rater_id": str, "invite": str}, required=("rater_id",))
        rater_id = data["rater_id"].strip()
        if not _RATER_ID.fullmatch(rater_id):
            abort(
                400,
                "rater_id must be 1-64 letters, digits, dots, dashes or underscores",
            )
        invite = data.get("invite")
        if not self.open_registration and normalize_invite(invite or "") is None:
            abort(403, _INVITE_REQUIRED)
        token = request.cookies.get(SESSION_COOKIE, "")
        if token and self.store.rater_for_token(token) is not None:
            abort(409, "this browser is registered already; reload the page")
        try:
            token = self.store.create_rater(
                rater_id,
                self.design,
                max_raters=self.max_raters,
                require_invite=not self.open_registration,
                invite=invite,
            )
        except InvalidInvite:
            abort(403, _INVITE_REQUIRED)
        except TooManyRaters:
            abort(403, "this test takes no more raters")
        except RaterExists:
            # the id is not echoed; under invitations only a holder of a valid,
            # unused code gets this far
            abort(409, _ID_UNAVAILABLE)
        resp = make_response(jsonify(self.state_of(rater_id)), 201)
        return self.with_cookie(resp, SESSION_COOKIE, token, max_age=30 * 24 * 3600)

    def state(self):
        return jsonify(self.state_of(self.current_rater()))

    def answer(self):
        rater_id = self.current_rater()
        data = _json_body(
            {"trial_id": str, "answer": str, "response_ms": int},
            required=("trial_id", "answer"),
        )
        if not _TRIAL_ID.fullmatch(data["trial_id"]):
            abort(404, "unknown trial")
        if data["answer"] not in ("A", "B"):
            abort(400, "answer must be 'A' or 'B'")
        response_ms = data.get("response_ms")
        if response_ms is not None and not 0 <= response_ms <= 24 * 3600 * 1000:
            abort(400, "response_ms must lie between 0 and one day")
        try:
            self.store.answer(rater_id, data["trial_id"], data["answer"], response_ms)
        except UnknownTrial:
            abort(404, "unknown trial")
        except AlreadyAnswered:
            abort(409, "this trial has been answered already")
        except NotCurrentTrial:
            abort(409, "answer your current trial first (GET /api/state names it)")
        return jsonify(self.state_of(rater_id)), 201

    def audio(self, trial_id: str, slot: str):
        rater_id = self.current_rater()
        if slot not in ("A", "B", "X") or not _TRIAL_ID.fullmatch(trial_id):
            abort(404, "no such audio")
        try:
            path = self.store.trial_audio_path(rater_id, trial_id, slot)
        except UnknownTrial:
            abort(404, "no such audio")
        if not self.registry.is_registered(path):
            abort(410, "this audio is no longer part of the test")
        # only the bytes checked at start; in memory: no file name, ETag or
        # modification time reaches the rater
        try:
            payload = self.registry.read_audio(path)
        except (KeyError, AudioChanged) as err:
            log.warning("refused to serve stimulus: %s", err)
            abort(410, "this audio changed on the server; please tell the experimenter")
        mimetype = _AUDIO_TYPES.get(
            os.path.splitext(path)[1].lower(), "application/octet-stream"
        )
        resp, whole = _bytes_response(payload, mimetype)
        # heard only if all of it went out: not a HEAD, a probe range or a 416
        if request.method == "GET" and whole:
            self.store.mark_fetched(trial_id, slot)
        return resp

    # -- admin side --------------------------------------------------------------
    def admin_page(self, new_codes: list[str] | None = None) -> Response:
        answers = self.store.answered_cells()
        table = merge_eer(her_table(answers), self.metrics, self.eer_metric)
        page = admin_html(
            table,
            n_raters=len({a["rater_id"] for a in answers}),
            n_answers=len(answers),
            n_without_audio=sum(without_audio(a) for a in answers),
            invites=self.store.list_invites(),
            csrf=self.csrf_value,
            registration=self.registration,
            new_codes=new_codes,
            base_url=request.host_url,
        )
        return Response(page, mimetype="text/html")

    def admin(self):
        if "token" in request.args:
            # the only place a token in the URL counts: move it into a cookie
            # (which holds its hash) and out of the address bar and history
            given = request.args["token"]
            if not hmac.compare_digest(given.encode(), self.admin_token.encode()):
                abort(403, "admin token required")
            resp = redirect("/admin", code=303)
            return self.with_cookie(
                resp, ADMIN_COOKIE, self.admin_cookie, path="/admin"
            )
        self.require_admin()
        return self.admin_page()

    def admin_invites(self):
        self.require_admin()
        _require_same_origin()
        form = request.form
        csrf = form.get("csrf", "").encode()
        if not hmac.compare_digest(csrf, self.csrf_value.encode()):
            abort(403, "stale or forged form: reload the admin page")
        try:
            count, uses = int(form.get("count", "1")), int(form.get("uses", "1"))
        except ValueError:
            abort(400, "count and uses must be whole numbers")
        label = form.get("label", "").strip()
        if not 1 <= count <= 500 or not 1 <= uses <= 1000:
            abort(400, "create 1 to 500 codes of 1 to 1000 uses each")
        if len(label) > 64 or not label.isprintable():
            abort(400, "the label must be at most 64 printable characters")
        codes = self.store.create_invites(count, uses=uses, label=label)
        return self.admin_page(new_codes=codes)

    def admin_csv(self):
        self.require_admin()
        return Response(her_csv(self.results_table()), mimetype="text/csv")

    def admin_answers_csv(self):
        self.require_admin()
        return Response(answers_csv(self.store.answered_cells()), mimetype="text/csv")

    def admin_png(self):
        self.require_admin()
        table = self.results_table()
        if not table:
            abort(404, "no answers yet")
        with self.figure_lock:
            png = figure_png(table)
        return Response(png, mimetype="image/png")


def _require_same_origin():
    """Refuse a form posted from another site (besides SameSite and CSRF).

    Browsers that send ``Sec-Fetch-Site`` are judged by it; ``Origin`` is
    ``null`` on our own forms (``Referrer-Policy: no-referrer``), so only a
    real foreign origin is refused by that header.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        if site not in ("same-origin", "none"):
            abort(403, "cross-site request refused")
        return
    origin = request.headers.get("Origin")
    if origin not in (None, "null") and urlsplit(origin).netloc != request.host:
        abort(403, "cross-site request refused")


def _http_error(err: HTTPException):
    return jsonify(error=err.description or err.name), err.code


def _security_headers(resp: Response) -> Response:
    for name, value in SECURITY_HEADERS:
        resp.headers[name] = value
    if request.path.startswith(("/api/", "/audio/", "/admin")):
        resp.headers["Cache-Control"] = "no-store"
    return resp


def _bytes_response(payload: bytes, mimetype: str) -> tuple[Response, bool]:
    """``payload``, or the one byte range the request asks for (206; 416 when it
    cannot be satisfied), and whether the reply carries all of the payload.
    Several ranges, or an ``If-Range`` (there is no validator to match), get the
    whole payload (200), as RFC 9110 allows."""
    n = len(payload)
    ranges = request.range if "If-Range" not in request.headers else None
    if ranges is None or len(ranges.ranges) != 1 or ranges.units != "bytes":
        resp = Response(payload, mimetype=mimetype)
        start, stop = 0, n
    else:
        ((start, stop),) = ranges.ranges
        if start < 0:  # suffix: the last -start bytes
            start, stop = max(0, n + start), n
        stop = n if stop is None else min(stop, n)
        resp = Response(payload[start:stop], status=206, mimetype=mimetype)
        resp.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{n}"
    if start >= stop:
        resp = jsonify(error=f"the range lies outside the {n} bytes of this audio")
        resp.status_code = 416
        resp.headers["Content-Range"] = f"bytes */{n}"
    resp.headers["Accept-Ranges"] = "bytes"
    return resp, (start, stop) == (0, n) and resp.status_code != 416
