"""The waitress server of the listening test.

Waitress answers some requests itself, without calling the app: a malformed
request line or header (400), a body over ``max_request_body_size`` (413),
headers over ``max_request_header_size`` (431), and an app that raised (500).
Wrapping the WSGI app cannot touch those replies; waitress builds them in its
``ErrorTask``, which its channel class names. :func:`create_server` gives the
server a channel whose error task adds the app's security headers
(:data:`app.SECURITY_HEADERS`) and ``Cache-Control: no-store`` first. This uses
waitress's ``HTTPChannel.error_task_class`` and ``channel_class`` attributes
(stable since waitress 1.0; tested against the installed version by
``tests/test_listening_load.py``).

Open connections. Waitress's default event loop is ``select()``, which fails
("filedescriptor out of range") once a descriptor reaches 1024: about 1,000 idle
connections after the worker threads have opened their databases end the
server. :func:`create_server` uses ``poll()``. Each connection is a descriptor,
and a server at its open-file limit spins on ``accept()`` failing with EMFILE:
:func:`reserve_descriptors` raises the soft ``RLIMIT_NOFILE`` as far as the
connections and the worker threads need and sizes the connection limit below it,
so that waitress stops accepting before the process runs out of descriptors.
Where Python has no ``resource`` module (Windows) that step is skipped, with a
warning, and ``select()`` is used where there is no ``poll()``.
:func:`quiet_waitress_log` makes waitress log one line per event, without
tracebacks, and at most once per 10 s for a repeated message.

Behind a reverse proxy, waitress itself must take the client's address, scheme
and host from the proxy's ``X-Forwarded-*`` headers (:func:`proxy_adjustments`):
it removes those headers before the app sees them unless their sender is trusted.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import select
import sys
import threading
import time

import waitress
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from .app import SECURITY_HEADERS, log

__all__ = [
    "DEFAULT_CONNECTION_LIMIT",
    "DeferredApp",
    "close_server",
    "create_server",
    "descriptors_needed",
    "proxy_adjustments",
    "quiet_waitress_log",
    "raise_open_files_limit",
    "reserve_descriptors",
]

#: ``--connection-limit`` by default, where the open-file limit allows it:
#: browsers keep several idle keep-alive connections each.
DEFAULT_CONNECTION_LIMIT = 4000
#: Descriptors kept free besides the connections: standard streams, the
#: listening sockets, waitress's trigger pipe, the main thread's database.
RESERVED_DESCRIPTORS = 64
#: Descriptors of one worker thread: two SQLite connections (database and WAL
#: each, the shared-memory file), a stimulus being read, a temporary file.
DESCRIPTORS_PER_THREAD = 8
#: The ``X-Forwarded-*`` headers a trusted proxy sets (RFC 7239 ``Forwarded``
#: is not used).
PROXY_HEADERS = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})


class _SecureErrorTask(ErrorTask):
    """Waitress's error reply, with the security headers."""

    def execute(self):
        self.response_headers.extend(SECURITY_HEADERS)
        self.response_headers.append(("Cache-Control", "no-store"))
        super().execute()


class _SecureChannel(HTTPChannel):
    error_task_class = _SecureErrorTask


class DeferredApp:
    """A WSGI app that passes every request to :attr:`app`, set later.

    ``serve`` binds its port before it creates the database, so that a port in
    use leaves no database behind; the Flask app needs the database. The server
    is created with this placeholder, and :attr:`app` is set before it runs.

    Example
    -------
    >>> deferred = DeferredApp()
    >>> deferred.app = lambda environ, start_response: [b"ok"]
    >>> deferred({}, None)
    [b'ok']
    """

    def __init__(self):
        self.app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def create_server(app, **adjustments):
    """``waitress.create_server(app, **adjustments)`` on a ``poll()`` loop (unless
    ``asyncore_use_poll=False`` is given), whose own error replies carry the
    security headers.

    Example
    -------
    >>> from flask import Flask
    >>> server = create_server(Flask("x"), host="127.0.0.1", port=0)
    >>> server.channel_class.error_task_class.__name__, server.adj.asyncore_use_poll
    ('_SecureErrorTask', True)
    >>> close_server(server)
    """
    adjustments.setdefault("asyncore_use_poll", hasattr(select, "poll"))
    server = waitress.create_server(app, **adjustments)
    # one listening socket: the server itself; several: MultiSocketServer, whose
    # map holds one server per socket
    for candidate in [server, *getattr(server, "map", {}).values()]:
        if hasattr(candidate, "channel_class"):
            candidate.channel_class = _SecureChannel
    return server


def close_server(server) -> None:
    """Stop the worker threads of a server of :func:`create_server` and close its
    sockets (for a server that will not run).

    Example
    -------
    >>> from flask import Flask
    >>> server = create_server(Flask("x"), host="127.0.0.1", port=0)
    >>> close_server(server)
    >>> server.task_dispatcher.threads, server.socket is None
    (set(), True)
    """
    server.task_dispatcher.shutdown()
    wasyncore.close_all(getattr(server, "map", None) or server._map)


def descriptors_needed(connection_limit: int, threads: int) -> int:
    """Open files a server with these settings may need at once.

    Example
    -------
    >>> descriptors_needed(1000, 16)
    1192
    """
    return connection_limit + RESERVED_DESCRIPTORS + DESCRIPTORS_PER_THREAD * threads


def _resource():
    """The POSIX ``resource`` module, or None where Python has none (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    return resource


def raise_open_files_limit(needed: int) -> None:
    """Raise this process's soft limit of open files (``RLIMIT_NOFILE``) to
    ``needed`` unless it is that high already; :class:`ValueError` when the hard
    limit (or the system) does not allow it. Without the ``resource`` module
    (Windows), log a warning and leave the limit alone.

    Example
    -------
    >>> raise_open_files_limit(64)
    """
    resource = _resource()
    if resource is None:
        log.warning(
            "no resource module here (Windows?): the limit of open files is left "
            "as it is; %d connections and threads may need more",
            needed,
        )
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    except (ValueError, OSError) as err:  # above the hard limit, or macOS's OPEN_MAX
        raise ValueError(
            f"cannot raise the limit of open files from {soft} to {needed} "
            f"(hard limit {hard}): {err}"
        ) from None


def reserve_descriptors(threads: int, connection_limit: int | None = None) -> int:
    """Raise this process's soft limit of open files as far as a server with
    ``threads`` worker threads and ``connection_limit`` connections needs
    (:func:`raise_open_files_limit`, never above the hard limit); return the
    connection limit.

    ``connection_limit`` None: :data:`DEFAULT_CONNECTION_LIMIT`, or fewer where
    the hard limit leaves less room. Raises :class:`ValueError`, naming the
    settings and what to change, when the limit cannot be met.

    Example
    -------
    >>> reserve_descriptors(threads=4, connection_limit=100)
    100
    """
    resource, most = _resource(), sys.maxsize
    if resource is not None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        most = most if hard == resource.RLIM_INFINITY else hard
    room = most - descriptors_needed(0, threads)
    limit = (
        min(DEFAULT_CONNECTION_LIMIT, room)
        if connection_limit is None
        else connection_limit
    )
    if limit < 1 or limit > room:
        raise ValueError(_no_room(threads, connection_limit, most, room))
    try:
        raise_open_files_limit(descriptors_needed(limit, threads))
    except ValueError as err:
        raise ValueError(
            f"{err}; lower --connection-limit ({limit}) or --threads ({threads})"
        ) from None
    return limit


def _no_room(threads: int, connection_limit: int | None, most: int, room: int) -> str:
    """Why ``connection_limit`` connections (None: any) do not fit in ``most``
    open files."""
    if connection_limit is None or room < 1:
        return (
            f"--threads {threads} leaves no room for connections within this "
            f"process's limit of {most} open files (ulimit -Hn); lower --threads "
            "or raise the hard limit"
        )
    return (
        f"--connection-limit {connection_limit} with --threads {threads} needs "
        f"{descriptors_needed(connection_limit, threads)} open files, and this "
        f"process may open {most} (ulimit -Hn); give --connection-limit {room} or "
        "less, or raise the hard limit"
    )


def proxy_adjustments(proxy: str | None) -> dict:
    """Waitress settings that trust the ``X-Forwarded-For/-Proto/-Host`` headers
    of one reverse proxy at address ``proxy`` (None: trust none).

    Waitress then puts the client's address, scheme and host into the request
    (``REMOTE_ADDR``, ``wsgi.url_scheme``, ``HTTP_HOST``) for requests from that
    address, and strips the headers from any other sender.

    Example
    -------
    >>> proxy_adjustments("127.0.0.1")["trusted_proxy"], proxy_adjustments(None)
    ('127.0.0.1', {})
    """
    if proxy is None:
        return {}
    return {
        # as waitress writes the peer's address: "::1", not "0:0:0:0:0:0:0:1"
        "trusted_proxy": str(ipaddress.ip_address(proxy)),
        "trusted_proxy_count": 1,
        "trusted_proxy_headers": set(PROXY_HEADERS),
    }


class _OneLine(logging.Formatter):
    """A record on one line: an exception as its type and message, no traceback."""

    def format(self, record: logging.LogRecord) -> str:
        when, message = self.formatTime(record), record.getMessage()
        text = f"{when} {record.name} {record.levelname}: {message}"
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            text += f" ({type(error).__name__}: {error})"
        return text.replace("\n", " ")


class _Throttle(logging.Filter):
    """Let a message through at most once per ``interval_s``; the next one that
    passes says how many were held back."""

    def __init__(self, interval_s: float = 10.0, clock=time.monotonic):
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        self._seen: dict[tuple, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = (record.name, record.msg), self.clock()
        with self._lock:
            last, held = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.interval_s:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} [and {held} more like it]"
        return True


@contextlib.contextmanager
def quiet_waitress_log(stream=None):
    """While inside, log waitress's warnings to ``stream`` (stderr) one line
    each, without tracebacks, a repeated message at most once per 10 s.

    Example
    -------
    >>> import io
    >>> out = io.StringIO()
    >>> with quiet_waitress_log(out):
    ...     for _ in range(3):
    ...         try:
    ...             raise OSError(24, "Too many open files")
    ...         except OSError:
    ...             logging.getLogger("waitress").warning("accept failed", exc_info=True)
    >>> [line.split(": ", 1)[1] for line in out.getvalue().splitlines()]
    ['accept failed (OSError: [Errno 24] Too many open files)']
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_OneLine())
    handler.addFilter(_Throttle())
    logger = logging.getLogger("waitress")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
