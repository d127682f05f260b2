"""Settings: the only place that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit

import limits

DEFAULT_SQLITE_PATH = "var/shortener.sqlite3"
POSTGRES_SCHEMES = ("postgres", "postgresql", "postgres+pool", "postgresql+pool")
SQLITE_SCHEMES = ("sqlite",)
REDIRECT_STATUSES = (301, 302, 307, 308)
REFERRER_POLICIES = (
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
)
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
    log_flush_interval: float = 0.2
    anonymous_shorten: bool = True
    initial_api_key: str | None = field(default=None, repr=False)
    click_flush_interval: float = 1.0
    click_analytics: bool = True
    click_buffer_size: int = 50_000
    redirect_cache_size: int = 10_000
    redirect_cache_ttl: float = 1.0
    redirect_cache_notified_ttl: float = 300.0
    redirect_cache_notify: bool = True
    known_codes_filter: bool = True
    health_check_interval: float = 0.1
    allow_private_targets: bool = False
    blocked_domains: frozenset[str] = frozenset()
    permanent_redirect_max_age: int = 300
    hsts_max_age: int = 0
    referrer_policy: str = "strict-origin-when-cross-origin"
    cors_origins: tuple[str, ...] = ()
    redis_url: str | None = field(default=None, repr=False)
    ratelimit_enabled: bool = True
    ratelimit_create: str = "300/minute"
    ratelimit_manage: str = "1200/minute"
    ratelimit_auth_failures: str = "60/minute"
    ratelimit_misses: str = "600/minute"
    metrics_enabled: bool = True
    metrics_token: str | None = field(default=None, repr=False)
    metrics_multiproc_dir: str | None = None
    log_format: str = "json"
    access_log: bool = True

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
            log_flush_interval=env.integer("LOG_FLUSH_INTERVAL_MS", 200, low=0, high=10_000) / 1000,
            log_level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            anonymous_shorten=env.boolean("ANONYMOUS_SHORTEN", True),
            initial_api_key=env.text("INITIAL_API_KEY"),
            click_flush_interval=env.integer("CLICK_FLUSH_INTERVAL_MS", 1000, low=10, high=60_000) / 1000,
            click_analytics=env.boolean("CLICK_ANALYTICS", True),
            click_buffer_size=env.integer("CLICK_BUFFER_SIZE", 50_000, low=100, high=10_000_000),
            redirect_cache_size=env.integer("REDIRECT_CACHE_SIZE", 10_000, low=0, high=10_000_000),
            redirect_cache_ttl=env.integer("REDIRECT_CACHE_TTL_MS", 1000, low=0, high=60_000) / 1000,
            redirect_cache_notified_ttl=env.integer(
                "REDIRECT_CACHE_NOTIFIED_TTL_MS", 300_000, low=0, high=86_400_000
            )
            / 1000,
            redirect_cache_notify=env.boolean("REDIRECT_CACHE_NOTIFY", True),
            known_codes_filter=env.boolean("KNOWN_CODES_FILTER", True),
            health_check_interval=env.integer("HEALTH_CHECK_INTERVAL_MS", 100, low=0, high=10_000) / 1000,
            allow_private_targets=env.boolean("ALLOW_PRIVATE_TARGETS", False),
            blocked_domains=_blocked_domains(env),
            permanent_redirect_max_age=env.integer("PERMANENT_REDIRECT_MAX_AGE", 300, low=0, high=31_536_000),
            hsts_max_age=env.integer("HSTS_MAX_AGE", 0, low=0, high=63_072_000),
            referrer_policy=env.choice(
                "REFERRER_POLICY", "strict-origin-when-cross-origin", REFERRER_POLICIES
            ),
            cors_origins=_cors_origins(env.text("CORS_ORIGINS")),
            redis_url=_redis_url(env.text("REDIS_URL")),
            ratelimit_enabled=env.boolean("RATELIMIT_ENABLED", True),
            ratelimit_create=env.rate_limit("RATELIMIT_CREATE", "300/minute"),
            ratelimit_manage=env.rate_limit("RATELIMIT_MANAGE", "1200/minute"),
            ratelimit_auth_failures=env.rate_limit("RATELIMIT_AUTH_FAILURES", "60/minute"),
            ratelimit_misses=env.rate_limit("RATELIMIT_MISSES", "600/minute"),
            metrics_enabled=env.boolean("METRICS_ENABLED", True),
            metrics_token=env.text("METRICS_TOKEN"),
            metrics_multiproc_dir=_multiproc_dir(env.text("PROMETHEUS_MULTIPROC_DIR")),
            log_format=env.choice("LOG_FORMAT", "json", ("json", "text")),
            access_log=env.text("ACCESS_LOG") == "-" or env.boolean("ACCESS_LOG", True),
        )
        if settings.initial_api_key is not None and len(settings.initial_api_key) < 32:
            raise ConfigError("INITIAL_API_KEY must be at least 32 characters long")
        if settings.metrics_token is not None and len(settings.metrics_token) < 32:
            raise ConfigError("METRICS_TOKEN must be at least 32 characters long")
        if settings.max_url_length + 1024 > settings.max_request_bytes:
            raise ConfigError("MAX_REQUEST_BYTES must exceed MAX_URL_LENGTH by at least 1024 bytes")
        return settings


def check_server_env(environ: Mapping[str, str] | None = None) -> None:
    """Validate the variables gunicorn.conf.py reads (gunicorn itself would fail with a bare traceback)."""
    env = _Env(os.environ if environ is None else environ)
    env.integer("PORT", 8080, low=1, high=65535)
    env.integer("WEB_CONCURRENCY", 1, low=1, high=256)
    env.integer("GUNICORN_THREADS", 4, low=1, high=1024)
    env.integer("WEB_THREADS", 3, low=1, high=1024)
    env.choice("WEB_SERVER", "gunicorn", ("gunicorn", "granian"))


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

    def rate_limit(self, name: str, default: str) -> str:
        """A rate limit such as `300/minute` or `10/second;1000/hour`."""
        raw = self.text(name) or default
        try:
            limits.parse_many(raw)
        except ValueError:
            raise ConfigError(
                f"{name} must be a rate limit like 300/minute or 10/second;1000/hour, got {raw!r}"
            ) from None
        return raw

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


def _blocked_domains(env: _Env) -> frozenset[str]:
    """BLOCKED_DOMAINS (comma-separated) plus BLOCKED_DOMAINS_FILE (one per line, # comments)."""
    from app.errors import InvalidUrl
    from app.services.urls import domain_key

    entries = [("BLOCKED_DOMAINS", item) for item in (env.text("BLOCKED_DOMAINS") or "").split(",")]
    path = env.text("BLOCKED_DOMAINS_FILE")
    if path is not None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"BLOCKED_DOMAINS_FILE {path!r} cannot be read: {error}") from None
        entries += [("BLOCKED_DOMAINS_FILE", line.partition("#")[0]) for line in lines]
    domains = set()
    for name, entry in entries:
        if not entry.strip():
            continue
        try:
            domains.add(domain_key(entry))
        except InvalidUrl:
            raise ConfigError(f"{name} holds {entry.strip()!r}, which is not a domain name") from None
    return frozenset(domains)


def _cors_origins(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    origins = tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
    for origin in origins:
        parsed = urlsplit(origin)
        valid = parsed.scheme in ("http", "https") and parsed.hostname and not parsed.path
        if origin != "*" and not valid:
            raise ConfigError(
                f"CORS_ORIGINS entries must be origins like https://app.example or *, got {origin!r}"
            )
    return origins


def _redis_url(raw: str | None) -> str | None:
    if raw is not None and urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {raw!r}")
    return raw


def _multiproc_dir(raw: str | None) -> str | None:
    """PROMETHEUS_MULTIPROC_DIR: where each worker process writes its metrics (run.py creates one)."""
    if raw is not None and not (os.path.isdir(raw) and os.access(raw, os.W_OK | os.X_OK)):
        raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR must be an existing writable directory, got {raw!r}")
    return raw
