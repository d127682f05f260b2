"""Cross-process cache invalidation: PostgreSQL LISTEN on the channel the change trigger feeds.

Each process keeps one extra connection (outside the pool) that LISTENs. A notification names a
code whose redirect changed (created, edited, deactivated, deleted): the trigger of migrations
0004/0005 sends it for any writer, except for the service's own creates, which the creating
process announces itself through its listener after the commit (`announce`; a NOTIFY inside
every create's transaction serialised all creates' commits). The process drops the code from its
redirect cache within milliseconds. While the listener is connected, the cache trusts its entries
for `notified_ttl`; when the connection fails, the cache falls back to its short `ttl` at once, and
after reconnecting it is cleared (notifications sent meanwhile were missed).

The listener also keeps the cache's known-codes filter (services.known_codes) current: it loads it
from the table once LISTEN took effect, every notification adds its code, a periodic sweep adds
the codes committed without one (a process that died before announcing), and it is dropped when
the connection fails. `knows_absent` is what the redirect fast path asks before answering 404
without the database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Iterator

import psycopg2
import psycopg2.extensions

from app.processes import current_pid
from app.services.link_cache import LinkCache

log = logging.getLogger(__name__)

CHANNEL = "shortener_link_changed"
PROBE_PREFIX = "~probe~"  # "~" never appears in a code
# Codes this process created, announced by the listener: one notification per code (the format
# every version reads, the trigger's), all of a batch sent by one statement in one transaction.
ANNOUNCE = f"SELECT pg_notify('{CHANNEL}', code) FROM unnest(%s::text[]) AS code"  # noqa: S608 (constant)
OUTBOX_LIMIT = 100_000  # announcements kept for a reconnect; older ones are left to the sweep
# The first sweep after a connect also rereads this many ids below the greatest one seen then: an
# insert may draw its id before that read and commit after it (far more than can be in flight).
FIRST_SWEEP_LAG = 1_000
# One chunk of the known-codes load (codes never contain a newline).
KNOWN_CODES_CHUNK = (
    "SELECT count(*), max(id), string_agg(code, E'\\n') "
    "FROM (SELECT id, code FROM link WHERE id > %s ORDER BY id LIMIT %s) AS chunk"
)


class LinkChangeListener:
    """A daemon thread per process that applies link-change notifications to `cache`."""

    def __init__(
        self,
        connect_kwargs: dict,
        cache: LinkCache,
        *,
        heartbeat: float = 5.0,
        retry_delays: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 5.0),
        load_chunk: int = 100_000,
        batch_window: float = 0.005,
        sweep_interval: float = 5.0,
    ) -> None:
        self._connect_kwargs = connect_kwargs
        # After applying notifications, the listener lets the next ones gather this long before it
        # reads again: under a stream of creates (one notification each) it wakes, and takes the GIL
        # from the request threads, a few hundred times a second instead of once per create.
        self.batch_window = batch_window
        self.cache = cache
        self.heartbeat = heartbeat
        self.retry_delays = retry_delays
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.connections = 0  # successful LISTENs, for tests and logs
        self.load_chunk = load_chunk
        self._probe: str | None = None
        self._fileno: int | None = None  # the LISTEN connection's socket while connected
        self._busy = False  # the listener is using its connection: notifications may be unapplied
        self._stopped_in: int | None = None  # the process that called `stop`
        self._backend_pid = 0  # the PostgreSQL backend of the LISTEN connection
        # Announcements: codes created by this process wait here until the listener thread sends
        # them (`announce`); a byte on the wake pipe tells it there are some.
        self._outbox: list[str] = []
        self._outbox_lock = threading.Lock()
        self._wake: tuple[int, int] | None = None  # (read, write) ends, made in the listening process
        self.sweep_interval = sweep_interval
        self._sweep_from = 0  # the sweep reads codes with a greater id...
        self._sweep_next = 0  # ...and the next one those above the greatest id this one saw
        self.swept = 0  # codes the sweep found that no notification had announced (tests, logs)

    def ensure_started(self) -> None:
        """Start the thread in this process if it is not running (a thread does not survive fork);
        never again in a process where `stop` was called (it is shutting down)."""
        if self._pid == current_pid() or self._stopped_in == current_pid():
            return
        with self._lock:
            if self._pid == current_pid() or self._stopped_in == current_pid():
                return
            self._pid = current_pid()
            self.cache.notified = False
            self.cache.announce = None
            read, write = os.pipe()
            os.set_blocking(read, False)
            os.set_blocking(write, False)
            with self._outbox_lock:
                self._outbox = []  # a parent's announcements are not this process's to send
                self._wake = (read, write)
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="link-events", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening for good in this process (the cache falls back to its short TTL). The
        codes this process created and has not announced yet are announced first (graceful
        shutdown: `app.wsgi`); waits `timeout` seconds at most (default: a heartbeat and 2 s)."""
        self._stopped_in = current_pid()
        self.cache.announce = None  # creates from now on are announced by the trigger
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == current_pid():
            self._signal()
            thread.join(timeout=self.heartbeat + 2 if timeout is None else timeout)
        if self._pid == current_pid() and (thread is None or not thread.is_alive()):
            with self._outbox_lock:  # `_signal` writes under this lock: never to a closed (reused) fd
                wake, self._wake = self._wake, None
            for fd in wake or ():
                os.close(fd)
        self.cache.notified = False
        self._pid = None

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except (psycopg2.Error, OSError, NotificationsLost) as error:
                failures = self._after_failure(failures, str(error).strip() or type(error).__name__)
            except Exception:  # never let the thread die silently: the cache would stay on its short TTL
                log.exception("link change listener failed; restarting it")
                failures = self._after_failure(failures, None)

    def _after_failure(self, failures: int, reason: str | None) -> int:
        self.cache.notified = False
        if failures == 0 and reason is not None:
            log.warning("link change listener disconnected (%s); retrying", reason)
        self._stop.wait(self.retry_delays[min(failures, len(self.retry_delays) - 1)])
        return failures + 1

    def _listen(self) -> None:
        connection = psycopg2.connect(**self._connect_kwargs)
        try:
            connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            # Anything cached before LISTEN took effect may have missed its notification.
            self.cache.clear()
            self.cache.notified = True
            self.connections += 1
            self._probe = None
            self._fileno = connection.fileno()
            self._backend_pid = connection.get_backend_pid()
            self.cache.announce = self.announce  # creates here skip the trigger from now on
            self._send_announcements(connection)  # those kept from a failed send: first of all
            if self.cache.known_codes is not None:
                self._load_known_codes(connection)
            elif not self._sweep_next:  # sweeps start from here (a filter load sets this otherwise)
                self._sweep_next = self._greatest_id(connection)
                self._sweep_from = self._sweep_next - FIRST_SWEEP_LAG
                self._apply(connection)  # what arrived during that query: not left until the next wake
            self._pump(connection)
            self._busy = True  # the query may read notifications it will not apply: no 404s from here
            self._send_announcements(connection)  # stopping: what was created up to `stop`
        finally:
            self.cache.announce = None  # the trigger announces again until the next LISTEN
            self.cache.notified = False
            self._fileno = None
            if self.cache.known_codes is not None:
                self.cache.known_codes.reset()  # notifications may be missed from now on
            connection.close()

    def _pump(self, connection: psycopg2.extensions.connection) -> None:
        """Apply notifications; on a quiet connection, prove every `heartbeat` that they still arrive.

        A live connection is not enough (a pooler in transaction mode accepts LISTEN and delivers
        nothing): the listener sends itself a probe notification and expects it back before the next
        heartbeat, else it reconnects, and the cache falls back to its short TTL meanwhile.
        """
        quiet_since = time.monotonic()
        next_sweep = time.monotonic() + self.sweep_interval
        sequence = 0
        known = self.cache.known_codes
        assert self._wake is not None
        wake = self._wake[0]
        while not self._stop.is_set():
            readable, _, _ = select.select([connection, wake], [], [], min(1.0, self.heartbeat))
            self._busy = True  # from here until the loop waits again, notifications may be unapplied
            try:
                if wake in readable:
                    _drain(wake)
                self._send_announcements(connection)
                if connection in readable:
                    connection.poll()
                if self._apply(connection):  # also those psycopg2 collected while running a query
                    quiet_since = time.monotonic()
                if time.monotonic() - quiet_since > self.heartbeat:
                    if self._probe is not None:
                        raise NotificationsLost(f"the probe notification {self._probe} did not come back")
                    sequence += 1
                    self._probe = f"{PROBE_PREFIX}{current_pid()}-{sequence}"
                    self._send_probe(connection, self._probe)
                    self._apply(connection)  # what arrived during the query, before `_busy` ends
                    quiet_since = time.monotonic()
                if known is not None and known.needs_reload:
                    self._load_known_codes(connection)
                if (known is None or known.loaded) and time.monotonic() >= next_sweep:
                    self._sweep(connection)
                    next_sweep = time.monotonic() + self.sweep_interval
            finally:
                self._busy = False
            if readable and self.batch_window:
                # Unread notifications keep `knows_absent` False meanwhile: misses ask the database.
                self._stop.wait(self.batch_window)

    def _apply(self, connection: psycopg2.extensions.connection) -> bool:
        """Apply the notifications psycopg2 has collected; True when there were any."""
        if not connection.notifies:
            return False
        own = self._backend_pid
        while connection.notifies:
            notification = connection.notifies.pop(0)
            payload = notification.payload
            if payload == self._probe:
                self._probe = None
            elif notification.pid == own:
                # This listener's own announcements: their codes were applied here when created
                # (`LinkCache.created`); applying them again would only bump the cache generation.
                continue
            elif not payload.startswith(PROBE_PREFIX):  # other processes' probes are no codes
                self.cache.invalidate(payload)  # also adds the code to the known codes
        return True

    def announce(self, code: str) -> None:
        """Tell every process that `code` was just created here (its insert skipped the trigger).

        Called by the creating request after the commit; the listener thread sends the codes that
        gathered meanwhile in one statement, so creates never wait for it and never serialise on
        the lock PostgreSQL takes for a NOTIFY until its transaction's commit is flushed.
        """
        with self._outbox_lock:
            self._outbox.append(code)
            if len(self._outbox) == 1:  # else the listener was woken for the first one already
                self._signal_locked()

    def _signal(self) -> None:
        with self._outbox_lock:
            self._signal_locked()

    def _signal_locked(self) -> None:
        if self._wake is not None:  # closed by `stop` under the same lock
            with contextlib.suppress(OSError):  # full: the listener is woken anyway
                os.write(self._wake[1], b"!")

    def _send_announcements(self, connection: psycopg2.extensions.connection) -> None:
        with self._outbox_lock:
            codes, self._outbox = self._outbox, []
        if not codes:
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute(ANNOUNCE, (codes,))
        except BaseException:
            # Sent again after the reconnect, first thing (a code announced twice is harmless);
            # past the limit, the oldest are left to the other processes' sweeps.
            with self._outbox_lock:
                self._outbox[:0] = codes
                dropped = len(self._outbox) - OUTBOX_LIMIT
                if dropped > 0:
                    del self._outbox[:dropped]
                    log.warning("link change listener: %d announcements dropped while disconnected", dropped)
            self._signal()
            raise

    def _sweep(self, connection: psycopg2.extensions.connection) -> None:
        """Make known what no notification announced: the safety net of `announce`.

        A process that dies between a create's commit and its announcement leaves a code the other
        processes have not heard of. Every `sweep_interval` the listener reads the codes with an id
        above the greatest one it had seen two sweeps ago (a row is found even if its id was drawn
        before the previous sweep and committed after it), a chunk per query; it drops any cached
        "no such code" of them and adds those its known-codes filter lacks. A code this server
        created only sits in the shared ring of recent codes until its announcement arrives; the
        ring forgets it 1,024 creates later, so the sweep adds it to the filter too.
        """
        known = self.cache.known_codes
        newest = self._sweep_from
        missed = 0
        for codes, last_id in self._codes_after(connection, self._sweep_from):
            for code in codes:
                if known is None:  # no filter: only cached misses can be wrong
                    self.cache.forget_miss(code)
                elif not known.may_exist(code):  # neither announced nor created on this server
                    self.cache.invalidate(code)  # adds it to the filter
                    missed += 1
                else:
                    known.add(code)  # a no-op when the filter has it; else it was in the ring only
                    self.cache.forget_miss(code)
            newest = last_id
        if missed:
            self.swept += missed
            log.warning("link change listener: %d new codes had not been announced", missed)
        self._sweep_from, self._sweep_next = self._sweep_next, max(self._sweep_next, newest)

    @staticmethod
    def _greatest_id(connection: psycopg2.extensions.connection) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM link")
            return cursor.fetchone()[0]

    def _load_known_codes(self, connection: psycopg2.extensions.connection) -> None:
        """(Re)build the known-codes filter from the table, in id order, a chunk per query.

        Notifications collected meanwhile are applied between chunks (invalidation stays prompt) and
        go into the filter being built, so a code created during the load is in it either way.
        Until the load completes, `knows_absent` says False: every miss asks the database.
        """
        known = self.cache.known_codes
        assert known is not None
        started = time.monotonic()
        busy, self._busy = self._busy, True
        try:
            greatest = self._greatest_id(connection)
            known.begin_load(greatest)
            # The next sweeps read what came after (keeping their lag when this is a rebuild).
            self._sweep_from = min(self._sweep_next or greatest - FIRST_SWEEP_LAG, greatest)
            self._sweep_next = greatest
            for codes, _ in self._codes_after(connection, 0):
                known.load(codes)
            if self._stop.is_set():
                return  # not finished: the filter built so far would miss codes
            known.finish_load()
        finally:
            self._busy = busy  # still True when called from the pump, which has more to do
        log.info(
            "known codes loaded: %d codes, %.1f MiB, %.2f s",
            known.count,
            known.size_bytes / 2**20,
            time.monotonic() - started,
        )

    def _codes_after(
        self, connection: psycopg2.extensions.connection, after: int
    ) -> Iterator[tuple[list[str], int]]:
        """The codes with an id above `after` in id order, a chunk per query, each with the greatest
        id in it; until the table is exhausted or the listener stops. Before each chunk is handed
        out, the notifications that arrived during its query are applied and the announcements
        waiting are sent (a load at 10M links takes seconds).

        A chunk shorter than `load_chunk` was the end of the table when its query ran, and ends the
        read: under a stream of creates each further query would find the few rows created during
        the previous one, and the read would chase the table's end for as long as the stream lasts
        (a sweep became a query every ~40 ms, each a scan of the table's tail or, on a small table,
        of the whole table). What comes later is announced, or found by the next sweep."""
        with connection.cursor() as cursor:
            while not self._stop.is_set():
                cursor.execute(KNOWN_CODES_CHUNK, (after, self.load_chunk))
                count, after, codes = cursor.fetchone()
                self._send_announcements(connection)
                self._apply(connection)  # also what arrived while the announcements were sent
                if not count:
                    return
                yield codes.split("\n"), after
                if count < self.load_chunk:
                    return

    def _send_probe(self, connection: psycopg2.extensions.connection, probe: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, probe))

    def knows_absent(self, code: str) -> bool:
        """True when no link has `code`, without asking the database.

        Needs the known-codes filter loaded (and so the listener connected) and holding neither
        `code` nor a recent creation of it by a process of this server, and no notification that
        could name it on its way in: the listener is not applying any and its socket holds no
        unread data. The filter is asked again after the socket: a notification applied in between
        is seen. A link created on another replica is known here once its notification arrives:
        within microseconds of the commit when a trigger sent it, after that replica's listener
        sends its next batch (~1 to 5 ms) when the service created it, at times ~100 ms under load;
        a code never announced (its process died) once the sweep finds it (≤ ~2 sweep intervals).
        """
        known = self.cache.known_codes
        if known is None or self._busy or known.may_exist(code):
            return False
        fileno = self._fileno
        if fileno is None:
            return False
        try:
            readable, _, _ = select.select([fileno], [], [], 0)
        except (OSError, ValueError):  # closed under us: the listener is reconnecting
            return False
        return not readable and not self._busy and not known.may_exist(code)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


class NotificationsLost(Exception):
    """The connection is up but notifications do not arrive."""


def listener_kwargs(database: object) -> dict:
    """psycopg2.connect arguments of a peewee PostgreSQL database, for the listener's own connection."""
    kwargs = dict(database.connect_params)  # type: ignore[attr-defined]
    kwargs["database"] = database.database  # type: ignore[attr-defined]
    kwargs.pop("options", None)  # no statement timeout: LISTEN waits by design
    # Told apart from the pool's connections in pg_stat_activity (its sweeps and loads read `link`
    # too): "shortener-listener", or the configured name with "-listener".
    kwargs["application_name"] = f"{kwargs.get('application_name') or 'shortener'}-listener"
    kwargs.setdefault("keepalives", 1)
    kwargs.setdefault("keepalives_idle", 5)
    kwargs.setdefault("keepalives_interval", 2)
    kwargs.setdefault("keepalives_count", 2)
    return kwargs
