"""Health checks: does the database answer a real query?"""

from __future__ import annotations

import time

from app.db import UNAVAILABLE_ERRORS, db, release_after_failure


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
