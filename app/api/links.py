"""Link resource: create and list short links."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

from app.api.http import link_json, own_netlocs, public_base, settings
from app.api.schemas import ListLinksQuery, ShortenRequest, parse_json, parse_query
from app.services import links

bp = Blueprint("links", __name__)


@bp.post("/shorten")
def shorten() -> tuple[Response, int]:
    """Shorten a URL: 201 with the new link once it is committed."""
    body = parse_json(request, ShortenRequest)
    link = links.create_link(body.url, settings(), own_netlocs=own_netlocs())
    response = jsonify(link_json(link, public_base()))
    response.headers["Location"] = f"{public_base()}/urls/{link.code}"
    return response, 201


@bp.get("/urls")
def list_urls() -> Response:
    """List links newest first; the next page is announced in the Link header."""
    query = parse_query(request, ListLinksQuery)
    page = links.list_links(query.limit, query.cursor)
    base = public_base()
    response = jsonify([link_json(link, base) for link in page.links])
    if page.next_cursor:
        params = urlencode({"limit": query.limit, "cursor": page.next_cursor})
        response.headers["Link"] = f'<{base}/urls?{params}>; rel="next"'
    return response
