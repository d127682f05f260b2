"""The database handle, bound late by the app factory, and the per-request connection hooks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, g
from peewee import (
    Database,
    DatabaseProxy,
    DateTimeField,
    InterfaceError,
    Model,
    OperationalError,
    SqliteDatabase,
)
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase

from app.config import POSTGRES_SCHEMES, Settings

db = DatabaseProxy()

# Failures that mean "the database cannot serve us right now" rather than a bug.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, MaxConnectionsExceeded)


class PooledPostgres(PooledPostgresqlDatabase):
    """A pool whose check-out costs no round trip.

    Peewee's pool sends `SELECT 1` on every check-out to detect dead connections; that doubles
    the round trips of a redirect. We trust the driver's local `closed` flag instead: a connection
    that died in use is discarded on check-in (its transaction status is unknown), and
    `discard_idle_connections()` drops the rest of the pool after a connection failure.
    """

    def _is_closed(self, conn: Any) -> bool:
        return bool(conn.closed)


class BaseModel(Model):
    """Base for every model: bound to the late-initialised proxy, snake_case table names."""

    class Meta:
        database = db
        legacy_table_names = False


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTimeField(DateTimeField):
    """An aware-UTC timestamp: TIMESTAMPTZ on PostgreSQL, fixed-width ISO text on SQLite."""

    field_type = "TIMESTAMPTZ"

    def db_value(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware datetime")
        return value.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")

    def python_value(self, value: datetime | str | None) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def make_database(settings: Settings) -> Database:
    """Build (without connecting) the database the settings describe."""
    parsed = urlsplit(settings.database_url)
    params = parse_db_url(settings.database_url, unquote_password=True, unquote_user=True)
    if parsed.scheme in POSTGRES_SCHEMES:
        params.setdefault("connect_timeout", settings.db_connect_timeout)
        params.setdefault("options", f"-c statement_timeout={settings.db_statement_timeout_ms}")
        # Fail a send to a vanished server within the connect timeout instead of TCP's minutes.
        params.setdefault("tcp_user_timeout", settings.db_connect_timeout * 1000)
        params.setdefault("application_name", "shortener")
        return PooledPostgres(
            max_connections=settings.db_pool_size,
            timeout=settings.db_pool_timeout,
            stale_timeout=settings.db_stale_timeout,
            **params,
        )
    path = params.pop("database")
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pragmas = {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": settings.db_pool_timeout * 1000}
    return SqliteDatabase(path, pragmas=pragmas, timeout=settings.db_pool_timeout, **params)


@contextmanager
def connected(database: Database | DatabaseProxy = db) -> Iterator[None]:
    """Use this thread's open connection if there is one; otherwise open one and close it after."""
    opened = database.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened:
            database.close()


def discard_idle_connections() -> None:
    """Drop pooled idle connections: after one failed, the others are likely dead too."""
    closer = getattr(db.obj, "close_idle", None)
    if closer is not None:
        closer()


def init_app(app: Flask, database: Database) -> None:
    """Bind the proxy and open/close a connection around each request that uses one."""
    db.initialize(database)

    @app.before_request
    def _remember_connection_state() -> None:
        # Peewee connects lazily on first query; we only close what this request opened, which
        # leaves a test's outer transaction (and its connection) alone.
        g.db_was_open = not db.is_closed()

    @app.teardown_request
    def _release_connection(_exc: BaseException | None) -> None:
        if not g.get("db_was_open", True) and not db.is_closed():
            db.close()
