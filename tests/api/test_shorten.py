"""POST /shorten: validation, normalisation, persistence and the response shape."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.models import Link
from app.services.codes import ALPHABET


def shorten(client, url, **kwargs):
    return client.post("/shorten", json={"url": url}, **kwargs)


def test_shorten_valid_url_returns_201_with_link(client):
    response = shorten(client, "https://example.com/a/b?c=d#e")
    assert response.status_code == 201
    body = response.get_json()
    assert {"short_code", "short_url", "original_url", "created_at"} <= set(body)
    assert body["state"] == "active" and body["click_count"] == 0 and body["owner_id"] is None
    assert body["original_url"] == "https://example.com/a/b?c=d#e"
    assert body["short_url"] == f"http://localhost/{body['short_code']}"
    assert len(body["short_code"]) == 7 and set(body["short_code"]) <= set(ALPHABET)
    assert datetime.fromisoformat(body["created_at"]).utcoffset().total_seconds() == 0
    assert response.headers["Location"] == f"http://localhost/urls/{body['short_code']}"


def test_shorten_stores_the_link(client):
    body = shorten(client, "https://example.com/stored").get_json()
    assert Link.get(Link.code == body["short_code"]).target_url == "https://example.com/stored"


def test_shorten_accepts_plain_http(client):
    assert shorten(client, "http://example.com").status_code == 201


def test_shorten_gives_distinct_codes_for_the_same_url(client):
    codes = {shorten(client, "https://example.com").get_json()["short_code"] for _ in range(20)}
    assert len(codes) == 20


def test_shorten_keeps_urls_longer_than_255_characters(client):
    url = "https://example.com/" + "a" * 1500
    body = shorten(client, url).get_json()
    assert body["original_url"] == url
    assert client.get(f"/{body['short_code']}").headers["Location"] == url


def test_shorten_converts_idn_hosts_to_punycode(client):
    body = shorten(client, "https://Bücher.Example/straße").get_json()
    assert body["original_url"] == "https://xn--bcher-kva.example/stra%C3%9Fe"


def test_shorten_uses_configured_base_url(make_client):
    client = make_client(base_url="https://sho.rt")
    body = shorten(client, "https://example.com").get_json()
    assert body["short_url"] == f"https://sho.rt/{body['short_code']}"


def test_shorten_ignores_forwarded_headers_by_default(client):
    headers = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    body = shorten(client, "https://example.com", headers=headers).get_json()
    assert body["short_url"].startswith("http://localhost/")


def test_shorten_trusts_forwarded_headers_when_configured(make_client):
    client = make_client(trusted_proxies=1)
    headers = {"X-Forwarded-Host": "sho.rt", "X-Forwarded-Proto": "https"}
    body = shorten(client, "https://example.com", headers=headers).get_json()
    assert body["short_url"] == f"https://sho.rt/{body['short_code']}"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("example.com", "http:// or https://"),
        ("www.example.com/path", "http:// or https://"),
        ("ftp://example.com/file", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("not a url", "spaces"),
        ("", "must not be empty"),
        ("https://", "host"),
        ("https:///path-only", "host"),
        ("https://exa mple.com", "spaces"),
        ("https://example.com/\r\nSet-Cookie:x", "control"),
        ("https://example.com/\x00", "control"),
        ("https://example.com/\u200bhidden", "control"),
        ("https://example.com:99999/", "port"),
        ("https://exa_mple..com/", "valid domain"),
        ("https://" + "a" * 2100 + ".com", "maximum is 2048"),
        ("http://localhost/abc", "this shortener"),
    ],
)
def test_shorten_rejects_invalid_url_with_message(client, url, fragment):
    response = shorten(client, url)
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "invalid_url"
    assert fragment in body["error"]


def test_shorten_rejects_links_to_the_configured_base_url(make_client):
    client = make_client(base_url="https://sho.rt")
    response = shorten(client, "https://SHO.RT:443/abcdefg")
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_url"


@pytest.mark.parametrize("url", ["http://sho.rt/abcdefg", "http://sho.rt:80/x", "https://sho.rt/x"])
def test_shorten_rejects_links_to_the_base_url_under_either_scheme(make_client, url):
    client = make_client(base_url="https://sho.rt")
    assert shorten(client, url).get_json()["code"] == "invalid_url"
    assert shorten(client, "https://sho.rt:8443/x").status_code == 201  # another port is another service


def test_shorten_allows_same_host_on_another_port_when_private_targets_are_allowed(make_client):
    client = make_client(allow_private_targets=True)
    assert shorten(client, "http://localhost:9999/app").status_code == 201


def test_shorten_honours_configured_max_url_length(make_client):
    client = make_client(max_url_length=40, max_request_bytes=4096)
    assert shorten(client, "https://example.com/" + "a" * 20).status_code == 201
    response = shorten(client, "https://example.com/" + "a" * 21)
    assert response.status_code == 400 and "maximum is 40" in response.get_json()["error"]


def test_shorten_missing_url_field_names_it(client):
    response = client.post("/shorten", json={})
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "invalid_input"
    assert body["fields"] == {"url": "this field is required"}


def test_shorten_rejects_unknown_fields_naming_them(client):
    response = client.post("/shorten", json={"url": "https://example.com", "colour": "red"})
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"colour": "unknown field; remove it"}


@pytest.mark.parametrize("value", [None, 42, ["https://example.com"], {"u": 1}, True])
def test_shorten_rejects_non_string_url(client, value):
    response = client.post("/shorten", json={"url": value})
    assert response.status_code == 400
    assert "url" in response.get_json()["fields"]


@pytest.mark.parametrize("body", ["[]", '"https://example.com"', "42", "null"])
def test_shorten_rejects_json_that_is_not_an_object(client, body):
    response = client.post("/shorten", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] in {"invalid_input", "malformed_json"}


def test_shorten_without_body_is_400(client):
    response = client.post("/shorten")
    assert response.status_code == 400
    assert response.get_json()["code"] == "missing_body"


def test_shorten_with_non_json_content_type_is_415(client):
    response = client.post(
        "/shorten", data="url=https://example.com", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.get_json()["code"] == "unsupported_media_type"


def test_shorten_with_malformed_json_is_400(client):
    response = client.post("/shorten", data='{"url": ', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == "malformed_json"


def test_shorten_with_oversized_body_is_413(client, settings):
    padding = "x" * settings.max_request_bytes
    response = client.post("/shorten", json={"url": "https://example.com", "pad": padding})
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


def test_shorten_when_database_is_down_is_503_json(broken_db_client):
    response = shorten(broken_db_client, "https://example.com")
    assert response.status_code == 503
    assert response.get_json()["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize("host", ["localhost:notaport", "evil.example/path", "a b"])
def test_shorten_with_invalid_host_header_is_400(client, host):
    response = shorten(client, "https://example.com", headers={"Host": host})
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_host"


def test_shorten_with_invalid_host_header_uses_base_url_when_configured(make_client):
    client = make_client(base_url="https://sho.rt")
    response = shorten(client, "https://example.com", headers={"Host": "localhost:notaport"})
    assert response.status_code == 201
    assert response.get_json()["short_url"].startswith("https://sho.rt/")
