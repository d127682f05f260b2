"""API keys, users and roles through the HTTP API, and the ownership matrix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models import ApiKey
from app.services.api_keys import hash_key
from tests.factories import auth, make_key, make_link, make_user


@pytest.fixture
def people():
    """An admin, two users and their keys' auth headers."""
    admin, alice, bob = make_user("admin", role="admin"), make_user("alice"), make_user("bob")
    return {
        "admin": (admin, auth(make_key(admin))),
        "alice": (alice, auth(make_key(alice))),
        "bob": (bob, auth(make_key(bob))),
        "anonymous": (None, {}),
    }


def test_bearer_and_x_api_key_both_authenticate(client, people):
    alice, headers = people["alice"]
    secret = headers["Authorization"].removeprefix("Bearer ")
    for sent in (headers, {"X-API-Key": secret}, {"Authorization": f"bearer  {secret} "}):
        response = client.post("/shorten", json={"url": "https://example.com"}, headers=sent)
        assert response.get_json()["owner_id"] == alice.id


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer shk_wrong"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"X-API-Key": "nope"},
    ],
)
def test_bad_key_is_401_with_www_authenticate_even_where_anonymous_is_allowed(client, headers):
    response = client.post("/shorten", json={"url": "https://example.com"}, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "shk_wrong" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("patch", "/urls/abcdefg"),
        ("delete", "/urls/abcdefg"),
        ("post", "/keys"),
        ("get", "/keys"),
        ("delete", "/keys/1"),
        ("post", "/users"),
        ("get", "/users"),
    ],
)
def test_protected_endpoints_without_key_are_401(client, method, path):
    response = getattr(client, method)(path, json={})
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_expired_and_revoked_keys_are_401(client, people):
    alice, _headers = people["alice"]
    expired = make_key(alice, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert client.get("/keys", headers=auth(expired)).status_code == 401
    live = make_key(alice)
    key_id = ApiKey.get(ApiKey.key_hash == hash_key(live)).id
    assert client.delete(f"/keys/{key_id}", headers=auth(live)).status_code == 204
    assert client.get("/keys", headers=auth(live)).status_code == 401


def test_key_is_shown_once_and_stored_hashed(client, people):
    _alice, headers = people["alice"]
    created = client.post("/keys", json={"name": "ci"}, headers=headers)
    assert created.status_code == 201
    body = created.get_json()
    secret = body["key"]
    assert secret.startswith("shk_") and len(secret) >= 40 and body["prefix"] == secret[:12]
    stored = ApiKey.get_by_id(body["id"])
    assert stored.key_hash == hash_key(secret) and secret not in str(stored.__data__.values())
    listed = client.get("/keys", headers=headers).get_json()
    assert all("key" not in key for key in listed)
    assert body["id"] in [key["id"] for key in listed]
    assert client.get("/keys", headers=auth(secret)).status_code == 200


def test_last_used_at_is_set_without_a_write_per_request(client, people):
    alice, headers = people["alice"]
    key = ApiKey.get(ApiKey.user == alice.id)
    client.get("/keys", headers=headers)
    first = ApiKey.get_by_id(key.id).last_used_at
    assert first is not None
    client.get("/keys", headers=headers)
    assert ApiKey.get_by_id(key.id).last_used_at == first


def test_key_with_expiry_in_the_past_is_refused(client, people):
    _alice, headers = people["alice"]
    response = client.post("/keys", json={"expires_at": "2000-01-01T00:00:00Z"}, headers=headers)
    assert response.status_code == 400 and "expires_at" in response.get_json()["fields"]


def test_users_only_see_and_revoke_their_own_keys(client, people):
    alice, alice_headers = people["alice"]
    bob, bob_headers = people["bob"]
    bob_key = ApiKey.get(ApiKey.user == bob.id)
    assert {k["user_id"] for k in client.get("/keys", headers=alice_headers).get_json()} == {alice.id}
    assert client.delete(f"/keys/{bob_key.id}", headers=alice_headers).status_code == 404
    assert client.get(f"/keys?user_id={bob.id}", headers=alice_headers).status_code == 403
    assert client.post("/keys", json={"user_id": bob.id}, headers=alice_headers).status_code == 403
    assert client.get("/keys", headers=bob_headers).status_code == 200


def test_admin_manages_users_and_their_keys(client, people):
    _admin, headers = people["admin"]
    created = client.post("/users", json={"name": "carol"}, headers=headers)
    assert created.status_code == 201 and created.get_json()["role"] == "user"
    carol_id = created.get_json()["id"]
    key = client.post("/keys", json={"user_id": carol_id, "name": "carol's"}, headers=headers).get_json()
    assert key["user_id"] == carol_id
    link = client.post("/shorten", json={"url": "https://example.com"}, headers=auth(key["key"])).get_json()
    assert link["owner_id"] == carol_id
    assert [k["id"] for k in client.get(f"/keys?user_id={carol_id}", headers=headers).get_json()] == [
        key["id"]
    ]
    assert "carol" in [u["name"] for u in client.get("/users", headers=headers).get_json()]
    assert client.delete(f"/keys/{key['id']}", headers=headers).status_code == 204
    assert client.post("/keys", json={"user_id": 999999}, headers=headers).status_code == 400


def test_user_names_are_unique(client, people):
    _admin, headers = people["admin"]
    response = client.post("/users", json={"name": "alice"}, headers=headers)
    assert response.status_code == 409 and response.get_json()["code"] == "user_exists"


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "x", "role": "root"}, {"name": "a\nb"}, {}])
def test_bad_user_is_400(client, people, body):
    _admin, headers = people["admin"]
    assert client.post("/users", json=body, headers=headers).status_code == 400


def test_users_cannot_manage_users(client, people):
    _alice, headers = people["alice"]
    assert client.post("/users", json={"name": "mallory"}, headers=headers).status_code == 403
    assert client.get("/users", headers=headers).status_code == 403


def test_anonymous_shorten_can_be_switched_off(make_client, people):
    client = make_client(anonymous_shorten=False)
    response = client.post("/shorten", json={"url": "https://example.com"})
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers
    assert client.get("/urls").status_code == 401
    _alice, headers = people["alice"]
    assert client.post("/shorten", json={"url": "https://example.com"}, headers=headers).status_code == 201


# Ownership matrix: who may read, edit and delete a link owned by alice, and an anonymous link.
MATRIX = {
    # actor:      (alice's link: read, edit, delete), (anonymous link: read, edit, delete)
    "anonymous": ((404, 401, 401), (200, 401, 401)),
    "alice": ((200, 200, 204), (200, 403, 403)),
    "bob": ((404, 404, 404), (200, 403, 403)),
    "admin": ((200, 200, 204), (200, 200, 204)),
}


@pytest.mark.parametrize("actor", list(MATRIX))
@pytest.mark.parametrize("link_owner", ["alice", "anonymous"])
@pytest.mark.parametrize("action", ["read", "edit", "delete"])
def test_ownership_matrix(client, people, actor, link_owner, action):
    owner = people["alice"][0] if link_owner == "alice" else None
    link = make_link(owner=owner)
    headers = people[actor][1]
    response = {
        "read": lambda: client.get(f"/urls/{link.code}", headers=headers),
        "edit": lambda: client.patch(f"/urls/{link.code}", json={"title": "changed"}, headers=headers),
        "delete": lambda: client.delete(f"/urls/{link.code}", headers=headers),
    }[action]()
    expected = MATRIX[actor][0 if link_owner == "alice" else 1][["read", "edit", "delete"].index(action)]
    assert response.status_code == expected
    if expected >= 400:
        assert response.is_json and response.get_json()["code"]


def test_listing_shows_each_caller_their_links(client, people):
    alice, alice_headers = people["alice"]
    bob, bob_headers = people["bob"]
    _admin, admin_headers = people["admin"]
    mine, theirs, anon = make_link(owner=alice), make_link(owner=bob), make_link()

    def codes(headers, query=""):
        return {link["short_code"] for link in client.get(f"/urls{query}", headers=headers).get_json()}

    assert codes(alice_headers) == {mine.code}
    assert codes(bob_headers) == {theirs.code}
    assert codes({}) == {anon.code}
    assert codes(admin_headers) == {mine.code, theirs.code, anon.code}
    assert codes(admin_headers, f"?owner={alice.id}") == {mine.code}
    assert client.get(f"/urls?owner={bob.id}", headers=alice_headers).status_code == 403
