"""Users (admins only)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.api.http import require_principal, user_json
from app.api.openapi import documented
from app.api.responses import UserOut
from app.api.schemas import CreateUserRequest, parse_json
from app.services import users

bp = Blueprint("users", __name__)


@bp.post("/users")
@documented({201: UserOut}, body=CreateUserRequest, auth="required", errors=(403, 409), tags=("users",))
def create() -> tuple[Response, int]:
    """Create a user; then issue their key with POST /keys {"user_id": ...}."""
    principal = require_principal()
    body = parse_json(request, CreateUserRequest)
    return jsonify(user_json(users.create_user(principal, body.name, body.role))), 201


@bp.get("/users")
@documented({200: [UserOut]}, auth="required", errors=(403,), tags=("users",))
def list_users() -> Response:
    """Every user."""
    return jsonify([user_json(user) for user in users.list_users(require_principal())])
