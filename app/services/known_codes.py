"""Which short codes have a row: a per-process Bloom filter, so most unknown codes skip the database.

Random unknown codes (typos, scanners, guessing) defeat any cache of answers: each one is new. A
Bloom filter of every code in the link table answers "certainly not there" for all but ~1% of them
in a microsecond, with no false "not there". It is only trusted while it is current, which is the
job of the change listener (services.link_events): it loads the filter from the table after LISTEN
took effect and adds every code a notification names (a new link, a rename), and it drops the
filter whenever notifications may have been missed. Codes of deleted links stay in it (a false
positive costs one indexed read, never a wrong answer).
"""

from __future__ import annotations

import logging
import mmap
import multiprocessing
import struct
import threading
from collections import deque
from collections.abc import Iterable

from rbloom import Bloom

from app.models.link import MAX_CODE_LENGTH

log = logging.getLogger(__name__)


class KnownCodes:
    """A superset of the codes in the link table, or nothing (`may_exist` then always says True).

    Sized for `headroom` times the codes it was loaded with (at least `min_capacity`) at a
    `false_positive_rate`; once more codes were added than that, `needs_reload` turns true and the
    listener builds a new one (the old one keeps answering meanwhile: it only grows less precise).
    Memory: ~1 byte per code of capacity at 2%, so ~1.3 per link with headroom 1.25 (10M links:
    12 MiB per process), twice that while a reload builds the next filter. 2% is the rate when full:
    just after a load (80% full) it is ~0.8%, and a false positive costs one indexed read. 1% with
    headroom 1.5 held 17.6 MiB at 10M links, which put the server over its memory target
    (docs/PERFORMANCE.md); a reload after 25% more codes (2.5M creates at 10M links) reads the
    table again, ~5 s at 10M.
    """

    def __init__(
        self,
        *,
        false_positive_rate: float = 0.02,
        min_capacity: int = 100_000,
        headroom: float = 1.25,
        recent: RecentCodes | None = None,
    ) -> None:
        self.recent = recent
        self.false_positive_rate = false_positive_rate
        self.min_capacity = min_capacity
        self.headroom = headroom
        self._filter: Bloom | None = None
        self._capacity = 0
        self._count = 0
        self._building: Bloom | None = None
        self._building_count = 0
        self._building_capacity = 0

    @property
    def loaded(self) -> bool:
        """True while the filter may be trusted for "certainly not there"."""
        return self._filter is not None

    @property
    def needs_reload(self) -> bool:
        """More codes were added than the filter was sized for: its false-positive rate is climbing."""
        return self._filter is not None and self._building is None and self._count > self._capacity

    def may_exist(self, code: str) -> bool:
        """False only when no link has `code`: the filter is loaded and has never seen it, and no
        process of this server created it in the last moments."""
        current = self._filter
        if current is None or code in current:
            return True
        recent = self.recent
        return recent is not None and (code in recent or recent.broken)

    def add(self, code: str) -> None:
        """Remember that `code` has (or had) a row: called for every created or renamed code."""
        # The filter being built first: if `finish_load` swaps it in meanwhile, the code is in it.
        # Counted only when new to the filter: each creation is added up to three times (by the
        # creating process, its invalidation and its notification), and counting those would ask for
        # a reload, a full read of the table, three times too early.
        building = self._building
        if building is not None and code not in building:
            building.add(code)
            self._building_count += 1
        current = self._filter
        if current is not None and code not in current:
            current.add(code)
            self._count += 1

    def created(self, code: str) -> None:
        """`code` was just created by this process: known here and, through `recent`, at once in
        every process of this server (before its notification reaches them)."""
        self.add(code)
        if self.recent is not None:
            self.recent.add(code)

    def begin_load(self, expected: int) -> None:
        """Start building a filter for about `expected` codes; `add` feeds it too from now on."""
        self._building_capacity = max(self.min_capacity, int(expected * self.headroom))
        self._building = Bloom(self._building_capacity, self.false_positive_rate)
        self._building_count = 0

    def load(self, codes: Iterable[str]) -> None:
        """Add a batch of codes read from the table to the filter being built."""
        building = self._building
        if building is None:
            raise RuntimeError("begin_load first")
        batch = list(codes)
        building.update(batch)
        self._building_count += len(batch)

    def finish_load(self) -> None:
        """Start answering from the filter just built."""
        if self._building is None:
            raise RuntimeError("begin_load first")
        self._filter, self._capacity, self._count = (
            self._building,
            self._building_capacity,
            self._building_count,
        )
        self._building = None

    def reset(self) -> None:
        """Stop trusting the filter (notifications may have been missed); `may_exist` says True."""
        self._filter = None
        self._building = None
        self._count = 0

    @property
    def count(self) -> int:
        """Codes in the current filter (loaded plus added since; a code added again is not counted again,
        nor is a new one the filter mistakes for a known one)."""
        return self._count

    @property
    def size_bytes(self) -> int:
        """Memory held by the filters (current and being built)."""
        return sum(f.size_in_bits // 8 for f in (self._filter, self._building) if f is not None)


class RecentCodes:
    """The last `slots` codes created by any process of this server, in memory they all share.

    A code created through one worker must not be answered 404 by another before the change
    notification has reached it (PostgreSQL delivers it asynchronously: ~13 µs usually, at times
    over 100 ms under load). The creating process writes the code here before it answers 201; every
    process reads it here. The mapping is anonymous and shared, created with the app before the
    server forks its workers (gunicorn and granian both preload the app); a process that was not
    forked from the creator (another replica, the CLI) is covered by the notification alone.

    Layout: a count of codes ever written (8 bytes), a "broken" flag (8 bytes), then a ring of slots
    (the code, NUL-padded). A writer fills the slot and then publishes the count, under a lock
    shared across forks. A reader compares the count with the last one it saw (one 8-byte read)
    and copies only the new slots into its own set, so a lookup is a set lookup whenever nothing was
    created meanwhile.

    A process killed while holding the lock (within a microsecond's window) would leave it held for
    good: a writer that cannot take it within `LOCK_TIMEOUT` marks the ring broken for every
    process, and `KnownCodes` then stops answering 404 from its filter (every miss asks the database)
    until the server restarts. Slower, never wrong, and no create waits more than once.
    """

    _COUNT = struct.Struct("Q")
    _HEADER = 16  # the count, then the broken flag
    LOCK_TIMEOUT = 0.1

    def __init__(self, slots: int = 1024, max_code_length: int = MAX_CODE_LENGTH) -> None:
        self.slots = slots
        self.slot_size = max_code_length
        self._shared = mmap.mmap(-1, self._HEADER + slots * self.slot_size)  # MAP_SHARED
        self._write_lock = multiprocessing.Lock()  # shared across forks
        self._read_lock = threading.Lock()  # this process's copy
        self._seen = 0
        self._index: dict[str, int] = {}  # code → the count at which it was written
        self._order: deque[tuple[int, str]] = deque()

    def add(self, code: str) -> None:
        """Publish `code` (ASCII, as every code is), overwriting the oldest slot."""
        raw = code.encode("ascii")
        if len(raw) > self.slot_size:
            return  # never happens for a stored code; the notification still covers it
        if self.broken or not self._write_lock.acquire(timeout=self.LOCK_TIMEOUT):
            if not self.broken:
                self._COUNT.pack_into(self._shared, self._COUNT.size, 1)
                log.error(
                    "recent codes: the shared lock is held by a dead process; misses now ask the database"
                )
            return
        try:
            (count,) = self._COUNT.unpack_from(self._shared, 0)
            start = self._HEADER + (count % self.slots) * self.slot_size
            self._shared[start : start + self.slot_size] = raw.ljust(self.slot_size, b"\0")
            self._COUNT.pack_into(self._shared, 0, count + 1)
        finally:
            self._write_lock.release()

    @property
    def broken(self) -> bool:
        """True once a writer found the lock held for good (see the class docstring)."""
        return self._COUNT.unpack_from(self._shared, self._COUNT.size)[0] != 0

    def __contains__(self, code: str) -> bool:
        (count,) = self._COUNT.unpack_from(self._shared, 0)
        if count != self._seen:
            self._catch_up(count)
        return code in self._index

    def _catch_up(self, count: int) -> None:
        with self._read_lock:
            oldest = count - self.slots
            for number in range(max(self._seen, oldest), count):
                start = self._HEADER + (number % self.slots) * self.slot_size
                code = self._shared[start : start + self.slot_size].rstrip(b"\0").decode("ascii", "replace")
                self._index[code] = number
                self._order.append((number, code))
            while self._order and self._order[0][0] < oldest:
                number, code = self._order.popleft()
                if self._index.get(code) == number:
                    del self._index[code]
            self._seen = max(self._seen, count)
