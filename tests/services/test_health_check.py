"""DatabaseCheck: one database check shared by concurrent /health callers; successes reused briefly,
failures only by the callers that waited for them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.services.health import DatabaseCheck, health_report
from app.services.link_cache import LinkCache

OK = (True, 1.5)
DOWN = (False, 2000.0)


class Clock:
    """A monotonic clock the test moves (thread-safe: checks run on several threads)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.reads = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.reads += 1
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class FakeCheck:
    """A database check answering `result`, each run taking a millisecond of the clock."""

    def __init__(self, clock: Clock, result: tuple[bool, float] = OK) -> None:
        self.clock = clock
        self.result = result
        self.runs = 0

    def __call__(self) -> tuple[bool, float]:
        self.runs += 1
        self.clock.advance(0.001)
        return self.result


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_success_is_reused_within_the_interval_and_checked_again_after(clock):
    check = FakeCheck(clock)
    shared = DatabaseCheck(1.0, check=check, timer=clock)
    assert shared.status() == OK
    clock.advance(0.5)
    check.result = (True, 9.9)  # a new check would say this
    assert shared.status() == OK  # reused: same latency as the first
    assert check.runs == shared.checks == 1
    clock.advance(0.6)  # past the interval since the check completed
    assert shared.status() == (True, 9.9)
    assert check.runs == shared.checks == 2


def test_a_failure_is_not_reused_by_a_later_caller(clock):
    check = FakeCheck(clock, DOWN)
    shared = DatabaseCheck(60.0, check=check, timer=clock)
    assert shared.status() == DOWN
    clock.advance(0.001)
    assert shared.status() == DOWN
    assert check.runs == 2
    check.result = OK  # the database is back
    clock.advance(0.001)
    assert shared.status() == OK  # green with the first check after it is back
    assert check.runs == 3


def test_with_interval_zero_every_caller_checks(clock):
    check = FakeCheck(clock)
    shared = DatabaseCheck(0, check=check, timer=clock)
    for _ in range(3):
        clock.advance(0.001)
        assert shared.status() == OK
    assert check.runs == shared.checks == 3


@pytest.mark.parametrize("result", [OK, DOWN], ids=["success", "failure"])
def test_callers_arriving_during_a_check_wait_for_it_and_share_its_result(clock, result):
    started, release = threading.Event(), threading.Event()

    def slow_check():
        started.set()
        assert release.wait(5)
        clock.advance(0.01)
        return result

    shared = DatabaseCheck(0.1, check=slow_check, timer=clock)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(shared.status)
        assert started.wait(5)
        clock.advance(0.001)  # the others arrive after the check started
        others = [pool.submit(shared.status) for _ in range(3)]
        while clock.reads < 4:  # every caller has taken its arrival time: all are waiting
            threading.Event().wait(0.001)
        release.set()
        answers = [first.result(5), *(other.result(5) for other in others)]
    assert answers == [result] * 4
    assert shared.checks == 1


def test_a_caller_arriving_after_a_shared_failure_runs_a_new_check(clock):
    check = FakeCheck(clock, DOWN)
    shared = DatabaseCheck(0.1, check=check, timer=clock)
    shared.status()
    clock.advance(0.001)
    check.result = OK
    assert shared.status() == OK and check.runs == 2


def test_the_interval_counts_from_when_the_check_completed(clock):
    def slow_check():
        clock.advance(0.5)  # a slow SELECT 1
        return OK

    shared = DatabaseCheck(0.3, check=slow_check, timer=clock)
    shared.status()
    clock.advance(0.2)  # 0.7 s after the call, 0.2 s after the answer
    shared.status()
    assert shared.checks == 1


def test_health_report_fields_follow_the_check_and_the_listener_state(clock):
    cache = LinkCache()
    ok, fields = health_report(DatabaseCheck(0, check=lambda: OK, timer=clock), cache, False)
    assert ok and fields == {
        "status": "ok",
        "database": "ok",
        "database_latency_ms": 1.5,
        "cache_notifications": "off",
    }
    clock.advance(0.001)
    ok, fields = health_report(DatabaseCheck(0, check=lambda: DOWN, timer=clock), cache, True)
    assert not ok and fields["status"] == fields["database"] == "unavailable"
    assert fields["cache_notifications"] == "connecting"
    cache.notified = True
    assert (
        health_report(DatabaseCheck(0, check=lambda: OK, timer=clock), cache, True)[1]["cache_notifications"]
        == "listening"
    )
