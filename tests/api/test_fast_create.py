"""Anonymous JSON creates are answered before Flask exactly as the route answers them; the rest is
left to the route, with the body intact, and counted once against the rate limits."""

from __future__ import annotations

import pytest
from peewee import OperationalError

from app.models import Link
from app.services import links
from tests.api.test_fast_redirect import through_flask_only
from tests.api.test_rate_limits import assert_rate_limited, random_ip
from tests.factories import make_link

TARGET = "https://example.com/fast/create"
ROUTE_ONLY_HEADERS = {"Content-Length", "Location"}  # differ with the code


def without_flask_create(client) -> None:
    """Make the create route fail loudly: only the fast path can answer now."""

    def boom():
        raise AssertionError("the create reached the Flask route")

    client.application.view_functions["links.create"] = boom


def route_calls(client) -> list[None]:
    """Count the requests that reach the create route (which still answers them)."""
    calls: list[None] = []
    view = client.application.view_functions["links.create"]

    def counted():
        calls.append(None)
        return view()

    client.application.view_functions["links.create"] = counted
    return calls


def create(client, body: object = None, ip: str = "192.0.2.9", **kwargs):
    kwargs.setdefault("json", {"url": TARGET} if body is None else body)
    return client.post("/shorten", environ_base={"REMOTE_ADDR": ip}, **kwargs)


def stored(code: str) -> Link | None:
    return Link.get_or_none(Link.code == code)


@pytest.mark.parametrize("path", ["/shorten", "/urls"])
def test_a_create_is_answered_without_flask_exactly_as_the_route_answers_it(make_client, path):
    client = make_client(hsts_max_age=600)
    headers = {"X-Request-ID": "same-id"}
    fields = {"url": TARGET, "title": "T", "max_clicks": 5, "redirect_type": 307}
    with through_flask_only(client):
        flask_answer = client.post(path, json={**fields, "alias": "fc-flask"}, headers=headers)
    without_flask_create(client)
    fast = client.post(path, json={**fields, "alias": "fc-fast"}, headers=headers)
    assert fast.status_code == flask_answer.status_code == 201
    assert fast.headers["Location"] == "http://localhost/urls/fc-fast"
    assert int(fast.headers["Content-Length"]) == len(fast.data) and fast.data.endswith(b"}\n")
    assert sorted((k, v) for k, v in fast.headers.items() if k not in ROUTE_ONLY_HEADERS) == sorted(
        (k, v) for k, v in flask_answer.headers.items() if k not in ROUTE_ONLY_HEADERS
    )
    fast_body, flask_body = fast.get_json(), flask_answer.get_json()
    assert list(fast_body) == list(flask_body)  # same fields, same order
    assert fast_body["short_url"] == "http://localhost/fc-fast"
    moments = ("created_at", "updated_at")
    assert {k: v for k, v in fast_body.items() if k not in ("short_code", "short_url", *moments)} == {
        k: v for k, v in flask_body.items() if k not in ("short_code", "short_url", *moments)
    }
    assert (
        fast.data.replace(b"fc-fast", b"fc-flask")
        .replace(fast_body["created_at"].encode(), flask_body["created_at"].encode())
        .replace(fast_body["updated_at"].encode(), flask_body["updated_at"].encode())
        == flask_answer.data
    )


def test_a_link_created_without_flask_is_stored_and_redirects(make_client):
    client = make_client()  # its own app: the test swaps a view
    without_flask_create(client)
    response = create(client, headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201
    code = response.get_json()["short_code"]
    assert stored(code).target_url == TARGET
    redirect = client.get(f"/{code}")
    assert redirect.status_code == 302 and redirect.headers["Location"] == TARGET


def test_the_configured_base_url_makes_the_short_url_and_location(make_client):
    client = make_client(base_url="https://sho.rt")
    without_flask_create(client)
    response = create(client)
    code = response.get_json()["short_code"]
    assert response.get_json()["short_url"] == f"https://sho.rt/{code}"
    assert response.headers["Location"] == f"https://sho.rt/urls/{code}"


def test_a_link_to_the_service_itself_is_refused_by_the_route_like_any_invalid_input(make_client):
    client = make_client()  # its own app: the test swaps a view
    calls = route_calls(client)
    response = create(client, {"url": "http://localhost/abc"})  # the request's own host
    assert response.status_code == 400 and response.get_json()["code"] == "invalid_url"
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"headers": {"Authorization": "Bearer nope"}}, 401, "unauthorized"),
        ({"headers": {"Authorization": "Basic abc"}}, 401, "unauthorized"),
        ({"headers": {"X-API-Key": "nope"}}, 401, "unauthorized"),
        ({"json": None, "data": b"{", "content_type": "application/json"}, 400, "malformed_json"),
        ({"json": None, "data": b"[]", "content_type": "application/json"}, 400, "invalid_input"),
        ({"json": None, "data": b'{"url": 1}', "content_type": "application/json"}, 400, "invalid_input"),
        ({"json": {"url": TARGET, "extra": 1}}, 400, "invalid_input"),
        ({"json": {"url": "ftp://example.com/x"}}, 400, "invalid_url"),
        (
            {"json": None, "data": b'{"url": "x"}', "content_type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
        ({"json": None, "data": b"", "content_type": "application/json"}, 400, "missing_body"),
        (
            {"json": None, "data": b'{"url":"' + b"a" * 70_000 + b'"}', "content_type": "application/json"},
            413,
            None,
        ),
        ({"headers": {"Host": "bad host"}}, 400, "invalid_host"),
    ],
    ids=[
        "bearer-key",
        "other-scheme",
        "x-api-key",
        "malformed-json",
        "not-an-object",
        "wrong-type",
        "unknown-field",
        "not-http",
        "not-json",
        "empty",
        "too-large",
        "invalid-host",
    ],
)
def test_requests_the_fast_path_cannot_answer_reach_the_route_with_their_body(
    make_client, kwargs, status, code
):
    client = make_client()  # its own app: the test swaps a view
    calls = route_calls(client)
    response = create(client, **kwargs)
    assert response.status_code == status, response.get_json()
    assert response.is_json and (code is None or response.get_json()["code"] == code)
    assert len(calls) == 1


def test_an_alias_already_taken_is_409_from_the_route_and_nothing_is_stored(make_client):
    client = make_client()  # its own app: the test swaps a view
    make_link(code="fc-taken", target_url="https://example.com/first")
    calls = route_calls(client)
    response = create(client, {"url": TARGET, "alias": "fc-taken"})
    assert response.status_code == 409 and response.get_json()["code"] == "alias_taken"
    assert len(calls) == 1
    assert stored("fc-taken").target_url == "https://example.com/first"


@pytest.mark.parametrize(
    "changes", [{"cors_origins": ("https://app.example",)}, {"anonymous_shorten": False}]
)
def test_with_cors_or_without_anonymous_creates_every_create_goes_through_the_route(make_client, changes):
    client = make_client(**changes)
    calls = route_calls(client)
    create(client)
    assert len(calls) == 1


def test_a_database_down_during_a_create_is_503_json(make_client, monkeypatch):
    client = make_client()  # its own app: the test swaps a view

    def down(link):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(links, "_insert_row", down)
    response = create(client)
    assert response.status_code == 503 and response.get_json()["code"] == "database_unavailable"


# Rate limits: flask-limiter counts a request atomically before the view, so with limits on every
# create goes through the route (tests/api/test_rate_limits.py covers the counting itself).


def test_with_rate_limits_on_creates_go_through_the_route_and_are_limited(make_client):
    client = make_client(ratelimit_enabled=True, ratelimit_create="3/minute")
    calls = route_calls(client)
    ip = random_ip()
    assert [create(client, ip=ip).status_code for _ in range(3)] == [201, 201, 201]
    assert_rate_limited(create(client, ip=ip))
    assert len(calls) == 3  # the refused one never reached the view


def test_a_connection_lost_at_commit_is_503_and_the_create_is_not_run_again(make_client, monkeypatch):
    client = make_client()
    inserts = []

    def committed_then_lost(link):
        inserts.append(link.code)  # as if stored, and the answer never arrived
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(links, "_insert_row", committed_then_lost)
    calls = route_calls(client)
    response = create(client)
    assert response.status_code == 503 and response.get_json()["code"] == "database_unavailable"
    assert response.headers["Cache-Control"] == "no-store" and response.headers["X-Request-ID"]
    assert len(calls) == 0
    assert len(inserts) == 1  # the create was not run a second time


def test_a_non_ascii_base_url_is_sent_ascii_in_location_as_the_route_does(make_client):
    client = make_client(base_url="https://bücher.example")
    without_flask_create(client)
    response = create(client)
    code = response.get_json()["short_code"]
    assert response.headers["Location"] == f"https://xn--bcher-kva.example/urls/{code}"


def test_fast_creates_are_counted_in_the_metrics_under_their_route(make_client):
    client = make_client(metrics_enabled=True, metrics_token="t")
    without_flask_create(client)
    assert create(client).status_code == 201
    assert client.post("/urls", json={"url": TARGET}).status_code == 201
    text = client.get("/metrics", headers={"Authorization": "Bearer t"}).get_data(as_text=True)
    for route in ("/shorten", "/urls"):
        labels = (f'route="{route}"', 'method="POST"', 'status="201"')
        assert any(
            row.startswith("shortener_http_requests_total{")
            and all(label in row for label in labels)
            and float(row.split()[-1]) >= 1
            for row in text.splitlines()
        ), route
