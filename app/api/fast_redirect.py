"""The hot paths, answered before Flask: cached redirects, unknown codes and readiness probes.

A cached redirect through Flask spends most of its time in Flask itself (request context, URL
routing, hooks, response object); the rules take a few microseconds. This WSGI middleware answers
the requests whose outcome is known without Flask, with the same service functions and the same
headers as the Flask routes:

- GET/HEAD /<code> for a live link the redirect cache holds (`services.links.resolve_cached`:
  expiry, activity, click recording);
- GET /<code> for a code no link has, as the known-codes filter proves it
  (`services.links.is_unknown_code`), from a client that does not ask for HTML (browsers get
  the HTML 404 page from Flask); the miss still counts against the code-guessing limit;
- GET /health while the shared database check says the database answers
  (`services.health.health_report`);
- POST /shorten and POST /urls from anonymous JSON clients (app/api/fast_create.py).

Everything else (uncached codes, gone links, blocked clients, a failing database, every other path
and method) goes to Flask unchanged. Its answers carry an X-Request-ID, are counted in the metrics
and logged like Flask's (app/api/metrics.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from time import perf_counter

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from app.api.fast_create import CREATE_PATHS, FastCreate, rendered_error
from app.api.headers import DEFAULT_HEADERS, security_headers
from app.api.limits import client_of
from app.api.metrics import FAST_ROUTE, STARTED
from app.api.redirect import cache_control_of, visit_of
from app.errors import LinkNotFound
from app.logs import request_id_from
from app.services.health import health_report
from app.services.links import is_unknown_code, resolve_cached

STATUS_LINES = {
    status: f"{status} {HTTP_STATUS_CODES[status].upper()}"
    for status in (200, 201, 301, 302, 307, 308, 404, 503)
}
HEALTH_PATH = "/health"
HEALTH_REPORT = "shortener.health_report"  # environ key: the report the fast path already made
JSON_HEADERS = [("Content-Type", "application/json")]


class FastRedirect:
    """WSGI middleware in front of the Flask app (behind ProxyFix, so REMOTE_ADDR is the client)."""

    def __init__(self, wsgi_app: Callable, app: Flask) -> None:
        self.wsgi_app = wsgi_app
        self.app = app
        self.extensions = app.extensions
        self.settings = app.extensions["settings"]
        fixed = {**security_headers(self.settings), **DEFAULT_HEADERS}
        self.no_store = fixed.pop("Cache-Control")  # set per answer, below
        self.fixed_headers = list(fixed.items())
        self.observer = app.extensions["request_observer"]  # metrics and access log (app/api/metrics.py)
        self.create = FastCreate(app, self._send)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = perf_counter()
        listener = self.extensions.get("link_events")
        if listener is not None:
            listener.ensure_started()  # this process's listener, whatever the request
        method = environ["REQUEST_METHOD"]
        if method == "GET" or method == "HEAD":
            if environ["PATH_INFO"] == HEALTH_PATH:
                answered = self._health(environ, start_response, method, started)
            else:
                answered = self._redirect(environ, start_response, method, started)
            if answered is not None:
                return answered
        elif method == "POST" and environ["PATH_INFO"] in CREATE_PATHS:
            answered = self.create(environ, start_response, started)
            if answered is not None:
                return answered
        environ[STARTED] = started  # Flask's request hooks time the request from here
        return self.wsgi_app(environ, start_response)

    def _redirect(
        self, environ: dict, start_response: Callable, method: str, started: float
    ) -> Iterable[bytes] | None:
        extensions = self.extensions  # read per request: tests swap the cache and click buffer
        client = client_of(environ)  # the same key the rate limits use
        guard = extensions.get("code_guessing_guard")
        if guard is not None and guard.is_blocked(client):
            return None
        listener = extensions.get("link_events")
        code = environ["PATH_INFO"][1:]
        target = resolve_cached(
            code, self.settings, extensions["clicks"], extensions["link_cache"], visit=visit_of(environ)
        )
        if target is not None:
            return self._send(
                environ,
                start_response,
                method,
                started,
                client,
                target.status,
                [
                    ("Location", target.url),
                    ("Cache-Control", cache_control_of(target)),
                    ("Content-Length", "0"),
                ],
                b"",
            )
        if (
            method == "GET"
            and listener is not None
            and not may_prefer_html(environ.get("HTTP_ACCEPT", ""))
            and is_unknown_code(code, listener)
        ):
            if guard is not None:
                guard.record_miss(client)
            body, headers = self.not_found
            return self._send(environ, start_response, method, started, client, 404, headers, body)
        return None

    def _health(
        self, environ: dict, start_response: Callable, method: str, started: float
    ) -> Iterable[bytes] | None:
        if method != "GET" or self.settings.cors_origins:
            return None  # HEAD, and every request once CORS is on (flask-cors adds headers), go to Flask
        extensions = self.extensions
        report = health_report(
            extensions["database_check"], extensions["link_cache"], "link_events" in extensions
        )
        extensions["recycle_connection"]()  # what Flask's teardown does after a request
        ok, fields = report
        if not ok:
            environ[HEALTH_REPORT] = report  # Flask renders the 503 from it, without checking again
            return None
        body = (json.dumps(fields, separators=(",", ":")) + "\n").encode()
        headers = [*JSON_HEADERS, ("Content-Length", str(len(body))), ("Cache-Control", self.no_store)]
        return self._send(
            environ, start_response, method, started, client_of(environ), 200, headers, body, HEALTH_PATH
        )

    def _send(
        self,
        environ: dict,
        start_response: Callable,
        method: str,
        started: float,
        client: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        route: str = FAST_ROUTE,
    ) -> list[bytes]:
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        start_response(STATUS_LINES[status], [*headers, ("X-Request-ID", request_id), *self.fixed_headers])
        self.observer.fast_answer(method, status, route, environ["PATH_INFO"], client, request_id, started)
        return [body]  # a list: granian sends it in one call, where it iterates anything else

    @functools.cached_property
    def not_found(self) -> tuple[bytes, list[tuple[str, str]]]:
        """The body and headers of the redirect route's 404, rendered once by the error handler."""
        body, headers = rendered_error(self.app, LinkNotFound())
        # Vary: Accept, as on Flask's answer: a browser asking for HTML gets the HTML page (app/web).
        return body, [*headers, ("Vary", "Accept")]


def may_prefer_html(accept: str) -> bool:
    """True unless `accept` certainly ranks application/json at least as high as text/html, as
    Flask decides (app/web/error_pages.py): no text/ or html type in it and no quality values (a
    `q=0` can rule JSON out). Anything else is left to Flask's full negotiation."""
    lowered = accept.lower()
    return "text/" in lowered or "html" in lowered or "q=" in lowered
