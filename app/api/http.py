"""HTTP helpers shared by the blueprints: settings, public addresses, serialisation."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, request

from app.config import Settings
from app.errors import InvalidHost
from app.models import Link
from app.services.urls import netloc_key


def settings() -> Settings:
    """The settings the running app was created with."""
    return current_app.extensions["settings"]


def public_base() -> str:
    """The base of short URLs: BASE_URL when configured, else the (proxy-aware) request host."""
    configured = settings().base_url
    if configured:
        return configured
    if not request.host:  # werkzeug blanks a Host header it finds invalid
        raise InvalidHost()
    return request.host_url.rstrip("/")


def own_netlocs() -> frozenset[str]:
    """The host:port pairs this service answers on (configured base URL and the request's host)."""
    bases = {public_base(), request.host_url} if request.host else {public_base()}
    keys = set()
    for base in bases:
        parts = urlsplit(base)
        keys.add(netloc_key(parts.hostname or "", parts.port, parts.scheme))
    return frozenset(keys)


def link_json(link: Link, base: str) -> dict:
    """The public JSON form of a link (the original API's field names)."""
    return {
        "short_code": link.code,
        "short_url": f"{base}/{link.code}",
        "original_url": link.target_url,
        "created_at": link.created_at.isoformat(),
    }
