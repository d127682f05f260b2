"""Link resource: create, list, read, edit and delete short links."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

from app.api.http import (
    current_principal,
    link_cache,
    link_json,
    own_netlocs,
    public_base,
    require_principal,
    settings,
)
from app.api.openapi import documented
from app.api.responses import LinkOut
from app.api.schemas import CreateLinkRequest, ListLinksQuery, UpdateLinkRequest, parse_json, parse_query
from app.services import links

bp = Blueprint("links", __name__)


@bp.post("/shorten")
@bp.post("/urls")
@documented(
    {201: LinkOut},
    body=CreateLinkRequest,
    errors=(409,),
    tags=("links",),
    headers={201: {"Location": "The link's API URL (/urls/<code>)."}},
)
def create() -> tuple[Response, int]:
    """Shorten a URL (optionally under a custom alias): 201 with the link once it is committed."""
    body = parse_json(request, CreateLinkRequest)
    link = links.create_link(
        links.NewLink(**body.model_dump()),
        settings(),
        principal=current_principal(),
        cache=link_cache(),
        own_netlocs=own_netlocs(),
    )
    response = jsonify(link_json(link, public_base()))
    response.headers["Location"] = f"{public_base()}/urls/{link.code}"
    return response, 201


@bp.get("/urls")
@documented(
    {200: [LinkOut]},
    query=ListLinksQuery,
    errors=(403,),
    tags=("links",),
    headers={200: {"Link": 'The next page: <url>; rel="next" (absent on the last page).'}},
)
def list_urls() -> Response:
    """List visible links newest first; the next page is announced in the Link header."""
    query = parse_query(request, ListLinksQuery)
    page = links.list_links(current_principal(), settings(), **query.model_dump())
    base = public_base()
    response = jsonify([link_json(link, base) for link in page.links])
    if page.next_cursor:
        params = query.model_dump(exclude_none=True) | {"cursor": page.next_cursor}
        response.headers["Link"] = f'<{base}/urls?{urlencode(params)}>; rel="next"'
    return response


@bp.get("/urls/<code>")
@documented({200: LinkOut}, errors=(404,), tags=("links",))
def read(code: str) -> Response:
    """One link with its state and click count."""
    return jsonify(link_json(links.get_link(code, current_principal()), public_base()))


@bp.patch("/urls/<code>")
@documented({200: LinkOut}, body=UpdateLinkRequest, auth="required", errors=(403, 404), tags=("links",))
def update(code: str) -> Response:
    """Change a link's target, title, expiry, click limit, redirect type or active flag."""
    principal = require_principal()
    changes = parse_json(request, UpdateLinkRequest).model_dump(exclude_unset=True)
    link = links.update_link(
        code, changes, settings(), principal, own_netlocs=own_netlocs(), cache=link_cache()
    )
    return jsonify(link_json(link, public_base()))


@bp.delete("/urls/<code>")
@documented({204: None}, auth="required", errors=(403, 404), tags=("links",))
def delete(code: str) -> tuple[str, int]:
    """Delete a link; its code is never handed out again."""
    links.delete_link(code, require_principal(), cache=link_cache())
    return "", 204
