"""`flask db upgrade|status`: the CLI side of the migration code path."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from app import migrate
from app.db import db


def register(app: Flask) -> None:
    """Attach the project's commands to the app's CLI."""
    group = AppGroup("db", help="Database schema migrations.")

    @group.command("upgrade")
    def upgrade() -> None:
        """Apply every pending migration."""
        applied = migrate.upgrade(db.obj)
        click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")

    @group.command("status")
    def status() -> None:
        """List pending migrations; exit 1 when some are pending."""
        waiting = migrate.pending(db.obj)
        click.echo(f"pending: {', '.join(waiting)}" if waiting else "schema is up to date")
        if waiting:
            raise SystemExit(1)

    app.cli.add_command(group)
