"""Operational endpoints: readiness (with the database) and liveness."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from app.api.fast_redirect import HEALTH_REPORT
from app.api.http import link_cache
from app.api.openapi import documented
from app.api.responses import HealthOut, LivezOut
from app.errors import DatabaseUnavailable, error_response
from app.services.health import health_report

bp = Blueprint("ops", __name__)

NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/health")
@documented({200: HealthOut}, auth="none", tags=("operations",))
def health() -> Response:
    """Readiness: 200 when the database answers SELECT 1, else 503.

    The check is shared by concurrent probes of a process; a success is reused for
    HEALTH_CHECK_INTERVAL_MS. Usually answered by the fast path (app/api/fast_redirect.py).
    """
    ok, fields = request.environ.get(HEALTH_REPORT) or health_report(
        current_app.extensions["database_check"], link_cache(), "link_events" in current_app.extensions
    )
    if not ok:
        down = DatabaseUnavailable()
        return error_response(down.status, down.code, down.message, {**NO_STORE, **down.headers()}, **fields)
    response = jsonify(fields)
    response.headers.update(NO_STORE)
    return response


@bp.get("/livez")
@documented({200: LivezOut}, auth="none", tags=("operations",))
def livez() -> Response:
    """Liveness: 200 while the process serves requests; never touches the database."""
    response = jsonify({"status": "ok"})
    response.headers.update(NO_STORE)
    return response
