"""Missing (404) and dead (410) links: a friendly page for browsers, the JSON error for everyone else."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import utcnow
from app.web.render import PAGE_CSP
from tests.factories import make_link

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
API_ACCEPTS = [None, "*/*", "application/json", "application/json, text/html", "text/html;q=0.5, */*"]


def get(client, path: str, accept: str | None):
    return client.get(path, headers={"Accept": accept} if accept else {})


def test_a_browser_following_an_unknown_code_gets_a_404_page(client):
    response = get(client, "/nosuch1", BROWSER)
    assert response.status_code == 404
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert response.headers["Cache-Control"] == "no-store"
    assert "Accept" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert "<h1>This short link does not exist</h1>" in html
    assert 'href="/"' in html


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"is_active": False}, "This short link is no longer active."),
        ({"expires_at": utcnow() - timedelta(minutes=1)}, "This short link has expired."),
        ({"max_clicks": 1, "human_click_count": 1}, "This short link has reached its click limit."),
    ],
)
def test_a_browser_following_a_dead_link_gets_a_410_page_saying_why(client, fields, message):
    link = make_link(**fields)
    response = get(client, f"/{link.code}", BROWSER)
    assert response.status_code == 410
    assert response.content_type == "text/html; charset=utf-8"
    html = response.get_data(as_text=True)
    assert "<h1>This short link no longer works</h1>" in html
    assert message in html
    assert link.target_url not in html


@pytest.mark.parametrize("accept", API_ACCEPTS)
def test_api_clients_keep_the_json_errors_on_the_redirect(client, accept):
    gone = make_link(is_active=False)
    missing = get(client, "/nosuch1", accept)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "not_found")
    dead = get(client, f"/{gone.code}", accept)
    assert (dead.status_code, dead.get_json()["code"]) == (410, "link_gone")
    assert "Accept" in dead.headers["Vary"]


def test_api_routes_answer_json_even_to_a_browser(client):
    response = get(client, "/urls/nosuch1", BROWSER)
    assert response.status_code == 404
    assert response.get_json() == {"error": "No short link with this code exists.", "code": "not_found"}
    assert "Vary" not in response.headers


def test_unroutable_paths_stay_json_for_browsers(client):
    response = get(client, "/not/a/route", BROWSER)
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_a_head_request_from_a_browser_gets_the_page_headers(client):
    response = client.head("/nosuch1", headers={"Accept": BROWSER})
    assert response.status_code == 404
    assert response.content_type == "text/html; charset=utf-8"
