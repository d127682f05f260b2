"""Creating links with options, reading, editing and deleting them through the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models import Link
from tests.factories import auth, make_key, make_link, make_user

FUTURE = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)


@pytest.fixture
def alice():
    user = make_user("alice")
    return user, auth(make_key(user))


def create(client, headers=None, path="/shorten", **body):
    body.setdefault("url", "https://example.com/page")
    return client.post(path, json=body, headers=headers or {})


def test_create_with_every_option(client, alice):
    user, headers = alice
    response = create(
        client,
        headers,
        alias="my-link_1",
        title="Launch",
        expires_at=FUTURE.isoformat(),
        max_clicks=5,
        redirect_type=307,
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["short_code"] == "my-link_1" and body["short_url"] == "http://localhost/my-link_1"
    assert body["title"] == "Launch" and body["max_clicks"] == 5 and body["redirect_type"] == 307
    assert datetime.fromisoformat(body["expires_at"]) == FUTURE
    assert body["owner_id"] == user.id and body["state"] == "active" and body["is_active"] is True


def test_post_urls_creates_like_shorten(client):
    response = create(client, path="/urls", alias="via-urls")
    assert response.status_code == 201
    assert client.get("/via-urls").status_code == 302


def test_create_with_taken_alias_is_409_and_alias_unchanged(client):
    assert create(client, alias="promo").status_code == 201
    response = create(client, alias="promo", url="https://example.org/other")
    assert response.status_code == 409
    assert response.get_json()["code"] == "alias_taken"
    assert client.get("/promo").headers["Location"] == "https://example.com/page"


@pytest.mark.parametrize("alias", ["ab", "a" * 65, "has space", "dot.ted", "slash/ed", "ünï", 123])
def test_create_with_malformed_alias_is_400_naming_alias(client, alias):
    response = create(client, alias=alias)
    assert response.status_code == 400
    assert "alias" in response.get_json()["fields"]


@pytest.mark.parametrize(
    "alias", ["health", "livez", "urls", "shorten", "api", "docs", "metrics", "static", "keys"]
)
def test_create_with_reserved_alias_is_400(client, alias):
    response = create(client, alias=alias)
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"alias": f"alias {alias!r} is reserved; choose another one"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expires_at", "2001-01-01T00:00:00Z"),
        ("expires_at", "2099-01-01T00:00:00"),
        ("expires_at", "tomorrow"),
        ("max_clicks", 0),
        ("max_clicks", -3),
        ("max_clicks", "5"),
        ("max_clicks", True),
        ("redirect_type", 303),
        ("redirect_type", "301"),
        ("title", "x" * 201),
    ],
)
def test_create_with_bad_option_is_400_naming_it(client, field, value):
    response = create(client, **{field: value})
    assert response.status_code == 400
    assert field in response.get_json()["fields"]


def test_create_reports_every_bad_field_at_once(client):
    response = client.post("/shorten", json={"alias": "x", "max_clicks": 0, "colour": "red"})
    assert set(response.get_json()["fields"]) == {"url", "alias", "max_clicks", "colour"}


def test_read_link_shows_state_and_click_count(client, app):
    code = create(client, max_clicks=10).get_json()["short_code"]
    for _ in range(3):
        client.get(f"/{code}")
    client.head(f"/{code}")
    app.extensions["clicks"].flush()
    body = client.get(f"/urls/{code}").get_json()
    assert body["click_count"] == 3 and body["state"] == "active" and body["max_clicks"] == 10


def test_read_unknown_link_is_404(client):
    assert client.get("/urls/nothere").get_json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"is_active": False}, "no longer active"),
        ({"expires_at": datetime(2000, 1, 1, tzinfo=UTC)}, "expired"),
        ({"max_clicks": 2, "human_click_count": 2}, "click limit"),
    ],
)
def test_dead_link_redirect_is_410_link_gone(client, fields, message):
    link = make_link(**fields)
    response = client.get(f"/{link.code}")
    assert response.status_code == 410
    assert response.get_json()["code"] == "link_gone" and message in response.get_json()["error"]


def test_patch_changes_every_editable_field(client, alice):
    _user, headers = alice
    code = create(client, headers).get_json()["short_code"]
    changes = {
        "url": "https://example.org/new",
        "title": "New",
        "expires_at": FUTURE.isoformat(),
        "max_clicks": 9,
        "redirect_type": 301,
        "is_active": True,
    }
    response = client.patch(f"/urls/{code}", json=changes, headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["original_url"] == "https://example.org/new" and body["title"] == "New"
    assert body["max_clicks"] == 9 and body["redirect_type"] == 301
    assert body["updated_at"] > body["created_at"]
    followed = client.get(f"/{code}")
    assert (followed.status_code, followed.headers["Location"]) == (301, "https://example.org/new")


def test_patch_null_clears_optional_fields(client, alice):
    _user, headers = alice
    code = create(client, headers, title="T", max_clicks=3, expires_at=FUTURE.isoformat()).get_json()[
        "short_code"
    ]
    body = client.patch(
        f"/urls/{code}", json={"title": None, "max_clicks": None, "expires_at": None}, headers=headers
    ).get_json()
    assert body["title"] is None and body["max_clicks"] is None and body["expires_at"] is None


def test_patch_deactivate_then_reactivate(client, alice):
    _user, headers = alice
    code = create(client, headers).get_json()["short_code"]
    assert (
        client.patch(f"/urls/{code}", json={"is_active": False}, headers=headers).get_json()["state"]
        == "inactive"
    )
    assert client.get(f"/{code}").status_code == 410
    client.patch(f"/urls/{code}", json={"is_active": True}, headers=headers)
    assert client.get(f"/{code}").status_code == 302


@pytest.mark.parametrize(
    "changes",
    [
        {"url": "ftp://x.org"},
        {"url": None},
        {"is_active": None},
        {"is_active": "no"},
        {"expires_at": "2001-01-01T00:00:00+00:00"},
        {"code": "newcode"},
        {"max_clicks": 0},
    ],
)
def test_patch_with_bad_change_is_400(client, alice, changes):
    _user, headers = alice
    code = create(client, headers).get_json()["short_code"]
    response = client.patch(f"/urls/{code}", json=changes, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["code"] in {"invalid_input", "invalid_url"}


def test_delete_is_204_then_link_is_gone_everywhere(client, alice):
    _user, headers = alice
    code = create(client, headers, alias="to-delete", title="secret title").get_json()["short_code"]
    assert client.delete(f"/urls/{code}", headers=headers).status_code == 204
    assert client.get(f"/urls/{code}", headers=headers).status_code == 404
    assert client.get(f"/{code}").status_code == 410
    assert client.delete(f"/urls/{code}", headers=headers).status_code == 404
    assert code not in [link["short_code"] for link in client.get("/urls", headers=headers).get_json()]
    tombstone = Link.get(Link.code == code)
    assert tombstone.target_url == "" and tombstone.title is None
    assert create(client, headers, alias="to-delete").status_code == 409


def test_list_filters_active_and_search(client, alice):
    _user, headers = alice
    live = create(client, headers, url="https://shop.example/shoes", title="Summer sale").get_json()[
        "short_code"
    ]
    dead = create(client, headers, url="https://blog.example/post").get_json()["short_code"]
    client.patch(f"/urls/{dead}", json={"is_active": False}, headers=headers)

    def codes(query):
        return [link["short_code"] for link in client.get(f"/urls?{query}", headers=headers).get_json()]

    assert codes("active=true") == [live]
    assert codes("active=false") == [dead]
    assert codes("q=SALE") == [live]
    assert codes("q=blog.example") == [dead]
    assert codes("q=%25") == []  # wildcards are searched literally


def test_list_next_link_keeps_filters(client, alice):
    _user, headers = alice
    for i in range(3):
        create(client, headers, url=f"https://example.com/{i}", title="match")
    response = client.get("/urls?limit=2&q=match", headers=headers)
    assert "q=match" in response.headers["Link"] and "limit=2" in response.headers["Link"]
