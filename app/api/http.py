"""HTTP helpers shared by the blueprints: settings, public addresses, serialisation."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, request

from app.config import Settings
from app.models import Link
from app.services.urls import netloc_key


def settings() -> Settings:
    """The settings the running app was created with."""
    return current_app.extensions["settings"]


def public_base() -> str:
    """The base of short URLs: BASE_URL when configured, else the (proxy-aware) request host."""
    return settings().base_url or request.host_url.rstrip("/")


def own_netlocs() -> frozenset[str]:
    """The host:port pairs this service answers on (configured base URL and the request's host)."""
    keys = set()
    for base in {public_base(), request.host_url}:
        parts = urlsplit(base)
        try:
            keys.add(netloc_key(parts.hostname or "", parts.port, parts.scheme))
        except ValueError:  # a Host header we cannot parse simply matches nothing
            continue
    return frozenset(keys)


def link_json(link: Link, base: str) -> dict:
    """The public JSON form of a link (the original API's field names)."""
    return {
        "short_code": link.code,
        "short_url": f"{base}/{link.code}",
        "original_url": link.target_url,
        "created_at": link.created_at.isoformat(),
    }
