"""Rate limits: per client IP and per API key, 429 JSON with Retry-After, shared through Redis."""

from __future__ import annotations

import secrets
import socket

import pytest

from tests.factories import auth, make_key, make_user


def random_ip() -> str:
    """A client address no other test (or earlier run sharing a Redis) has used."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def create(client, ip: str = "192.0.2.1", headers: dict | None = None):
    return client.post(
        "/shorten",
        json={"url": "https://example.com/r"},
        headers=headers or {},
        environ_base={"REMOTE_ADDR": ip},
    )


def limited_client(make_client, **limits):
    return make_client(ratelimit_enabled=True, **limits)


def assert_rate_limited(response):
    assert response.status_code == 429
    body = response.get_json()
    assert body["code"] == "rate_limited"
    assert "3 per 1 minute" in body["error"], body
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_creates_beyond_the_limit_get_429_json_with_retry_after(make_client):
    client = limited_client(make_client, ratelimit_create="3/minute")
    assert [create(client).status_code for _ in range(3)] == [201, 201, 201]
    assert_rate_limited(create(client))


def test_the_create_limit_counts_each_client_ip_separately(make_client):
    client = limited_client(make_client, ratelimit_create="3/minute")
    for _ in range(3):
        create(client, ip="192.0.2.1")
    assert create(client, ip="192.0.2.1").status_code == 429
    assert create(client, ip="192.0.2.2").status_code == 201


def test_the_create_limit_follows_an_api_key_across_addresses(make_client):
    client = limited_client(make_client, ratelimit_create="3/minute")
    key = make_key(make_user())
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert create(client, ip=ip, headers=auth(key)).status_code == 201
    assert_rate_limited(create(client, ip="192.0.2.4", headers=auth(key)))
    assert create(client, ip="192.0.2.4").status_code == 201  # the address itself is not limited


def test_management_endpoints_share_one_limit_per_client(make_client):
    client = limited_client(make_client, ratelimit_manage="3/minute")
    statuses = [client.get(path).status_code for path in ("/urls", "/urls", "/keys")]
    assert statuses == [200, 200, 401]
    assert_rate_limited(client.get("/urls"))


def test_health_and_redirects_of_existing_links_are_never_limited(make_client):
    client = limited_client(make_client, ratelimit_manage="3/minute", ratelimit_misses="3/minute")
    code = create(client).get_json()["short_code"]
    assert {client.get(f"/{code}").status_code for _ in range(10)} == {302}
    assert {client.get("/health").status_code for _ in range(10)} == {200}


def test_guessing_codes_is_limited_per_client(make_client):
    client = limited_client(make_client, ratelimit_misses="3/minute")
    code = create(client).get_json()["short_code"]
    assert [client.get(f"/guess{i}").status_code for i in range(3)] == [404, 404, 404]
    assert_rate_limited(client.get("/guess3"))
    assert client.get(f"/{code}", environ_base={"REMOTE_ADDR": "192.0.2.9"}).status_code == 302


def test_guessing_api_keys_is_limited_per_client_without_echoing_the_key(make_client):
    client = limited_client(make_client, ratelimit_auth_failures="3/minute")
    wrong = {"Authorization": "Bearer not-a-real-key-0123456789"}
    assert [client.get("/keys", headers=wrong).status_code for _ in range(3)] == [401, 401, 401]
    response = client.get("/keys", headers=wrong)
    assert_rate_limited(response)
    assert "not-a-real-key" not in response.get_data(as_text=True)
    # A valid key from the same address is refused too until the window passes.
    key = make_key(make_user())
    assert client.get("/keys", headers=auth(key)).status_code == 429


def test_limits_are_off_when_disabled(make_client):
    client = make_client(ratelimit_enabled=False, ratelimit_create="1/minute")
    assert {create(client).status_code for _ in range(5)} == {201}


def redis_available() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not redis_available(), reason="no Redis on 127.0.0.1:6379")
def test_replicas_share_counts_through_redis(make_client):
    settings = {"ratelimit_create": "3/minute", "redis_url": "redis://127.0.0.1:6379/0"}
    first = limited_client(make_client, **settings)
    second = limited_client(make_client, **settings)
    ip = random_ip()
    assert [create(c, ip=ip).status_code for c in (first, second, first)] == [201, 201, 201]
    assert_rate_limited(create(second, ip=ip))


def test_an_unreachable_redis_falls_back_to_counting_in_memory(make_client):
    client = limited_client(make_client, ratelimit_create="3/minute", redis_url="redis://127.0.0.1:1/0")
    assert [create(client).status_code for _ in range(3)] == [201, 201, 201]
    assert_rate_limited(create(client))


def test_unknown_codes_are_still_answered_404_while_the_redis_storage_is_unreachable(make_client, caplog):
    client = limited_client(make_client, ratelimit_misses="3/minute", redis_url="redis://127.0.0.1:1/0")
    assert [client.get(f"/nosuch{i}").status_code for i in range(5)] == [404] * 5  # never counted
    assert "rate limit storage unreachable; unknown code not counted" in caplog.text


def test_guessing_codes_through_the_link_pages_counts_too(make_client):
    client = limited_client(make_client, ratelimit_misses="3/minute")
    assert [client.get(f"/links/guess{i}").status_code for i in range(3)] == [404, 404, 404]
    assert_rate_limited(client.get("/links/guess3"))
    assert_rate_limited(client.get("/guess4"))  # the same allowance as the redirect's


def test_the_key_limit_cannot_be_dodged_by_spelling_the_header_differently(make_client):
    client = limited_client(make_client, ratelimit_manage="3/minute")
    key = make_key(make_user())
    spellings = [
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"bearer   {key}  "},
        {"X-API-Key": key},
        {"X-API-Key": f" {key} "},
    ]
    statuses = [
        client.get("/keys", headers=h, environ_base={"REMOTE_ADDR": f"192.0.2.{i}"})
        for i, h in enumerate(spellings, start=10)
    ]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]


def test_wrong_metrics_tokens_count_as_failed_authentication(make_client):
    client = limited_client(make_client, ratelimit_auth_failures="3/minute", metrics_token="t" * 40)
    wrong = {"Authorization": "Bearer " + "x" * 40}
    assert [client.get("/metrics", headers=wrong).status_code for _ in range(3)] == [401, 401, 401]
    assert_rate_limited(client.get("/metrics", headers=wrong))


@pytest.mark.parametrize("path", ["/urls/guess{}", "/urls/guess{}/qr", "/urls/guess{}/stats"])
def test_guessing_codes_through_any_code_route_counts_and_is_refused_there(make_client, path):
    client = limited_client(make_client, ratelimit_misses="3/minute")
    assert [client.get(path.format(i)).status_code for i in range(3)] == [404, 404, 404]
    assert_rate_limited(client.get(path.format(3)))
    assert_rate_limited(client.get("/guess4"))
    assert create(client, ip="127.0.0.1").status_code == 201  # creating is not guessing
