"""Change notifications (PostgreSQL LISTEN/NOTIFY) drop changed codes from every process's cache."""

from __future__ import annotations

import itertools
import select
import socket
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import psycopg2
import pytest

from app.db import db
from app.models import Link
from app.services import links
from app.services.known_codes import KnownCodes, RecentCodes
from app.services.link_cache import UNCACHED, LinkCache
from app.services.link_events import LinkChangeListener, listener_kwargs
from tests.api.test_concurrency import in_own_thread
from tests.factories import make_link

TEST_LISTENER = "shortener-test-listener"


@pytest.fixture
def postgres_only(settings):
    if not settings.is_postgres:
        pytest.skip("change notifications need PostgreSQL")


@pytest.fixture
def listener(postgres_only):
    cache = LinkCache(ttl=0.001, notified_ttl=60)  # only notifications can keep an entry fresh
    connect = {**listener_kwargs(db.obj), "application_name": TEST_LISTENER}
    listening = LinkChangeListener(connect, cache, heartbeat=0.5, retry_delays=(0.05,))
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


@pytest.mark.parametrize(
    ("configured", "listener"), [(None, "shortener-listener"), ("links", "links-listener")]
)
def test_the_listener_connection_is_named_apart_from_the_pool(configured, listener):
    # In pg_stat_activity its sweeps (reads of `link` every 5 s) are not the requests' queries.
    params = {"host": "127.0.0.1", "options": "-c statement_timeout=5000"}
    database = SimpleNamespace(
        connect_params=params | ({"application_name": configured} if configured else {})
    )
    database.database = "shortener"
    kwargs = listener_kwargs(database)
    assert kwargs["application_name"] == listener
    assert "options" not in kwargs and kwargs["database"] == "shortener"


def terminate_listener_backend() -> None:
    """Kill the test database's listener backends, as a server restart would (a listener whose last
    query was no longer LISTEN is known by its application_name)."""
    admin = psycopg2.connect(**listener_kwargs(db.obj))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND (query LIKE 'LISTEN shortener_link_changed%%' OR application_name = %s)",
            (TEST_LISTENER,),
        )
    admin.close()


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
    terminate_listener_backend()
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


class RecordingKnownCodes(KnownCodes):
    """A known-codes filter that records its loads and the batches each load read."""

    def __init__(self, **sizing) -> None:
        super().__init__(**sizing)
        self.loads = 0  # begun
        self.finished = 0
        self.batches: list[list[str]] = []

    def begin_load(self, expected: int) -> None:
        self.loads += 1
        self.batches = []
        super().begin_load(expected)

    def load(self, codes) -> None:
        batch = list(codes)
        self.batches.append(batch)
        super().load(batch)

    def finish_load(self) -> None:
        super().finish_load()
        self.finished += 1


@pytest.fixture
def filtering(postgres_only, committed):
    """Start a listener that keeps a known-codes filter, loaded two codes per query; wait for the load.

    Depends on `committed`, so the links a test commits are deleted after its listeners stopped.
    """
    started = []

    def start(known: KnownCodes | None = None, **options) -> LinkChangeListener:
        known = known if known is not None else RecordingKnownCodes()
        cache = LinkCache(ttl=0.001, notified_ttl=60, known_codes=known)
        options = {"heartbeat": 0.5, "retry_delays": (0.05,), "load_chunk": 2, **options}
        connect = {**listener_kwargs(db.obj), "application_name": TEST_LISTENER}
        listening = LinkChangeListener(connect, cache, **options)
        started.append(listening)
        listening.ensure_started()
        wait_until(lambda: known.loaded)
        return listening

    yield start
    for listening in started:
        listening.stop()


def committed_codes() -> list[str]:
    return in_own_thread(lambda: [link.code for link in Link.select(Link.code)])


def test_the_filter_is_loaded_with_every_committed_code_a_chunk_at_a_time(filtering, committed):
    codes = [committed(f"kc-load{i}").code for i in range(5)]
    listener = filtering()
    known = listener.cache.known_codes
    assert all(known.may_exist(code) for code in codes)
    assert not any(listener.knows_absent(code) for code in codes)
    read = [code for batch in known.batches for code in batch]
    assert sorted(read) == sorted(committed_codes())  # every row once, none lost between chunks
    assert len(known.batches) >= 3 and all(1 <= len(batch) <= 2 for batch in known.batches)


def test_a_never_created_code_is_known_absent_once_the_filter_is_loaded(filtering):
    listener = filtering()
    wait_until(lambda: listener.knows_absent("kc-never"))
    assert not listener.cache.known_codes.may_exist("kc-never")


def test_a_code_committed_elsewhere_after_the_load_becomes_known(filtering, committed):
    listener = filtering()
    known = listener.cache.known_codes
    wait_until(lambda: listener.knows_absent("kc-later"))
    committed("kc-later")
    wait_until(lambda: known.may_exist("kc-later"))  # its notification was applied
    assert not listener.knows_absent("kc-later")
    assert known.finished == 1  # added to the loaded filter, not by a reload


def test_a_code_renamed_during_the_load_behind_the_chunk_being_read_is_in_the_filter(filtering, committed):
    for i in range(4):
        committed(f"kc-ren{i}")
    renamed = []

    class RenamingDuringLoad(RecordingKnownCodes):
        def load(self, codes) -> None:
            batch = list(codes)
            super().load(batch)
            if "kc-ren0" in batch and not renamed:  # already read: only its notification tells
                renamed.append(True)
                commit(Link.update(code="kc-ren-new").where(Link.code == "kc-ren0"))
                time.sleep(0.05)  # let the notification reach the socket before the next chunk

    try:
        listener = filtering(RenamingDuringLoad())
        known = listener.cache.known_codes
        assert renamed and known.finished == 1
        assert known.may_exist("kc-ren-new") and not listener.knows_absent("kc-ren-new")
    finally:
        commit(Link.delete().where(Link.code == "kc-ren-new"))


def test_after_the_listener_stops_no_code_is_known_absent(filtering):
    listener = filtering()
    wait_until(lambda: listener.knows_absent("kc-never"))
    listener.stop()
    assert not listener.knows_absent("kc-never")
    assert not listener.cache.known_codes.loaded


def test_a_lost_connection_drops_the_filter_and_the_reconnect_reloads_it(filtering, committed):
    listener = filtering(retry_delays=(1.0,))  # a second without a connection
    known = listener.cache.known_codes
    wait_until(lambda: listener.knows_absent("kc-missed"))
    terminate_listener_backend()
    wait_until(lambda: not known.loaded)
    assert not listener.knows_absent("kc-missed")
    committed("kc-missed")  # its notification is lost: nobody listens
    assert not listener.cache.notified  # still disconnected
    wait_until(lambda: known.loaded and listener.connections == 2, timeout=5)
    assert known.finished == 2
    assert known.may_exist("kc-missed") and not listener.knows_absent("kc-missed")  # from the reload


def test_the_filter_is_rebuilt_once_more_codes_were_added_than_it_was_sized_for(filtering, committed):
    codes = [committed(f"kc-grow{i}").code for i in range(3)]
    listener = filtering(RecordingKnownCodes(min_capacity=1, headroom=1.0))
    known = listener.cache.known_codes
    assert known.finished == 1 and not known.needs_reload
    added = []
    while not known.needs_reload:  # as if many links were created (no row: the reload drops them)
        added.append(f"~added{len(added)}")
        known.add(added[-1])
    wait_until(lambda: known.finished == 2)
    assert known.loaded and not known.needs_reload
    assert all(known.may_exist(code) for code in codes)
    assert sum(known.may_exist(code) for code in added) < max(3, 0.05 * len(added))
    assert not listener.knows_absent(codes[0])


@pytest.fixture
def idle_listener():
    """A listener that is not started, "connected" through a socket pair the test controls."""
    known = KnownCodes()
    known.begin_load(0)
    known.finish_load()
    listening = LinkChangeListener({}, LinkCache(known_codes=known))
    ours, theirs = socket.socketpair()
    listening._fileno = ours.fileno()
    yield listening, theirs
    ours.close()
    theirs.close()


def test_knows_absent_needs_a_loaded_filter_a_connection_and_an_idle_listener(idle_listener):
    listener, server = idle_listener
    assert listener.knows_absent("kc-never")
    listener._busy = True  # applying notifications
    assert not listener.knows_absent("kc-never")
    listener._busy = False
    server.send(b"N")  # a notification not read yet
    assert not listener.knows_absent("kc-never")


def test_knows_absent_is_false_without_a_connection_or_a_filter(idle_listener):
    listener, _ = idle_listener
    listener._fileno = None
    assert not listener.knows_absent("kc-never")
    assert not LinkChangeListener({}, LinkCache()).knows_absent("kc-never")  # KNOWN_CODES_FILTER off


def test_knows_absent_is_false_for_a_code_in_the_filter(idle_listener):
    listener, _ = idle_listener
    listener.cache.invalidate("kc-made")  # created through this process
    assert not listener.knows_absent("kc-made")


def test_knows_absent_never_denies_a_code_applied_while_it_was_asking(idle_listener, monkeypatch):
    listener, _ = idle_listener
    real_select = select.select

    def listener_applies_meanwhile(*args):
        # The listener thread ran a whole loop between knows_absent's first and last look: it read
        # the notification from the socket (now empty), applied it and is idle again.
        listener.cache.invalidate("kc-race")
        return real_select(*args)

    monkeypatch.setattr(select, "select", listener_applies_meanwhile)
    answer = listener.knows_absent("kc-race")
    assert listener.cache.known_codes.may_exist("kc-race")
    assert answer is False


# Creates through a process whose listener is connected skip the trigger's NOTIFY (it would serialise
# every create's commit); the listener announces the codes itself, and sweeps up what it never did.


class Notifications:
    """A plain LISTEN connection: what the channel carried, and from which backend."""

    def __init__(self) -> None:
        self.connection = psycopg2.connect(**listener_kwargs(db.obj))
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute("LISTEN shortener_link_changed")

    def naming(self, code: str, wait: float = 0.3) -> list[int]:
        """The backend pids of the notifications that named `code`, after waiting `wait` seconds."""
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            select.select([self.connection], [], [], left)
            self.connection.poll()
        return [n.pid for n in self.connection.notifies if code in n.payload.split("\n")]

    def clear(self) -> None:
        """Forget what arrived so far (after waiting for what is on its way)."""
        self.naming("")
        self.connection.notifies.clear()

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def notifications(postgres_only):
    seen = Notifications()
    yield seen
    seen.close()


def create_committed(code: str, cache: LinkCache) -> Link:
    """Create `code` through the service on a connection of its own (committed, no outer transaction)."""
    fields = links.new_link_fields(
        links.NewLink(url="https://example.com/announced"),
        "https://example.com/announced",
        owner_id=None,
        now=datetime.now(UTC),
    )
    return in_own_thread(lambda: links._insert(code, fields, cache.announce))


def listener_pid(listener: LinkChangeListener) -> int:
    """The backend pid of the listener's connection (its application_name is TEST_LISTENER)."""
    connection = psycopg2.connect(**listener_kwargs(db.obj))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (TEST_LISTENER,))
            return cursor.fetchone()[0]
    finally:
        connection.close()


def test_a_create_here_is_announced_once_by_the_listener_not_by_the_trigger(
    filtering, committed, notifications
):
    listener = filtering()
    assert listener.cache.announce is not None  # connected: creates here skip the trigger
    committed("an-here")  # deleted afterwards; created again below through the announcing path
    in_own_thread(lambda: Link.delete().where(Link.code == "an-here").execute())
    notifications.clear()  # the insert's and the delete's notifications, out of the way
    create_committed("an-here", listener.cache)
    assert notifications.naming("an-here") == [listener_pid(listener)]  # one, from the listener


def test_a_create_by_another_writer_is_still_announced_by_the_trigger(filtering, committed, notifications):
    listener = filtering()
    committed("an-dba")  # an ordinary INSERT, on a connection that never named its code
    pids = notifications.naming("an-dba")
    assert len(pids) == 1 and pids[0] != listener_pid(listener)
    wait_until(lambda: listener.cache.known_codes.may_exist("an-dba"))


def test_announcements_that_gather_are_sent_together_one_notification_per_code(filtering, committed):
    listener = filtering()
    other = filtering()  # a second process
    codes = [f"an-many{i}" for i in range(50)]
    for code in codes:
        committed(code)  # committed by an ordinary insert; announced below as if created here
    other.cache.known_codes.reset()  # a filter that has heard of none of them
    other.cache.known_codes.begin_load(0)
    other.cache.known_codes.finish_load()
    seen = Notifications()
    try:
        seen.clear()
        for code in codes:
            listener.announce(code)
        wait_until(lambda: all(other.cache.known_codes.may_exist(code) for code in codes))
        seen.naming("")
        pid = listener_pid(listener)
        assert sorted(n.payload for n in seen.connection.notifies) == sorted(codes)  # one per code
        assert {n.pid for n in seen.connection.notifies} == {pid}
    finally:
        seen.close()


def test_a_code_never_announced_is_found_by_the_sweep(filtering, committed, notifications):
    # The creating process died between its commit and its announcement: nothing was sent.
    listener = filtering(sweep_interval=0.2)
    known = listener.cache.known_codes
    silent = LinkCache(ttl=0.001)
    silent.announce = lambda code: None  # skips the trigger, announces nothing
    committed("an-lost")  # registered for the cleanup; replaced below by the silent create
    in_own_thread(lambda: Link.delete().where(Link.code == "an-lost").execute())
    notifications.clear()  # the insert's and the delete's notifications have reached the listener too
    known.reset()  # forget it: a filter that never heard of the code
    known.begin_load(0)
    known.finish_load()
    create_committed("an-lost", silent)
    assert notifications.naming("an-lost", wait=0.1) == []
    wait_until(lambda: listener.swept >= 1)  # counted once the sweep is over
    assert known.may_exist("an-lost") and not listener.knows_absent("an-lost")


def test_a_code_created_on_this_server_and_never_announced_is_added_to_the_filter_by_the_sweep(
    filtering, committed, notifications
):
    # A worker of this server created it (the shared ring has it) and died before announcing it:
    # the ring forgets it 1,024 creates later, so the filter must learn it from the sweep.
    recent = RecentCodes(slots=8)
    known = RecordingKnownCodes(recent=recent)
    listener = filtering(known, sweep_interval=0.2)
    silent = LinkCache(ttl=0.001)
    silent.announce = lambda code: None  # skips the trigger, announces nothing
    committed("an-ring")  # registered for the cleanup; replaced below by the silent create
    in_own_thread(lambda: Link.delete().where(Link.code == "an-ring").execute())
    notifications.clear()
    known.reset()  # a filter that never heard of the code
    known.begin_load(0)
    known.finish_load()
    link = create_committed("an-ring", silent)
    recent.add("an-ring")  # what the creating worker did (`KnownCodes.created`) before it died
    assert notifications.naming("an-ring", wait=0.1) == []
    wait_until(lambda: listener._sweep_from >= link.id)  # a sweep has read it (and the next began)
    for number in range(8):  # the ring moves on
        recent.add(f"later{number}")
    assert "an-ring" not in recent
    assert not listener.knows_absent("an-ring")


def test_without_a_filter_the_sweep_drops_a_cached_miss_of_a_code_never_announced(postgres_only):
    cache = LinkCache(ttl=0.001, notified_ttl=60)  # no known-codes filter
    listening = LinkChangeListener(
        listener_kwargs(db.obj), cache, heartbeat=0.5, retry_delays=(0.05,), sweep_interval=0.2
    )
    listening.ensure_started()
    try:
        wait_until(lambda: cache.notified)
        silent = LinkCache(ttl=0.001)
        silent.announce = lambda code: None  # skips the trigger, announces nothing
        cache.put("an-nofilter", None)  # a cached "no such code", trusted 60 s while notified
        create_committed("an-nofilter", silent)
        assert cache.get("an-nofilter") is None  # nothing announced it
        wait_until(lambda: cache.get("an-nofilter") is UNCACHED)
    finally:
        listening.stop()
        in_own_thread(lambda: Link.delete().where(Link.code == "an-nofilter").execute())


def test_a_code_whose_id_was_drawn_before_the_filter_load_and_committed_after_is_swept(
    filtering, committed, notifications
):
    # Its insert drew the id, the listener loaded the table (its greatest id already higher), then
    # the insert committed, and its process died before announcing it.
    early = in_own_thread(lambda: db.execute_sql("SELECT nextval('link_id_seq')").fetchone()[0])
    committed("an-later")  # a higher id, committed first
    committed("an-early")  # registered for the cleanup; replaced below by the silent insert
    in_own_thread(lambda: Link.delete().where(Link.code == "an-early").execute())
    notifications.clear()  # the insert's and the delete's
    listener = filtering(sweep_interval=0.2)
    known = listener.cache.known_codes
    assert not known.may_exist("an-early")
    now = datetime.now(UTC)
    in_own_thread(
        lambda: db.execute_sql(
            "INSERT INTO link (id, code, target_url, created_at, updated_at, is_active, click_count, "
            "human_click_count) VALUES (%s, set_config('shortener.unannounced_code', %s, true), "
            "'https://example.com/early', %s, %s, true, 0, 0)",
            (early, "an-early", now, now),
        )
    )
    assert notifications.naming("an-early", wait=0.1) == []
    wait_until(lambda: listener.swept >= 1)  # counted once the sweep is over
    assert known.may_exist("an-early")


class GrowingTable:
    """A connection to a table that gains a row during every query: a stream of creates."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.queries = 0
        self.notifies: list = []

    def cursor(self) -> GrowingTable:
        return self

    def __enter__(self) -> GrowingTable:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, _sql: str, params: tuple[int, int]) -> None:
        self.queries += 1
        after, limit = params
        ids = list(range(after + 1, self.rows + 1))[:limit]
        self.result = (len(ids), ids[-1] if ids else None, "\n".join(f"c{i}" for i in ids) or None)
        self.rows += 1  # created while the query ran

    def fetchone(self) -> tuple:
        return self.result


def test_reading_the_codes_stops_at_the_table_end_its_query_saw_while_creates_keep_coming():
    listener = LinkChangeListener({}, LinkCache(ttl=1), load_chunk=2)
    table = GrowingTable(rows=5)
    chunks = list(itertools.islice(listener._codes_after(table, 0), 10))
    # Two rows read per query, one created per query: the read catches up with the table's end.
    assert chunks == [(["c1", "c2"], 2), (["c3", "c4"], 4), (["c5", "c6"], 6), (["c7", "c8"], 8), (["c9"], 9)]
    assert table.queries == 5  # then stops: no query per row created meanwhile, for as long as they come


def test_announcements_that_failed_to_send_are_kept_for_the_reconnect():
    cache = LinkCache(ttl=1)
    listener = LinkChangeListener({}, cache)
    listener.announce("first1")
    listener.announce("second2")

    class Broken:
        def cursor(self):
            raise psycopg2.OperationalError("server closed the connection unexpectedly")

    with pytest.raises(psycopg2.OperationalError):
        listener._send_announcements(Broken())
    listener.announce("third33")
    assert listener._outbox == ["first1", "second2", "third33"]


def test_codes_created_here_are_announced_when_the_listener_stops(filtering, committed, notifications):
    listener = filtering()
    committed("an-last")
    notifications.clear()
    pid = listener_pid(listener)
    with listener._outbox_lock:  # created just before the shutdown, not sent yet
        listener._outbox.append("an-last")
    listener.stop()
    assert notifications.naming("an-last") == [pid]
    assert listener.cache.announce is None  # creates from now on: the trigger announces them
    listener.ensure_started()  # a request during the shutdown: no new listener in this process
    assert not listener._thread.is_alive() and listener.cache.announce is None


def test_a_process_does_not_apply_its_own_announcements_again(filtering, committed):
    listener = filtering()
    other = filtering()
    committed("an-own")  # committed by an ordinary insert: both listeners hear of it
    wait_until(lambda: all(x.cache.known_codes.may_exist("an-own") for x in (listener, other)))
    for known in (listener.cache.known_codes, other.cache.known_codes):
        known.reset()
        known.begin_load(0)
        known.finish_load()
    generation = listener.cache.generation
    listener.announce("an-own")  # as if created here (`LinkCache.created` applied it already)
    wait_until(lambda: other.cache.known_codes.may_exist("an-own"))  # the other process heard it
    time.sleep(0.05)
    assert listener.cache.generation == generation  # not applied a second time here
