"""Click recording: classification, counters, rollups, unique visitors, buffering and flushing."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg2
import psycopg2.errors
import pytest
from peewee import DataError, IntegrityError, InternalError, OperationalError

from app.db import db, make_database
from app.errors import LinkGone
from app.models import Click, ClickRollup, DailyVisitor, Link, VisitorSalt
from app.services import clicks as clicks_module
from app.services import links
from app.services.clicks import MAX_SHARED_STRINGS, ClickRecorder
from app.services.link_cache import LinkCache
from app.services.link_events import listener_kwargs
from app.services.user_agents import classify, is_bot, referrer_host
from tests.api.test_concurrency import in_own_thread
from tests.factories import make_link

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 "
    "Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
NOON = datetime(2030, 5, 1, 12, 30, tzinfo=UTC)


def recorder(**kwargs) -> ClickRecorder:
    return ClickRecorder(background=False, **kwargs)


def stored(link: Link) -> Link:
    return Link.get_by_id(link.id)


@pytest.mark.parametrize(
    "user_agent",
    [
        GOOGLEBOT,
        "facebookexternalhit/1.1",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Twitterbot/1.0",
        "WhatsApp/2.23.20",
        "curl/8.5.0",
        "python-requests/2.31",
        "Go-http-client/1.1",
        "Mozilla/5.0 HeadlessChrome/120.0",
        "",
    ],
)
def test_crawlers_previewers_and_scripts_are_bots(user_agent):
    assert is_bot(user_agent)


@pytest.mark.parametrize(
    "user_agent", [CHROME, IPHONE, "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko Firefox/120.0"]
)
def test_browsers_are_human(user_agent):
    assert not is_bot(user_agent)


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (CHROME, ("Chrome", "Windows", "desktop")),
        (IPHONE, ("Mobile Safari", "iOS", "mobile")),
        (
            "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) Version/16.0 Safari/605.1",
            ("Mobile Safari UI/WKWebView", "iOS", "tablet"),
        ),
        (GOOGLEBOT, ("Googlebot", "Other", "bot")),
    ],
)
def test_user_agents_are_classified(user_agent, expected):
    assert classify(user_agent) == expected


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        (None, ""),
        ("", ""),
        ("https://news.example.com/a?b=secret", "news.example.com"),
        ("not a url", ""),
        ("http://[::1", ""),
        ("https://evil\x00.example/", ""),
        ("https://a\x7f.example/", ""),
    ],
)
def test_only_the_referrer_host_is_kept(referrer, host):
    assert referrer_host(referrer) == host


def test_flush_writes_clicks_counters_rollups_and_visitors_in_one_batch():
    link = make_link()
    clicks = recorder()
    clicks.record(
        link.id, user_agent=CHROME, referrer="https://news.example.com/x", client_ip="203.0.113.9", now=NOON
    )
    clicks.record(
        link.id, user_agent=CHROME, referrer="https://news.example.com/y", client_ip="203.0.113.9", now=NOON
    )
    clicks.record(link.id, user_agent=GOOGLEBOT, client_ip="66.249.66.1", now=NOON)
    assert clicks.pending(link.id) == 2 and clicks.depth() == 3
    assert clicks.flush() == 3
    assert (stored(link).click_count, stored(link).human_click_count) == (3, 2)
    rows = list(Click.select().where(Click.link == link.id).order_by(Click.id))
    assert [(r.referrer_host, r.browser, r.device, r.is_bot) for r in rows] == [
        ("news.example.com", "Chrome", "desktop", False),
        ("news.example.com", "Chrome", "desktop", False),
        ("", "Googlebot", "bot", True),
    ]
    assert rows[0].clicked_at == NOON
    rollups = {
        (r.hour, r.browser, r.is_bot): r.clicks
        for r in ClickRollup.select().where(ClickRollup.link == link.id)
    }
    assert rollups == {
        (NOON.replace(minute=0), "Chrome", False): 2,
        (NOON.replace(minute=0), "Googlebot", True): 1,
    }
    assert DailyVisitor.select().where(DailyVisitor.link == link.id).count() == 2
    assert clicks.pending(link.id) == 0 and clicks.depth() == 0 and clicks.flush() == 0


def click_rows(link: Link) -> tuple[int, int, int]:
    """Raw clicks, rollup rows and daily visitors stored for `link`."""
    return (
        Click.select().where(Click.link == link.id).count(),
        ClickRollup.select().where(ClickRollup.link == link.id).count(),
        DailyVisitor.select().where(DailyVisitor.link == link.id).count(),
    )


def test_deleting_a_link_row_deletes_its_clicks_rollups_and_visitors():
    # Links are only ever soft-deleted by the service; a row deleted by hand (a DBA) takes its click
    # data with it: foreign keys on SQLite, a statement trigger on PostgreSQL (migration 0005).
    gone, kept = make_link(), make_link()
    clicks = recorder()
    for link in (gone, kept, gone):
        clicks.record(link.id, user_agent=CHROME, client_ip="203.0.113.9", now=NOON)
    assert clicks.flush() == 3
    assert click_rows(gone) == (2, 1, 1) and click_rows(kept) == (1, 1, 1)
    Link.delete().where(Link.id == gone.id).execute()
    assert click_rows(gone) == (0, 0, 0)
    assert click_rows(kept) == (1, 1, 1)


def test_clicks_of_a_link_deleted_before_the_flush_are_dropped_and_counted_the_rest_written():
    gone, kept = make_link(), make_link()
    clicks = recorder()
    clicks.record(gone.id, user_agent=CHROME, now=NOON)
    clicks.record(kept.id, user_agent=CHROME, now=NOON)
    clicks.record(kept.id, user_agent=GOOGLEBOT, now=NOON)
    Link.delete().where(Link.id == gone.id).execute()
    assert clicks.flush() == 2
    assert clicks.dropped == 1 and clicks.depth() == 0 and clicks.pending(gone.id) == 0
    assert click_rows(gone) == (0, 0, 0)
    assert (stored(kept).click_count, stored(kept).human_click_count) == (2, 1)
    assert click_rows(kept) == (2, 2, 2)


def test_a_link_deleted_by_hand_during_a_flush_keeps_none_of_its_clicks(settings):
    if not settings.is_postgres:
        pytest.skip("SQLite's foreign keys refuse such clicks; PostgreSQL's flush locks the links")
    link = in_own_thread(make_link)  # committed: another session can delete it
    clicks = recorder()
    clicks.record(link.id, user_agent=CHROME, client_ip="203.0.113.9", now=NOON)
    dba = psycopg2.connect(**listener_kwargs(db.obj))
    try:
        with dba.cursor() as cursor:  # deleted, not yet committed: the row is locked meanwhile
            cursor.execute("DELETE FROM link WHERE id = %s", (link.id,))
        committing = threading.Timer(0.3, dba.commit)
        committing.start()
        written = clicks.flush()  # waits for the delete's outcome instead of racing it
        committing.join()
    finally:
        dba.close()
    assert written == 0 and clicks.dropped == 1
    assert click_rows(link) == (0, 0, 0)


def test_rollups_add_up_across_flushes():
    link = make_link()
    clicks = recorder()
    for _ in range(2):
        clicks.record(link.id, user_agent=CHROME, client_ip="203.0.113.9", now=NOON)
        clicks.flush()
    assert ClickRollup.get(ClickRollup.link == link.id).clicks == 2
    assert DailyVisitor.select().where(DailyVisitor.link == link.id).count() == 1


def test_unique_visitors_are_counted_per_day_without_storing_ip_addresses():
    link = make_link()
    clicks = recorder()
    for ip, when in [
        ("198.51.100.7", NOON),
        ("198.51.100.7", NOON + timedelta(hours=1)),
        ("198.51.100.8", NOON),
        ("198.51.100.7", NOON + timedelta(days=1)),
    ]:
        clicks.record(link.id, user_agent=CHROME, client_ip=ip, now=when)
    clicks.flush()
    visitors = list(DailyVisitor.select().where(DailyVisitor.link == link.id))
    assert sorted((v.day.isoformat(), len(v.visitor_hash)) for v in visitors) == [
        ("2030-05-01", 32),
        ("2030-05-01", 32),
        ("2030-05-02", 32),
    ]
    same_visitor_days = {v.day: v.visitor_hash for v in visitors if v.day.isoformat() == "2030-05-02"}
    assert same_visitor_days.popitem()[1] not in {
        v.visitor_hash for v in visitors if v.day.isoformat() == "2030-05-01"
    }
    for click in Click.select().where(Click.link == link.id):
        assert "198.51.100" not in str(click.__data__)


def test_salts_are_kept_for_two_days_only():
    link = make_link()
    clicks = recorder()
    for day in range(4):
        clicks.record(link.id, user_agent=CHROME, client_ip="1.2.3.4", now=NOON + timedelta(days=day))
        clicks.flush()
    assert [s.day.isoformat() for s in VisitorSalt.select().order_by(VisitorSalt.day)] == [
        "2030-05-03",
        "2030-05-04",
    ]


def test_counters_only_when_analytics_is_off():
    link = make_link()
    clicks = recorder(analytics=False)
    clicks.record(link.id, user_agent=CHROME)
    clicks.record(link.id, user_agent=GOOGLEBOT)
    assert clicks.flush() == 2
    assert (stored(link).click_count, stored(link).human_click_count) == (2, 1)
    assert Click.select().where(Click.link == link.id).count() == 0


def test_failed_flush_keeps_the_clicks_for_the_next_attempt(monkeypatch):
    link = make_link()
    clicks = recorder()
    clicks.record(link.id, user_agent=CHROME)

    def fails_half_way(rows):
        clicks_module._add_to_counters([(row[0], row[6]) for row in rows])  # a write that must roll back
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patch:
        patch.setattr(clicks_module, "_write_postgres", fails_half_way)
        patch.setattr(clicks_module, "_write_portable", fails_half_way)
        assert clicks.flush() == 0
    assert stored(link).click_count == 0  # the failed transaction wrote nothing
    clicks.record(link.id, user_agent=CHROME)
    assert clicks.pending(link.id) == 2 and clicks.depth() == 2
    assert clicks.flush() == 2
    assert stored(link).human_click_count == 2 and Click.select().where(Click.link == link.id).count() == 2


def test_control_characters_from_the_request_never_reach_the_database():
    link = make_link()
    clicks = recorder()
    clicks.record(
        link.id,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Evil\x00Browser/1.0",
        referrer="https://a\x00b.example/",
    )
    assert clicks.flush() == 1  # PostgreSQL refuses NUL in text: it must not get there
    click = Click.get(Click.link == link.id)
    assert "\x00" not in click.browser + click.os + click.referrer_host


POISON = "https://poison.example/page"  # the referrer of the click the database refuses in these tests


def refuse_poison(monkeypatch, settings, error: Exception, *, after_write=None) -> None:
    """Make the database refuse (with `error`) any batch holding the click referred by POISON.

    The batch is written first, so the refusal must also undo a half-done transaction.
    """
    name = "_write_postgres" if settings.is_postgres else "_write_portable"
    original = getattr(clicks_module, name)

    def write(rows):
        rows = list(rows)  # the PostgreSQL writer is handed a generator: read it once, for both
        orphaned = original(rows)
        if any(row[2] == "poison.example" for row in rows):
            raise error
        if after_write is not None:
            after_write(rows)
        return orphaned

    monkeypatch.setattr(clicks_module, name, write)


def test_a_batch_the_database_refuses_is_dropped_so_later_clicks_still_flow(monkeypatch, settings):
    # Only the refused click is dropped: the rest of its batch is written, and later clicks flow.
    link = make_link()
    clicks = recorder()
    clicks.record(link.id, user_agent=CHROME)
    clicks.record(link.id, user_agent=CHROME, referrer=POISON)
    clicks.record(link.id, user_agent=GOOGLEBOT)

    with monkeypatch.context() as patch:
        refuse_poison(patch, settings, ValueError("A string literal cannot contain NUL (0x00) characters."))
        assert clicks.flush() == 2
    assert clicks.depth() == 0 and clicks.dropped == 1 and clicks.pending(link.id) == 0
    assert (stored(link).click_count, stored(link).human_click_count) == (2, 1)
    clicks.record(link.id, user_agent=CHROME)
    assert clicks.flush() == 1
    assert stored(link).click_count == 3


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError('null value in column "browser" violates not-null constraint'),
        DataError("value too long for type character varying(64)"),
        psycopg2.errors.NotNullViolation('null value in column "browser" violates not-null constraint'),
        psycopg2.errors.ForeignKeyViolation('insert or update on table "click" violates foreign key'),
        sqlite3.IntegrityError("NOT NULL constraint failed: click.browser"),
    ],
    ids=["peewee-integrity", "peewee-data", "pg-not-null", "pg-foreign-key", "sqlite-integrity"],
)
def test_a_click_the_database_refuses_is_isolated_and_only_it_is_dropped(monkeypatch, settings, error):
    first, second = make_link(), make_link()
    clicks = recorder()
    for index in range(37):  # two links, bots and humans; the refused click in the middle
        clicks.record(
            (first, second)[index % 2].id,
            user_agent=GOOGLEBOT if index % 5 == 0 else CHROME,
            referrer=POISON if index == 22 else "https://news.example.com/",
            client_ip=f"198.51.100.{index}",
            now=NOON,
        )
    with monkeypatch.context() as patch:
        refuse_poison(patch, settings, error)
        assert clicks.flush() == 36
    assert clicks.dropped == 1 and clicks.depth() == 0
    assert clicks.pending(first.id) == 0 and clicks.pending(second.id) == 0
    assert (stored(first).click_count, stored(first).human_click_count) == (18, 14)  # 22 was first's
    assert (stored(second).click_count, stored(second).human_click_count) == (18, 14)
    for link, total in ((first, 18), (second, 18)):
        hosts = [click.referrer_host for click in Click.select().where(Click.link == link.id)]
        assert hosts == ["news.example.com"] * total
        rollups = ClickRollup.select().where(ClickRollup.link == link.id)
        assert sum(rollup.clicks for rollup in rollups) == total
        assert DailyVisitor.select().where(DailyVisitor.link == link.id).count() == total


@pytest.mark.parametrize(
    "error",
    [
        InternalError("cannot execute INSERT in a read-only transaction"),
        psycopg2.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"),
        OperationalError("server closed the connection unexpectedly"),
        sqlite3.OperationalError("database is locked"),
    ],
    ids=["peewee-internal", "pg-read-only", "peewee-operational", "sqlite-locked"],
)
def test_a_failover_or_outage_keeps_the_whole_batch(monkeypatch, settings, error):
    link = make_link()
    clicks = recorder()
    for _ in range(3):
        clicks.record(link.id, user_agent=CHROME)
    original = clicks_module._write_postgres if settings.is_postgres else clicks_module._write_portable

    def unavailable(rows):
        original(rows)  # a write that must roll back
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(
            clicks_module, "_write_postgres" if settings.is_postgres else "_write_portable", unavailable
        )
        assert clicks.flush() == 0
    assert clicks.depth() == 3 and clicks.pending(link.id) == 3 and clicks.dropped == 0
    assert stored(link).click_count == 0
    assert clicks.flush() == 3
    assert stored(link).human_click_count == 3


def test_an_outage_while_isolating_a_refused_click_keeps_what_is_not_written(monkeypatch, settings):
    link = make_link()
    clicks = recorder()
    clicks.record(link.id, user_agent=CHROME, referrer="https://a.example/")
    clicks.record(link.id, user_agent=CHROME, referrer=POISON)
    clicks.record(link.id, user_agent=CHROME, referrer="https://b.example/")
    clicks.record(link.id, user_agent=CHROME, referrer="https://c.example/")
    down = []

    def goes_down_after_the_first_write(rows):
        down.append(True)

    name = "_write_postgres" if settings.is_postgres else "_write_portable"
    with monkeypatch.context() as patch:
        refuse_poison(patch, settings, IntegrityError("refused"), after_write=goes_down_after_the_first_write)
        original = getattr(clicks_module, name)

        def write(rows):
            if down:
                raise OperationalError("server closed the connection unexpectedly")
            return original(rows)

        patch.setattr(clicks_module, name, write)
        assert clicks.flush() == 1  # [a] written; the database went away before [poison] and [b, c]
    assert stored(link).human_click_count == 1
    assert clicks.depth() == 3 and clicks.pending(link.id) == 3 and clicks.dropped == 0
    with monkeypatch.context() as patch:
        refuse_poison(patch, settings, IntegrityError("refused"))
        assert clicks.flush() == 2
    assert clicks.depth() == 0 and clicks.pending(link.id) == 0 and clicks.dropped == 1
    hosts = sorted(click.referrer_host for click in Click.select().where(Click.link == link.id))
    assert hosts == ["a.example", "b.example", "c.example"]


def test_a_refused_click_does_not_let_max_clicks_be_exceeded(monkeypatch, settings):
    link = links.create_link(links.NewLink(url="https://example.com", max_clicks=5), settings)
    clicks, cache = recorder(), LinkCache(maxsize=0)

    def redirect(referrer=None):
        return links.resolve_for_redirect(
            link.code, settings, clicks, cache, visit=links.Visit(CHROME, referrer)
        )

    redirect(POISON)
    for _ in range(4):
        redirect()
    with pytest.raises(LinkGone):
        redirect()
    with monkeypatch.context() as patch:
        refuse_poison(patch, settings, IntegrityError("refused"))
        assert clicks.flush() == 4  # the four good clicks are written, the refused one is not a click
    assert stored(link).human_click_count == 4 and clicks.pending(link.id) == 0 and clicks.dropped == 1
    redirect()  # the fifth click the link may take (the refused one was never counted)
    for _ in range(3):
        with pytest.raises(LinkGone):
            redirect()
    assert clicks.flush() == 1
    assert stored(link).human_click_count == 5
    with pytest.raises(LinkGone):
        redirect()


@pytest.mark.parametrize("microsecond", [0, 1, 499_999, 500_000, 999_999])
def test_a_click_is_stored_at_its_instant_to_the_microsecond(microsecond):
    # PostgreSQL's COPY gets the instant as seconds since the epoch (a float): it must come back exact.
    link = make_link()
    clicks = recorder()
    moments = [NOON.replace(microsecond=microsecond), datetime(2099, 12, 31, 23, 59, 59, microsecond, UTC)]
    for moment in moments:
        clicks.record(link.id, user_agent=CHROME, now=moment)
    assert clicks.flush() == 2
    assert [c.clicked_at for c in Click.select().where(Click.link == link.id).order_by(Click.id)] == moments


def test_a_batch_across_midnight_hashes_each_click_with_its_own_days_salt():
    link = make_link()
    clicks = recorder()
    before, after = datetime(2030, 7, 1, 23, 59, 59, 999_999, UTC), datetime(2030, 7, 2, tzinfo=UTC)
    for moment in (before, after, before):
        clicks.record(link.id, user_agent=CHROME, client_ip="192.0.2.7", now=moment)
    assert clicks.flush() == 3
    visitors = {
        v.day.isoformat(): v.visitor_hash for v in DailyVisitor.select().where(DailyVisitor.link == link.id)
    }
    assert set(visitors) == {"2030-07-01", "2030-07-02"}
    assert visitors["2030-07-01"] != visitors["2030-07-02"]  # another day, another salt
    hashes = [c.visitor_hash for c in Click.select().where(Click.link == link.id).order_by(Click.id)]
    assert hashes == [visitors["2030-07-01"], visitors["2030-07-02"], visitors["2030-07-01"]]


@pytest.mark.parametrize("visits_remembered", [3, 4096])
def test_every_click_of_a_batch_is_written_whatever_the_visits_and_the_reads(monkeypatch, visits_remembered):
    # COPY reads the batch a few rows at a time, and the values derived from a visit are remembered
    # for a bounded number of visits: a small bound rolls over many times, a large one is reused.
    monkeypatch.setattr(clicks_module._CsvStream, "ROWS_PER_READ", 7)
    monkeypatch.setattr(clicks_module, "MAX_DISTINCT_VISITS", visits_remembered)
    first, second = make_link(), make_link()
    clicks = recorder()
    agents = [CHROME, IPHONE, GOOGLEBOT, "curl/8.5.0", CHROME + " extra"]
    for index in range(100):
        clicks.record(
            (first, second)[index % 2].id,
            user_agent=agents[index % 5],
            referrer=f"https://site{index % 4}.example/page",
            client_ip=f"198.51.100.{index % 3}",
            now=NOON + timedelta(seconds=index),
        )
    assert clicks.flush() == 100 and clicks.dropped == 0
    rows = list(Click.select().where(Click.link.in_([first.id, second.id])).order_by(Click.clicked_at))
    assert len(rows) == 100
    for index, row in enumerate(rows):
        agent = agents[index % 5]
        assert row.link_id == (first, second)[index % 2].id
        assert (row.browser, row.os, row.device) == classify(agent)
        assert row.referrer_host == f"site{index % 4}.example"
        assert row.is_bot == (is_bot(agent) or classify(agent)[2] == "bot")
    salt = bytes.fromhex(VisitorSalt.get_by_id(NOON.date()).salt)
    expected = [
        clicks_module._keyed_hash(salt, f"198.51.100.{index % 3}", agents[index % 5]) for index in range(100)
    ]
    assert [row.visitor_hash for row in rows] == expected
    assert len(set(expected)) == 15  # 5 agents x 3 addresses, all on one day
    assert (stored(first).click_count, stored(second).click_count) == (50, 50)
    assert (
        sum(r.clicks for r in ClickRollup.select().where(ClickRollup.link.in_([first.id, second.id]))) == 100
    )


def test_a_click_whose_row_cannot_be_built_is_dropped_alone(monkeypatch):
    # On PostgreSQL the rows are built while COPY reads them: a failure there must abort the COPY,
    # roll the transaction back and leave the connection usable, like a refusal by the database.
    link = make_link()
    clicks = recorder()
    real_classify = clicks_module.classify

    def classify_or_fail(user_agent):
        if user_agent == "broken/1.0":
            raise ValueError("cannot classify")
        return real_classify(user_agent)

    monkeypatch.setattr(clicks_module, "classify", classify_or_fail)
    for agent in (CHROME, IPHONE, "broken/1.0", CHROME):
        clicks.record(link.id, user_agent=agent)
    assert clicks.flush() == 3 and clicks.dropped == 1
    assert [c.browser for c in Click.select().where(Click.link == link.id).order_by(Click.id)] == [
        classify(CHROME)[0],
        classify(IPHONE)[0],
        classify(CHROME)[0],
    ]
    clicks.record(link.id, user_agent=IPHONE)
    assert clicks.flush() == 1 and stored(link).click_count == 4


def test_a_flush_whose_rows_are_slow_to_build_is_not_cut_off_by_the_statement_timeout(settings, monkeypatch):
    # PostgreSQL's COPY lasts as long as Python takes to build its rows (here 1 ms per distinct
    # User-Agent): the connection's statement timeout must not cancel it (it was then taken for an
    # outage, and the batch kept and retried forever at the same cost).
    if not settings.is_postgres:
        pytest.skip("COPY is the PostgreSQL path")
    link = make_link()
    clicks = recorder()
    real_classify = clicks_module.classify

    def slow_classify(user_agent):
        time.sleep(0.001)
        return real_classify(user_agent)

    monkeypatch.setattr(clicks_module, "classify", slow_classify)
    for index in range(300):
        clicks.record(link.id, user_agent=f"{CHROME} build/{index}")
    db.execute_sql("SET statement_timeout = 100")
    try:
        assert clicks.flush() == 300 and clicks.depth() == 0
        assert db.execute_sql("SHOW statement_timeout").fetchone()[0] == "100ms"  # restored after COPY
    finally:
        db.execute_sql("RESET statement_timeout")
    assert stored(link).click_count == 300


def test_a_click_with_a_naive_instant_is_refused_alone():
    # An instant without a timezone cannot be placed in UTC: refused (as the SQLite path does), not
    # read as the machine's local time.
    link = make_link()
    clicks = recorder()
    clicks.record(link.id, user_agent=CHROME, now=NOON)
    clicks.record(link.id, user_agent=CHROME, now=NOON.replace(tzinfo=None))
    clicks.record(link.id, user_agent=IPHONE, now=NOON)
    assert clicks.flush() == 2 and clicks.dropped == 1
    assert [c.clicked_at for c in Click.select().where(Click.link == link.id)] == [NOON, NOON]


def test_copy_is_fed_a_bounded_slice_of_the_batch_per_read():
    rows = [(index, NOON, "r", "b", "o", "d", index % 2 == 0, "h") for index in range(5000)]
    stream = clicks_module._CsvStream(rows)
    reads = []
    while chunk := stream.read(8192):
        reads.append(chunk)
    per_read = clicks_module._CsvStream.ROWS_PER_READ
    assert [chunk.count("\n") for chunk in reads] == [per_read] * (5000 // per_read) + [5000 % per_read]
    epoch = repr(NOON.timestamp())
    assert reads[0].startswith(f'0,{epoch},"r","b","o","d","t","h"\r\n1,{epoch},"r","b","o","d","f","h"\r\n')
    assert clicks_module._CsvStream(rows).read(-1) == "".join(reads)  # everything at once, when asked


NULL_LOOKALIKES = ["\\N", "\\.", "NULL", "", '"', '""', ",", "\\", "a,b\\N"]


@pytest.mark.parametrize("value", NULL_LOOKALIKES)
def test_copy_never_reads_a_text_value_as_null(settings, value):
    if not settings.is_postgres:
        pytest.skip("COPY is the PostgreSQL path")
    link = make_link()
    clicks_module._write_postgres([(link.id, NOON, value, value, value, value, False, value)])
    click = Click.get(Click.link == link.id)
    assert (click.referrer_host, click.browser, click.os, click.device, click.visitor_hash) == (value,) * 5
    rollup = ClickRollup.get(ClickRollup.link == link.id)
    assert (rollup.referrer_host, rollup.browser, rollup.os, rollup.device) == (value,) * 4
    assert DailyVisitor.get(DailyVisitor.link == link.id).visitor_hash == value
    assert stored(link).click_count == 1


def test_a_backslash_n_user_agent_and_referrer_host_are_stored_as_text(monkeypatch):
    # ua-parser copies the browser family from the header: "\N/1.0 ..." gives the family "\N", which
    # COPY's NULL marker used to turn into NULL (NotNullViolation: the whole batch was lost).
    poisoned = "\\N/1.0 CFNetwork/1.0 Darwin/20.0"
    assert classify(poisoned)[0] == "\\N"
    link = make_link()
    clicks = recorder()
    monkeypatch.setattr(  # a real host is lowercased ("\n"); "\N" itself is the value to prove
        clicks_module, "referrer_host", lambda referrer: "\\N" if referrer else ""
    )
    clicks.record(link.id, user_agent=poisoned, referrer="https://x.example/")
    clicks.record(link.id, user_agent=CHROME)
    assert clicks.flush() == 2 and clicks.dropped == 0
    first = Click.select().where(Click.link == link.id).order_by(Click.id).first()
    assert (first.browser, first.referrer_host) == ("\\N", "\\N")
    assert ClickRollup.get(ClickRollup.link == link.id, ClickRollup.browser == "\\N").clicks == 1
    assert (stored(link).click_count, stored(link).human_click_count) == (2, 2)


def test_unreachable_database_during_flush_keeps_clicks_until_it_is_back(settings):
    if not settings.is_postgres:
        pytest.skip("an unreachable server needs PostgreSQL")
    link = make_link()
    clicks = recorder()
    clicks.record(link.id, user_agent=CHROME, client_ip="1.2.3.4")
    original = db.obj
    db.initialize(make_database(replace(settings, database_url="postgresql://postgres@127.0.0.1:1/down")))
    try:
        assert clicks.flush() == 0
        assert clicks.depth() == 1 and clicks.pending(link.id) == 1
    finally:
        db.initialize(original)
    assert clicks.flush() == 1
    assert stored(link).click_count == 1


def test_buffer_is_bounded_and_counts_what_it_drops():
    clicks = recorder(max_events=2)
    for link_id in (1, 2, 3):
        clicks.record(link_id, user_agent=CHROME)
    assert clicks.depth() == 2 and clicks.dropped == 1


def test_buffered_clicks_add_nothing_for_the_garbage_collector_to_walk():
    # A buffer of tracked objects (up to 50,000 clicks) was walked by every collection of the
    # older generations: pauses up to 125 ms, the GIL held, under redirect load.
    clicks = recorder(max_events=5000)
    gc.collect()
    tracked_before = len(gc.get_objects())
    for n in range(2000):
        clicks.record(
            n, user_agent=CHROME, referrer="https://news.example/a", client_ip=f"10.0.{n // 256}.{n % 256}"
        )
    gc.collect()
    assert clicks.depth() == 2000
    assert len(gc.get_objects()) - tracked_before < 100


def test_buffered_clicks_with_the_same_user_agent_hold_one_copy_of_it():
    # Each request brings its own copy of the header: ~150 bytes per buffered click, 7 MiB when the
    # buffer fills up while the database is away (bench/click_buffer_bench.py).
    clicks = recorder()
    for n in range(3):
        clicks.record(n, user_agent="".join(CHROME), client_ip="10.0.0.1")
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    clicks.record(3, user_agent="".join(firefox), client_ip="10.0.0.1")
    agents = [event[2] for event in clicks._events]
    assert agents == [CHROME, CHROME, CHROME, firefox]
    assert agents[0] is agents[1] is agents[2] and agents[3] is not agents[0]


def test_the_user_agents_kept_for_sharing_are_bounded():
    clicks = recorder(max_events=5000)
    for n in range(MAX_SHARED_STRINGS * 3):
        clicks.record(n, user_agent=f"agent/{n}", client_ip="10.0.0.1")
    assert 0 < clicks_module._shared.cache_info().currsize <= MAX_SHARED_STRINGS
    last = MAX_SHARED_STRINGS * 3 - 1
    assert [event[2] for event in clicks._events][-2:] == [f"agent/{last - 1}", f"agent/{last}"]


def test_max_clicks_overshoot_is_bounded_by_the_other_processes_buffers(settings):
    link = links.create_link(links.NewLink(url="https://example.com", max_clicks=3), settings)
    first, second = recorder(), recorder()  # two worker processes
    served = 0
    for clicks in (first, second, first, second, first, second, first, second):
        try:
            target = links.resolve_for_redirect(link.code, settings, clicks, LinkCache(maxsize=0))
        except LinkGone:
            continue
        clicks.record(target.link_id, user_agent=CHROME)
        served += 1
    assert served == 6  # each process stops at the limit with its own buffered clicks: 3 + 3
    first.flush()
    second.flush()
    assert stored(link).human_click_count == 6
    with pytest.raises(LinkGone):
        links.resolve_for_redirect(link.code, settings, first, LinkCache(maxsize=0))


def test_bot_clicks_do_not_use_up_max_clicks(settings):
    link = links.create_link(links.NewLink(url="https://example.com", max_clicks=1), settings)
    clicks = recorder()
    for _ in range(5):
        links.resolve_for_redirect(link.code, settings, clicks, LinkCache(maxsize=0))
        clicks.record(link.id, user_agent="Slackbot-LinkExpanding 1.0")
    clicks.flush()
    assert (
        links.resolve_for_redirect(link.code, settings, clicks, LinkCache(maxsize=0)).url
        == "https://example.com"
    )


class ObservedRecorder(ClickRecorder):
    """A recorder whose flushes are observed instead of written."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.flushed = threading.Event()
        self.batches: list[int] = []

    def flush(self) -> int:
        with self._lock:
            size, self._events = len(self._events), []
        if size:
            self.batches.append(size)
            self.flushed.set()
        return size


def test_background_thread_flushes_on_interval():
    clicks = ObservedRecorder(interval=0.05, batch_size=1000)
    started = time.monotonic()
    clicks.record(1, user_agent=CHROME)
    assert clicks.flushed.wait(2)
    assert 0.03 < time.monotonic() - started < 1.5
    clicks.close()


def test_background_thread_flushes_early_when_batch_is_full():
    clicks = ObservedRecorder(interval=30, batch_size=3)
    for link_id in (1, 2, 3):
        clicks.record(link_id, user_agent=CHROME)
    assert clicks.flushed.wait(2), "a full batch must not wait for the 30 s interval"
    assert clicks.batches == [3]
    clicks.close()


def test_close_stops_the_thread_and_flushes_what_is_left():
    clicks = ObservedRecorder(interval=30, batch_size=1000)
    clicks.record(7, user_agent=CHROME)
    thread = clicks._thread
    clicks.close()
    assert clicks.batches == [1]
    assert thread is not None and not thread.is_alive()
