"""This process's id without a system call: per-process threads are (re)started after a fork by
comparing it with the pid they were started in, on every request."""

from __future__ import annotations

import os

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def current_pid() -> int:
    """os.getpid(), read from memory (glibc no longer caches it: getpid is a system call)."""
    return _pid
