"""The redirect itself: GET/HEAD /<code>. Registered last so named routes win."""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.routing import BaseConverter

from app.api.http import clicks, link_cache, settings
from app.services.codes import CODE_PATTERN
from app.services.links import resolve_for_redirect

bp = Blueprint("redirect", __name__)


class CodeConverter(BaseConverter):
    """Matches only well-formed, non-reserved codes: anything else is a 404 (or 405) from the router,
    without a database query, and `/shorten` keeps its own 405."""

    regex = CODE_PATTERN


@bp.get("/<code:code>")
def follow(code: str) -> Response:
    """Redirect to the link's target (302 unless the link or REDIRECT_STATUS says otherwise).

    404 for unknown codes, 410 for deactivated, expired, used-up or deleted links. HEAD is not a click.
    """
    counter = clicks()
    target = resolve_for_redirect(code, settings(), counter, link_cache())
    if request.method == "GET":
        counter.record(target.link_id)
    return Response(status=target.status, headers={"Location": target.url})
