"""Per-process cache of what a code redirects to, so the hot path usually skips the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache

# What `get` returns for a code it holds nothing about (None is a cached "no such code").
UNCACHED: Any = object()


class LinkCache:
    """code → redirect row (or None for unknown codes), bounded in entries, each kept `ttl` seconds.

    The TTL bounds staleness across processes: an edit, deactivation or deletion made by another
    process (or replica) is seen here within `ttl`. Changes made through this process invalidate
    their entry at once. `maxsize=0` or `ttl=0` disables caching.
    """

    def __init__(
        self, maxsize: int = 10_000, ttl: float = 1.0, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: TTLCache | None = TTLCache(maxsize, ttl, timer) if maxsize > 0 and ttl > 0 else None
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
        if self._entries is None:
            return UNCACHED
        with self._lock:
            row = self._entries.get(code, UNCACHED)
        if row is UNCACHED:
            self.misses += 1
        else:
            self.hits += 1
        return row

    def put(self, code: str, row: tuple | None, generation: int | None = None) -> None:
        """Remember what `code` resolved to (None: no such code).

        With `generation` (read before the row was loaded), the row is not kept if an invalidation
        happened meanwhile: it may be older than that change.
        """
        if self._entries is not None:
            with self._lock:
                if generation is None or generation == self._generation:
                    self._entries[code] = row

    def invalidate(self, code: str) -> None:
        """Forget `code` (after it was created, edited or deleted through this process)."""
        if self._entries is not None:
            with self._lock:
                self._generation += 1
                self._entries.pop(code, None)

    def __len__(self) -> int:
        if self._entries is None:
            return 0
        with self._lock:
            return len(self._entries)
