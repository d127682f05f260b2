"""Security and caching headers on every response, and CORS only where configured."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.api.headers import STRICT_CSP
from app.db import utcnow
from tests.factories import make_link


def shorten(client, **fields):
    response = client.post("/shorten", json={"url": "https://example.com/h", **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["short_code"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/health"), ("GET", "/urls"), ("POST", "/shorten"), ("GET", "/nosuchcode"), ("GET", "/a/b")],
)
def test_every_api_answer_carries_the_security_headers_and_is_not_cached(client, method, path):
    response = client.open(path, method=method, json={"url": "https://example.com"})
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers.getlist("Server") == ["shortener"]  # no server software or version
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["Content-Security-Policy"] == STRICT_CSP
    assert headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in headers
    assert "Access-Control-Allow-Origin" not in headers


def test_temporary_redirects_are_never_cached_so_every_click_comes_back(client):
    for status in (302, 307):
        code = shorten(client, redirect_type=status)
        response = client.get(f"/{code}")
        assert response.status_code == status
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_permanent_redirects_may_be_cached_for_the_configured_age(make_client):
    client = make_client(permanent_redirect_max_age=120)
    for status in (301, 308):
        code = shorten(client, redirect_type=status)
        response = client.get(f"/{code}")
        assert response.status_code == status
        assert response.headers["Cache-Control"] == "public, max-age=120"


def test_permanent_redirect_cache_age_never_outlives_the_link(client):
    code = shorten(client, redirect_type=301, expires_at=(utcnow() + timedelta(seconds=42)).isoformat())
    age = int(client.get(f"/{code}").headers["Cache-Control"].removeprefix("public, max-age="))
    assert 30 <= age <= 42


def test_permanent_redirect_with_a_click_limit_is_not_cached(client):
    code = shorten(client, redirect_type=308, max_clicks=5)
    assert client.get(f"/{code}").headers["Cache-Control"] == "no-store"


def test_permanent_redirects_are_not_cached_when_the_age_is_zero(make_client):
    client = make_client(permanent_redirect_max_age=0)
    code = shorten(client, redirect_type=301)
    assert client.get(f"/{code}").headers["Cache-Control"] == "no-store"


def test_gone_and_unknown_codes_are_not_cached(client):
    code = make_link(is_active=False).code
    for path in (f"/{code}", "/unknown1"):
        response = client.get(path)
        assert response.status_code in (404, 410)
        assert response.headers["Cache-Control"] == "no-store"


def test_hsts_and_referrer_policy_follow_the_settings(make_client):
    client = make_client(hsts_max_age=31536000, referrer_policy="no-referrer")
    headers = client.get("/health").headers
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_cors_answers_only_configured_origins_and_only_on_api_paths(make_client):
    client = make_client(cors_origins=("https://app.example",))
    preflight = client.options(
        "/shorten",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    listed = client.get("/urls", headers={"Origin": "https://app.example"})
    assert listed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Link" in listed.headers["Access-Control-Expose-Headers"]
    foreign = client.get("/urls", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in foreign.headers
    code = shorten(client)
    redirect = client.get(f"/{code}", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in redirect.headers


def test_cors_is_off_unless_configured(client):
    response = client.get("/urls", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
