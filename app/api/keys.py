"""API keys: issue, list and revoke."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.api.http import key_json, require_principal
from app.api.openapi import documented
from app.api.responses import KeyOut
from app.api.schemas import CreateKeyRequest, ListKeysQuery, parse_json, parse_query
from app.services import api_keys

bp = Blueprint("keys", __name__)


@bp.post("/keys")
@documented({201: KeyOut}, body=CreateKeyRequest, auth="required", errors=(403, 404), tags=("keys",))
def create() -> tuple[Response, int]:
    """Issue a key; the secret is in this response only."""
    principal = require_principal()
    body = parse_json(request, CreateKeyRequest)
    key, secret = api_keys.issue_key(principal, **body.model_dump())
    return jsonify(key_json(key, secret)), 201


@bp.get("/keys")
@documented({200: [KeyOut]}, query=ListKeysQuery, auth="required", errors=(403,), tags=("keys",))
def list_keys() -> Response:
    """The caller's keys (admins: all, or one user's with ?user_id=)."""
    query = parse_query(request, ListKeysQuery)
    return jsonify([key_json(key) for key in api_keys.list_keys(require_principal(), **query.model_dump())])


@bp.delete("/keys/<int(max=9223372036854775807):key_id>")
@documented({204: None}, auth="required", errors=(404,), tags=("keys",))
def revoke(key_id: int) -> tuple[str, int]:
    """Revoke a key; it stops working at once."""
    api_keys.revoke_key(require_principal(), key_id)
    return "", 204
