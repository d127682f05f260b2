"""The redirect itself: GET/HEAD /<code>. Registered last so named routes win."""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.datastructures import Headers
from werkzeug.routing import BaseConverter

from app.api.http import clicks, link_cache, settings
from app.api.limits import client_of
from app.api.openapi import documented
from app.services.codes import CODE_PATTERN
from app.services.links import Redirect, Visit, resolve_for_redirect

bp = Blueprint("redirect", __name__)


class RedirectResponse(Response):
    """A redirect whose headers go out as built.

    Werkzeug re-encodes `Location` as an IRI on every response (~40 µs, a fifth of a redirect);
    targets are stored already normalised to ASCII without whitespace or control characters
    (`services.urls.normalize_url`), so there is nothing to convert.
    """

    autocorrect_location_header = False
    default_mimetype = None  # an empty body has no type (the same headers as the fast path)

    def get_wsgi_headers(self, environ: dict) -> Headers:
        return self.headers


class CodeConverter(BaseConverter):
    """Matches only well-formed, non-reserved codes: anything else is a 404 (or 405) from the router,
    without a database query, and `/shorten` keeps its own 405."""

    regex = CODE_PATTERN


@bp.get("/<code:code>")
@documented(
    {301: None, 302: None, 307: None, 308: None},
    auth="none",
    errors=(404, 410),
    tags=("redirect",),
    headers={status: {"Location": "The target URL."} for status in (301, 302, 307, 308)},
)
def follow(code: str) -> Response:
    """Redirect to the link's target (302 unless the link or REDIRECT_STATUS says otherwise).

    404 for unknown codes, 410 for deactivated, expired, used-up or deleted links. HEAD is not a click.
    """
    target = resolve_for_redirect(code, settings(), clicks(), link_cache(), visit=visit_of(request.environ))
    return RedirectResponse(
        b"", status=target.status, headers={"Location": target.url, "Cache-Control": cache_control_of(target)}
    )


def visit_of(environ: dict) -> Visit | None:
    """The click a GET makes (HEAD is not a click); the client as the rate limits identify it."""
    if environ["REQUEST_METHOD"] != "GET":
        return None
    return Visit(environ.get("HTTP_USER_AGENT", ""), environ.get("HTTP_REFERER"), client_of(environ))


def cache_control_of(target: Redirect) -> str:
    """Permanent redirects may be cached for the age the service allows; others never."""
    return f"public, max-age={target.max_age}" if target.max_age else "no-store"
