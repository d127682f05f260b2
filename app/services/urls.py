"""Validation and normalisation of target URLs."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import idna

from app.errors import InvalidUrl

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters that are legal in a URL and must survive re-quoting untouched (including '%').
_URL_SAFE = "/:@!$&'()*+,;=?#[]%~-._"
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def normalize_url(raw: str, *, max_length: int, own_netlocs: frozenset[str] = frozenset()) -> str:
    """Return `raw` as a normalised absolute http(s) URL, or raise InvalidUrl saying what to fix.

    `own_netlocs` are the `host:port` pairs this service answers on: a URL pointing there would
    make a redirect loop.
    """
    if not raw:
        raise InvalidUrl("url must not be empty; send an absolute URL like https://example.com/page")
    if len(raw) > max_length:
        raise InvalidUrl(f"url is {len(raw)} characters long; the maximum is {max_length}")
    if _WHITESPACE_OR_CONTROL.search(raw) or any(unicodedata.category(ch) == "Cf" for ch in raw):
        raise InvalidUrl("url must not contain spaces or control characters; percent-encode them (%20)")
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidUrl("url must start with http:// or https://")
    host = _ascii_host(parts.hostname or "")
    port = _port(parts)
    netloc = _netloc(parts, host, port, scheme)
    if _netloc_key(host, port or DEFAULT_PORTS[scheme]) in own_netlocs:
        raise InvalidUrl("url points at this shortener itself; shorten the final destination instead")
    url = urlunsplit((scheme, netloc, _quote(parts.path), _quote(parts.query), _quote(parts.fragment)))
    if len(url) > max_length:
        raise InvalidUrl(f"url is {len(url)} characters long once encoded; the maximum is {max_length}")
    return url


def netloc_key(host: str, port: int | None, scheme: str) -> str:
    """The `host:port` key used to recognise this service's own address."""
    return _netloc_key(_ascii_host(host), port or DEFAULT_PORTS.get(scheme, 80))


def _netloc_key(host: str, port: int) -> str:
    return f"{host}:{port}"


def _ascii_host(host: str) -> str:
    if not host:
        raise InvalidUrl("url must include a host name, e.g. https://example.com/")
    if ":" in host:  # IPv6 literal, already ASCII; urlsplit strips the brackets
        return host.lower()
    try:
        return idna.encode(host.rstrip("."), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise InvalidUrl(f"url host {host!r} is not a valid domain name") from None


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        raise InvalidUrl("url port must be a number between 0 and 65535") from None


def _netloc(parts: SplitResult, host: str, port: int | None, scheme: str) -> str:
    userinfo = parts.netloc.rpartition("@")[0]
    shown_host = f"[{host}]" if ":" in host else host
    shown_port = f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else ""
    prefix = f"{_quote(userinfo)}@" if userinfo else ""
    return f"{prefix}{shown_host}{shown_port}"


def _quote(part: str) -> str:
    return quote(part, safe=_URL_SAFE)
