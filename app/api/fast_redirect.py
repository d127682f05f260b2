"""The redirect hot path: GET/HEAD /<code> for a cached live link, answered before Flask.

A cached redirect through Flask spends most of its time in Flask itself (request context, URL
routing, hooks, response object); the rules take a few microseconds. This WSGI middleware answers
exactly the requests whose outcome the cache already knows: a live link, a client not blocked for
guessing codes. It calls the same service function (`services.links.resolve_cached`: expiry,
activity, click recording) and sends the same headers as the Flask route. Everything else (unknown
or uncached codes, gone links, every other path and method) goes to Flask unchanged. Its answers
carry an X-Request-ID, are counted in the metrics and logged like Flask's (app/api/metrics.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import perf_counter

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from app.api.headers import DEFAULT_HEADERS, security_headers
from app.api.limits import client_of
from app.api.metrics import STARTED
from app.api.redirect import cache_control_of, visit_of
from app.logs import request_id_from
from app.services.links import resolve_cached

STATUS_LINES = {status: f"{status} {HTTP_STATUS_CODES[status].upper()}" for status in (301, 302, 307, 308)}
EMPTY = (b"",)


class FastRedirect:
    """WSGI middleware in front of the Flask app (behind ProxyFix, so REMOTE_ADDR is the client)."""

    def __init__(self, wsgi_app: Callable, app: Flask) -> None:
        self.wsgi_app = wsgi_app
        self.extensions = app.extensions
        self.settings = app.extensions["settings"]
        fixed = {**security_headers(self.settings), **DEFAULT_HEADERS}
        fixed.pop("Cache-Control")  # per redirect, below
        self.fixed_headers = [*fixed.items(), ("Content-Length", "0")]
        self.observer = app.extensions["request_observer"]  # metrics and access log (app/api/metrics.py)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = perf_counter()
        method = environ["REQUEST_METHOD"]
        if method == "GET" or method == "HEAD":
            answered = self._answer(environ, start_response, method, started)
            if answered is not None:
                return answered
        environ[STARTED] = started  # Flask's request hooks time the request from here
        return self.wsgi_app(environ, start_response)

    def _answer(
        self, environ: dict, start_response: Callable, method: str, started: float
    ) -> Iterable[bytes] | None:
        extensions = self.extensions  # read per request: tests swap the cache and click buffer
        client = client_of(environ)  # the same key the rate limits use
        guard = extensions.get("code_guessing_guard")
        if guard is not None and guard.is_blocked(client):
            return None
        listener = extensions.get("link_events")
        if listener is not None:
            listener.ensure_started()
        target = resolve_cached(
            environ["PATH_INFO"][1:],
            self.settings,
            extensions["clicks"],
            extensions["link_cache"],
            visit=visit_of(environ),
        )
        if target is None:
            return None
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        start_response(
            STATUS_LINES[target.status],
            [
                ("Location", target.url),
                ("Cache-Control", cache_control_of(target)),
                ("X-Request-ID", request_id),
                *self.fixed_headers,
            ],
        )
        self.observer.fast_redirect(method, target.status, environ["PATH_INFO"], client, request_id, started)
        return EMPTY
