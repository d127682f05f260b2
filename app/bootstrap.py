"""Prepare a database before serving: apply migrations, then install INITIAL_API_KEY if set."""

from __future__ import annotations

import sys

from app.config import ConfigError, Settings, check_server_env
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


def settings_from_env_or_exit() -> Settings:
    """For entry points: load .env, then read the settings, exiting with the variable's name if bad."""
    from dotenv import load_dotenv

    load_dotenv()
    try:
        check_server_env()
        return Settings.from_env()
    except ConfigError as error:
        sys.exit(f"configuration error: {error}")
