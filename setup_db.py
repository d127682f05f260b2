"""Apply pending schema migrations to the configured database (same code path as the CLI)."""

import sys

from dotenv import load_dotenv


def main() -> None:
    load_dotenv()
    from app.config import ConfigError, Settings
    from app.db import make_database
    from app.migrate import upgrade

    try:
        settings = Settings.from_env()
    except ConfigError as error:
        sys.exit(f"configuration error: {error}")
    applied = upgrade(make_database(settings))
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


if __name__ == "__main__":
    main()
