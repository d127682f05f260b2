"""POST /shorten (and POST /urls) answered before Flask, for the common case: an anonymous JSON create.

Through Flask, a create spends about half of its Python time in Flask's request machinery (request
context, routing, hooks, response object) rather than in the rules. This path runs the same steps as
the route (app/api/links.py) on the WSGI environ: the same body parser and schema, the same service
(`links.create_link`), the same serialisation and headers, the same metrics and access log.

It answers the 201, and the 503 of a database error during the insert (the commit may have
happened: the create is never run twice). Anything else is handed to Flask with the body put back,
before anything is stored: an API key sent, a body that is not `application/json` with a
Content-Length within the limit, an invalid Host, CORS configured, anonymous shortening disabled,
rate limits on (flask-limiter counts atomically before the view), and the errors the service raises
before its insert (invalid input) or instead of it (alias taken): the route runs the request again
and renders them.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable

from flask import Flask
from werkzeug.exceptions import SecurityError
from werkzeug.urls import iri_to_uri
from werkzeug.wsgi import get_content_length, get_host

from app.api.headers import DEFAULT_HEADERS
from app.api.http import addresses_of, link_json
from app.api.limits import client_of
from app.api.schemas import CreateLinkRequest, parse_json_body
from app.db import UNAVAILABLE_ERRORS, release_after_failure
from app.errors import AppError, DatabaseUnavailable, InvalidHost, render
from app.services import links

CREATE_PATHS = ("/shorten", "/urls")  # the create route's rules, which are also its metrics labels
JSON = "application/json"
NO_STORE = DEFAULT_HEADERS["Cache-Control"]
Send = Callable[..., list[bytes]]


@functools.lru_cache(maxsize=256)
def _uri_of(base: str) -> str:
    """`base` as werkzeug writes a Location (`iri_to_uri`); a code only holds URL-safe characters
    (services.codes.CODE_CHARS), so base + path + code needs no more quoting."""
    return iri_to_uri(base)


class FastCreate:
    """Creates links for anonymous JSON requests before Flask; None means: let Flask answer."""

    def __init__(self, app: Flask, send: Send) -> None:
        self.app = app
        self.extensions = app.extensions
        settings = app.extensions["settings"]
        self.settings = settings
        # Requests this path never takes, whatever they carry: Flask adds the CORS headers, and
        # refuses anonymous creates with a 401 that the failed-authentication limit counts.
        # Rate limits: flask-limiter counts a request atomically before the view; counting here
        # after the insert would let concurrent creates overshoot a limit, so with limits on every
        # create goes through the route.
        self.enabled = (
            not settings.cors_origins and settings.anonymous_shorten and not settings.ratelimit_enabled
        )
        self.max_bytes = settings.max_request_bytes
        self.send = send  # FastRedirect._send: status line, request id, fixed headers, metrics, log
        self.json_type = app.response_class(mimetype=app.json.mimetype).content_type

    @functools.cached_property
    def unavailable(self) -> tuple[bytes, list[tuple[str, str]]]:
        """The body and headers of the route's 503 when the database fails, rendered once."""
        return rendered_error(self.app, DatabaseUnavailable())

    def json_body(self, value: object) -> bytes:
        """`value` as `jsonify` renders it (compact unless the app is in debug mode, a newline at the
        end), without building a response object."""
        provider = self.app.json
        if provider.compact is False or (provider.compact is None and self.app.debug):
            return f"{provider.dumps(value, indent=2)}\n".encode()
        return f"{provider.dumps(value, separators=(',', ':'))}\n".encode()

    def __call__(self, environ: dict, start_response: Callable, started: float) -> Iterable[bytes] | None:
        if not self.enabled or "HTTP_AUTHORIZATION" in environ or environ.get("HTTP_X_API_KEY", "").strip():
            return None  # a key sent (even a malformed one) is authenticated by Flask
        data = self._json_body(environ)
        if data is None:
            return None
        addresses = self._addresses(environ)
        if addresses is None:
            return None
        client = client_of(environ)
        route = environ["PATH_INFO"]
        try:
            request = parse_json_body(data, CreateLinkRequest)
            link = links.create_link(
                links.NewLink(**request.model_dump()),
                self.settings,
                cache=self.extensions["link_cache"],
                own_netlocs=addresses[1],
            )
        except UNAVAILABLE_ERRORS:
            # The commit's answer may be what was lost: never run the create again, answer the 503.
            release_after_failure()
            body, headers = self.unavailable
            return self.send(environ, start_response, "POST", started, client, 503, headers, body, route)
        except Exception:  # invalid input, alias taken: raised before anything was stored
            return None  # the route runs the request and renders the error
        finally:
            self.extensions["recycle_connection"]()  # what Flask's teardown does after a request
        base = addresses[0]
        body_bytes = self.json_body(link_json(link, base))
        headers = [
            ("Content-Type", self.json_type),
            ("Content-Length", str(len(body_bytes))),
            ("Location", f"{_uri_of(base)}/urls/{link.code}"),  # as werkzeug sends it
            ("Cache-Control", NO_STORE),
        ]
        return self.send(environ, start_response, "POST", started, client, 201, headers, body_bytes, route)

    def _json_body(self, environ: dict) -> bytes | None:
        """The body of a JSON request with a Content-Length within the limit, read in full; None for
        any other (Flask reports it). The stream is replaced by the bytes read, for Flask."""
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if mimetype != JSON or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        length = get_content_length(environ)  # werkzeug's reading of the header
        if length is None or not 0 < length <= self.max_bytes:
            return None
        data = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(data)
        return data if len(data) == length else None

    def _addresses(self, environ: dict) -> tuple[str, frozenset[str]] | None:
        """The request's public base and own addresses, as `http.public_base`/`own_netlocs` give
        them; None when Flask must answer (an invalid or untrusted Host)."""
        try:
            host = get_host(environ, self.app.config["TRUSTED_HOSTS"])
            return addresses_of(self.settings.base_url, environ["wsgi.url_scheme"], host)
        except (SecurityError, InvalidHost):
            return None


def rendered_error(app: Flask, error: AppError) -> tuple[bytes, list[tuple[str, str]]]:
    """The body and headers of `error` as Flask's error handler renders it, with the Content-Length
    and Cache-Control of a fast-path answer (`send` adds the rest)."""
    with app.app_context():
        response = render(error)
    body = response.get_data()
    headers = [(name, value) for name, value in response.headers.items() if name != "Content-Length"]
    return body, [*headers, ("Content-Length", str(len(body))), ("Cache-Control", NO_STORE)]
