"""URL validation and normalisation rules."""

from __future__ import annotations

import pytest

from app.errors import InvalidUrl
from app.services.urls import netloc_key, normalize_url


def normalize(url: str, **kwargs) -> str:
    return normalize_url(url, max_length=kwargs.pop("max_length", 2048), **kwargs)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTPS://Example.COM/Path", "https://example.com/Path"),
        ("https://example.com:443/", "https://example.com/"),
        ("http://example.com:80", "http://example.com"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://example.com./", "https://example.com/"),
        ("https://[2001:DB8::1]:8080/", "https://[2001:db8::1]:8080/"),
        ("https://münchen.de/ü?q=ä#ö", "https://xn--mnchen-3ya.de/%C3%BC?q=%C3%A4#%C3%B6"),
        ("https://example.com/a%20b?x=%2F", "https://example.com/a%20b?x=%2F"),
        ("https://user@example.com/", "https://user@example.com/"),
    ],
)
def test_normalize_url_canonicalises(raw, expected):
    assert normalize(raw) == expected


def test_normalize_url_counts_length_after_encoding():
    with pytest.raises(InvalidUrl, match="once encoded"):
        normalize("https://example.com/" + "é" * 10, max_length=40)


def test_normalize_url_refuses_own_address_with_default_port():
    own = frozenset({netloc_key("sho.rt", None, "https")})
    with pytest.raises(InvalidUrl, match="this shortener"):
        normalize("https://sho.rt/abc", own_netlocs=own)
    assert normalize("https://sho.rt:8443/abc", own_netlocs=own) == "https://sho.rt:8443/abc"


def test_netloc_key_uses_scheme_default_port():
    assert netloc_key("Example.com", None, "http") == "example.com:80"
    assert netloc_key("example.com", 8080, "https") == "example.com:8080"
