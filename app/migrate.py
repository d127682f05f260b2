"""The one code path that applies schema migrations (setup_db.py, CLI, container, tests)."""

from __future__ import annotations

import os

from peewee import Database
from playhouse.migrations import Runner

from app.db import connected

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def runner(database: Database) -> Runner:
    """A migration runner over this project's numbered scripts."""
    return Runner(database, MIGRATIONS_DIR, table_name="schema_migration")


def upgrade(database: Database) -> list[str]:
    """Apply every pending migration in order; return the names applied."""
    with connected(database):
        return runner(database).up()


def pending(database: Database) -> list[str]:
    """Names of migrations not yet applied."""
    with connected(database):
        return [m.name for m in runner(database).status() if m.path and not m.applied]
