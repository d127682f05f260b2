"""The worker watchdog (granian): silent children are killed, the files of gone processes forgotten."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from app.watchdog import Watchdog

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads parents from /proc")


@pytest.fixture
def watchdog(tmp_path):
    dog = Watchdog(timeout=5, interval=0.05, directory=tmp_path)
    yield dog
    dog.close()


@pytest.fixture
def child():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def beat(watchdog: Watchdog, pid: int, seconds_ago: float) -> None:
    path = watchdog.directory / str(pid)
    path.touch()
    then = time.time() - seconds_ago
    os.utime(path, (then, then))


def test_a_child_silent_for_longer_than_the_timeout_is_killed(watchdog, child):
    beat(watchdog, child.pid, seconds_ago=6)
    assert watchdog.check() == [child.pid]
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert not (watchdog.directory / str(child.pid)).exists()


def test_a_child_with_a_recent_heartbeat_is_left_alone(watchdog, child):
    beat(watchdog, child.pid, seconds_ago=1)
    assert watchdog.check() == []
    assert child.poll() is None


def test_the_file_of_a_process_that_is_gone_is_forgotten(watchdog, child):
    beat(watchdog, child.pid, seconds_ago=60)
    child.kill()
    child.wait()
    assert watchdog.check() == []
    assert not (watchdog.directory / str(child.pid)).exists()


def test_a_process_that_is_not_a_child_is_never_killed(watchdog):
    beat(watchdog, os.getpid(), seconds_ago=60)  # this process: alive, but no child of itself
    assert watchdog.check() == []


def test_files_that_name_no_process_are_ignored(watchdog):
    (watchdog.directory / "not-a-pid").touch()
    assert watchdog.check() == []


def test_a_forked_worker_keeps_its_heartbeat_fresh_until_it_stops(watchdog):
    pid = os.fork()
    if pid == 0:  # the worker: beat, and do nothing else
        watchdog.start_beating()
        time.sleep(30)
        os._exit(0)
    try:
        path = watchdog.directory / str(pid)
        deadline = time.monotonic() + 5
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        first = path.stat().st_mtime
        time.sleep(0.3)
        assert path.stat().st_mtime > first  # touched again by its heartbeat thread
        assert watchdog.check(now=time.time()) == []
        os.kill(pid, signal.SIGSTOP)  # stuck: no more heartbeats
        assert watchdog.check(now=time.time() + watchdog.timeout + 1) == [pid]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_watching_runs_the_check_in_the_background(watchdog, child):
    beat(watchdog, child.pid, seconds_ago=60)
    watchdog.start_watching()
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert watchdog.killed == [child.pid]


def test_a_closed_watchdog_checks_nothing(watchdog, child):
    beat(watchdog, child.pid, seconds_ago=60)
    watchdog.close()
    assert watchdog.check() == []
    assert child.poll() is None
