"""Cross-process cache invalidation: PostgreSQL LISTEN on the channel migration 0004's trigger feeds.

Each process keeps one extra connection (outside the pool) that LISTENs. A notification names a
code whose redirect changed (created, edited, deactivated, deleted, by any writer); the process
drops it from its redirect cache within milliseconds of the commit. While the listener is
connected, the cache trusts its entries for `notified_ttl`; when the connection fails, the cache
falls back to its short `ttl` at once, and after reconnecting it is cleared (notifications sent
meanwhile were missed).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time

import psycopg2
import psycopg2.extensions

from app.services.link_cache import LinkCache

log = logging.getLogger(__name__)

CHANNEL = "shortener_link_changed"
PROBE_PREFIX = "~probe~"  # "~" never appears in a code


class LinkChangeListener:
    """A daemon thread per process that applies link-change notifications to `cache`."""

    def __init__(
        self,
        connect_kwargs: dict,
        cache: LinkCache,
        *,
        heartbeat: float = 5.0,
        retry_delays: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 5.0),
    ) -> None:
        self._connect_kwargs = connect_kwargs
        self.cache = cache
        self.heartbeat = heartbeat
        self.retry_delays = retry_delays
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.connections = 0  # successful LISTENs, for tests and logs

    def ensure_started(self) -> None:
        """Start the thread in this process if it is not running (a thread does not survive fork)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.cache.notified = False
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="link-events", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop listening (the cache falls back to its short TTL)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout=self.heartbeat + 2)
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
            self._pump(connection)
        finally:
            self.cache.notified = False
            connection.close()

    def _pump(self, connection: psycopg2.extensions.connection) -> None:
        """Apply notifications; on a quiet connection, prove every `heartbeat` that they still arrive.

        A live connection is not enough (a pooler in transaction mode accepts LISTEN and delivers
        nothing): the listener sends itself a probe notification and expects it back before the next
        heartbeat, else it reconnects, and the cache falls back to its short TTL meanwhile.
        """
        quiet_since = time.monotonic()
        probe: str | None = None
        sequence = 0
        while not self._stop.is_set():
            readable, _, _ = select.select([connection], [], [], min(1.0, self.heartbeat))
            if readable:
                connection.poll()
            if connection.notifies:  # also those psycopg2 collected while running the probe query
                while connection.notifies:
                    payload = connection.notifies.pop(0).payload
                    if payload == probe:
                        probe = None
                    elif not payload.startswith(PROBE_PREFIX):  # other processes' probes are no codes
                        self.cache.invalidate(payload)
                quiet_since = time.monotonic()
            if time.monotonic() - quiet_since > self.heartbeat:
                if probe is not None:
                    raise NotificationsLost(f"the probe notification {probe} did not come back")
                sequence += 1
                probe = f"{PROBE_PREFIX}{os.getpid()}-{sequence}"
                self._send_probe(connection, probe)
                quiet_since = time.monotonic()

    def _send_probe(self, connection: psycopg2.extensions.connection, probe: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, probe))


class NotificationsLost(Exception):
    """The connection is up but notifications do not arrive."""


def listener_kwargs(database: object) -> dict:
    """psycopg2.connect arguments of a peewee PostgreSQL database, for the listener's own connection."""
    kwargs = dict(database.connect_params)  # type: ignore[attr-defined]
    kwargs["database"] = database.database  # type: ignore[attr-defined]
    kwargs.pop("options", None)  # no statement timeout: LISTEN waits by design
    kwargs.setdefault("keepalives", 1)
    kwargs.setdefault("keepalives_idle", 5)
    kwargs.setdefault("keepalives_interval", 2)
    kwargs.setdefault("keepalives_count", 2)
    return kwargs
