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
        ("https://[2606:4700:0::1111]:8080/", "https://[2606:4700::1111]:8080/"),
        ("http://134744072/", "http://8.8.8.8/"),
        ("http://0x8.0x8.0x8.0x8/", "http://8.8.8.8/"),
        ("http://010.010.010.010/", "http://8.8.8.8/"),
        ("https://münchen.de/ü?q=ä#ö", "https://xn--mnchen-3ya.de/%C3%BC?q=%C3%A4#%C3%B6"),
        ("https://example.com/a%20b?x=%2F", "https://example.com/a%20b?x=%2F"),
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


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@example.com/",
        "https://user@example.com/",
        "https://paypal.com@evil.example/",
        "https://:@example.com/",
    ],
)
def test_normalize_url_refuses_credentials_without_echoing_them(url):
    with pytest.raises(InvalidUrl, match="credentials") as raised:
        normalize(url)
    assert "secret" not in str(raised.value)


PRIVATE_TARGETS = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://10.0.0.8/admin",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.10/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:c0a8:101::]/",
    "http://[ff02::1]/",
    "http://[::127.0.0.1]/",
    "http://[::a00:1]/",
    "http://[::ffff:0:7f00:1]/",
    "http://[64:ff9b:1::a00:1]/",
    "http://[fec0::1]/",
    "http://[3fff::1]/",
    "http://localhost/",
    "http://LOCALHOST:8080/",
    "http://localhost./",
    "http://app.localhost/",
    "http://printer.local/",
    "http://db.internal/",
    "http://router.home.arpa/",
    "http://intranet/",
]


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
def test_normalize_url_refuses_private_and_local_targets(url):
    with pytest.raises(InvalidUrl, match="public"):
        normalize(url)


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
def test_normalize_url_allows_private_targets_when_configured(url):
    assert normalize(url, allow_private=True).startswith("http://")


@pytest.mark.parametrize(
    "url",
    ["http://1.2.3.256/", "http://1.2.3.4.5/", "http://0x1g.1/", "http://4294967296/", "http://09.1.1.1/"],
)
def test_normalize_url_refuses_hosts_a_browser_cannot_read_as_ipv4(url):
    with pytest.raises(InvalidUrl, match="IPv4"):
        normalize(url)


def test_normalize_url_accepts_public_hosts_that_look_private():
    for url in ("https://localhost.example.com/", "https://local.example/", "https://10.example/"):
        assert normalize(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/",
        "https://EVIL.example./x",
        "https://a.b.evil.example/",
        "https://xn--bcher-kva.de/",
    ],
)
def test_normalize_url_refuses_blocked_domains_and_their_subdomains(url):
    blocked = frozenset({"evil.example", "xn--bcher-kva.de"})
    with pytest.raises(InvalidUrl, match="blocklist"):
        normalize(url, blocked_domains=blocked)


def test_normalize_url_blocklist_matches_whole_labels_only():
    blocked = frozenset({"evil.example"})
    assert normalize("https://notevil.example/", blocked_domains=blocked) == "https://notevil.example/"
    with pytest.raises(InvalidUrl, match="blocklist"):
        normalize("https://bücher.de/", blocked_domains=frozenset({"xn--bcher-kva.de"}))
