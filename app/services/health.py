"""Health checks: does the database answer a real query?"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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


class DatabaseCheck:
    """`database_status`, shared by the concurrent callers of one process.

    A success is reused for `interval` seconds (HEALTH_CHECK_INTERVAL_MS); a caller arriving while
    a check runs waits for it and takes its result, success or failure. However many probes come
    in, a process runs at most one `SELECT 1` per `interval` while the database answers, and one at
    a time while it does not; a failure is never reused beyond the callers that waited for it, so
    `/health` turns green with the first check after the database is back.
    """

    def __init__(
        self,
        interval: float,
        check: Callable[[], tuple[bool, float]] = database_status,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._check = check
        self._timer = timer
        self._lock = threading.Lock()
        self._last: tuple[tuple[bool, float], float] | None = None  # (result, when it was known)
        self.checks = 0  # real checks run, for tests

    def status(self) -> tuple[bool, float]:
        """Whether the database answers, and the latency of the check that says so (ms)."""
        arrived = self._timer()
        last = self._last
        if last is not None and last[0][0] and arrived - last[1] < self.interval:
            return last[0]
        with self._lock:
            last = self._last
            if last is not None and last[1] >= arrived:  # a check finished while this caller waited
                return last[0]
            result = self._check()
            self.checks += 1
            self._last = (result, self._timer())
            return result


def health_report(check: DatabaseCheck, cache: LinkCache, listening_enabled: bool) -> tuple[bool, dict]:
    """What GET /health answers: whether the service is ready, and the fields of its JSON body."""
    ok, latency_ms = check.status()
    state = "ok" if ok else "unavailable"
    return ok, {
        "status": state,
        "database": state,
        "database_latency_ms": latency_ms,
        "cache_notifications": cache_notifications(cache, listening_enabled),
    }
