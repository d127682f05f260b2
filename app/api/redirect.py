"""The redirect itself: GET/HEAD /<code>. Registered last so named routes win."""

from __future__ import annotations

from flask import Blueprint, Response
from werkzeug.routing import BaseConverter

from app.api.http import settings
from app.services.codes import CODE_PATTERN
from app.services.links import resolve_target

bp = Blueprint("redirect", __name__)


class CodeConverter(BaseConverter):
    """Matches only well-formed, non-reserved codes: anything else is a 404 (or 405) from the router,
    without a database query, and `/shorten` keeps its own 405."""

    regex = CODE_PATTERN


@bp.get("/<code:code>")
def follow(code: str) -> Response:
    """Redirect to the link's target URL (302 by default); 404 JSON for unknown codes."""
    target = resolve_target(code)
    return Response(status=settings().default_redirect_status, headers={"Location": target})
