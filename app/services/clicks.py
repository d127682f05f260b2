"""Click counting off the request path: each process buffers counts and writes them in batches."""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter

from peewee import Case

from app.db import connected, db
from app.models import Link

log = logging.getLogger(__name__)


class ClickCounter:
    """Per-process buffer of link_id → clicks, flushed every `interval` seconds or at `batch_size` links.

    A redirect only increments a dict entry. A failed flush (database down) keeps the counts and
    retries on the next tick; at most `max_pending` distinct links are buffered, and clicks for new
    links beyond that are dropped and counted in `dropped`.
    """

    def __init__(
        self,
        *,
        interval: float = 1.0,
        batch_size: int = 1000,
        max_pending: int = 100_000,
        background: bool = True,
    ) -> None:
        self.interval = interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.background = background
        self.dropped = 0
        self._pending: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def record(self, link_id: int) -> None:
        """Count one click for `link_id` (never blocks on the database)."""
        with self._lock:
            if link_id not in self._pending and len(self._pending) >= self.max_pending:
                self.dropped += 1
                return
            self._pending[link_id] += 1
            full = len(self._pending) >= self.batch_size
        if self.background:
            self._ensure_thread()
            if full:
                self._wake.set()

    def pending(self, link_id: int) -> int:
        """Clicks for `link_id` counted here and not yet written."""
        with self._lock:
            return self._pending.get(link_id, 0)

    def flush(self) -> int:
        """Write buffered counts in one statement; return clicks written (0 and kept on failure)."""
        with self._lock:
            batch, self._pending = self._pending, Counter()
        if not batch:
            return 0
        try:
            with connected(), db.atomic():
                increments = Case(Link.id, list(batch.items()), 0)
                Link.update(click_count=Link.click_count + increments).where(
                    Link.id.in_(list(batch))
                ).execute()
        except Exception as error:  # whatever failed, the counts are kept and retried, never lost
            log.warning("click flush failed, %d clicks kept for retry: %s", sum(batch.values()), error)
            with self._lock:
                self._pending.update(batch)
            return 0
        return sum(batch.values())

    def close(self) -> None:
        """Stop the background thread and write what is buffered (graceful shutdown)."""
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout=self.interval + 5)
        self.flush()

    def _ensure_thread(self) -> None:
        # Started lazily in the process that records: a thread started before a fork does not exist
        # in the forked worker.
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="click-flush", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        me = threading.current_thread()
        while self._thread is me:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._thread is me:
                self.flush()
