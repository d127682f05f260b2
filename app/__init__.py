"""The URL shortener: `create_app` is the only place that wires things together."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app from `settings` (read from the environment when omitted)."""
    from app import cli, db, errors, web
    from app.api import headers, keys, limits, links, metrics, openapi, ops, qr, redirect, stats, users
    from app.api.fast_redirect import FastRedirect
    from app.services.clicks import ClickRecorder
    from app.services.health import DatabaseCheck
    from app.services.known_codes import KnownCodes, RecentCodes
    from app.services.link_cache import LinkCache
    from app.services.link_events import LinkChangeListener, listener_kwargs
    from app.web import pages

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["settings"] = settings
    listening = settings.is_postgres and settings.redirect_cache_notify and settings.redirect_cache_size > 0
    cache = LinkCache(
        settings.redirect_cache_size,
        settings.redirect_cache_ttl,
        notified_ttl=settings.redirect_cache_notified_ttl,
        # Kept current by the change listener, so only with one (PostgreSQL notifications).
        known_codes=KnownCodes(recent=RecentCodes()) if listening and settings.known_codes_filter else None,
    )
    app.extensions["link_cache"] = cache
    app.extensions["database_check"] = DatabaseCheck(settings.health_check_interval)
    app.extensions["clicks"] = ClickRecorder(
        interval=settings.click_flush_interval,
        max_events=settings.click_buffer_size,
        background=settings.click_flush_interval > 0,
        analytics=settings.click_analytics,
    )
    app.json.sort_keys = False
    metrics.init_app(app, settings)  # request ids, access log, /metrics: before every other hook
    # The cached-redirect fast path sits behind ProxyFix, so it sees the real client address.
    app.wsgi_app = FastRedirect(app.wsgi_app, app)
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.url_map.converters["code"] = redirect.CodeConverter
    database = db.make_database(settings)
    db.init_app(app, database, recycle_after=settings.db_stale_timeout)
    if listening:
        listener = LinkChangeListener(listener_kwargs(database), cache)
        app.extensions["link_events"] = listener
        # Started per process (threads do not survive a fork) by the first request: app/api/fast_redirect.py.
    errors.register_error_handlers(app)
    headers.register_response_headers(app, settings)
    limits.init_rate_limits(
        app,
        settings,
        create=links.bp,
        manage=[links.bp, keys.bp, users.bp, stats.bp, qr.bp, metrics.bp, pages.bp],
        redirect=redirect.bp,
        code_routes=[links.bp, qr.bp, stats.bp, pages.bp],
    )
    app.register_blueprint(ops.bp)
    app.register_blueprint(links.bp)
    app.register_blueprint(keys.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(stats.bp)
    app.register_blueprint(qr.bp)
    app.register_blueprint(openapi.docs)
    web.register(app)  # the web page and HTML 404/410 pages for browsers
    app.register_blueprint(redirect.bp)  # last: its /<code> must not shadow named routes
    cli.register(app)
    return app
