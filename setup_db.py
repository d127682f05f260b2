"""Apply pending schema migrations to the configured database (same code path as the CLI)."""

import sys

from dotenv import load_dotenv


def main() -> None:
    load_dotenv()
    from app.bootstrap import prepare_database
    from app.config import ConfigError, Settings

    try:
        settings = Settings.from_env()
    except ConfigError as error:
        sys.exit(f"configuration error: {error}")
    applied = prepare_database(settings)
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


if __name__ == "__main__":
    main()
