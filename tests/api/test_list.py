"""GET /urls: newest first, keyset pagination announced in the Link header."""

from __future__ import annotations

import re

import pytest

from tests.factories import make_link


def next_url(response) -> str | None:
    match = re.fullmatch(r'<http://localhost(/urls\?[^>]+)>; rel="next"', response.headers.get("Link", ""))
    return match.group(1) if match else None


def test_list_is_empty_without_links(client):
    response = client.get("/urls")
    assert response.status_code == 200
    assert response.get_json() == []
    assert "Link" not in response.headers


def test_list_shows_created_links(client):
    created = client.post("/shorten", json={"url": "https://example.com/listed"}).get_json()
    assert client.get("/urls").get_json() == [created]


def test_list_is_newest_first(client):
    codes = [make_link(code=f"code{i}").code for i in range(3)]
    assert [link["short_code"] for link in client.get("/urls").get_json()] == codes[::-1]


def test_list_pages_through_every_link_exactly_once(client):
    codes = {make_link(code=f"page{i:02d}").code for i in range(23)}
    seen, url, pages = [], "/urls?limit=10", 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += [link["short_code"] for link in response.get_json()]
        url, pages = next_url(response), pages + 1
    assert pages == 3
    assert len(seen) == 23 and set(seen) == codes


def test_list_has_no_next_link_when_page_is_exactly_full(client):
    for i in range(5):
        make_link(code=f"full{i}")
    response = client.get("/urls?limit=5")
    assert len(response.get_json()) == 5
    assert next_url(response) is None


def test_list_defaults_to_100_per_page(client):
    for i in range(101):
        make_link(code=f"dflt{i:03d}")
    response = client.get("/urls")
    assert len(response.get_json()) == 100
    assert next_url(response) is not None


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "ten", "1.5"])
def test_list_rejects_bad_limit(client, limit):
    response = client.get(f"/urls?limit={limit}")
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_input"
    assert "limit" in response.get_json()["fields"]


@pytest.mark.parametrize("cursor", ["!!!", "bm90LWEtbnVtYmVy", "LTE", "x" * 65])
def test_list_rejects_bad_cursor(client, cursor):
    make_link()
    response = client.get(f"/urls?cursor={cursor}")
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_input"
    assert "cursor" in response.get_json()["fields"]


def test_list_treats_empty_cursor_as_first_page(client):
    link = make_link()
    assert [row["short_code"] for row in client.get("/urls?cursor=").get_json()] == [link.code]


def test_list_when_database_is_down_is_503(broken_db_client):
    assert broken_db_client.get("/urls").status_code == 503
