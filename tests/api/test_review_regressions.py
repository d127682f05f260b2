"""Regressions found in review: limits, concurrent edits, time zones, hostile values."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from peewee import OperationalError

from app.models import ApiKey, Click, ClickRollup, DailyVisitor, Link
from app.services import clicks as clicks_module
from app.services import links
from app.services.api_keys import hash_key
from app.services.clicks import ClickRecorder
from app.services.link_cache import UNCACHED, LinkCache
from tests.factories import auth, make_key, make_link, make_user

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def test_one_process_never_exceeds_max_clicks_even_with_cache_and_flushes(client, app):
    app.extensions["link_cache"] = LinkCache(ttl=60)
    code = client.post("/shorten", json={"url": "https://example.com", "max_clicks": 2}).get_json()[
        "short_code"
    ]
    statuses = []
    for _ in range(6):
        statuses.append(client.get(f"/{code}", headers={"User-Agent": FIREFOX}).status_code)
        app.extensions["clicks"].flush()
    assert statuses == [302, 302, 410, 410, 410, 410]
    assert Link.get(Link.code == code).human_click_count == 2


def test_concurrent_clicks_in_one_process_are_admitted_exactly_up_to_the_limit():
    recorder = ClickRecorder(background=False)
    barrier = threading.Barrier(8)

    def click(_):
        barrier.wait()
        return recorder.record(42, user_agent=FIREFOX, limit=3)

    with ThreadPoolExecutor(max_workers=8) as pool:
        admitted = list(pool.map(click, range(8)))
    assert admitted.count(True) == 3 and recorder.pending(42) == 3 and recorder.depth() == 3


def test_clicks_being_flushed_still_count_against_the_limit(settings, monkeypatch):
    link = links.create_link(links.NewLink(url="https://example.com", max_clicks=1), settings)
    recorder, cache = ClickRecorder(background=False), LinkCache(maxsize=0)
    links.resolve_for_redirect(link.code, settings, recorder, cache, visit=links.Visit(FIREFOX))
    seen_during_flush = []
    original = clicks_module._write_postgres if settings.is_postgres else clicks_module._write_portable

    def write_and_look(rows):
        orphaned = original(rows)  # written, not yet committed: the limit check must still see the click
        try:
            links.resolve_for_redirect(link.code, settings, recorder, cache, visit=links.Visit(FIREFOX))
            seen_during_flush.append(302)
        except links.LinkGone:
            seen_during_flush.append(410)
        return orphaned

    monkeypatch.setattr(
        clicks_module, "_write_postgres" if settings.is_postgres else "_write_portable", write_and_look
    )
    recorder.flush()
    assert seen_during_flush == [410]


def test_patch_keeps_click_counts_written_meanwhile(client, app, monkeypatch):
    owner = make_user("alice")
    headers = auth(make_key(owner))
    link = make_link(owner=owner)
    original = links._editable

    def read_then_clicks_land(code, principal):
        stale = original(code, principal)
        recorder = app.extensions["clicks"]
        for _ in range(2):
            recorder.record(stale.id, user_agent=FIREFOX)
        recorder.flush()
        return stale

    monkeypatch.setattr(links, "_editable", read_then_clicks_land)
    response = client.patch(f"/urls/{link.code}", json={"title": "renamed"}, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["click_count"] == 2 and response.get_json()["title"] == "renamed"


def test_patch_does_not_resurrect_a_link_deleted_meanwhile(client, monkeypatch):
    owner = make_user("alice")
    headers = auth(make_key(owner))
    link = make_link(owner=owner)
    original = links._editable

    def read_then_deleted(code, principal):
        stale = original(code, principal)
        Link.update(deleted_at=datetime.now(UTC), is_active=False, target_url="").where(
            Link.id == stale.id
        ).execute()
        return stale

    monkeypatch.setattr(links, "_editable", read_then_deleted)
    assert client.patch(f"/urls/{link.code}", json={"title": "x"}, headers=headers).status_code == 404
    assert client.get(f"/{link.code}").status_code == 410
    assert Link.get_by_id(link.id).deleted_at is not None


@pytest.mark.parametrize("offset", ["%2B02:00", "%2B05:30", "-07:00"])
@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_stats_windows_in_any_offset_count_the_same_clicks(client, app, offset, bucket):
    link = make_link()
    recorder = app.extensions["clicks"]
    for minute in (5, 10, 15):
        recorder.record(link.id, user_agent=FIREFOX, now=datetime(2030, 3, 10, 12, minute, tzinfo=UTC))
    recorder.flush()
    query = f"from=2030-03-09T00:00:00{offset}&to=2030-03-12T00:00:00{offset}&bucket={bucket}"
    body = client.get(f"/urls/{link.code}/stats?{query}").get_json()
    assert body["totals"]["clicks"] == 3
    assert sum(point["clicks"] for point in body["series"]) == 3
    assert body["from"].endswith("+00:00")


def test_rollup_hours_are_utc_whatever_the_session_time_zone(settings):
    if not settings.is_postgres:
        pytest.skip("session time zones are a PostgreSQL setting")
    from app.db import db

    db.execute_sql("SET TIME ZONE 'Asia/Kolkata'")  # undone by the test's rollback
    link = make_link()
    recorder = ClickRecorder(background=False)
    recorder.record(link.id, user_agent=FIREFOX, now=datetime(2030, 3, 10, 9, 15, tzinfo=UTC))
    recorder.flush()
    assert ClickRollup.get(ClickRollup.link == link.id).hour == datetime(2030, 3, 10, 9, 0, tzinfo=UTC)
    assert DailyVisitor.get(DailyVisitor.link == link.id).day.isoformat() == "2030-03-10"


def test_a_failed_flush_does_not_keep_a_salt_that_was_never_committed(settings, monkeypatch):
    link = make_link()
    first, second = ClickRecorder(background=False), ClickRecorder(background=False)
    moment = datetime(2031, 1, 1, 12, tzinfo=UTC)
    first.record(link.id, user_agent=FIREFOX, client_ip="1.2.3.4", now=moment)
    name = "_write_postgres" if settings.is_postgres else "_write_portable"

    def fail(rows):
        raise OperationalError("database went away after the salt was made")

    with monkeypatch.context() as patch:
        patch.setattr(clicks_module, name, fail)
        assert first.flush() == 0
    second.record(link.id, user_agent=FIREFOX, client_ip="1.2.3.4", now=moment)
    assert second.flush() == 1  # commits its own salt for that day
    assert first.flush() == 1
    assert DailyVisitor.select().where(DailyVisitor.link == link.id).count() == 1  # the same visitor


def test_a_backslash_n_user_agent_uses_up_max_clicks_like_any_other(client, app):
    # The reviewer's reproduction: 1 poisoned and 4 normal redirects, then the link is used up.
    code = client.post("/shorten", json={"url": "https://example.com", "max_clicks": 5}).get_json()[
        "short_code"
    ]
    recorder = app.extensions["clicks"]
    dropped = recorder.dropped
    statuses = [
        client.get(f"/{code}", headers={"User-Agent": agent}).status_code
        for agent in ["\\N/1.0 CFNetwork/1.0 Darwin/20.0"] + [FIREFOX] * 4
    ]
    assert statuses == [302] * 5
    recorder.flush()  # COPY used to read the browser family "\\N" as NULL: the batch was lost
    assert recorder.dropped == dropped
    link = Link.get(Link.code == code)
    assert (link.click_count, link.human_click_count) == (5, 5)
    assert [client.get(f"/{code}", headers={"User-Agent": FIREFOX}).status_code for _ in range(5)] == [
        410
    ] * 5
    assert Click.select().where(Click.link == link.id, Click.browser == "\\N").count() == 1


def test_an_invalidation_during_a_load_keeps_the_stale_row_out_of_the_cache():
    cache = LinkCache()
    generation = cache.generation  # a redirect starts loading "abc"
    cache.invalidate("abc")  # an edit lands meanwhile
    cache.put("abc", ("old row",), generation)
    assert cache.get("abc") is UNCACHED
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/shorten", {"url": "https://example.com", "title": "a\u0000b"}),
        ("post", "/shorten", {"url": "https://example.com", "title": "line\nbreak"}),
        ("get", "/urls?q=%00", None),
        ("get", "/urls?q=a%0Db", None),
    ],
)
def test_control_characters_in_free_text_are_400(client, method, path, body):
    response = getattr(client, method)(path, json=body) if body else getattr(client, method)(path)
    assert response.status_code == 400


def test_control_characters_in_key_names_are_400(client):
    headers = auth(make_key(make_user("alice")))
    assert client.post("/keys", json={"name": "a\u0000"}, headers=headers).status_code == 400


def test_out_of_range_ids_are_client_errors(client):
    admin = auth(make_key(make_user("root", role="admin")))
    assert client.get("/urls?owner=99999999999999999999", headers=admin).status_code == 400
    assert client.get("/keys?user_id=99999999999999999999", headers=admin).status_code == 400
    assert client.delete("/keys/99999999999999999999", headers=admin).status_code == 404
    assert client.get(f"/urls?cursor={links.encode_cursor(9999999999999999999)}").status_code == 400


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/shorten", {"url": "https://example.com", "expires_at": "9999-12-31T23:00:00-05:00"}),
        ("/shorten", {"url": "https://example.com", "expires_at": "9999-12-31T23:30:00Z"}),
    ],
)
def test_dates_at_the_limits_are_400(client, path, body):
    response = client.post(path, json=body)
    assert response.status_code == 400 and "expires_at" in response.get_json()["fields"]


@pytest.mark.parametrize(
    "query", ["to=9999-12-31T23:30:00Z", "to=0001-01-01T00:30:00Z", "from=0001-01-01T00:00:00Z"]
)
def test_stats_windows_at_the_limits_are_400(client, query):
    link = make_link()
    assert client.get(f"/urls/{link.code}/stats?{query}").status_code == 400


def test_a_key_cannot_outlive_the_key_that_created_it(client):
    alice = make_user("alice")
    expiry = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    headers = auth(make_key(alice, expires_at=expiry))
    minted = client.post("/keys", json={"name": "forever?"}, headers=headers).get_json()
    assert datetime.fromisoformat(minted["expires_at"]) == expiry
    later = (expiry + timedelta(days=1)).isoformat()
    response = client.post("/keys", json={"expires_at": later}, headers=headers)
    assert response.status_code == 400 and "expires_at" in response.get_json()["fields"]
    assert ApiKey.get(ApiKey.key_hash == hash_key(minted["key"])).expires_at == expiry
