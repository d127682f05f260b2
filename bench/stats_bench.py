"""Time the stats of one link with N raw clicks (default 1,000,000) on PostgreSQL.

Loads the clicks by direct SQL (generate_series), derives the hourly rollups and daily visitors
the same way the recorder does, then times the stats service (the same code GET
/urls/<code>/stats runs) over several windows and buckets. Needs an empty, migrated database:

    psql -h 127.0.0.1 -U postgres -c 'create database shortener_stats'
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/shortener_stats uv run setup_db.py
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/shortener_stats uv run python bench/stats_bench.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import Settings
from app.db import db, make_database
from app.services import stats

LOAD_SQL = """
WITH new_link AS (
    INSERT INTO link (code, target_url, created_at, updated_at, is_active, click_count, human_click_count)
    VALUES (%(code)s, 'https://example.com/popular', now(), now(), true, %(n)s, %(n)s) RETURNING id
)
INSERT INTO click (link_id, clicked_at, referrer_host, browser, os, device, is_bot, visitor_hash)
SELECT (SELECT id FROM new_link),
       %(end)s::timestamptz - (i * interval '1 second' * %(spread)s / %(n)s),
       (ARRAY['', 'news.example.com', 'social.example', 'mail.example.org', 't.co'])[1 + i %% 5],
       (ARRAY['Chrome', 'Mobile Safari', 'Firefox', 'Edge', 'Samsung Internet', 'Googlebot'])[1 + i %% 6],
       (ARRAY['Windows', 'iOS', 'Android', 'Mac OS X', 'Linux'])[1 + i %% 5],
       (ARRAY['desktop', 'mobile', 'mobile', 'desktop', 'tablet'])[1 + i %% 5],
       i %% 6 = 5,
       md5((i %% %(visitors)s)::text || ':' || (i / 86400))::char(32)
FROM generate_series(1, %(n)s) AS i
"""

DERIVE_SQL = [
    """INSERT INTO click_rollup (link_id, hour, referrer_host, browser, os, device, is_bot, clicks)
       SELECT link_id, date_trunc('hour', clicked_at), referrer_host, browser, os, device, is_bot, count(*)
       FROM click WHERE link_id = (SELECT id FROM link WHERE code = %(code)s)
       GROUP BY 1, 2, 3, 4, 5, 6, 7""",
    """INSERT INTO daily_visitor (link_id, day, visitor_hash)
       SELECT DISTINCT link_id, (clicked_at AT TIME ZONE 'UTC')::date, visitor_hash
       FROM click WHERE link_id = (SELECT id FROM link WHERE code = %(code)s)""",
    "ANALYZE",
]


def load(code: str, clicks: int, end: datetime, days: int, visitors: int) -> float:
    started = time.perf_counter()
    db.execute_sql("SET statement_timeout = 0")  # loading is slow; the stats below run with the default
    params = {"code": code, "n": clicks, "end": end, "spread": days * 86400, "visitors": visitors}
    with db.atomic():
        db.execute_sql(LOAD_SQL, params)
        for sql in DERIVE_SQL[:2]:
            db.execute_sql(sql, params)
    db.execute_sql(DERIVE_SQL[2])
    db.execute_sql("RESET statement_timeout")
    return time.perf_counter() - started


def timed(code: str, span: stats.Window, runs: int) -> tuple[float, float, dict]:
    samples, body = [], {}
    for _ in range(runs):
        started = time.perf_counter()
        body = stats.link_stats(code, None, span)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples), body


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30, help="the clicks are spread over this many days")
    parser.add_argument("--visitors", type=int, default=50_000, help="distinct visitors per day")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    settings = Settings.from_env()
    if not settings.is_postgres:
        sys.exit("stats_bench needs PostgreSQL: set DATABASE_URL")
    db.initialize(make_database(settings))
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    code = f"stats{int(time.time())}"
    with db.connection_context():
        seconds = load(code, args.clicks, end, args.days, args.visitors)
        rollups = db.execute_sql("SELECT count(*) FROM click_rollup").fetchone()[0]
        visitor_rows = db.execute_sql("SELECT count(*) FROM daily_visitor").fetchone()[0]
        print(
            f"loaded {args.clicks:,} clicks over {args.days} days in {seconds:.1f} s "
            f"({rollups:,} rollup rows, {visitor_rows:,} daily-visitor rows)"
        )
        print("| window | bucket | median ms | max ms | clicks in window |")
        print("|---|---|---:|---:|---:|")
        for label, start, bucket in [
            (f"last {args.days} days", end - timedelta(days=args.days), "day"),
            (f"last {args.days} days", end - timedelta(days=args.days), "hour"),
            ("last 7 days", end - timedelta(days=7), "day"),
            ("last 24 hours", end - timedelta(days=1), "hour"),
        ]:
            median, worst, body = timed(code, stats.window(start, end, bucket), args.runs)
            print(f"| {label} | {bucket} | {median:.1f} | {worst:.1f} | {body['totals']['clicks']:,} |")


if __name__ == "__main__":
    main()
