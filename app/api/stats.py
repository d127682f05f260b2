"""Click statistics: per link and site-wide."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.api.http import current_principal, require_principal
from app.api.openapi import documented
from app.api.responses import LinkStatsOut, SiteStatsOut
from app.api.schemas import SiteStatsQuery, StatsQuery, parse_query
from app.services import stats

bp = Blueprint("stats", __name__)


@bp.get("/urls/<code>/stats")
@documented({200: LinkStatsOut}, query=StatsQuery, errors=(404,), tags=("stats",))
def link_stats(code: str) -> Response:
    """Totals, unique visitors, time series and top referrers/browsers/OS/devices of one link."""
    query = parse_query(request, StatsQuery)
    span = stats.window(query.start, query.end, query.bucket)
    return jsonify(stats.link_stats(code, current_principal(), span))


@bp.get("/stats")
@documented({200: SiteStatsOut}, query=SiteStatsQuery, auth="required", errors=(403,), tags=("stats",))
def site_stats() -> Response:
    """Site-wide totals and the most clicked links in a window (admins)."""
    principal = require_principal()
    query = parse_query(request, SiteStatsQuery)
    return jsonify(
        stats.site_stats(principal, stats.window(query.start, query.end, query.bucket), query.limit)
    )
