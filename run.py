"""Start the service: load .env, apply pending migrations, then serve with gunicorn on PORT (8080)."""

import sys


def main() -> None:
    from app.bootstrap import prepare_database, settings_from_env_or_exit
    from app.logs import configure_logging

    settings = settings_from_env_or_exit()
    configure_logging(settings.log_level)
    applied = prepare_database(settings)
    print(f"migrations applied: {', '.join(applied) or 'none pending'}", flush=True)

    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "--config", "gunicorn.conf.py", "app.wsgi:app", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()
