"""Per-process cache of what a code redirects to, so the hot path usually skips the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cachetools import LRUCache

from app.services.known_codes import KnownCodes

# What `get` returns for a code it holds nothing about (None is a cached "no such code").
UNCACHED: Any = object()


class LinkCache:
    """code → redirect row (or None for unknown codes), bounded in entries, least recently used first out.

    How long an entry is trusted depends on whether this process hears about changes:

    - `ttl` (REDIRECT_CACHE_TTL_MS): with no change notifications (SQLite, or the PostgreSQL
      listener disconnected), an edit made through another process or replica is seen here within
      `ttl`.
    - `notified_ttl` (REDIRECT_CACHE_NOTIFIED_TTL_MS): while `notified` is true, every change is
      announced within milliseconds (`services.link_events`), so entries may live this long; the
      limit only bounds memory churn and the damage of a lost notification.

    Changes made through this process invalidate their entry at once. `maxsize=0` or `ttl=0`
    disables caching.
    """

    def __init__(
        self,
        maxsize: int = 10_000,
        ttl: float = 1.0,
        timer: Callable[[], float] = time.monotonic,
        *,
        notified_ttl: float | None = None,
        known_codes: KnownCodes | None = None,
    ) -> None:
        self._entries: LRUCache | None = LRUCache(maxsize) if maxsize > 0 and ttl > 0 else None
        self._timer = timer
        self.ttl = ttl
        self.notified_ttl = max(ttl, notified_ttl or ttl)
        self.notified = False  # set by the change listener while it is connected
        # Codes with a row, for answering unknown codes without the database (services.known_codes):
        # every code this cache hears about (created, renamed, edited) is added to it.
        self.known_codes = known_codes
        # Set by this process's change listener: tells the other processes about a code created
        # here (services.link_events); None: the database's trigger does it.
        self.announce: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        self._generation = 0
        self.hits = 0
        self.misses = 0

    @property
    def generation(self) -> int:
        """Changes on every invalidation; take it before loading a row, pass it to `put`."""
        return self._generation

    def get(self, code: str) -> Any:
        """The cached row for `code`, None for a cached miss, or UNCACHED."""
        row = self._fresh(code)
        if row is UNCACHED:
            self.misses += 1
        else:
            self.hits += 1
        return row

    def peek(self, code: str) -> tuple | None:
        """The fresh cached row of a known code; None otherwise (uncached, stale or a cached miss).

        A None is not counted as a miss: the caller goes on to `get`, which counts it.
        """
        row = self._fresh(code)
        if row is UNCACHED or row is None:
            return None
        self.hits += 1
        return row

    def _fresh(self, code: str) -> Any:
        if self._entries is None:
            return UNCACHED
        with self._lock:
            entry = self._entries.get(code)
        if entry is not None and self._timer() - entry[1] < (
            self.notified_ttl if self.notified else self.ttl
        ):
            if entry[0] is None and self._created_elsewhere(code):
                return UNCACHED  # a cached "no such code" that another worker just created
            return entry[0]
        return UNCACHED

    def _created_elsewhere(self, code: str) -> bool:
        recent = self.known_codes.recent if self.known_codes is not None else None
        return recent is not None and code in recent

    def put(self, code: str, row: tuple | None, generation: int | None = None) -> None:
        """Remember what `code` resolved to (None: no such code).

        With `generation` (read before the row was loaded), the row is not kept if an invalidation
        happened meanwhile: it may be older than that change.
        """
        if self._entries is not None:
            loaded_at = self._timer()
            with self._lock:
                if generation is None or generation == self._generation:
                    self._entries[code] = (row, loaded_at)

    def invalidate(self, code: str) -> None:
        """Forget `code` (it was created, edited or deleted, here or in another process)."""
        if self.known_codes is not None:
            self.known_codes.add(code)
        if self._entries is not None:
            with self._lock:
                self._generation += 1
                self._entries.pop(code, None)

    def forget_miss(self, code: str) -> None:
        """Drop a cached "no such code" for `code` (it exists), keeping a cached row."""
        if self._entries is not None:
            with self._lock:
                entry = self._entries.get(code)
                if entry is not None and entry[0] is None:
                    self._generation += 1
                    del self._entries[code]

    def created(self, code: str) -> None:
        """`code` was just created through this process: forget any cached miss, and make it known
        to the known-codes filter of every process of this server at once."""
        if self.known_codes is not None:
            self.known_codes.created(code)
        self.invalidate(code)

    def clear(self) -> None:
        """Forget everything (change notifications may have been missed)."""
        if self._entries is not None:
            with self._lock:
                self._generation += 1
                self._entries.clear()

    def __len__(self) -> int:
        if self._entries is None:
            return 0
        with self._lock:
            return len(self._entries)
