"""Click recording off the request path: each process buffers clicks and writes them in batches.

A redirect only appends a small tuple to an in-memory buffer. A background thread (or `flush()`)
turns the buffer into rows in one transaction: raw clicks (multi-row insert), hourly rollups,
daily visitors and the per-link counters. Nothing here ever blocks or fails a redirect.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import logging
import secrets
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import islice

import psycopg2
from peewee import InternalError

from app.db import UNAVAILABLE_ERRORS, connected, db, execute_many, insert_rows, is_postgres, utcnow
from app.models import Click, VisitorSalt
from app.processes import current_pid
from app.services.user_agents import MAX_USER_AGENT, classify, is_bot, referrer_host

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DISTINCT_VISITS = 4096  # per flush, `_rows` remembers at most this many visits' derived values
# Buffered clicks share one string per distinct User-Agent among the last this many seen (each
# request brings its own copy): 438 → 288 bytes per buffered click of browser traffic, so a buffer
# filled while the database is away holds 7 MiB less at 50,000 clicks, for ~50 ns per click and at
# most ~0.6 MB (User-Agents are cut at 512 characters); `bench/click_buffer_bench.py`. Client
# addresses are shorter and repeat less: sharing them as well cost ~150 ns more per click.
MAX_SHARED_STRINGS = 1024


@functools.lru_cache(maxsize=MAX_SHARED_STRINGS)
def _shared(user_agent: str) -> str:
    """The copy of `user_agent` seen first among the last MAX_SHARED_STRINGS distinct ones."""
    return user_agent


CLICK_COLUMNS = (
    "link_id",
    "clicked_at",
    "referrer_host",
    "browser",
    "os",
    "device",
    "is_bot",
    "visitor_hash",
)
ROLLUP_DIMENSIONS = ("link_id", "hour", "referrer_host", "browser", "os", "device", "is_bot")
ROLLUP_UPSERT = (  # add a batch's counts to the rows that already exist
    f"ON CONFLICT ({', '.join(ROLLUP_DIMENSIONS)}) "
    "DO UPDATE SET clicks = click_rollup.clicks + excluded.clicks"
)
STORED_TIME = Click.clicked_at.db_value  # aware UTC → the stored form, same as the ORM writes
# A flush that fails with one of these is kept and retried: the database cannot take writes right
# now (down, restarting, or a read-only standby mid-failover: "read-only transaction"). Bulk writes
# use raw driver cursors, so the driver's own classes are listed too (sqlite3's OperationalError is
# "database is locked"; peewee would wrap it as its OperationalError). Any other error is the
# database refusing some rows of the batch (see `ClickRecorder.flush`).
TRANSIENT_ERRORS = (*UNAVAILABLE_ERRORS, InternalError, psycopg2.InternalError, sqlite3.OperationalError)


# One buffered click, what the request path captures (raw headers, classified later by the flusher):
# (link_id, clicked_at, user_agent, referrer, client_ip, bot). A plain tuple, not a NamedTuple: the
# garbage collector stops tracking a plain tuple of strings, numbers and datetimes, never a tuple
# subclass. Buffered NamedTuples (up to 70,000 under load) were walked by every collection of the
# older generations, the GIL held: pauses up to 125 ms, ~15% of the server's CPU per redirect
# (docs/PERFORMANCE.md).
ClickEvent = tuple[int, datetime, str, str | None, str, bool]


class ClickRecorder:
    """Per-process click buffer, flushed every `interval` seconds, at `batch_size` clicks and on close.

    The buffer holds at most `max_events` clicks; beyond that new clicks are dropped and counted in
    `dropped` (memory stays bounded when the database is down). A flush that fails because the database
    is away puts its clicks back and they are written by a later flush; a click the database refuses
    is dropped alone (and counted), the rest of its batch is written. With `analytics=False` only the
    per-link counters are kept.
    """

    def __init__(
        self,
        *,
        interval: float = 1.0,
        # Early flushes at 5,000 rather than 1,000: per click, a batch of 1,000 cost PostgreSQL about
        # twice the work of one of 5,000 (fixed costs per statement and transaction, and every
        # link's counter row updated once per batch); measured in docs/PERFORMANCE.md.
        batch_size: int = 5000,
        max_events: int = 50_000,
        background: bool = True,
        analytics: bool = True,
    ) -> None:
        self.interval = interval
        self.batch_size = batch_size
        self.max_events = max_events
        self.background = background
        self.analytics = analytics
        self.dropped = 0
        self._events: list[ClickEvent] = []
        self._pending_human: Counter[int] = Counter()
        self._salts: dict[date, bytes] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def record(
        self,
        link_id: int,
        *,
        user_agent: str = "",
        referrer: str | None = None,
        client_ip: str = "",
        now: datetime | None = None,
        limit: int | None = None,
    ) -> bool:
        """Buffer one click (never touches the database); False, and nothing recorded, when refused.

        `limit` is how many more human clicks the link may take beyond its stored count: checking it
        against this process's buffered clicks and recording the click are one atomic step.
        """
        user_agent = _shared(user_agent[:MAX_USER_AGENT].replace("\x00", ""))
        bot = is_bot(user_agent)
        event = (link_id, now or utcnow(), user_agent, referrer, client_ip, bot)
        with self._lock:
            if limit is not None and self._pending_human[link_id] >= limit:
                return False
            if len(self._events) >= self.max_events:
                self.dropped += 1
                return True  # the redirect still happens; only its record is lost (and counted)
            self._events.append(event)
            if not bot:
                self._pending_human[link_id] += 1
            full = len(self._events) >= self.batch_size
        if self.background:
            self._ensure_thread()
            if full:
                self._wake.set()
        return True

    def pending(self, link_id: int) -> int:
        """Human clicks on `link_id` recorded here and not yet committed (for max_clicks)."""
        with self._lock:
            return self._pending_human.get(link_id, 0)

    def depth(self) -> int:
        """Clicks waiting in the buffer."""
        with self._lock:
            return len(self._events)

    def flush(self) -> int:
        """Write the buffered clicks (one transaction unless some are refused); return how many were written.

        The clicks being written stay in `pending` until their transaction has committed, so the
        click-limit check always sees them, either as pending or as stored. When the database is
        away (`TRANSIENT_ERRORS`) the clicks are kept for a later flush. When it refuses the batch
        (a value it will never take), the batch is split in halves, each written in its own
        transaction, recursively, until the refused clicks are alone: only those are dropped (and
        counted in `dropped`); every other click of the batch is written.
        """
        with self._flush_lock:
            with self._lock:
                events, self._events = self._events, []
            if not events:
                return 0
            written, refused = 0, 0
            todo = [events]  # a stack of chunks still to write, the next one last
            refusal: Exception | None = None
            try:
                with connected():
                    while todo:
                        chunk = todo.pop()
                        try:
                            with db.atomic():
                                orphaned = self._write(chunk)
                        except TRANSIENT_ERRORS:
                            todo.append(chunk)
                            raise
                        except (
                            Exception
                        ) as error:  # refused: split the chunk, drop only a click refused alone
                            self._salts = {}  # a salt created in the failed transaction does not exist
                            if len(chunk) > 1:
                                half = len(chunk) // 2
                                todo += [chunk[half:], chunk[:half]]
                                continue
                            refusal = refusal or error
                            refused += 1
                            self._settle(chunk, dropped=True)
                            continue
                        written += len(chunk) - orphaned
                        self._settle(chunk, dropped=False, orphaned=orphaned)
            except TRANSIENT_ERRORS as error:  # the database is away: keep the clicks, retry later
                self._salts = {}
                left = [event for chunk in reversed(todo) for event in chunk]
                if left:
                    log.warning("click flush failed, %d clicks kept for retry: %s", len(left), error)
                    self._restore(left)
            if refused:
                log.error(
                    "click flush: the database refused %d clicks; dropped them and wrote the %d others",
                    refused,
                    written,
                    exc_info=refusal,
                )
            return written

    def _settle(self, events: list[ClickEvent], *, dropped: bool, orphaned: int = 0) -> None:
        """`events` are committed or dropped: they no longer count as pending (nor, dropped, at all).
        `orphaned` of them were left out because their link no longer exists."""
        with self._lock:
            self._pending_human -= _human_counts(events)
            if dropped:
                self.dropped += len(events)
            self.dropped += orphaned
        if orphaned:
            log.info("click flush: dropped %d clicks of links deleted since they were recorded", orphaned)

    def close(self) -> None:
        """Stop the background thread and write what is buffered (graceful shutdown)."""
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive() and self._pid == current_pid():
            thread.join(timeout=self.interval + 5)
        self.flush()
        left = self.depth()
        if left:
            log.error("shutting down with %d clicks that could not be written; they are lost", left)

    def _restore(self, events: list[ClickEvent]) -> None:
        with self._lock:
            merged = events + self._events
            kept, lost = merged[: self.max_events], merged[self.max_events :]
            self._events = kept
            self.dropped += len(lost)
            self._pending_human -= _human_counts(lost)

    def _write(self, events: list[ClickEvent]) -> int:
        """Write `events`; return how many were left out because their link no longer exists."""
        if not self.analytics:
            _add_to_counters([(event[0], event[5]) for event in events])
            return 0
        salts = self._salts_of(events)  # made before COPY starts: no other statement may run during it
        if is_postgres():
            return _write_postgres(_rows(events, salts))
        return _write_portable(list(_rows(events, salts)))

    def _salts_of(self, events: list[ClickEvent]) -> dict[date, bytes]:
        """The salt of each UTC day `events` were clicked on."""
        return {day: self._salt(day) for day in sorted({event[1].date() for event in events})}

    def _salt(self, day: date) -> bytes:
        if day not in self._salts:
            VisitorSalt.insert(day=day, salt=secrets.token_hex(32)).on_conflict_ignore().execute()
            VisitorSalt.delete().where(VisitorSalt.day < day - timedelta(days=1)).execute()
            self._salts = {day: bytes.fromhex(VisitorSalt.get_by_id(day).salt)}
        return self._salts[day]

    def _ensure_thread(self) -> None:
        # Started lazily in the process that records: a thread started before a fork does not exist
        # in the forked worker.
        if self._thread is not None and self._pid == current_pid():
            return
        with self._lock:
            if self._thread is not None and self._pid == current_pid():
                return
            self._pid = current_pid()
            self._thread = threading.Thread(target=self._run, name="click-flush", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        me = threading.current_thread()
        while self._thread is me:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._thread is me:
                self.flush()


def _rows(events: list[ClickEvent], salts: dict[date, bytes]) -> Iterator[tuple]:
    """The stored row of each click, one at a time: (link_id, clicked_at, referrer host, browser,
    os, device, is_bot, visitor hash). What a row derives from its visit (User-Agent, referrer,
    address, day) is computed once per distinct visit of the batch."""
    derived: dict[tuple, tuple] = {}
    for link_id, clicked_at, user_agent, referrer, client_ip, bot in events:
        day = clicked_at.date()
        visit = (user_agent, referrer, client_ip, bot, day)
        values = derived.get(visit)
        if values is None:
            if len(derived) >= MAX_DISTINCT_VISITS:
                derived.clear()
            browser, os_family, device = classify(user_agent)
            values = derived[visit] = (
                referrer_host(referrer),
                browser,
                os_family,
                device,
                bot or device == "bot",
                # Keyed by a secret salt of the click's UTC day: the same visitor hashes the same
                # within a day (unique visitors) and differently the next day; the IP address is
                # never stored.
                _keyed_hash(salts[day], client_ip, user_agent),
            )
        yield (link_id, clicked_at, *values)


@functools.lru_cache(maxsize=8192)
def _keyed_hash(salt: bytes, client_ip: str, user_agent: str) -> str:
    message = f"{client_ip}|{user_agent}".encode("utf-8", "surrogatepass")
    return hmac.new(salt, message, hashlib.sha256).hexdigest()[:32]


def _human_counts(events: list[ClickEvent]) -> Counter[int]:
    return Counter(event[0] for event in events if not event[5])  # link_id of each human click


def _stored(row: tuple) -> tuple:
    return (row[0], STORED_TIME(row[1]), *row[2:])


def _write_portable(rows: list[tuple]) -> int:
    """Any database: counters, raw clicks, rollups and visitors computed here, written in bulk.
    Returns 0: the foreign keys refuse a click of a deleted link (and `flush` isolates it)."""
    _add_to_counters([(row[0], row[6]) for row in rows])
    insert_rows("click", CLICK_COLUMNS, [_stored(row) for row in rows])
    _add_to_rollups(rows)
    visitors = sorted({(row[0], row[1].date().isoformat(), row[7]) for row in rows})
    insert_rows("daily_visitor", ("link_id", "day", "visitor_hash"), visitors, "ON CONFLICT DO NOTHING")
    return 0


# PostgreSQL: COPY the batch into a temporary table, then let the server aggregate it. Python only
# writes CSV (~1 µs per click instead of ~25 µs of per-row parameter rendering).
POSTGRES_BATCH = [
    # The instant comes as seconds since the epoch (a float's repr: exact to the microsecond for
    # instants between 1900 and 2100, which clicks are, and ~10x cheaper to write than an ISO
    # timestamp); the server turns it into `clicked_at`.
    "CREATE TEMP TABLE IF NOT EXISTS click_batch_v2 (link_id bigint, epoch double precision, "
    "referrer_host text, browser text, os text, device text, is_bot boolean, visitor_hash text, "
    "clicked_at timestamptz GENERATED ALWAYS AS (to_timestamp(epoch)) STORED) ON COMMIT DELETE ROWS",
    # Every text field is quoted (`_CsvStream`) and a quoted field is never NULL, so no value from a
    # request (a browser family copied from the User-Agent may be `\N`, `""` or empty) can turn into
    # NULL; FORCE_NOT_NULL says the same again for the text columns.
    "COPY click_batch_v2 (link_id, epoch, referrer_host, browser, os, device, is_bot, visitor_hash) "
    "FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL (referrer_host, browser, os, device, visitor_hash))",
    # The click tables have no foreign keys on PostgreSQL (migration 0005: a key checks and locks
    # the link once per inserted row). Instead the batch's links are locked once, in id order,
    # against deletion until the commit: a DELETE waits for the flush, then its trigger deletes
    # these clicks too; a link deleted first is not found, and its clicks are dropped here. (Without
    # the lock a DELETE committing between the two statements left its clicks behind, and one
    # holding the link while its trigger waited on a rollup row the flush held was a deadlock.)
    "SELECT FROM link WHERE id IN (SELECT link_id FROM click_batch_v2) ORDER BY id FOR KEY SHARE",
    "DELETE FROM click_batch_v2 WHERE NOT EXISTS (SELECT 1 FROM link WHERE link.id = click_batch_v2.link_id)",
    f"INSERT INTO click ({', '.join(CLICK_COLUMNS)}) SELECT {', '.join(CLICK_COLUMNS)} FROM click_batch_v2",  # noqa: S608 (constants)
    f"INSERT INTO click_rollup ({', '.join(ROLLUP_DIMENSIONS)}, clicks) "  # noqa: S608 (constants)
    "SELECT link_id, date_trunc('hour', clicked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', "
    "referrer_host, browser, os, device, is_bot, count(*) "
    f"FROM click_batch_v2 GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7 {ROLLUP_UPSERT}",
    "INSERT INTO daily_visitor (link_id, day, visitor_hash) "
    "SELECT DISTINCT link_id, (clicked_at AT TIME ZONE 'UTC')::date, visitor_hash FROM click_batch_v2 "
    "ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING",
    "UPDATE link SET click_count = link.click_count + b.total, "
    "human_click_count = link.human_click_count + b.human "
    "FROM (SELECT link_id, count(*) AS total, count(*) FILTER (WHERE NOT is_bot) AS human "
    "FROM click_batch_v2 GROUP BY link_id ORDER BY link_id) AS b WHERE link.id = b.link_id",
]


class _CsvStream:
    """What COPY reads (`copy_expert`): the CSV lines of `rows`, written as they are read.

    The batch never exists as one text, nor its rows as one list: a 50,000-click flush used to build
    both, and a StringIO holding the CSV at 4 bytes per character, ~40 MB at once, which stayed
    resident after it was freed (docs/PERFORMANCE.md).
    """

    # Rows per `read`: each read is a return to Python, which waits for the GIL (up to the switch
    # interval) while request threads run; 2,048 rows are ~400 KB of text.
    ROWS_PER_READ = 2048

    def __init__(self, rows: Iterable[tuple]) -> None:
        self._rows = iter(rows)
        self._lines: list[str] = []
        self._quote = csv.writer(_LineSink(self._lines), quoting=csv.QUOTE_ALL).writerow
        self._tails: dict[tuple, str] = {}  # a row's fields after the instant → their CSV
        # What building a row raised: psycopg2 reports it as a failed COPY ("error in .read()
        # call"), an OperationalError that would read as the database being away (`copy_into`).
        self.error: Exception | None = None

    def read(self, size: int = -1) -> str:
        """The next rows' lines ('' at the end); `size` < 0: all the rest."""
        try:
            return self._read(size)
        except Exception as error:
            self.error = error
            raise

    def copy_into(self, cursor: psycopg2.extensions.cursor, statement: str) -> None:
        """Run the COPY `statement` on `cursor` with these rows; a row that could not be built
        raises its own error (a refusal: `ClickRecorder.flush` isolates it), not the COPY's."""
        try:
            cursor.copy_expert(statement, self)
        except psycopg2.Error:
            if self.error is not None:
                raise self.error from None
            raise

    def _read(self, size: int) -> str:
        tails, lines = self._tails, []
        for row in self._rows if size < 0 else islice(self._rows, self.ROWS_PER_READ):
            fields = row[2:]
            tail = tails.get(fields)
            if tail is None:
                if len(tails) >= MAX_DISTINCT_VISITS:
                    tails.clear()
                self._quote((*fields[:4], "t" if fields[4] else "f", fields[5]))
                tail = tails[fields] = self._lines.pop()
            # Aware instants only: a naive one raises here (refused alone, as `STORED_TIME` does)
            # instead of being read as local time.
            lines.append(f"{row[0]},{(row[1] - EPOCH).total_seconds()!r},{tail}")
        return "".join(lines)


class _LineSink:
    """The file `csv.writer` writes to: appends each line to a list."""

    __slots__ = ("write",)

    def __init__(self, lines: list[str]) -> None:
        self.write = lines.append


def _write_postgres(rows: Iterable[tuple]) -> int:
    """Write `rows`; return how many were dropped because their link no longer exists."""
    buffer = _CsvStream(rows)
    cursor = db.cursor()
    try:
        create, copy, lock, orphans, *aggregate = POSTGRES_BATCH
        cursor.execute(create)
        cursor.execute("TRUNCATE click_batch_v2")  # empty even when this flush is nested in a transaction
        # The COPY lasts as long as building its rows takes in Python (User-Agent parsing, a GIL
        # shared with the request threads), not the server's work: under DB_STATEMENT_TIMEOUT_MS it
        # was cancelled as if the database were away, and the batch retried forever at the same cost.
        cursor.execute("SHOW statement_timeout")
        timeout = cursor.fetchone()[0]
        cursor.execute("SET LOCAL statement_timeout = 0")
        buffer.copy_into(cursor, copy)
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", (timeout,))  # for what follows
        cursor.execute(lock)
        cursor.execute(orphans)
        dropped = cursor.rowcount
        for statement in aggregate:
            cursor.execute(statement)
        return dropped
    finally:
        cursor.close()


def _add_to_counters(clicks: list[tuple[int, bool]]) -> None:
    totals: Counter[int] = Counter()
    humans: Counter[int] = Counter()
    for link_id, bot in clicks:
        totals[link_id] += 1
        humans[link_id] += not bot
    rows = [(link_id, totals[link_id], humans[link_id]) for link_id in sorted(totals)]  # stable lock order
    if is_postgres():
        execute_many(
            "UPDATE link SET click_count = link.click_count + v.total, "
            "human_click_count = link.human_click_count + v.human "
            "FROM (VALUES %s) AS v (id, total, human) WHERE link.id = v.id",
            rows,
        )
    else:
        execute_many(
            "UPDATE link SET click_count = click_count + ?, human_click_count = human_click_count + ? "
            "WHERE id = ?",
            [(total, human, link_id) for link_id, total, human in rows],
        )


def _add_to_rollups(rows: list[tuple]) -> None:
    counts = Counter(
        (row[0], STORED_TIME(row[1].replace(minute=0, second=0, microsecond=0)), *row[2:7]) for row in rows
    )
    insert_rows(
        "click_rollup",
        (*ROLLUP_DIMENSIONS, "clicks"),
        [(*key, clicks) for key, clicks in sorted(counts.items())],  # sorted: stable lock order
        ROLLUP_UPSERT,
    )


def prune_clicks(older_than: datetime, batch: int = 10_000) -> int:
    """Delete raw clicks before `older_than`, in batches; rollups and visitors (the stats) stay."""
    deleted = 0
    while True:
        with db.atomic():
            ids = Click.select(Click.id).where(Click.clicked_at < older_than).limit(batch)
            count = Click.delete().where(Click.id.in_(ids)).execute()
        deleted += count
        if count < batch:
            return deleted
