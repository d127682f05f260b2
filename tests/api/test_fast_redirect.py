"""The cached-redirect fast path answers exactly like the Flask route, and only when it may."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from app.api.fast_redirect import FastRedirect
from app.db import utcnow
from app.services.codes import CODE_PATTERN
from app.services.health import DatabaseCheck
from tests.api.test_rate_limits import assert_rate_limited, random_ip
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


# Unknown codes, proved absent by the known-codes filter (PostgreSQL: the change listener keeps it).

HTML_PAGE = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
TO_FLASK = "app bug: the fast path looks for the substring 'text/html' in Accept; Flask serves HTML"


def comparable(response) -> tuple:
    return response.status, response.data, sorted(response.headers.items())


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_an_unknown_code_is_404_without_flask_exactly_as_flask_answers_it(
    listening_client, make_client, accept
):
    headers = {"X-Request-ID": "same-id", "User-Agent": "curl/8.5"}  # the id is echoed by both
    if accept:
        headers["Accept"] = accept
    flask_answer = make_client(hsts_max_age=600).get("/kc-nosuch", headers=headers)
    client = listening_client(hsts_max_age=600)
    without_flask_route(client)
    fast = client.get("/kc-nosuch", headers=headers)
    assert fast.status_code == 404 and fast.get_json()["code"] == "not_found"
    assert comparable(fast) == comparable(flask_answer)
    assert fast.headers["Vary"] == "Accept" and fast.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/json",
        "application/json, text/html",
        "text/html;q=0.5, */*",
        HTML_PAGE,
        "text/html",
        "text/*",
        "TEXT/HTML",
        "application/json;q=0, */*",
        "*/*;q=0.1, application/json;q=0",
    ],
)
def test_unknown_codes_get_the_json_or_the_html_404_as_flask_chooses_by_accept(
    listening_client, make_client, accept
):
    headers = {"Accept": accept} if accept else {}
    flask_answer = make_client().get("/kc-nosuch", headers=headers)
    answer = listening_client().get("/kc-nosuch", headers=headers)
    assert (answer.status_code, answer.content_type) == (flask_answer.status_code, flask_answer.content_type)
    assert answer.headers["Vary"] == flask_answer.headers["Vary"]


def test_a_browser_asking_for_html_gets_the_404_page_from_flask(listening_client):
    response = listening_client().get("/kc-nosuch", headers={"Accept": HTML_PAGE})
    assert response.status_code == 404 and response.content_type == "text/html; charset=utf-8"
    assert "<h1>This short link does not exist</h1>" in response.get_data(as_text=True)


def test_unknown_codes_answered_without_flask_count_against_the_guessing_limit(listening_client):
    client = listening_client(ratelimit_enabled=True, ratelimit_misses="3/minute")
    without_flask_route(client)
    guesser = {"REMOTE_ADDR": random_ip()}
    assert [client.get(f"/kc-guess{i}", environ_base=guesser).status_code for i in range(3)] == [404] * 3
    assert_rate_limited(client.get("/kc-guess3", environ_base=guesser))
    assert client.get("/kc-guess3", environ_base={"REMOTE_ADDR": random_ip()}).status_code == 404


def test_a_link_created_through_this_process_is_not_404_before_its_notification(listening_client):
    client = listening_client()
    # Created in the test's transaction: no notification ever comes, only the creating request tells.
    created = client.post("/shorten", json={"url": "https://example.com/new", "alias": "kc-fresh"})
    assert created.status_code == 201
    assert client.get("/kc-fresh").status_code == 302


def answered_by_flask(client, endpoint: str) -> None:
    """Make the Flask view of `endpoint` answer 203 (never a fast-path status): who answered shows."""
    client.application.view_functions[endpoint] = lambda **arguments: ("from flask", 203)


def test_only_get_of_a_well_formed_code_takes_the_unknown_code_answer(listening_client):
    client = listening_client()
    answered_by_flask(client, "redirect.follow")
    assert client.head("/kc-nosuch").status_code == 203
    assert client.get("/kc-nosuch").status_code == 404
    assert client.get("/urls").status_code == 200  # a named route, never an unknown code
    assert client.get("/kc/nosuch").status_code == 404  # no code: the router's 404
    assert client.get("/kc~nosuch").status_code == 404


def test_without_the_filter_unknown_codes_go_through_flask(listening_client):
    client = listening_client(known_codes_filter=False)
    answered_by_flask(client, "redirect.follow")
    assert client.get("/kc-nosuch").status_code == 203


def test_no_named_route_could_be_taken_for_a_code(app):
    """The fast path answers 404 for any well-formed code it knows absent: a named route's first
    path segment must never be one (add it to RESERVED_CODES)."""
    static = {rule.rule.split("/")[1] for rule in app.url_map.iter_rules()}
    static = {segment for segment in static if "<" not in segment}
    assert {"health", "livez", "urls", "shorten", "docs", "metrics"} <= static
    shadowed = {segment for segment in static if re.fullmatch(CODE_PATTERN, segment)}
    assert not shadowed, f"named routes that look like codes: {sorted(shadowed)}"


# GET /health: answered before Flask while the shared database check says the database answers.


@contextmanager
def through_flask_only(client) -> Iterator[None]:
    """Send the client's requests past the fast path, straight to Flask."""
    application = client.application
    fast = application.wsgi_app
    assert isinstance(fast, FastRedirect)
    application.wsgi_app = fast.wsgi_app
    try:
        yield
    finally:
        application.wsgi_app = fast


def without_flask_health(client) -> None:
    def boom():
        raise AssertionError("/health reached the Flask route")

    client.application.view_functions["ops.health"] = boom


@pytest.mark.parametrize("listening", [False, True], ids=["no-listener", "listener"])
def test_health_from_the_fast_path_answers_like_flask(make_client, listening_client, listening):
    client = (listening_client if listening else make_client)(hsts_max_age=600)
    headers = {"X-Request-ID": "same-id"}
    with through_flask_only(client):
        flask_answer = client.get("/health", headers=headers)
    without_flask_health(client)
    fast = client.get("/health", headers=headers)
    assert fast.status_code == flask_answer.status_code == 200
    fast_body, flask_body = fast.get_json(), flask_answer.get_json()
    assert isinstance(fast_body.pop("database_latency_ms"), float)
    assert isinstance(flask_body.pop("database_latency_ms"), float)
    assert (
        fast_body
        == flask_body
        == {
            "status": "ok",
            "database": "ok",
            "cache_notifications": "listening" if listening else "off",
        }
    )
    assert int(fast.headers["Content-Length"]) == len(fast.data)
    assert fast.data.endswith(b"\n") and flask_answer.data.endswith(b"\n")
    different = {"Content-Length"}  # the latency's digits
    assert sorted((k, v) for k, v in fast.headers.items() if k not in different) == sorted(
        (k, v) for k, v in flask_answer.headers.items() if k not in different
    )


def test_health_from_the_fast_path_carries_the_cors_headers_flask_adds(make_client):
    client = make_client(cors_origins=("https://app.example",))
    origin = {"Origin": "https://app.example"}
    with through_flask_only(client):
        flask_answer = client.get("/health", headers=origin)
    assert flask_answer.headers["Access-Control-Allow-Origin"] == "https://app.example"
    fast = client.get("/health", headers=origin)
    assert fast.headers.get("Access-Control-Allow-Origin") == "https://app.example"
    # Without an Origin header too, the answer carries what flask-cors adds.
    with through_flask_only(client):
        plain_flask = client.get("/health")
    plain = client.get("/health")
    cors = [name for name, _ in plain_flask.headers.items() if name.startswith("Access-Control")]
    assert cors  # flask-cors answers even without an Origin header
    assert [plain.headers.get(name) for name in cors] == [plain_flask.headers.get(name) for name in cors]


def test_health_is_503_from_flask_when_the_database_is_down_and_every_probe_checks_again(
    broken_db_client,
):
    shared = broken_db_client.application.extensions["database_check"]
    response = broken_db_client.get("/health")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    body = response.get_json()
    assert body["status"] == body["database"] == "unavailable" and body["code"] == "database_unavailable"
    checks = shared.checks
    assert checks >= 1
    assert broken_db_client.get("/health").status_code == 503
    assert shared.checks > checks  # a failure is never reused by a later probe


def flaky_database(client) -> dict:
    """Replace the app's database check with one the test switches off and on (interval: a minute)."""
    state = {"up": False, "runs": 0}

    def check():
        state["runs"] += 1
        return state["up"], 1.0

    client.application.extensions["database_check"] = DatabaseCheck(60, check=check)
    return state


def test_health_turns_green_with_the_first_probe_after_the_database_is_back(make_client):
    client = make_client()
    database = flaky_database(client)
    assert client.get("/health").status_code == 503
    database["up"] = True
    without_flask_health(client)
    assert client.get("/health").status_code == 200  # the failure was not kept for the interval
    runs = database["runs"]
    database["up"] = False
    assert client.get("/health").status_code == 200  # the success is kept for the interval
    assert database["runs"] == runs


def test_a_failing_health_probe_runs_one_database_check(make_client):
    client = make_client()
    database = flaky_database(client)
    assert client.get("/health").status_code == 503
    assert database["runs"] == 1


@pytest.mark.parametrize(("interval_ms", "checks"), [(60_000, 1), (0, 2)])
def test_health_probes_within_the_interval_share_one_database_check(make_client, interval_ms, checks):
    client = make_client(health_check_interval=interval_ms / 1000)
    assert [client.get("/health").status_code for _ in range(2)] == [200, 200]
    assert client.application.extensions["database_check"].checks == checks


def test_head_health_is_left_to_flask(make_client):
    client = make_client()
    answered_by_flask(client, "ops.health")
    assert client.head("/health").status_code == 203
    assert client.get("/health").status_code == 200
