"""Flask CLI commands: db upgrade|status, create-admin, create-user, issue-key, prune-clicks."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from app import migrate
from app.db import db, utcnow
from app.models import User
from app.services import api_keys, clicks, users


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

    @app.cli.command("create-admin")
    @click.argument("name")
    def create_admin(name: str) -> None:
        """Create an admin user and print its first API key (shown once)."""
        user, secret = users.create_admin(name)
        click.echo(f"admin {user.name!r} (id {user.id}) created; API key (store it now, it is shown once):")
        click.echo(secret)

    @app.cli.command("create-user")
    @click.argument("name")
    @click.option("--role", type=click.Choice(["user", "admin"]), default="user")
    def create_user(name: str, role: str) -> None:
        """Create a user (no key; see issue-key)."""
        user = users.create_user(None, name, role)
        click.echo(f"user {user.name!r} (id {user.id}, {user.role}) created")

    @app.cli.command("prune-clicks")
    @click.option(
        "--days", type=click.IntRange(min=1), required=True, help="Keep this many days of raw clicks."
    )
    def prune_clicks(days: int) -> None:
        """Delete raw click rows older than DAYS days (statistics come from rollups and are kept)."""
        deleted = clicks.prune_clicks(utcnow() - timedelta(days=days))
        click.echo(f"deleted {deleted} raw clicks older than {days} days")

    @app.cli.command("issue-key")
    @click.argument("name")
    @click.option("--label", default="issued by the CLI")
    def issue_key(name: str, label: str) -> None:
        """Issue a new API key for the user NAME and print it (shown once)."""
        user = User.get_or_none(User.name == name)
        if user is None:
            raise click.ClickException(f"no user named {name!r}")
        _key, secret = api_keys.create_key(user.id, name=label)
        click.echo(secret)
