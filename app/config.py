"""Settings: the only place that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote, urlsplit

DEFAULT_SQLITE_PATH = "var/shortener.sqlite3"
POSTGRES_SCHEMES = ("postgres", "postgresql", "postgres+pool", "postgresql+pool")
SQLITE_SCHEMES = ("sqlite",)
REDIRECT_STATUSES = (301, 302, 307, 308)
T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration variable holds a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Typed, validated configuration, built once at start."""

    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    base_url: str | None = None
    trusted_proxies: int = 0
    code_length: int = 7
    code_attempts: int = 8
    max_url_length: int = 2048
    max_request_bytes: int = 16 * 1024
    default_redirect_status: int = 302
    db_pool_size: int = 16
    db_pool_timeout: int = 1
    db_connect_timeout: int = 2
    db_statement_timeout_ms: int = 5000
    db_stale_timeout: int = 300
    log_level: str = "INFO"
    anonymous_shorten: bool = True
    initial_api_key: str | None = field(default=None, repr=False)
    click_flush_interval: float = 1.0
    click_analytics: bool = True
    click_buffer_size: int = 50_000
    redirect_cache_size: int = 10_000
    redirect_cache_ttl: float = 1.0

    @property
    def is_postgres(self) -> bool:
        """True when the configured database is PostgreSQL."""
        return urlsplit(self.database_url).scheme in POSTGRES_SCHEMES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse and validate every variable; a bad value raises ConfigError naming it."""
        env = _Env(os.environ if environ is None else environ)
        settings = cls(
            database_url=_database_url(env),
            base_url=_base_url(env.text("BASE_URL")),
            trusted_proxies=env.integer("TRUSTED_PROXIES", 0, low=0, high=10),
            code_length=env.integer("SHORT_CODE_LENGTH", 7, low=4, high=32),
            code_attempts=env.integer("SHORT_CODE_ATTEMPTS", 8, low=1, high=100),
            max_url_length=env.integer("MAX_URL_LENGTH", 2048, low=32, high=65536),
            max_request_bytes=env.integer("MAX_REQUEST_BYTES", 16384, low=1024, high=10_485_760),
            default_redirect_status=env.choice("REDIRECT_STATUS", 302, REDIRECT_STATUSES),
            db_pool_size=env.integer("DB_POOL_SIZE", 16, low=1, high=1000),
            db_pool_timeout=env.integer("DB_POOL_TIMEOUT", 1, low=1, high=60),
            db_connect_timeout=env.integer("DB_CONNECT_TIMEOUT", 2, low=1, high=60),
            db_statement_timeout_ms=env.integer("DB_STATEMENT_TIMEOUT_MS", 5000, low=100, high=600_000),
            db_stale_timeout=env.integer("DB_STALE_TIMEOUT", 300, low=1, high=86400),
            log_level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            anonymous_shorten=env.boolean("ANONYMOUS_SHORTEN", True),
            initial_api_key=env.text("INITIAL_API_KEY"),
            click_flush_interval=env.integer("CLICK_FLUSH_INTERVAL_MS", 1000, low=10, high=60_000) / 1000,
            click_analytics=env.boolean("CLICK_ANALYTICS", True),
            click_buffer_size=env.integer("CLICK_BUFFER_SIZE", 50_000, low=100, high=10_000_000),
            redirect_cache_size=env.integer("REDIRECT_CACHE_SIZE", 10_000, low=0, high=10_000_000),
            redirect_cache_ttl=env.integer("REDIRECT_CACHE_TTL_MS", 1000, low=0, high=60_000) / 1000,
        )
        if settings.initial_api_key is not None and len(settings.initial_api_key) < 32:
            raise ConfigError("INITIAL_API_KEY must be at least 32 characters long")
        if settings.max_url_length + 1024 > settings.max_request_bytes:
            raise ConfigError("MAX_REQUEST_BYTES must exceed MAX_URL_LENGTH by at least 1024 bytes")
        return settings


def check_server_env(environ: Mapping[str, str] | None = None) -> None:
    """Validate the variables gunicorn.conf.py reads (gunicorn itself would fail with a bare traceback)."""
    env = _Env(os.environ if environ is None else environ)
    env.integer("PORT", 8080, low=1, high=65535)
    env.integer("WEB_CONCURRENCY", 1, low=1, high=256)
    env.integer("GUNICORN_THREADS", 4, low=1, high=1024)


class _Env:
    """Typed accessors over an environment mapping; empty values count as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, default: T, choices: tuple[T, ...]) -> T:
        raw = self.text(name)
        if raw is None:
            return default
        for choice in choices:
            if str(choice).lower() == raw.lower():
                return choice
        allowed = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{name} must be one of {allowed}, got {raw!r}")


def _database_url(env: _Env) -> str:
    """DATABASE_URL, else the DATABASE_* variables (PostgreSQL), else the SQLite file."""
    url = env.text("DATABASE_URL")
    if url is not None:
        return _checked_database_url(url)
    name = env.text("DATABASE_NAME")
    parts = {key: env.text(f"DATABASE_{key.upper()}") for key in ("host", "port", "user", "password")}
    if name is None:
        given = [f"DATABASE_{key.upper()}" for key, value in parts.items() if value]
        if given:
            raise ConfigError(f"DATABASE_NAME is required when {', '.join(given)} is set")
        return f"sqlite:///{env.text('SQLITE_PATH') or DEFAULT_SQLITE_PATH}"
    port = env.integer("DATABASE_PORT", 5432, low=1, high=65535)
    user = quote(parts["user"] or "postgres", safe="")
    password = f":{quote(parts['password'], safe='')}" if parts["password"] else ""
    host = parts["host"] or "127.0.0.1"
    return f"postgresql://{user}{password}@{host}:{port}/{quote(name, safe='')}"


def _checked_database_url(url: str) -> str:
    parsed = urlsplit(url)
    if parsed.scheme not in POSTGRES_SCHEMES + SQLITE_SCHEMES:
        raise ConfigError(
            f"DATABASE_URL must start with postgresql:// or sqlite:///, got scheme {parsed.scheme!r}"
        )
    if not parsed.path.strip("/"):
        raise ConfigError("DATABASE_URL must name a database (postgresql://host/NAME or sqlite:///PATH)")
    return url


def _base_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    parsed = urlsplit(raw)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
        raise ConfigError(f"BASE_URL must be an absolute http(s) URL like https://sho.rt, got {raw!r}")
    return raw.rstrip("/")
