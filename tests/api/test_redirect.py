"""GET/HEAD /<code>: redirects, unknown codes, and codes refused before any query."""

from __future__ import annotations

import pytest

from app.db import db
from tests.factories import make_link


def test_redirect_answers_302_with_location(client):
    link = make_link("https://example.com/target?x=1")
    response = client.get(f"/{link.code}")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://example.com/target?x=1"


def test_redirect_follows_a_link_created_through_the_api(client):
    code = client.post("/shorten", json={"url": "https://example.org/x"}).get_json()["short_code"]
    assert client.get(f"/{code}").headers["Location"] == "https://example.org/x"


def test_redirect_location_is_the_stored_ascii_url_byte_for_byte(client):
    created = client.post("/shorten", json={"url": "https://Bücher.example/straße?q=ä b".replace(" ", "%20")})
    response = client.get(f"/{created.get_json()['short_code']}")
    assert response.headers["Location"] == "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%A4%20b"
    assert response.headers["Content-Length"] == "0"


def test_redirect_answers_head(client):
    link = make_link()
    response = client.head(f"/{link.code}")
    assert response.status_code == 302
    assert response.headers["Location"] == link.target_url
    assert response.data == b""


def test_redirect_uses_configured_status(make_client):
    link = make_link()
    assert make_client(default_redirect_status=301).get(f"/{link.code}").status_code == 301


def test_redirect_is_case_sensitive(client):
    link = make_link(code="AbCdEfG")
    assert client.get("/abcdefg").status_code == 404
    assert client.get(f"/{link.code}").status_code == 302


def test_unknown_code_is_404_json(client):
    response = client.get("/zzzzzzz")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["code"] == "not_found"


@pytest.mark.parametrize(
    "code", ["a" * 65, "abc~def", "abc.def", "%27%20OR%201=1", "ab%00c", "é", "favicon.ico"]
)
def test_malformed_code_is_404_without_touching_the_database(client, monkeypatch, code):
    def forbidden(*args, **kwargs):
        raise AssertionError("the database must not be queried")

    monkeypatch.setattr(db.obj, "execute_sql", forbidden)
    response = client.get(f"/{code}")
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_redirect_when_database_is_down_is_503(broken_db_client):
    response = broken_db_client.get("/abcdefg")
    assert response.status_code == 503
    assert response.get_json()["code"] == "database_unavailable"


def test_links_to_a_domain_blocked_later_stop_redirecting(make_client):
    code = make_link("https://sub.phish.example/login").code
    other = make_link("https://fine.example/").code
    client = make_client(blocked_domains=frozenset({"phish.example"}))
    response = client.get(f"/{code}")
    assert response.status_code == 410 and response.get_json()["code"] == "link_gone"
    assert "blocked" in response.get_json()["error"]
    assert client.get(f"/{other}").status_code == 302
