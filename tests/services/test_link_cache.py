"""The per-process redirect cache: hits skip the database, entries expire, changes invalidate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.db import db
from app.errors import LinkGone, LinkNotFound
from app.services import links
from app.services.clicks import ClickRecorder
from app.services.link_cache import UNCACHED, LinkCache
from tests.factories import auth, make_key, make_link, make_user


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def no_database(monkeypatch):
    """After this fixture is used, any query fails the test."""

    def forbid():
        def forbidden(*args, **kwargs):
            raise AssertionError("the database must not be queried")

        monkeypatch.setattr(db.obj, "execute_sql", forbidden)

    return forbid


def resolve(code, settings, cache, clicks=None, now=None):
    return links.resolve_for_redirect(
        code, settings, clicks or ClickRecorder(background=False), cache, now=now
    )


def test_second_lookup_is_served_from_cache(settings, no_database):
    link = make_link("https://example.com/cached")
    cache = LinkCache()
    assert resolve(link.code, settings, cache).url == "https://example.com/cached"
    no_database()
    assert resolve(link.code, settings, cache).url == "https://example.com/cached"
    assert (cache.hits, cache.misses) == (1, 1)


def test_unknown_codes_are_cached_as_misses(settings, no_database):
    cache = LinkCache()
    with pytest.raises(LinkNotFound):
        resolve("unknown1", settings, cache)
    no_database()
    with pytest.raises(LinkNotFound):
        resolve("unknown1", settings, cache)


def test_creating_an_alias_forgets_a_cached_miss(settings):
    cache = LinkCache()
    with pytest.raises(LinkNotFound):
        resolve("fresh-alias", settings, cache)
    links.create_link(
        links.NewLink(url="https://example.com/new", alias="fresh-alias"), settings, cache=cache
    )
    assert resolve("fresh-alias", settings, cache).url == "https://example.com/new"


def test_expiry_and_click_limits_are_checked_on_every_cached_hit(settings):
    soon = datetime(2030, 1, 1, tzinfo=UTC)
    link = make_link(expires_at=soon, max_clicks=1)
    cache, clicks = LinkCache(), ClickRecorder(background=False)
    resolve(link.code, settings, cache, clicks, now=soon - timedelta(seconds=1))
    with pytest.raises(LinkGone, match="expired"):
        resolve(link.code, settings, cache, clicks, now=soon)
    clicks.record(link.id, user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")
    with pytest.raises(LinkGone, match="click limit"):
        resolve(link.code, settings, cache, clicks, now=soon - timedelta(seconds=1))


def test_entries_expire_after_ttl():
    clock = Clock()
    cache = LinkCache(ttl=1.0, timer=clock)
    cache.put("abc", (1,))
    clock.now += 0.9
    assert cache.get("abc") == (1,)
    clock.now += 0.2
    assert cache.get("abc") is UNCACHED


def test_cache_is_bounded_in_entries():
    cache = LinkCache(maxsize=3)
    for i in range(10):
        cache.put(f"code{i}", (i,))
    assert len(cache) == 3


@pytest.mark.parametrize(("maxsize", "ttl"), [(0, 1.0), (100, 0)])
def test_zero_size_or_ttl_disables_the_cache(maxsize, ttl):
    cache = LinkCache(maxsize=maxsize, ttl=ttl)
    cache.put("abc", (1,))
    cache.invalidate("abc")
    assert cache.get("abc") is UNCACHED and len(cache) == 0


def test_edits_through_this_process_apply_at_once(client):
    code = client.post("/shorten", json={"url": "https://example.com/v1", "alias": "edited"}).get_json()[
        "short_code"
    ]
    from tests.factories import auth, make_key, make_user

    admin = auth(make_key(make_user("boss", role="admin")))
    assert client.get(f"/{code}").headers["Location"] == "https://example.com/v1"  # now cached
    client.patch(f"/urls/{code}", json={"url": "https://example.com/v2"}, headers=admin)
    assert client.get(f"/{code}").headers["Location"] == "https://example.com/v2"
    client.patch(f"/urls/{code}", json={"is_active": False}, headers=admin)
    assert client.get(f"/{code}").status_code == 410
    client.patch(f"/urls/{code}", json={"is_active": True}, headers=admin)
    assert client.get(f"/{code}").status_code == 302
    client.delete(f"/urls/{code}", headers=admin)
    assert client.get(f"/{code}").status_code == 410


def test_another_process_sees_a_deactivation_within_the_ttl(app, make_client):
    clock = Clock()
    other = make_client()  # a second app instance: its own cache, like another worker process
    app.extensions["link_cache"] = LinkCache(ttl=1.0, timer=clock)
    client = app.test_client()
    code = client.post("/shorten", json={"url": "https://example.com/x"}).get_json()["short_code"]
    assert client.get(f"/{code}").status_code == 302  # cached here
    admin = auth(make_key(make_user("boss", role="admin")))
    assert other.patch(f"/urls/{code}", json={"is_active": False}, headers=admin).status_code == 200
    clock.now += 0.5
    assert client.get(f"/{code}").status_code == 302  # stale, within the TTL
    clock.now += 0.6
    assert client.get(f"/{code}").status_code == 410  # the TTL bounds staleness to 1 s


def test_entries_live_for_the_notified_ttl_only_while_notifications_arrive():
    clock = Clock()
    cache = LinkCache(ttl=1.0, timer=clock, notified_ttl=300.0)
    cache.notified = True
    cache.put("abc", (1,))
    clock.now += 120
    assert cache.get("abc") == (1,)
    cache.notified = False  # the listener lost its connection: back to the short TTL at once
    assert cache.get("abc") is UNCACHED
    cache.put("abc", (2,))
    clock.now += 0.5
    assert cache.get("abc") == (2,)


def test_clear_forgets_everything_and_refuses_rows_loaded_before_it():
    cache = LinkCache()
    cache.put("abc", (1,))
    generation = cache.generation
    cache.clear()
    cache.put("def", (2,), generation)  # loaded before the clear: may predate a missed change
    assert cache.get("abc") is UNCACHED and cache.get("def") is UNCACHED and len(cache) == 0


def test_forgetting_a_miss_keeps_cached_rows_and_drops_only_misses():
    cache = LinkCache(ttl=60)
    cache.put("known1", (1,))
    cache.put("missed1", None)
    cache.forget_miss("known1")
    cache.forget_miss("missed1")
    cache.forget_miss("never11")
    assert cache.get("known1") == (1,)
    assert cache.get("missed1") is UNCACHED
