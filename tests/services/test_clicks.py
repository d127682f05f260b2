"""The click buffer: batching, flush triggers, shutdown and database failures."""

from __future__ import annotations

import threading
import time

from app.models import Link
from app.services.clicks import ClickCounter
from tests.factories import make_link


def count(link: Link) -> int:
    return Link.get_by_id(link.id).click_count


def test_flush_writes_buffered_counts_in_one_batch_and_empties_the_buffer():
    first, second = make_link(), make_link()
    counter = ClickCounter(background=False)
    for link_id in [first.id] * 3 + [second.id]:
        counter.record(link_id)
    assert counter.pending(first.id) == 3
    assert counter.flush() == 4
    assert (count(first), count(second)) == (3, 1)
    assert counter.pending(first.id) == 0 and counter.flush() == 0


def test_counts_add_to_stored_counts():
    link = make_link(click_count=40)
    counter = ClickCounter(background=False)
    counter.record(link.id)
    counter.flush()
    assert count(link) == 41


def test_failed_flush_keeps_counts_for_the_next_attempt(monkeypatch):
    link = make_link()
    counter = ClickCounter(background=False)
    counter.record(link.id)
    counter.record(link.id)

    def database_down(*args, **kwargs):
        from peewee import OperationalError

        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(Link, "update", database_down)
        assert counter.flush() == 0
    counter.record(link.id)
    assert counter.pending(link.id) == 3
    assert counter.flush() == 3 and count(link) == 3


def test_buffer_is_bounded_and_counts_what_it_drops():
    counter = ClickCounter(background=False, max_pending=2)
    for link_id in (1, 2, 3, 3, 1):
        counter.record(link_id)
    assert (counter.pending(1), counter.pending(2), counter.pending(3)) == (2, 1, 0)
    assert counter.dropped == 2


class RecordingCounter(ClickCounter):
    """A counter whose flushes are observed instead of written."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.flushed = threading.Event()
        self.batches: list[int] = []

    def flush(self) -> int:
        with self._lock:
            size = sum(self._pending.values())
            self._pending.clear()
        if size:
            self.batches.append(size)
            self.flushed.set()
        return size


def test_background_thread_flushes_on_interval():
    counter = RecordingCounter(interval=0.05, batch_size=1000)
    started = time.monotonic()
    counter.record(1)
    assert counter.flushed.wait(2)
    assert 0.03 < time.monotonic() - started < 1.5
    counter.close()


def test_background_thread_flushes_early_when_batch_is_full():
    counter = RecordingCounter(interval=30, batch_size=3)
    for link_id in (1, 2, 3):
        counter.record(link_id)
    assert counter.flushed.wait(2), "a full batch must not wait for the 30 s interval"
    assert counter.batches == [3]
    counter.close()


def test_close_stops_the_thread_and_flushes_what_is_left():
    counter = RecordingCounter(interval=30, batch_size=1000)
    counter.record(7)
    thread = counter._thread
    counter.close()
    assert counter.batches == [1]
    assert thread is not None and not thread.is_alive()
