"""Apply pending schema migrations (and INITIAL_API_KEY) to the configured database."""


def main() -> None:
    from app.bootstrap import prepare_database, settings_from_env_or_exit

    applied = prepare_database(settings_from_env_or_exit())
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


if __name__ == "__main__":
    main()
