"""The database handle, bound late by the app factory, and the per-request connection hooks."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg2
from flask import Flask
from peewee import (
    Database,
    DatabaseProxy,
    DateTimeField,
    IntegrityError,
    InterfaceError,
    Model,
    OperationalError,
    PostgresqlDatabase,
    SqliteDatabase,
)
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase
from psycopg2.extras import execute_values

from app.config import POSTGRES_SCHEMES, Settings

db = DatabaseProxy()

# Failures that mean "the database cannot serve us right now" rather than a bug.
# (psycopg2's own classes too: creating a cursor on a connection that died is not wrapped by peewee.)
UNAVAILABLE_ERRORS = (
    OperationalError,
    InterfaceError,
    MaxConnectionsExceeded,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
)


class PooledPostgres(PooledPostgresqlDatabase):
    """A pool that finds dead connections without a round trip per request.

    Peewee's pool sends `SELECT 1` on every check-out; worker threads here keep their connection
    across requests instead (see `init_app`). A connection that died while idle (database
    restarted) is found when a statement fails on it: outside a transaction the statement is
    retried once on a fresh connection, so a restart costs no failed request. Inside a transaction
    nothing is retried (the caller sees the error and the transaction's fate is explicit).
    """

    def _is_closed(self, conn: Any) -> bool:
        return bool(conn.closed)

    def execute_sql(self, sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        return self._once_more_if_dead(super().execute_sql, sql, params, *args, **kwargs)

    def begin(self, *args: Any, **kwargs: Any) -> None:
        self._once_more_if_dead(super().begin, *args, **kwargs)

    def execute_once(self, sql: str, params: Any, committed: Callable[[], Any]) -> Any:
        """Run a statement that must not take effect twice (an INSERT), outside a transaction.

        When its connection dies, the statement may have committed with only its answer lost: on a
        fresh connection `committed()` looks for its effect and its result (not None) is returned
        instead of running the statement again. Returns the cursor of the statement otherwise.
        """
        return self._once_more_if_dead(super().execute_sql, sql, params, before_retry=committed)

    def _once_more_if_dead(
        self,
        operation: Callable[..., Any],
        *args: Any,
        before_retry: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        try:
            return operation(*args, **kwargs)
        except UNAVAILABLE_ERRORS:
            connection = self._state.conn
            died = connection is not None and bool(connection.closed)
            if self.in_transaction() or not died:
                raise
            self.close()  # the pool discards it: its transaction status is unknown
            self.close_idle()  # idle ones most likely died with it
            if before_retry is None:
                return operation(*args, **kwargs)
            if (done := before_retry()) is not None:
                return done
            try:
                return operation(*args, **kwargs)
            except IntegrityError:
                # The first run was still in flight on the server (waiting on a lock, or for a
                # synchronous standby) and invisible to the look; this one waited for it to commit.
                if (done := before_retry()) is not None:
                    return done
                raise


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
        params.setdefault(
            "options", f"-c statement_timeout={settings.db_statement_timeout_ms} -c timezone=UTC"
        )
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
    # One writer at a time: a write waits for the lock as long as a PostgreSQL statement may run.
    # (The pool timeout, 1 s, was too short: 32 concurrent writers starved some past it.)
    busy_ms = settings.db_statement_timeout_ms
    pragmas = {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": busy_ms}
    return SqliteDatabase(path, pragmas=pragmas, timeout=busy_ms / 1000, **params)


@contextmanager
def connected(database: Database | DatabaseProxy = db) -> Iterator[None]:
    """Use this thread's open connection if there is one; otherwise open one and close it after."""
    opened = database.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened:
            database.close()


def is_postgres() -> bool:
    """True when the bound database is PostgreSQL."""
    return isinstance(db.obj, PostgresqlDatabase)


def insert_rows(table: str, columns: Sequence[str], rows: Sequence[tuple], suffix: str = "") -> None:
    """Insert many rows fast: multi-row statements (PostgreSQL) or one executemany (SQLite).

    For hot bulk paths only (click flushes): peewee's `insert_many` renders SQL per row and costs
    ~100 µs per row; values here must already be in database form (see `UTCDateTimeField.db_value`).
    """
    if not rows:
        return
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
    if is_postgres():
        execute_many(f"{head} %s {suffix}", rows)
    else:
        execute_many(f"{head} ({', '.join('?' * len(columns))}) {suffix}", rows)


def execute_many(sql: str, rows: Sequence[tuple]) -> None:
    """One statement for many rows: `VALUES %s` pages on PostgreSQL, executemany on SQLite."""
    cursor = db.cursor()
    try:
        if is_postgres():
            execute_values(cursor, sql, rows, page_size=1000)
        else:
            cursor.executemany(sql, rows)
    finally:
        cursor.close()


def release_after_failure() -> None:
    """After a database error: give back this thread's connection and drop the pool's idle ones.

    A connection that died is discarded by the pool on check-in (its transaction status is unknown);
    the idle ones most likely died with it. The next query opens a fresh connection.
    """
    if not db.is_closed() and not db.in_transaction():
        db.close()
    closer = getattr(db.obj, "close_idle", None)
    if closer is not None:
        closer()


def init_app(app: Flask, database: Database, *, recycle_after: float) -> None:
    """Bind the proxy; each worker thread keeps its connection across requests.

    Checking a connection out of the pool and back in on every request costs ~50-70 µs of CPU,
    a quarter of a redirect (docs/PERFORMANCE.md), so a thread keeps the connection it opened
    (lazily, on its first query) and returns it to the pool only after a database error or once
    it is older than `recycle_after` seconds. A connection inside an open transaction (a test's
    rolled-back transaction) is never touched.
    """
    db.initialize(database)
    held = threading.local()

    def recycle_connection() -> None:
        """After a request: close this thread's connection once it is older than `recycle_after`."""
        if db.is_closed() or db.in_transaction():
            return
        connection = db.connection()
        if getattr(held, "connection_id", None) != id(connection):
            held.connection_id, held.opened_at = id(connection), time.monotonic()
        elif time.monotonic() - held.opened_at > recycle_after:
            getattr(db.obj, "manual_close", db.obj.close)()  # pooled: really close, do not re-pool

    @app.teardown_request
    def _recycle_connection(_exc: BaseException | None) -> None:
        recycle_connection()

    app.extensions["recycle_connection"] = recycle_connection  # for requests answered before Flask
