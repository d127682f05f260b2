"""Response headers every answer carries (security, caching) and CORS where configured."""

from __future__ import annotations

from flask import Flask, Response
from flask_cors import CORS

from app.config import Settings

# Nothing this service answers needs scripts, styles, frames or forms from anywhere: a response
# rendered by mistake as a page can do nothing. A route that serves a real page sets its own.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The API paths a browser app on another origin may call, when CORS_ORIGINS allows it. Redirects
# are plain navigations and need no CORS.
CORS_PATHS = r"^/(shorten|urls|stats|keys|users|health)(/.*)?$"


def security_headers(settings: Settings) -> dict[str, str]:
    """The headers every response carries, whatever the route."""
    always = {
        # A fixed token instead of the server's name and version (granian would announce itself;
        # gunicorn's own header is filtered out in gunicorn.conf.py).
        "Server": "shortener",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": settings.referrer_policy,
    }
    if settings.hsts_max_age:
        always["Strict-Transport-Security"] = f"max-age={settings.hsts_max_age}; includeSubDomains"
    return always


# Set unless the route chose its own.
DEFAULT_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": STRICT_CSP}


def register_response_headers(app: Flask, settings: Settings) -> None:
    """Add the security headers to every response, and CORS headers to API responses if configured."""
    always = security_headers(settings)
    defaults = DEFAULT_HEADERS

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.update(always)
        for name, value in defaults.items():
            headers.setdefault(name, value)
        return response

    if settings.cors_origins:
        CORS(
            app,
            resources={CORS_PATHS: {}},
            origins="*" if "*" in settings.cors_origins else list(settings.cors_origins),
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["Link", "Location", "Retry-After", "X-Request-ID"],
            methods=["GET", "POST", "PATCH", "DELETE"],
            max_age=600,
            supports_credentials=False,
        )
