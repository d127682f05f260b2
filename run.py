"""Start the service: load .env, apply pending migrations, then serve with gunicorn on PORT (8080)."""

import sys

from dotenv import load_dotenv


def main() -> None:
    load_dotenv()
    from app.bootstrap import prepare_database
    from app.config import ConfigError, Settings
    from app.logs import configure_logging

    try:
        settings = Settings.from_env()
    except ConfigError as error:
        sys.exit(f"configuration error: {error}")
    configure_logging(settings.log_level)
    applied = prepare_database(settings)
    print(f"migrations applied: {', '.join(applied) or 'none pending'}", flush=True)

    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "--config", "gunicorn.conf.py", "app.wsgi:app", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()
