"""Time `import` of a generated CSV (default 100,000 rows) on PostgreSQL, then its idempotent re-run.

Re-creates a dedicated database (default `shortener_import_bench`: it is DROPPED first), migrates it,
writes the CSV into a temporary directory and runs the real `import` command (CSV reading, row
validation, batched inserts; the progress bar goes to stderr). Prints rows/s for both runs.

    uv run python bench/import_bench.py [--rows 100000] [--batch-size 1000]
        [--database-url postgresql://postgres@127.0.0.1:5432/shortener_import_bench]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from click.testing import CliRunner
from flask.cli import ScriptInfo

from app import create_app, migrate
from app.cli import main
from app.config import Settings
from app.db import db
from app.models import Link

HEADER = ["url", "alias", "title", "expires_at", "max_clicks", "redirect_type"]


def recreate(url: str) -> None:
    """Drop and create the benchmark database."""
    parts = urlsplit(url)
    admin = psycopg2.connect(urlunsplit(("postgresql", parts.netloc, "/postgres", "", "")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        name = parts.path.lstrip("/")
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def row(i: int) -> list[str]:
    """A realistic mix: 1 in 10 with an alias, 1 in 4 titled, some expiring or limited, 1 in 200 bad."""
    if i % 200 == 199:
        return ["not a url", "", "", "", "", ""]
    return [
        f"https://example.com/articles/{i}?utm_source=import&ref={i % 97}",
        f"bench-{i}" if i % 10 == 0 else "",
        f"Article {i}" if i % 4 == 0 else "",
        "2099-01-01T00:00:00Z" if i % 7 == 0 else "",
        "1000" if i % 11 == 0 else "",
        "301" if i % 13 == 0 else "",
    ]


def write_csv(path: Path, rows: int) -> None:
    """Write the benchmark CSV."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(row(i) for i in range(rows))


def timed_import(app: object, path: Path, batch_size: int) -> tuple[float, str]:
    """Run the import command once; return the seconds it took and its output."""
    started = time.perf_counter()
    result = CliRunner().invoke(
        main, ["import", str(path), "--batch-size", str(batch_size)], obj=ScriptInfo(create_app=lambda: app)
    )
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"import failed: {result.output}\n{result.exception!r}")
    return seconds, result.output


def main_bench() -> None:
    """Generate, import twice, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/shortener_import_bench"
    )
    args = parser.parse_args()
    recreate(args.database_url)
    app = create_app(Settings(database_url=args.database_url, click_flush_interval=0))
    migrate.upgrade(db.obj)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "links.csv"
        write_csv(path, args.rows)
        print(f"{args.rows:,} rows, {path.stat().st_size / 1e6:.1f} MB CSV, batch {args.batch_size}")
        for label in ("first import", "re-run (all present)"):
            seconds, _output = timed_import(app, path, args.batch_size)
            print(f"{label:>22}: {seconds:6.2f} s  {args.rows / seconds:>9,.0f} rows/s")
    print(f"links in the database: {Link.select().count():,}")
    db.close()


if __name__ == "__main__":
    main_bench()
