"""HTTP helpers shared by the blueprints: settings, caller identity, public addresses, serialisation."""

from __future__ import annotations

import functools
from datetime import datetime

from flask import current_app, g, request
from werkzeug.sansio.utils import get_current_url

from app.config import Settings
from app.errors import InvalidHost, Unauthorized
from app.models import ApiKey, Link, User
from app.services import api_keys, urls
from app.services.api_keys import Principal
from app.services.clicks import ClickRecorder
from app.services.link_cache import LinkCache
from app.services.links import link_state


def settings() -> Settings:
    """The settings the running app was created with."""
    return current_app.extensions["settings"]


def clicks() -> ClickRecorder:
    """This process's click counter."""
    return current_app.extensions["clicks"]


def link_cache() -> LinkCache:
    """This process's redirect cache."""
    return current_app.extensions["link_cache"]


def current_principal() -> Principal | None:
    """The caller behind the API key in `Authorization: Bearer` or `X-API-Key`; None if no key sent.

    A key that is sent but invalid is a 401, never a silent fallback to anonymous.
    """
    if "principal" not in g:
        raw = _presented_key()
        g.principal = api_keys.authenticate(raw) if raw is not None else None
    return g.principal


def require_principal() -> Principal:
    """The authenticated caller; 401 when no key was sent."""
    principal = current_principal()
    if principal is None:
        raise Unauthorized()
    return principal


def _presented_key() -> str | None:
    key = presented_key()
    if key == "":
        raise Unauthorized("Send the key as Authorization: Bearer <key>.")
    return key


def presented_key() -> str | None:
    """The key the request presents (`Authorization: Bearer` or `X-API-Key`), normalised; "" for a
    malformed Authorization header, None when no key is sent. Never raises (rate limits use it)."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return request.headers.get("X-API-Key", "").strip() or None


def public_base() -> str:
    """The base of short URLs: BASE_URL when configured, else the (proxy-aware) request host."""
    return addresses_of(settings().base_url, request.scheme, request.host)[0]


@functools.lru_cache(maxsize=1024)
def _host_base(scheme: str, host: str) -> str:
    """`request.host_url` without its slash, built once per scheme and host (~10 µs each time)."""
    return get_current_url(scheme, host).rstrip("/")


def own_netlocs() -> frozenset[str]:
    """The host:port pairs this service answers on (configured base URL and the request's host)."""
    return addresses_of(settings().base_url, request.scheme, request.host)[1]


def addresses_of(base_url: str | None, scheme: str, host: str) -> tuple[str, frozenset[str]]:
    """`public_base()` and `own_netlocs()` of a request to `host` (validated: werkzeug blanks a Host
    header it finds invalid) over
    `scheme`, for a service configured with `base_url`; InvalidHost when neither gives a base."""
    if not host:
        if not base_url:
            raise InvalidHost()
        return base_url, _own_netlocs(base_url)
    from_host = _host_base(scheme, host)
    base = base_url or from_host
    return base, _own_netlocs(base, from_host)


@functools.lru_cache(maxsize=1024)
def _own_netlocs(*bases: str) -> frozenset[str]:
    return urls.own_netlocs(bases)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def link_json(link: Link, base: str) -> dict:
    """The public JSON form of a link (the original API's fields first)."""
    return {
        "short_code": link.code,
        "short_url": f"{base}/{link.code}",
        "original_url": link.target_url,
        "created_at": _iso(link.created_at),
        "updated_at": _iso(link.updated_at),
        "title": link.title,
        "expires_at": _iso(link.expires_at),
        "max_clicks": link.max_clicks,
        "redirect_type": link.redirect_type,
        "is_active": link.is_active,
        "state": link_state(link),
        "click_count": link.click_count,
        "human_click_count": link.human_click_count,
        "owner_id": link.owner_id,
    }


def key_json(key: ApiKey, secret: str | None = None) -> dict:
    """The public JSON form of an API key; the secret only right after creation."""
    body = {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "user_id": key.user_id,
        "created_at": _iso(key.created_at),
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
        "last_used_at": _iso(key.last_used_at),
    }
    if secret is not None:
        body["key"] = secret
    return body


def user_json(user: User) -> dict:
    """The public JSON form of a user."""
    return {"id": user.id, "name": user.name, "role": user.role, "created_at": _iso(user.created_at)}
