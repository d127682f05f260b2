"""Click statistics, read from the hourly rollups and daily visitors (never from raw clicks)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from peewee import Field, ModelSelect, fn

from app.db import utcnow
from app.errors import Forbidden, InvalidInput
from app.models import ClickRollup, DailyVisitor, Link
from app.services.api_keys import Principal
from app.services.links import get_link

BUCKETS = ("hour", "day", "month")
DEFAULT_WINDOW = timedelta(days=30)
MAX_POINTS = 10_000
TOP = 10
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    """A half-open time window [start, end), aligned to whole hours (the rollup granularity)."""

    start: datetime
    end: datetime
    bucket: str


def window(
    start: datetime | None, end: datetime | None, bucket: str = "day", now: datetime | None = None
) -> Window:
    """Validate and align a stats window; defaults to the last 30 days."""
    if bucket not in BUCKETS:
        raise InvalidInput(f"bucket must be one of {', '.join(BUCKETS)}", field="bucket")
    end = _ceil_hour((end or now or utcnow()).astimezone(UTC))  # buckets are UTC hours, days, months
    start = _floor_hour(start.astimezone(UTC) if start else end - DEFAULT_WINDOW)
    if start >= end:
        raise InvalidInput("from must be before to", field="from")
    aligned = Window(start, end, bucket)
    if len(_bucket_starts(aligned)) > MAX_POINTS:
        raise InvalidInput(
            f"the window has more than {MAX_POINTS} {bucket}s; use a larger bucket", field="bucket"
        )
    return aligned


def link_stats(code: str, principal: Principal | None, span: Window) -> dict:
    """Totals, time series and top dimensions of one link (owned links: owner and admins only)."""
    return link_report(code, principal, span)[1]


def link_report(code: str, principal: Principal | None, span: Window) -> tuple[Link, dict]:
    """The link the caller may see, and its statistics over `span` (one lookup of the link)."""
    link = get_link(code, principal)
    return link, _stats_of(link, span)


def _stats_of(link: Link, span: Window) -> dict:
    rollups = _rollups(span).where(ClickRollup.link == link.id)
    visitors = _visitors(span).where(DailyVisitor.link == link.id)
    return {
        "short_code": link.code,
        **_span_json(span),
        "totals": _totals(rollups, visitors),
        "series": _series(rollups, span),
        "referrers": _top(rollups, ClickRollup.referrer_host, empty="(direct)"),
        "browsers": _top(rollups, ClickRollup.browser),
        "operating_systems": _top(rollups, ClickRollup.os),
        "devices": _top(rollups, ClickRollup.device),
    }


def site_stats(principal: Principal, span: Window, limit: int = TOP) -> dict:
    """Totals across every link and the most clicked links in the window (admins only)."""
    if not principal.is_admin:
        raise Forbidden("Only admins can see site-wide statistics.")
    rollups = _rollups(span)
    top = (
        rollups.select(Link.code, fn.SUM(ClickRollup.clicks))
        .join(Link, on=ClickRollup.link == Link.id)
        .where(ClickRollup.is_bot == False)  # noqa: E712 (SQL, not Python)
        .group_by(Link.code)
        .order_by(fn.SUM(ClickRollup.clicks).desc(), Link.code)
        .limit(limit)
        .tuples()
    )
    return {
        **_span_json(span),
        "totals": _totals(rollups, _visitors(span)),
        "top_links": [{"short_code": code, "human_clicks": int(clicks)} for code, clicks in top],
    }


def _rollups(span: Window) -> ModelSelect:
    return ClickRollup.select().where(ClickRollup.hour >= span.start, ClickRollup.hour < span.end)


def _visitors(span: Window) -> ModelSelect:
    last_day = (span.end - HOUR).date()
    return DailyVisitor.select().where(DailyVisitor.day >= span.start.date(), DailyVisitor.day <= last_day)


def _totals(rollups: ModelSelect, visitors: ModelSelect) -> dict:
    by_kind = dict(
        rollups.select(ClickRollup.is_bot, fn.SUM(ClickRollup.clicks)).group_by(ClickRollup.is_bot).tuples()
    )
    bots, humans = int(by_kind.get(True, 0) or 0), int(by_kind.get(False, 0) or 0)
    total = bots + humans
    return {
        "clicks": total,
        "human_clicks": humans,
        "bot_clicks": bots,
        "unique_visitors": visitors.count(),
        "bot_share": round(bots / total, 4) if total else 0.0,
    }


def _series(rollups: ModelSelect, span: Window) -> list[dict]:
    totals: Counter[datetime] = Counter()
    humans: Counter[datetime] = Counter()
    query = rollups.select(ClickRollup.hour, ClickRollup.is_bot, fn.SUM(ClickRollup.clicks)).group_by(
        ClickRollup.hour, ClickRollup.is_bot
    )
    for hour, bot, clicks in query.tuples():
        start = _bucket_start(ClickRollup.hour.python_value(hour), span.bucket)
        totals[start] += int(clicks)
        if not bot:
            humans[start] += int(clicks)
    return [
        {"start": start.isoformat(), "clicks": totals[start], "human_clicks": humans[start]}
        for start in _bucket_starts(span)
    ]


def _top(rollups: ModelSelect, dimension: Field, empty: str = "(unknown)") -> list[dict]:
    query = (
        rollups.select(dimension, fn.SUM(ClickRollup.clicks))
        .where(ClickRollup.is_bot == False)  # noqa: E712 (SQL, not Python)
        .group_by(dimension)
        .order_by(fn.SUM(ClickRollup.clicks).desc(), dimension)
        .limit(TOP)
    )
    return [{"name": name or empty, "clicks": int(clicks)} for name, clicks in query.tuples()]


def _span_json(span: Window) -> dict:
    return {"from": span.start.isoformat(), "to": span.end.isoformat(), "bucket": span.bucket}


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floored = _floor_hour(moment)
    return floored if floored == moment else floored + HOUR


def _bucket_start(moment: datetime, bucket: str) -> datetime:
    if bucket == "hour":
        return moment
    if bucket == "day":
        return moment.replace(hour=0)
    return moment.replace(day=1, hour=0)


def _bucket_starts(span: Window) -> list[datetime]:
    starts, current = [], _bucket_start(span.start, span.bucket)
    while current < span.end and len(starts) <= MAX_POINTS:
        starts.append(current)
        current = _next_bucket(current, span.bucket)
    return starts


def _next_bucket(start: datetime, bucket: str) -> datetime:
    if bucket == "hour":
        return start + HOUR
    if bucket == "day":
        return start + timedelta(days=1)
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
