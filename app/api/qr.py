"""QR codes of short links: GET /urls/<code>/qr as SVG (default) or PNG."""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.api.headers import STRICT_CSP
from app.api.http import current_principal, public_base
from app.api.openapi import documented
from app.api.schemas import QrQuery, parse_query
from app.services import qr

bp = Blueprint("qr", __name__)

# A code's short URL never changes, so its image may be kept for a day (the visibility check still
# runs on every request that reaches us).
MAX_AGE = 86400


@bp.get("/urls/<code>/qr")
@documented(
    {200: None},
    query=QrQuery,
    errors=(404,),
    tags=("links",),
    media={200: ("image/svg+xml", "image/png")},
)
def qr_code(code: str) -> Response:
    """The link's short URL as a QR code image: SVG by default, PNG with format=png."""
    query = parse_query(request, QrQuery)
    image = qr.link_qr(
        code, current_principal(), public_base(), kind=query.format, scale=query.scale, border=query.border
    )
    response = Response(image.body, mimetype=image.media_type)
    # Owned links only in the caller's own cache: a shared cache would show them to anyone.
    response.headers["Cache-Control"] = f"{'public' if image.public else 'private'}, max-age={MAX_AGE}"
    # An SVG opened directly is a document: it may not run scripts or load anything.
    response.headers["Content-Security-Policy"] = STRICT_CSP
    response.headers["Content-Disposition"] = f'inline; filename="{code}.{image.extension}"'
    return response
