"""Rate limits (flask-limiter): per client IP and per API key, shared through Redis when configured."""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import threading
import time

import limits
from flask import Blueprint, Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded

from app.api.http import presented_key
from app.api.metrics import count_rate_limited
from app.config import Settings
from app.errors import RateLimited, render

log = logging.getLogger(__name__)


def client_ip() -> str:
    """The client's address (the proxy-supplied one only through TRUSTED_PROXIES)."""
    return client_of(request.environ)


def client_of(environ: dict) -> str:
    """The client's address in a WSGI environ (behind ProxyFix); the same key everywhere."""
    return environ.get("REMOTE_ADDR") or "unknown"


def api_key_identity() -> str:
    """A digest of the presented API key (normalised, so spacing or the header used does not give a
    fresh allowance): counts follow the key, and the key is never stored."""
    key = presented_key() or ""
    return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _no_key_sent() -> bool:
    return presented_key() is None


def init_rate_limits(
    app: Flask,
    settings: Settings,
    *,
    create: Blueprint,
    manage: list[Blueprint],
    redirect: Blueprint,
    code_routes: list[Blueprint],
) -> Limiter | None:
    """Limit creation (POST on `create`), management (`manage` blueprints), failed authentication
    and unknown-code lookups on `redirect`; None when RATELIMIT_ENABLED is false.

    Each limit applies per client IP and, where a key is sent, per API key. If Redis is configured
    but unreachable, counting falls back to this process's memory rather than refusing requests.
    """
    if not settings.ratelimit_enabled:
        return None
    limiter = Limiter(
        key_func=client_ip,
        storage_uri=settings.redis_url or "memory://",
        storage_options={"socket_connect_timeout": 0.2, "socket_timeout": 0.2} if settings.redis_url else {},
        strategy="sliding-window-counter",
        key_prefix="shortener",
        headers_enabled=False,
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    api = {create, *manage}
    _init_for_blueprints_only(limiter, app, [blueprint.name for blueprint in api])
    for blueprint in api:
        _per_ip_and_key(limiter, blueprint, settings.ratelimit_manage, "manage")
        # Key guessing: every 401 costs the client; a few dozen per minute is plenty for typos.
        limiter.shared_limit(
            settings.ratelimit_auth_failures,
            scope="auth-failures",
            key_func=client_ip,
            deduct_when=lambda response: response.status_code == 401,
        )(blueprint)
    _per_ip_and_key(limiter, create, settings.ratelimit_create, "create", methods=["POST"])
    # Every route that answers 404 for an unknown code reveals codes: its misses count like the
    # redirect's (link pages, link reads, QR codes, stats), and a blocked client is refused there too.
    guarded = (redirect.name, None, *(bp.name for bp in code_routes))
    guard = CodeGuessingGuard(limiter, settings.ratelimit_misses, guarded=guarded)
    guard.install(app)
    app.extensions["code_guessing_guard"] = guard
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    app.extensions["rate_limiter"] = limiter
    return limiter


def _init_for_blueprints_only(limiter: Limiter, app: Flask, blueprints: list[str]) -> None:
    """`limiter.init_app(app)`, with its request hooks scoped to `blueprints` instead of every request.

    flask-limiter hooks every request of the app; on a redirect that costs ~80 µs even with no limit
    to check (measured: 220 → 300 µs per cached redirect in-process). Flask keeps blueprint-scoped
    hooks under the blueprint's name, so the hooks init_app adds are moved there.
    """
    registries = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    before = [len(registry.get(None, [])) for registry in registries]
    limiter.init_app(app)
    for registry, count in zip(registries, before, strict=True):
        added = registry[None][count:]
        del registry[None][count:]
        for name in blueprints:
            registry.setdefault(name, []).extend(added)


def _per_ip_and_key(
    limiter: Limiter, blueprint: Blueprint, value: str, scope: str, methods: list[str] | None = None
) -> None:
    """The same limit once per client IP and once per API key (when one is sent)."""
    limiter.shared_limit(value, scope=f"{scope}-ip", key_func=client_ip, methods=methods)(blueprint)
    limiter.shared_limit(
        value, scope=f"{scope}-key", key_func=api_key_identity, exempt_when=_no_key_sent, methods=methods
    )(blueprint)


def _too_many_requests(error: RateLimitExceeded) -> Response:
    """429 JSON with Retry-After: the seconds until the breached limit admits a request again."""
    breached = current_app.extensions["rate_limiter"].current_limit
    retry_after = 1
    if breached is not None:  # never longer than the window itself (Redis rounds reset times up)
        retry_after = max(1, min(breached.limit.get_expiry(), math.ceil(breached.reset_at - time.time())))
    message = f"Too many requests: the limit is {error.description}; retry after {retry_after} s."
    count_rate_limited(error.limit.scope)
    return render(RateLimited(message, retry_after=retry_after))


class CodeGuessingGuard:
    """Limits unknown-code lookups per client without taxing the redirect hot path.

    flask-limiter's check before every request costs ~100 µs, a third of a cached redirect. Here
    only a 404 touches the limit storage; a client that exhausts its allowance lands in a small
    in-process table and gets 429 on every redirect, hits included (so it learns nothing more),
    until its window ends. The lookup of that table is all a normal redirect pays.
    """

    MAX_BLOCKED = 100_000

    def __init__(self, limiter: Limiter, value: str, *, guarded: tuple[str | None, ...]) -> None:
        self.limiter = limiter
        self.item = limits.parse(value)
        self.guarded = guarded
        self.blocked: dict[str, float] = {}  # client → monotonic time its block ends
        self.lock = threading.Lock()

    def install(self, app: Flask) -> None:
        """Check blocked clients before, and count unknown codes after, each redirect-route request."""
        app.before_request(self.refuse_blocked)
        app.after_request(self.count_miss)

    def is_blocked(self, ip: str) -> bool:
        """True while `ip` has used up its allowance (a cheap check for the redirect fast path)."""
        return bool(self.blocked) and self.blocked.get(ip, 0.0) > time.monotonic()

    def refuse_blocked(self) -> None:
        """429 for a client whose guessing allowance is used up (only redirect-route requests)."""
        if not self.blocked or not self._is_lookup():
            return
        until = self.blocked.get(client_ip())
        if until is None:
            return
        remaining = until - time.monotonic()
        if remaining <= 0:
            with self.lock:
                self.blocked.pop(client_ip(), None)
            return
        count_rate_limited("code-guessing")
        raise RateLimited(
            f"Too many unknown short codes: the limit is {self.item}; retry after {math.ceil(remaining)} s.",
            retry_after=math.ceil(remaining),
        )

    def count_miss(self, response: Response) -> Response:
        """Count a 404 from the redirect route (or an unroutable path) against the client."""
        if response.status_code == 404 and self._is_lookup():
            self.record_miss(client_ip())
        return response

    def record_miss(self, ip: str) -> None:
        """Count one unknown code looked up by `ip`; block it once its allowance is used up."""
        strategy = self.limiter.limiter
        try:
            strategy.hit(self.item, "code-guessing", ip)
            exhausted = not strategy.test(self.item, "code-guessing", ip)
        except _storage_errors():
            log.warning("rate limit storage unreachable; unknown code not counted", exc_info=True)
            exhausted = False
        if exhausted:
            self._block(ip)

    def _is_lookup(self) -> bool:
        """A GET or HEAD on a route that answers 404 for unknown codes (creates are never refused here)."""
        return request.method in ("GET", "HEAD") and request.blueprint in self.guarded

    def _block(self, ip: str) -> None:
        now = time.monotonic()
        with self.lock:
            if len(self.blocked) >= self.MAX_BLOCKED:
                self.blocked = {key: until for key, until in self.blocked.items() if until > now}
            self.blocked[ip] = now + self.item.get_expiry()


def _storage_errors() -> tuple[type[Exception], ...]:
    """What an unreachable limit storage raises: OSError, and RedisError when the storage is Redis.

    redis is imported only by a Redis storage (REDIS_URL): importing it for the except clause alone
    cost every process ~5 MiB (docs/PERFORMANCE.md).
    """
    loaded = sys.modules.get("redis.exceptions")
    return (OSError,) if loaded is None else (loaded.RedisError, OSError)
