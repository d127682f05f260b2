"""Operational endpoints: readiness (with the database) and liveness."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from app.api.http import link_cache
from app.api.openapi import documented
from app.api.responses import HealthOut, LivezOut
from app.errors import DatabaseUnavailable, error_response
from app.services.health import cache_notifications, database_status

bp = Blueprint("ops", __name__)

NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/health")
@documented({200: HealthOut}, auth="none", tags=("operations",))
def health() -> Response:
    """Readiness: 200 when the database answers SELECT 1, else 503."""
    ok, latency_ms = database_status()
    notifications = cache_notifications(link_cache(), "link_events" in current_app.extensions)
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
            cache_notifications=notifications,
        )
    response = jsonify(
        {
            "status": "ok",
            "database": "ok",
            "database_latency_ms": latency_ms,
            "cache_notifications": notifications,
        }
    )
    response.headers.update(NO_STORE)
    return response


@bp.get("/livez")
@documented({200: LivezOut}, auth="none", tags=("operations",))
def livez() -> Response:
    """Liveness: 200 while the process serves requests; never touches the database."""
    response = jsonify({"status": "ok"})
    response.headers.update(NO_STORE)
    return response
