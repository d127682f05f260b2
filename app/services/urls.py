"""Validation and normalisation of target URLs."""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import idna

from app.errors import InvalidUrl

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters that are legal in a URL and must survive re-quoting untouched (including '%').
_URL_SAFE = "/:@!$&'()*+,;=?#[]%~-._"
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
# Names that resolve to the local machine or a private network by convention (RFC 6761, 6762,
# 8375, and the .internal TLD reserved for private use).
_PRIVATE_SUFFIXES = ("localhost", "localdomain", "local", "internal", "home.arpa", "lan", "intranet")
# WHATWG URL parsing reads a host whose last label is a number as IPv4 (http://2130706433/,
# http://0x7f.1/, http://0177.0.0.1/ all mean 127.0.0.1 to a browser).
_NUMERIC_LABEL = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Never public, whatever this Python's `is_global` says (its tables changed in 3.11.10 and 3.12.4):
# IPv4-compatible (deprecated, embeds IPv4), SIIT-translated, local-use NAT64, site-local and the
# documentation ranges.
_NOT_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(network)
    for network in ("::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "fec0::/10", "2001:db8::/32", "3fff::/20")
)
# A bracketed host is an IPv6 literal (no zone id, no IPvFuture), optionally followed by a port.
_BRACKETED_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\](?::[0-9]*)?")


def normalize_url(
    raw: str,
    *,
    max_length: int,
    own_netlocs: frozenset[str] = frozenset(),
    allow_private: bool = False,
    blocked_domains: frozenset[str] = frozenset(),
) -> str:
    """Return `raw` as a normalised absolute http(s) URL, or raise InvalidUrl saying what to fix.

    `own_netlocs` are the `host:port` pairs this service answers on: a URL pointing there would
    make a redirect loop. Hosts on private networks (IP literals outside the public internet,
    `localhost`, single-label names) are refused unless `allow_private`; hosts in
    `blocked_domains`, or under one of them, are always refused.
    """
    if not raw:
        raise InvalidUrl("url must not be empty; send an absolute URL like https://example.com/page")
    if len(raw) > max_length:
        raise InvalidUrl(f"url is {len(raw)} characters long; the maximum is {max_length}")
    if _WHITESPACE_OR_CONTROL.search(raw) or (
        not raw.isascii() and any(unicodedata.category(ch) in ("Cf", "Cs") for ch in raw)  # none is ASCII
    ):
        raise InvalidUrl("url must not contain spaces or control characters; percent-encode them (%20)")
    try:
        parts = urlsplit(raw)
        hostname = parts.hostname or ""
    except ValueError:  # unbalanced or invalid [IPv6] brackets
        raise InvalidUrl(
            "url host in [brackets] must be an IPv6 address, like https://[2001:db8::1]/"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidUrl("url must start with http:// or https://")
    if "@" in parts.netloc:
        raise InvalidUrl(
            "url must not contain credentials (user:password@host); they would be visible to anyone "
            "with the short link"
        )
    if ("[" in parts.netloc or "]" in parts.netloc) and not _BRACKETED_HOST.fullmatch(parts.netloc):
        raise InvalidUrl("url host in [brackets] must be an IPv6 address, like https://[2001:db8::1]/")
    host = _ascii_host(hostname)
    port = _port(parts)
    if _netloc_key(host, port or DEFAULT_PORTS[scheme]) in own_netlocs:
        raise InvalidUrl("url points at this shortener itself; shorten the final destination instead")
    _check_host_policy(host, allow_private=allow_private, blocked_domains=blocked_domains)
    netloc = _netloc(host, port, scheme)
    url = urlunsplit((scheme, netloc, _quote(parts.path), _quote(parts.query), _quote(parts.fragment)))
    if len(url) > max_length:
        raise InvalidUrl(f"url is {len(url)} characters long once encoded; the maximum is {max_length}")
    return url


def own_netlocs(bases: Iterable[str]) -> frozenset[str]:
    """The `host:port` keys of the addresses this service answers on (`bases`: absolute URLs).

    A base on a default port counts under both schemes: https://sho.rt is also reached as
    http://sho.rt, and a link there would loop just the same.
    """
    keys = set()
    for base in bases:
        parts = urlsplit(base)
        keys.add(netloc_key(parts.hostname or "", parts.port, parts.scheme))
        if parts.port is None:
            keys |= {netloc_key(parts.hostname or "", None, scheme) for scheme in ALLOWED_SCHEMES}
    return frozenset(keys)


def netloc_key(host: str, port: int | None, scheme: str) -> str:
    """The `host:port` key used to recognise this service's own address."""
    return _netloc_key(_ascii_host(host), port or DEFAULT_PORTS.get(scheme, 80))


def _netloc_key(host: str, port: int) -> str:
    return f"{host}:{port}"


def domain_key(domain: str) -> str:
    """`domain` as stored in a blocklist: lower-case ASCII (punycode), no trailing dot."""
    return _ascii_host(domain.strip().lower())


@functools.lru_cache(maxsize=4096)  # pure, and IDNA mapping is half a URL's cost; hosts repeat (bulk imports)
def _ascii_host(host: str) -> str:
    if not host:
        raise InvalidUrl("url must include a host name, e.g. https://example.com/")
    if ":" in host:  # IPv6 literal; urlsplit strips the brackets
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise InvalidUrl("url host is not a valid IPv6 address") from None
    try:
        # Map first (UTS 46 turns the ideographic and fullwidth full stops into "." and drops variation
        # selectors), then drop the root's trailing dot: "127.0.0.1" + U+3002 is checked as 127.0.0.1.
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False).rstrip(".")
        ascii_host = idna.encode(mapped).decode("ascii") if mapped else ""
    except (idna.IDNAError, UnicodeError):
        raise InvalidUrl(f"url host {host!r} is not a valid domain name") from None
    if not ascii_host:
        raise InvalidUrl("url must include a host name, e.g. https://example.com/")
    ipv4 = _whatwg_ipv4(ascii_host)
    return str(ipv4) if ipv4 is not None else ascii_host


def _whatwg_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a browser reads `host` as (decimal, octal and hex forms), or None for a name."""
    labels = host.split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    try:
        numbers = [_ipv4_number(label) for label in labels]
    except ValueError:
        raise InvalidUrl(f"url host {host!r} is not a valid IPv4 address") from None
    *head, last = numbers
    if len(numbers) > 4 or any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise InvalidUrl(f"url host {host!r} is not a valid IPv4 address")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_number(label: str) -> int:
    if label[:2].lower() == "0x":
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)
    return int(label, 10)


def _check_host_policy(host: str, *, allow_private: bool, blocked_domains: frozenset[str]) -> None:
    refusal = _host_refusal(host, allow_private, blocked_domains)
    if refusal is not None:
        raise InvalidUrl(refusal)


@functools.lru_cache(maxsize=4096)  # pure; hosts repeat, and a create spent ~10% of its time here
def _host_refusal(host: str, allow_private: bool, blocked_domains: frozenset[str]) -> str | None:
    """Why the policy refuses `host` (an ASCII host from `_ascii_host`), or None."""
    if _is_blocked(host, blocked_domains):
        return "url host is on this service's blocklist"
    if allow_private:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if "." not in host or _under_private_suffix(host):
            return f"url host {host!r} is a local or private name; link to a public host name"
        return None
    if not _is_public(address):
        return f"url host {host} is not a public internet address; link to a public host"
    return None


def _under_private_suffix(host: str) -> bool:
    return any(host == suffix or host.endswith(f".{suffix}") for suffix in _PRIVATE_SUFFIXES)


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for unicast addresses of the public internet, also behind IPv6 transition prefixes."""
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _NOT_PUBLIC_V6):
            return False
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not _is_public(embedded):
            return False
    return address.is_global and not address.is_multicast


def is_blocked_url(url: str, blocked_domains: frozenset[str]) -> bool:
    """True when the host of a stored (normalised) URL is on the blocklist or under a blocked domain."""
    return _is_blocked(urlsplit(url).hostname or "", blocked_domains)


def _is_blocked(host: str, blocked_domains: frozenset[str]) -> bool:
    if not blocked_domains:
        return False
    labels = host.split(".")
    return any(".".join(labels[index:]) in blocked_domains for index in range(len(labels)))


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        raise InvalidUrl("url port must be a number between 0 and 65535") from None


def _netloc(host: str, port: int | None, scheme: str) -> str:
    shown_host = f"[{host}]" if ":" in host else host
    shown_port = f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else ""
    return f"{shown_host}{shown_port}"


def _quote(part: str) -> str:
    return quote(part, safe=_URL_SAFE)
