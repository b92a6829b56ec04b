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
"""

from __future__ import annotations

import waitress
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from .app import SECURITY_HEADERS

__all__ = ["create_server"]


class _SecureErrorTask(ErrorTask):
    """Waitress's error reply, with the security headers."""

    def execute(self):
        self.response_headers.extend(SECURITY_HEADERS)
        self.response_headers.append(("Cache-Control", "no-store"))
        super().execute()


class _SecureChannel(HTTPChannel):
    error_task_class = _SecureErrorTask


def create_server(app, **adjustments):
    """``waitress.create_server(app, **adjustments)`` whose own error replies
    carry the security headers.

    Example
    -------
    >>> from flask import Flask
    >>> server = create_server(Flask("x"), host="127.0.0.1", port=0)
    >>> server.channel_class.error_task_class.__name__
    '_SecureErrorTask'
    >>> server.close()
    """
    server = waitress.create_server(app, **adjustments)
    # one listening socket: the server itself; several: MultiSocketServer, whose
    # map holds one server per socket
    for candidate in [server, *getattr(server, "map", {}).values()]:
        if hasattr(candidate, "channel_class"):
            candidate.channel_class = _SecureChannel
    return server
