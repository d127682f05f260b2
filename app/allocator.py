"""glibc malloc, set for a long-running threaded server: large blocks go back to the system when freed.

glibc serves a block of 128 KiB or more with its own mmap, released on free, but each such free
raises that threshold to the freed size (up to 32 MiB). Once a click flush has freed its COPY
pieces (2,048 rows, a few hundred KiB each), blocks of that size come from the arena of whichever
thread asks instead, and every thread that runs Python (three app threads, the flusher, the
listener, the log writer) has its own arena: freed space stays in the process, scattered among
arenas. A fixed threshold keeps the starting behaviour for good. Measured from the worker's
/proc/<pid>/smaps around a `bench/bench.py` run at 10M links: its arenas grew by ~7 MiB, ~1 MiB
with the fixed threshold; the whole server 143.1 → 136.3 MiB PSS (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import ctypes
import os
import platform

M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value


def keep_large_blocks_returnable(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes for this process and the workers it forks.

    True when set. Does nothing off glibc (musl has no such threshold to move) or when the operator
    set glibc's own `MALLOC_MMAP_THRESHOLD_`, which then decides.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    return bool(ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, threshold))
