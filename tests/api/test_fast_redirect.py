"""The cached-redirect fast path answers exactly like the Flask route, and only when it may."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import utcnow
from tests.factories import make_link

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}


def without_flask_route(client):
    """Make the Flask redirect view fail loudly: only the fast path can answer now."""

    def boom(code):
        raise AssertionError(f"/{code} reached the Flask route")

    client.application.view_functions["redirect.follow"] = boom


def headers_of(response) -> dict[str, str]:
    return dict(response.headers)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_cached_redirect_is_answered_with_the_same_status_and_headers_without_flask(make_client, status):
    client = make_client(hsts_max_age=600)
    code = make_link(redirect_type=status).code
    headers = {**BROWSER, "X-Request-ID": "same-id"}  # echoed by both paths
    first = client.get(f"/{code}", headers=headers)  # a miss: the Flask route loads and caches it
    without_flask_route(client)
    second = client.get(f"/{code}", headers=headers)
    assert second.status == first.status and second.data == first.data == b""
    assert headers_of(second) == headers_of(first)
    assert "Content-Type" not in second.headers


def test_fast_path_clicks_are_recorded_and_head_is_not_a_click(make_client):
    client = make_client()
    link = make_link()
    client.get(f"/{link.code}", headers=BROWSER)
    without_flask_route(client)
    for _ in range(3):
        assert client.get(f"/{link.code}", headers=BROWSER).status_code == 302
    assert client.head(f"/{link.code}").status_code == 302
    assert client.application.extensions["clicks"].pending(link.id) == 4


def test_a_cached_link_that_expired_meanwhile_is_410_through_the_route(make_client):
    client = make_client()
    code = make_link(expires_at=utcnow() + timedelta(seconds=1)).code
    assert client.get(f"/{code}").status_code == 302
    cache = client.application.extensions["link_cache"]
    row = cache.peek(code)
    cache.put(code, (*row[:4], utcnow() - timedelta(seconds=1), *row[5:]))  # as if time passed
    response = client.get(f"/{code}")
    assert response.status_code == 410 and response.get_json()["code"] == "link_gone"


def test_cached_misses_and_other_paths_go_through_flask(client):
    assert client.get("/unknown1").status_code == 404
    assert client.get("/unknown1").get_json()["code"] == "not_found"  # cached miss, still JSON
    assert client.get("/health").status_code == 200
    code = make_link().code
    client.get(f"/{code}")
    assert client.post(f"/{code}").status_code == 405  # other methods never take the fast path


def test_a_client_blocked_for_guessing_is_refused_even_for_cached_links(make_client):
    client = make_client(ratelimit_enabled=True, ratelimit_misses="2/minute")
    code = make_link().code
    assert client.get(f"/{code}").status_code == 302  # cached now
    for i in range(2):
        client.get(f"/guess{i}")
    response = client.get(f"/{code}")
    assert response.status_code == 429 and response.get_json()["code"] == "rate_limited"
    assert client.get(f"/{code}", environ_base={"REMOTE_ADDR": "192.0.2.50"}).status_code == 302


def test_fast_path_uses_the_proxy_supplied_client_address(make_client):
    client = make_client(trusted_proxies=1, ratelimit_enabled=True, ratelimit_misses="2/minute")
    code = make_link().code
    client.get(f"/{code}")
    forwarded = {"X-Forwarded-For": "198.51.100.7"}
    for i in range(2):
        client.get(f"/guess{i}", headers=forwarded)
    assert client.get(f"/{code}", headers=forwarded).status_code == 429
    assert client.get(f"/{code}", headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 302
