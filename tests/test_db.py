"""The database layer: aware-UTC timestamps, database construction, connection release."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from peewee import OperationalError, SqliteDatabase
from playhouse.pool import PooledPostgresqlDatabase

from app.config import Settings
from app.db import PooledPostgres, UTCDateTimeField, make_database
from app.logs import configure_logging
from app.models import Link
from app.services.health import DatabaseCheck
from tests.factories import make_link

FIELD = UTCDateTimeField()


def test_timestamps_are_stored_in_utc_and_read_back_aware():
    paris = timezone(timedelta(hours=1))
    link = make_link(created_at=datetime(2030, 6, 1, 12, 0, tzinfo=paris))
    stored = Link.get_by_id(link.id).created_at
    assert stored == datetime(2030, 6, 1, 11, 0, tzinfo=UTC)
    assert stored.tzinfo is UTC


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        FIELD.db_value(datetime(2030, 1, 1))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("2030-01-01 10:00:00.000001+00:00", datetime(2030, 1, 1, 10, 0, 0, 1, tzinfo=UTC)),
        (datetime(2030, 1, 1, 10), datetime(2030, 1, 1, 10, tzinfo=UTC)),
        (datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))), datetime(2030, 1, 1, 10, tzinfo=UTC)),
    ],
)
def test_timestamps_read_from_any_driver_form_become_aware_utc(raw, expected):
    assert FIELD.python_value(raw) == expected
    assert FIELD.db_value(None) is None


def test_make_database_builds_a_pool_with_timeouts_for_postgres():
    settings = Settings(
        database_url="postgresql://app:s%40cret@db:6543/links",
        db_pool_size=7,
        db_connect_timeout=3,
        db_statement_timeout_ms=1500,
    )
    database = make_database(settings)
    assert isinstance(database, PooledPostgres)
    assert database._max_connections == 7
    assert database.connect_params["password"] == "s@cret"
    assert database.connect_params["connect_timeout"] == 3
    assert database.connect_params["options"] == "-c statement_timeout=1500 -c timezone=UTC"
    assert database.connect_params["tcp_user_timeout"] == 3000


def test_make_database_creates_the_sqlite_directory(tmp_path):
    path = tmp_path / "nested" / "dir" / "links.sqlite3"
    database = make_database(Settings(database_url=f"sqlite:///{path}"))
    assert isinstance(database, SqliteDatabase)
    assert path.parent.is_dir()
    database.connect()
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    database.close()


@pytest.fixture
def own_connection(app, settings):
    """The app on a database of its own, outside the test transaction (as in production).

    The tests use GET /health as a Flask request that queries the database: every one checks
    (HEALTH_CHECK_INTERVAL_MS=0), and none is answered by the fast path (app/api/fast_redirect.py),
    which skips Flask's per-request connection handling under test here.
    """
    from app.db import db

    original, shared_check, fast_path = db.obj, app.extensions["database_check"], app.wsgi_app
    fresh = make_database(settings)
    db.initialize(fresh)
    app.extensions["database_check"] = DatabaseCheck(0)
    app.wsgi_app = fast_path.wsgi_app
    yield fresh
    app.wsgi_app = fast_path
    app.extensions["database_check"] = shared_check
    fresh.close()
    db.initialize(original)


def test_a_thread_keeps_its_connection_across_requests(app, own_connection):
    client = app.test_client()
    assert client.get("/health").status_code == 200
    first = own_connection.connection()
    assert client.get("/health").status_code == 200
    assert own_connection.connection() is first


def test_a_connection_is_recycled_after_the_stale_timeout(app, own_connection, monkeypatch):
    client = app.test_client()
    client.get("/health")
    first = own_connection.connection()
    later = time.monotonic() + app.extensions["settings"].db_stale_timeout + 1
    monkeypatch.setattr("app.db.time.monotonic", lambda: later)
    client.get("/health")
    assert own_connection.is_closed()
    client.get("/health")
    assert own_connection.connection() is not first


def test_a_database_error_releases_the_connection(app, own_connection, monkeypatch):
    from peewee import OperationalError

    client = app.test_client()
    client.get("/health")

    def fail(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(own_connection, "execute_sql", fail)
    assert client.get("/urls").status_code == 503
    assert own_connection.is_closed()


def test_configure_logging_writes_to_stdout_at_level(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("WARNING")
        logging.getLogger("x").warning("visible")
        logging.getLogger("x").info("hidden")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    out = capsys.readouterr().out
    assert "WARNING x visible" in out and "hidden" not in out


def _terminate_backend(settings, pid: int) -> None:
    import psycopg2

    admin = psycopg2.connect(settings.database_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()


@pytest.mark.parametrize("request_kind", ["read", "write"])
def test_a_connection_killed_while_idle_is_replaced_without_an_error(
    app, own_connection, settings, request_kind
):
    if not settings.is_postgres:
        pytest.skip("killing a server backend needs PostgreSQL")
    client = app.test_client()
    assert client.get("/health").status_code == 200
    pid = own_connection.connection().get_backend_pid()
    _terminate_backend(settings, pid)
    if request_kind == "read":
        assert client.get("/health").status_code == 200
    else:  # BEGIN is the first statement on the dead connection
        response = client.post("/shorten", json={"url": "https://example.com/after-kill"})
        assert response.status_code == 201
        Link.delete().where(Link.code == response.get_json()["short_code"]).execute()
    assert own_connection.connection().get_backend_pid() != pid


def test_a_connection_closed_under_the_pool_is_replaced_without_an_error(app, own_connection, settings):
    if not settings.is_postgres:
        pytest.skip("the retry on a dead connection is PostgreSQL's")
    client = app.test_client()
    assert client.get("/health").status_code == 200
    own_connection.connection().close()  # the driver's connection is gone; peewee still holds it
    assert client.get("/urls").status_code == 200


def create_whose_first_insert_loses_its_connection(app, monkeypatch, first_insert, alias: str | None):
    """POST /shorten where the first link INSERT runs as `first_insert(database, sql, params)` says,
    then its connection dies and the driver reports it; the response and the codes stored for its
    target."""
    real = PooledPostgresqlDatabase.execute_sql
    lost = []

    def insert_then_lost(self, sql, params=None, *args, **kwargs):
        if sql.startswith('INSERT INTO "link"') and not lost:
            lost.append(sql)
            first_insert(self, sql, params)
            self.connection().close()  # opened if this thread had none yet
            raise OperationalError("server closed the connection unexpectedly")
        return real(self, sql, params, *args, **kwargs)

    monkeypatch.setattr(PooledPostgresqlDatabase, "execute_sql", insert_then_lost)
    target = f"https://example.com/lost-answer/{time.time_ns()}"
    body = {"url": target} if alias is None else {"url": target, "alias": alias}
    response = app.test_client().post("/shorten", json=body)
    stored = [link.code for link in Link.select().where(Link.target_url == target)]
    Link.delete().where(Link.target_url == target).execute()
    assert lost
    return response, stored


@pytest.mark.parametrize("alias", [None, "lost-answer"])
def test_a_create_whose_answer_died_with_its_connection_is_stored_once_and_answered_201(
    app, own_connection, settings, monkeypatch, alias
):
    if not settings.is_postgres:
        pytest.skip("the retry on a dead connection is PostgreSQL's")
    real = PooledPostgresqlDatabase.execute_sql

    def committed(database, sql, params):  # the answer goes down with the connection
        real(database, sql, params)

    response, stored = create_whose_first_insert_loses_its_connection(app, monkeypatch, committed, alias)
    assert response.status_code == 201
    assert stored == [response.get_json()["short_code"]]


@pytest.mark.parametrize("alias", [None, "in-flight"])
def test_a_create_still_committing_when_its_connection_died_is_stored_once_and_answered_201(
    app, own_connection, settings, monkeypatch, alias
):
    # The server was still running the first INSERT (a lock, a synchronous standby) when the client
    # gave the connection up: the look finds nothing, the second INSERT waits for the first one.
    if not settings.is_postgres:
        pytest.skip("the retry on a dead connection is PostgreSQL's")
    import threading

    import psycopg2

    from app.services.link_events import listener_kwargs

    side = psycopg2.connect(**listener_kwargs(own_connection))
    committing: list[threading.Timer] = []

    def still_committing(database, sql, params):
        with side.cursor() as cursor:  # the first run, on the server, not committed yet
            cursor.execute(sql, params)
        committing.append(threading.Timer(0.3, side.commit))
        committing[0].start()

    try:
        response, stored = create_whose_first_insert_loses_its_connection(
            app, monkeypatch, still_committing, alias
        )
    finally:
        for timer in committing:
            timer.join()
        side.close()
    assert committing and response.status_code == 201
    assert stored == [response.get_json()["short_code"]]
