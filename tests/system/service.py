"""Run the real service (run.py → gunicorn) in a subprocess and talk HTTP to it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
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
        self.output, _ = self.process.communicate(timeout=30)
        return self.process.returncode

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
                response.status, dict(response.getheaders()), json.loads(raw) if is_json else None, elapsed
            )
        finally:
            connection.close()
