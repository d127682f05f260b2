"""Health checks: does the database answer a real query?"""

from __future__ import annotations

import time

from app.db import UNAVAILABLE_ERRORS, db, release_after_failure
from app.services.link_cache import LinkCache


def database_status() -> tuple[bool, float]:
    """Run `SELECT 1`; return whether it worked and how long it took in milliseconds.

    Bounded by the connect timeout, the pool wait timeout and the statement timeout.
    """
    started = time.perf_counter()
    try:
        db.execute_sql("SELECT 1").fetchone()
        ok = True
    except UNAVAILABLE_ERRORS:
        release_after_failure()
        ok = False
    return ok, round((time.perf_counter() - started) * 1000, 2)


def cache_notifications(cache: LinkCache, listening_enabled: bool) -> str:
    """How this process learns about link changes: "listening" (PostgreSQL notifications arrive),
    "connecting" (the listener is not connected: the short cache TTL applies) or "off" (TTL only)."""
    if not listening_enabled:
        return "off"
    return "listening" if cache.notified else "connecting"
