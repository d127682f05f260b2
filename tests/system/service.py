"""Run the real service (run.py: granian, or gunicorn with WEB_SERVER=gunicorn) in a subprocess; talk HTTP."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from werkzeug.datastructures import Headers

ROOT = Path(__file__).resolve().parents[2]
TCP_LISTEN, TCP_ESTABLISHED = "0A", "01"  # socket states in /proc/net/tcp


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The current environment without database settings, an SQLite file in tmp_path, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "TEST_DATABASE"))}
    env.update(SQLITE_PATH=str(tmp_path / "svc.sqlite3"), **extra)
    return env


def process_state(pid: int) -> str | None:
    """The state letter of `pid` in /proc (R, S, Z, ...), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]  # after the command name, which may hold spaces


def child_pids(pid: int) -> set[int]:
    """The live (not zombie) children of `pid`, read from /proc (Linux; no psutil)."""
    tasks = list(Path(f"/proc/{pid}/task").glob("*/children"))
    children: set[int] = set()
    if tasks:
        for task in tasks:
            try:
                children.update(int(child) for child in task.read_text().split())
            except OSError:
                continue  # the thread ended meanwhile
    else:  # a kernel without CONFIG_PROC_CHILDREN: scan every process's parent
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.add(int(stat.parent.name))
    return {child for child in children if process_state(child) not in (None, "Z")}


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets `pid` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def tcp_inodes(state: str, *, local_port: int | None = None, remote_port: int | None = None) -> set[int]:
    """Inodes of the IPv4 TCP sockets in `state` (TCP_LISTEN, ...) on the given ports."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, socket_state, inode = fields[1], fields[2], fields[3], int(fields[9])
        if socket_state != state:
            continue
        if local_port is not None and int(local.split(":")[1], 16) != local_port:
            continue
        if remote_port is not None and int(remote.split(":")[1], 16) != remote_port:
            continue
        inodes.add(inode)
    return inodes


@dataclass
class Reply:
    status: int
    headers: Headers  # case-insensitive: granian sends lower-case names, gunicorn as given
    body: dict | list | None
    seconds: float


class Service:
    """`python run.py` on a free port; stopped with SIGTERM."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.process: subprocess.Popen | None = None
        self.output = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "run.py"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Read the output as it comes, as a log collector would: a full pipe would block the workers'
        # writes (one access line per request).
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._lines.extend, args=(self.process.stdout,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.call("GET", "/livez").status == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"service did not start:\n{self.output}")
            time.sleep(0.1)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self, timeout: float = 30) -> int:
        """Wait for the service to exit by itself (no signal sent); keep its output."""
        assert self.process is not None
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        self.output = "".join(self._lines)
        return self.process.returncode

    def worker_pids(self) -> set[int]:
        """The live workers: the children of run.py, which becomes the granian or gunicorn master
        (it runs the server in its own process: no exec, no child process in between)."""
        assert self.process is not None
        return child_pids(self.process.pid)

    def listening_workers(self) -> set[int]:
        """The workers holding a listening socket on the service's port (each has its own with
        GUNICORN_REUSE_PORT, the default)."""
        listening = tcp_inodes(TCP_LISTEN, local_port=self.port)
        return {pid for pid in self.worker_pids() if socket_inodes(pid) & listening}

    def call(
        self,
        method: str,
        path: str,
        payload: dict | None = None,
        timeout: float = 10,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One HTTP request on a fresh connection; redirects are not followed."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        body = json.dumps(payload) if payload is not None else None
        headers = {**({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})}
        started = time.monotonic()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            elapsed = time.monotonic() - started
            is_json = response.getheader("Content-Type", "").startswith("application/json")
            return Reply(
                response.status, Headers(response.getheaders()), json.loads(raw) if is_json else None, elapsed
            )
        finally:
            connection.close()


def wait_for(check: Callable[[], object], timeout: float, what: str = "condition") -> float:
    """Seconds until `check()` is truthy (polled every 10 ms); fails after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.01)
    return time.monotonic() - started
