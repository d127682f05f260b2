"""Operational endpoints: readiness (with the database) and liveness."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.errors import DatabaseUnavailable, error_response
from app.services.health import database_status

bp = Blueprint("ops", __name__)

NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/health")
def health() -> Response:
    """Readiness: 200 when the database answers SELECT 1, else 503."""
    ok, latency_ms = database_status()
    if not ok:
        down = DatabaseUnavailable()
        return error_response(
            down.status,
            down.code,
            down.message,
            {**NO_STORE, **down.headers()},
            status="unavailable",
            database="unavailable",
            database_latency_ms=latency_ms,
        )
    response = jsonify({"status": "ok", "database": "ok", "database_latency_ms": latency_ms})
    response.headers.update(NO_STORE)
    return response


@bp.get("/livez")
def livez() -> Response:
    """Liveness: 200 while the process serves requests; never touches the database."""
    response = jsonify({"status": "ok"})
    response.headers.update(NO_STORE)
    return response
