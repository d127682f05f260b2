"""Prepare a database before serving: apply migrations, then install INITIAL_API_KEY if set."""

from __future__ import annotations

from app.config import Settings
from app.db import connected, db, make_database
from app.migrate import upgrade
from app.services.users import ensure_initial_admin


def prepare_database(settings: Settings) -> list[str]:
    """Migrate the configured database and create the initial admin key; return migrations applied."""
    database = make_database(settings)
    db.initialize(database)
    with connected(database):
        applied = upgrade(database)
        if settings.initial_api_key:
            ensure_initial_admin(settings.initial_api_key)
    return applied
