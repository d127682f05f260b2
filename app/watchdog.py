"""Stuck workers are killed and replaced, under granian as under gunicorn's worker timeout.

gunicorn's master kills a worker that has not reported for `timeout` seconds; granian only
replaces workers that exit. Here each granian worker (forked from run.py after the app is
preloaded) touches a heartbeat file every second from a thread of its own, which needs the
interpreter: a worker that is stopped, deadlocked or holding the GIL in C code stops touching it.
A thread of the master (run.py) kills a worker whose file is older than WORKER_TIMEOUT; granian
then starts a replacement (`respawn_failed_workers`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


class Watchdog:
    """Heartbeat files in `directory`, one per worker pid; the master reaps the silent ones."""

    def __init__(self, timeout: float, *, interval: float = 1.0, directory: Path | None = None) -> None:
        self.timeout = timeout
        self.interval = interval
        self.directory = directory or Path(tempfile.mkdtemp(prefix="shortener-heartbeat-"))
        self.master_pid = os.getpid()
        self.killed: list[int] = []  # workers this watchdog killed, for tests and logs
        self._closed = threading.Event()

    # ---------------------------------------------------------------- in each worker

    def start_beating(self) -> None:
        """In a worker: touch this process's heartbeat file every `interval` (a daemon thread)."""
        path = self.directory / str(os.getpid())
        path.touch()
        threading.Thread(target=self._beat, args=(path,), name="heartbeat", daemon=True).start()

    def _beat(self, path: Path) -> None:
        while True:
            time.sleep(self.interval)
            try:
                os.utime(path)
            except OSError:  # the master removed the directory: it is shutting down
                return

    # ---------------------------------------------------------------- in the master

    def start_watching(self) -> None:
        """In the master: check the heartbeat files every `interval` (a daemon thread)."""
        threading.Thread(target=self._watch, name="watchdog", daemon=True).start()

    def _watch(self) -> None:
        while not self._closed.wait(self.interval):
            try:
                self.check()
            except Exception:  # never let the watchdog die silently
                log.exception("worker watchdog check failed")

    def check(self, now: float | None = None) -> list[int]:
        """Kill the children of this process whose heartbeat is older than `timeout`; forget the
        files of processes that are gone. Returns the pids killed."""
        now = time.time() if now is None else now
        killed: list[int] = []
        try:
            paths = list(self.directory.iterdir())
        except FileNotFoundError:  # closed meanwhile
            return killed
        for path in paths:
            try:
                pid, beat = int(path.name), path.stat().st_mtime
            except (ValueError, OSError):
                continue
            if _parent_of(pid) != self.master_pid:
                path.unlink(missing_ok=True)  # exited (or not ours): nothing to watch
            elif now - beat > self.timeout:
                log.error(
                    "worker %d sent no heartbeat for %.0f s: killing it (WORKER_TIMEOUT)", pid, now - beat
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                path.unlink(missing_ok=True)
                killed.append(pid)
        self.killed += killed
        return killed

    def close(self) -> None:
        """Stop watching and remove the heartbeat files (the server has stopped)."""
        self._closed.set()
        shutil.rmtree(self.directory, ignore_errors=True)


def _parent_of(pid: int) -> int | None:
    """The parent pid of a live (not zombie) process, from /proc; None if there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[1])
