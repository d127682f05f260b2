"""Settings.from_env: precedence, defaults and errors that name the variable."""

from __future__ import annotations

import pytest

from app.config import DEFAULT_SQLITE_PATH, ConfigError, Settings


def test_defaults_to_embedded_sqlite_file():
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite:///{DEFAULT_SQLITE_PATH}"
    assert not settings.is_postgres
    assert settings.code_length == 7 and settings.max_url_length == 2048
    assert settings.default_redirect_status == 302 and settings.base_url is None


def test_database_url_wins_over_database_variables():
    env = {"DATABASE_URL": "postgresql://u@db:5432/links", "DATABASE_NAME": "other"}
    settings = Settings.from_env(env)
    assert settings.database_url == "postgresql://u@db:5432/links" and settings.is_postgres


def test_database_variables_build_a_postgres_url_with_quoted_secrets():
    env = {
        "DATABASE_NAME": "links",
        "DATABASE_HOST": "db",
        "DATABASE_PORT": "6543",
        "DATABASE_USER": "app",
        "DATABASE_PASSWORD": "p@ss:w/rd",
    }
    assert Settings.from_env(env).database_url == "postgresql://app:p%40ss%3Aw%2Frd@db:6543/links"


def test_database_name_alone_uses_local_postgres_defaults():
    assert Settings.from_env({"DATABASE_NAME": "links"}).database_url == (
        "postgresql://postgres@127.0.0.1:5432/links"
    )


def test_sqlite_path_is_configurable():
    assert Settings.from_env({"SQLITE_PATH": "/data/x.db"}).database_url == "sqlite:////data/x.db"


def test_values_are_parsed_and_trimmed():
    env = {
        "SHORT_CODE_LENGTH": " 9 ",
        "REDIRECT_STATUS": "301",
        "LOG_LEVEL": "debug",
        "BASE_URL": "https://sho.rt/",
        "TRUSTED_PROXIES": "2",
    }
    settings = Settings.from_env(env)
    assert settings.code_length == 9 and settings.default_redirect_status == 301
    assert settings.log_level == "DEBUG" and settings.base_url == "https://sho.rt"
    assert settings.trusted_proxies == 2


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SHORT_CODE_LENGTH": "seven"}, "SHORT_CODE_LENGTH"),
        ({"SHORT_CODE_LENGTH": "2"}, "SHORT_CODE_LENGTH"),
        ({"MAX_URL_LENGTH": "-5"}, "MAX_URL_LENGTH"),
        ({"REDIRECT_STATUS": "200"}, "REDIRECT_STATUS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"BASE_URL": "sho.rt"}, "BASE_URL"),
        ({"BASE_URL": "https://sho.rt/?x=1"}, "BASE_URL"),
        ({"DATABASE_URL": "mysql://db/links"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://db"}, "DATABASE_URL"),
        ({"DATABASE_HOST": "db"}, "DATABASE_NAME"),
        ({"DATABASE_NAME": "x", "DATABASE_PORT": "port"}, "DATABASE_PORT"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"MAX_URL_LENGTH": "60000"}, "MAX_REQUEST_BYTES"),
        ({"ANONYMOUS_SHORTEN": "maybe"}, "ANONYMOUS_SHORTEN"),
        ({"INITIAL_API_KEY": "too-short"}, "INITIAL_API_KEY"),
        ({"CLICK_FLUSH_INTERVAL_MS": "0"}, "CLICK_FLUSH_INTERVAL_MS"),
        ({"RATELIMIT_CREATE": "lots"}, "RATELIMIT_CREATE"),
        ({"RATELIMIT_MISSES": "10 per fortnight"}, "RATELIMIT_MISSES"),
        ({"BLOCKED_DOMAINS": "ok.example, not a domain"}, "BLOCKED_DOMAINS"),
        ({"BLOCKED_DOMAINS_FILE": "/nonexistent/blocklist.txt"}, "BLOCKED_DOMAINS_FILE"),
        ({"CORS_ORIGINS": "https://app.example/path"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "app.example"}, "CORS_ORIGINS"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"REFERRER_POLICY": "everything"}, "REFERRER_POLICY"),
        ({"HSTS_MAX_AGE": "-1"}, "HSTS_MAX_AGE"),
        ({"METRICS_ENABLED": "maybe"}, "METRICS_ENABLED"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"ACCESS_LOG": "sometimes"}, "ACCESS_LOG"),
        ({"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/metrics"}, "PROMETHEUS_MULTIPROC_DIR"),
    ],
)
def test_bad_values_fail_naming_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ("0", False), ("No", False), ("TRUE", True), ("on", True)]
)
def test_anonymous_shorten_parses_booleans(raw, expected):
    assert Settings.from_env({"ANONYMOUS_SHORTEN": raw}).anonymous_shorten is expected


def test_initial_api_key_is_kept_out_of_repr():
    settings = Settings.from_env({"INITIAL_API_KEY": "s" * 40, "CLICK_FLUSH_INTERVAL_MS": "250"})
    assert settings.initial_api_key == "s" * 40 and "s" * 40 not in repr(settings)
    assert settings.click_flush_interval == 0.25


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "http"), ("PORT", "70000"), ("WEB_CONCURRENCY", "0"), ("GUNICORN_THREADS", "x")],
)
def test_server_variables_are_checked_naming_them(name, value):
    from app.config import check_server_env

    with pytest.raises(ConfigError, match=name):
        check_server_env({name: value})
    check_server_env({})  # defaults are fine


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("SHORT_CODE_LENGTH", "11")
    assert Settings.from_env().code_length == 11


def test_hardening_settings_are_parsed(tmp_path):
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("# phishing\nEvil.Example\n\nbücher.de  # IDN\n", encoding="utf-8")
    settings = Settings.from_env(
        {
            "BLOCKED_DOMAINS": "spam.example, ,other.example.",
            "BLOCKED_DOMAINS_FILE": str(blocklist),
            "ALLOW_PRIVATE_TARGETS": "true",
            "CORS_ORIGINS": "https://app.example/, http://localhost:3000",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "RATELIMIT_CREATE": "10/second;1000/hour",
            "HSTS_MAX_AGE": "31536000",
            "REFERRER_POLICY": "No-Referrer",
            "PERMANENT_REDIRECT_MAX_AGE": "0",
        }
    )
    assert settings.blocked_domains == {"spam.example", "other.example", "evil.example", "xn--bcher-kva.de"}
    assert settings.allow_private_targets is True
    assert settings.cors_origins == ("https://app.example", "http://localhost:3000")
    assert settings.redis_url == "redis://127.0.0.1:6379/0" and "6379" not in repr(settings)
    assert settings.ratelimit_create == "10/second;1000/hour"
    assert (settings.hsts_max_age, settings.referrer_policy) == (31536000, "no-referrer")
    assert settings.permanent_redirect_max_age == 0


def test_hardening_defaults_are_safe():
    settings = Settings.from_env({})
    assert settings.ratelimit_enabled and not settings.allow_private_targets
    assert settings.cors_origins == () and settings.blocked_domains == frozenset()
    assert settings.redis_url is None and settings.hsts_max_age == 0


def test_observability_settings_default_to_json_logs_access_lines_and_metrics():
    settings = Settings.from_env({})
    assert settings.metrics_enabled and settings.access_log and settings.log_format == "json"
    assert settings.metrics_token is None and settings.metrics_multiproc_dir is None


def test_observability_settings_are_parsed(tmp_path):
    token = "m" * 40
    settings = Settings.from_env(
        {
            "METRICS_ENABLED": "false",
            "METRICS_TOKEN": token,
            "LOG_FORMAT": "TEXT",
            "ACCESS_LOG": "off",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        }
    )
    assert not settings.metrics_enabled and not settings.access_log and settings.log_format == "text"
    assert settings.metrics_token == token and token not in repr(settings)
    assert settings.metrics_multiproc_dir == str(tmp_path)
    assert Settings.from_env({"ACCESS_LOG": "-"}).access_log  # the former gunicorn value still means on
