"""Memory and time per buffered click: what the click buffer costs while the database is away.

Records clicks into a ClickRecorder that never flushes (no database needed), each with its own
copy of a browser User-Agent (50 distinct ones) and client address (2,000 distinct ones), as
requests bring them, and prints the bytes each buffered click holds (tracemalloc) and the best
time per `record` call over several rounds:

    uv run python bench/click_buffer_bench.py [--clicks 50000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services.clicks import ClickRecorder

AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    f"Chrome/{100 + n}.0.0.0 Safari/537.36"
    for n in range(50)
]
ADDRESSES = [f"10.0.{n // 256}.{n % 256}" for n in range(2000)]


def fresh(text: str) -> str:
    """An equal string that is a new object, as each request's header value is."""
    return (text + " ")[:-1]


def visits(count: int) -> list[tuple[str, str]]:
    """(User-Agent, address) of `count` requests, drawn from the pools (the same every run)."""
    rng = random.Random(1)
    return [(rng.choice(AGENTS), rng.choice(ADDRESSES)) for _ in range(count)]


def bytes_per_click(count: int) -> float:
    picks = visits(count)
    clicks = ClickRecorder(background=False, max_events=count)
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    for n, (agent, address) in enumerate(picks):
        # The request's copies are made here, so what the buffer keeps of them is counted.
        clicks.record(1000 + n, user_agent=fresh(agent), client_ip=fresh(address))
    held = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    return held / count


def nanoseconds_per_record(count: int, rounds: int = 7) -> float:
    copies = [(fresh(agent), fresh(address)) for agent, address in visits(count)]
    best = float("inf")
    for _ in range(rounds):
        record = ClickRecorder(background=False, max_events=count).record
        started = time.perf_counter()
        for n, (agent, address) in enumerate(copies):
            record(1000 + n, user_agent=agent, client_ip=address)
        best = min(best, (time.perf_counter() - started) / count)
    return best * 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clicks", type=int, default=50_000, help="clicks buffered (the default buffer limit)"
    )
    args = parser.parse_args(argv)
    per_click = bytes_per_click(args.clicks)
    print(
        f"{args.clicks:,} buffered clicks: {per_click:.0f} bytes each, "
        f"{per_click * args.clicks / 2**20:.1f} MiB"
    )
    print(f"record(): {nanoseconds_per_record(args.clicks):.0f} ns per click (best of 7)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
