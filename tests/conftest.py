"""Test database created and migrated once per run; every test runs inside a rolled-back transaction.

The backend comes from TEST_DATABASE_URL (a PostgreSQL URL whose database is dropped and
re-created for the run); without it the suite uses a fresh SQLite file. DATABASE_URL and .env are
never read, so the suite cannot touch a developer's data.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from flask import Flask
from flask.testing import FlaskClient
from peewee import Database

from app import create_app, migrate
from app.config import Settings
from app.db import db, make_database
from app.services.clicks import ClickRecorder
from app.services.link_cache import LinkCache


def _recreate_postgres_database(url: str, *, create: bool = True) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the test app: the dedicated test database, defaults for everything else."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        _recreate_postgres_database(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    # Tests flush clicks explicitly; rate limits are switched on only by the tests about them.
    # The cache's change listener is started only by the tests about it.
    return Settings(
        database_url=url, click_flush_interval=0, ratelimit_enabled=False, redirect_cache_notify=False
    )


@pytest.fixture
def scratch_database(settings: Settings, tmp_path) -> Iterator[Database]:
    """An empty database of the backend under test, separate from the shared test database."""
    if settings.is_postgres:
        parts = urlsplit(settings.database_url)
        url = urlunsplit((parts.scheme, parts.netloc, parts.path + "_scratch", "", ""))
        _recreate_postgres_database(url)
    else:
        url = f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
    database = make_database(replace(settings, database_url=url))
    yield database
    if settings.is_postgres:
        database.close_all()
        _recreate_postgres_database(url, create=False)
    else:
        database.close()


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[Flask]:
    """One app for the run, its database migrated once."""
    application = create_app(settings)
    migrate.upgrade(db.obj)
    yield application
    db.close()


@pytest.fixture(autouse=True)
def _rollback(app: Flask) -> Iterator[None]:
    """Run each test in a transaction that is rolled back, so tests never see each other's rows.

    The click buffer is fresh too: counts buffered by one test must not land in another's rows.
    """
    app.extensions["clicks"] = ClickRecorder(background=False)
    app.extensions["link_cache"] = LinkCache(app.extensions["settings"].redirect_cache_size)
    db.connect(reuse_if_open=True)
    with db.atomic() as transaction:
        yield
        transaction.rollback()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """HTTP client of the shared test app."""
    return app.test_client()


@pytest.fixture
def make_client(app: Flask, settings: Settings) -> Iterator:
    """Build a client of an app with changed settings, on the same test database connection."""
    original = db.obj

    def build(**changes) -> FlaskClient:
        other = create_app(replace(settings, **changes))
        db.initialize(original)  # keep the test's connection and its rolled-back transaction
        return other.test_client()

    yield build
    db.initialize(original)


@pytest.fixture
def listening_client(make_client, settings: Settings) -> Iterator:
    """Build a client of an app whose change listener runs, its known-codes filter loaded (PostgreSQL).

    The listener reads committed rows only: links a test makes in its rolled-back transaction are
    unknown to the filter (the fast path answers 404 for them) unless this process created them.
    """
    if not settings.is_postgres:
        pytest.skip("the known-codes filter is kept by the PostgreSQL change listener")
    listeners = []

    def build(**changes) -> FlaskClient:
        client = make_client(redirect_cache_notify=True, **changes)
        listener = client.application.extensions["link_events"]
        listeners.append(listener)
        listener.ensure_started()
        deadline = time.monotonic() + 5
        filtering = listener.cache.known_codes is not None  # KNOWN_CODES_FILTER
        # "~" is in no code: knowing it absent means loaded and listening.
        while not (listener.knows_absent("~never~") if filtering else listener.cache.notified):
            assert time.monotonic() < deadline, "the listener did not start in time"
            time.sleep(0.005)
        return client

    yield build
    for listener in listeners:
        listener.stop()


@pytest.fixture
def broken_db_client(app: Flask, settings: Settings, tmp_path) -> Iterator[FlaskClient]:
    """A client whose database cannot be opened (a closed port, or a directory for SQLite)."""
    original = db.obj
    url = "postgresql://postgres@127.0.0.1:1/unreachable" if settings.is_postgres else f"sqlite:///{tmp_path}"
    other = create_app(replace(settings, database_url=url))
    yield other.test_client()
    db.initialize(original)


@pytest.fixture
def admin():
    """An admin principal (a real user row)."""
    from app.services.api_keys import Principal
    from tests.factories import make_user

    user = make_user("root-admin", role="admin")
    return Principal(user_id=user.id, role="admin", key_id=0)
