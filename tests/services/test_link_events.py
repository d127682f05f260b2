"""Change notifications (PostgreSQL LISTEN/NOTIFY) drop changed codes from every process's cache."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg2
import pytest

from app.db import db
from app.models import Link
from app.services.link_cache import UNCACHED, LinkCache
from app.services.link_events import LinkChangeListener, listener_kwargs
from tests.api.test_concurrency import in_own_thread
from tests.factories import make_link


@pytest.fixture
def postgres_only(settings):
    if not settings.is_postgres:
        pytest.skip("change notifications need PostgreSQL")


@pytest.fixture
def listener(postgres_only):
    cache = LinkCache(ttl=0.001, notified_ttl=60)  # only notifications can keep an entry fresh
    listening = LinkChangeListener(listener_kwargs(db.obj), cache, heartbeat=0.5, retry_delays=(0.05,))
    listening.ensure_started()
    wait_until(lambda: cache.notified)
    yield listening
    listening.stop()


@pytest.fixture
def committed(postgres_only):
    """Links committed for real (outside the test transaction), deleted afterwards."""
    codes = []

    def create(code: str, **fields) -> Link:
        codes.append(code)
        return in_own_thread(lambda: make_link(code=code, **fields))

    yield create
    in_own_thread(lambda: Link.delete().where(Link.code.in_(codes)).execute())


def wait_until(condition, timeout: float = 2.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "not reached in time"
        time.sleep(0.005)
    return time.monotonic() - started


def commit(query) -> None:
    in_own_thread(query.execute)


def test_an_edit_committed_anywhere_drops_the_code_within_milliseconds(listener, committed):
    link = committed("evt-edit")
    listener.cache.put(link.code, ("cached row",))
    commit(Link.update(target_url="https://example.com/new").where(Link.id == link.id))
    assert wait_until(lambda: listener.cache.get(link.code) is UNCACHED) < 1.0


@pytest.mark.parametrize(
    "change",
    [
        {"is_active": False},
        {"redirect_type": 301},
        {"max_clicks": 3},
        {"deleted_at": datetime(2026, 1, 1, tzinfo=UTC)},
    ],
)
def test_every_change_that_affects_the_redirect_is_announced(listener, committed, change):
    link = committed("evt-chg")
    listener.cache.put(link.code, ("cached row",))
    commit(Link.update(**change).where(Link.id == link.id))
    wait_until(lambda: listener.cache.get(link.code) is UNCACHED)


def test_creating_a_code_drops_a_cached_miss_for_it(listener, committed):
    listener.cache.put("evt-new", None)
    committed("evt-new")
    wait_until(lambda: listener.cache.get("evt-new") is UNCACHED)


def test_click_counter_updates_do_not_invalidate_popular_links(listener, committed):
    link = committed("evt-hot")
    other = committed("evt-mark")
    listener.cache.put(link.code, ("cached row",))
    listener.cache.put(other.code, ("cached row",))
    commit(Link.update(click_count=Link.click_count + 5, human_click_count=5).where(Link.id == link.id))
    commit(Link.update(title="marker").where(Link.id == other.id))  # not announced either
    commit(Link.update(is_active=False).where(Link.id == other.id))  # announced, after the above
    wait_until(lambda: listener.cache.get(other.code) is UNCACHED)
    assert listener.cache.get(link.code) == ("cached row",)


def test_without_a_listener_connection_entries_fall_back_to_the_short_ttl(listener, committed):
    link = committed("evt-drop")
    listener.cache.put(link.code, ("cached row",))
    assert listener.cache.get(link.code) == ("cached row",)
    connections = listener.connections
    admin = psycopg2.connect(**listener_kwargs(db.obj))
    admin.autocommit = True
    with admin.cursor() as cursor:  # kill the listener's backend, as a server restart would
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN shortener_link_changed%' AND pid <> pg_backend_pid()"
        )
    admin.close()
    wait_until(lambda: listener.connections > connections)  # reconnected by itself
    assert listener.cache.get(link.code) is UNCACHED  # cleared: notifications may have been missed
    assert listener.cache.notified


def test_the_listener_stops_and_restarts_in_a_new_process_only(listener):
    listener.ensure_started()  # same process: no second thread
    assert listener.connections == 1


def test_renaming_a_code_drops_both_the_old_and_the_new_code(listener, committed):
    link = committed("evt-old")
    listener.cache.put("evt-old", ("cached row",))
    listener.cache.put("evt-renamed", None)  # a cached miss for the new name
    commit(Link.update(code="evt-renamed").where(Link.id == link.id))
    try:
        wait_until(
            lambda: (
                listener.cache.get("evt-old") is UNCACHED and listener.cache.get("evt-renamed") is UNCACHED
            )
        )
    finally:
        commit(Link.delete().where(Link.code == "evt-renamed"))


def test_a_connection_that_stops_delivering_notifications_is_replaced(postgres_only, monkeypatch):
    cache = LinkCache(ttl=0.001, notified_ttl=60)
    listening = LinkChangeListener(listener_kwargs(db.obj), cache, heartbeat=0.2, retry_delays=(0.05,))
    listening.ensure_started()
    try:
        wait_until(lambda: cache.notified)
        assert listening.connections == 1
        # As if a pooler swallowed every notification: the listener's own probe never comes back.
        monkeypatch.setattr(LinkChangeListener, "_send_probe", lambda self, connection, probe: None)
        wait_until(lambda: listening.connections >= 2, timeout=3)
    finally:
        listening.stop()


def test_quiet_but_healthy_connections_stay_trusted(listener):
    connections = listener.connections
    time.sleep(1.5)  # several heartbeats (0.5 s) with no change: the probes come back
    assert listener.cache.notified and listener.connections == connections
