"""The real entry points: setup_db.py migrates, run.py serves over HTTP with gunicorn."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "TEST_DATABASE"))}
    env.update(SQLITE_PATH=str(tmp_path / "svc.sqlite3"), **extra)
    return env


def test_setup_db_applies_migrations_then_reports_up_to_date(tmp_path):
    env = clean_env(tmp_path)
    first = subprocess.run(
        [sys.executable, "setup_db.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert "applied: 0001_create_link" in first.stdout
    second = subprocess.run(
        [sys.executable, "setup_db.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert "up to date" in second.stdout


def test_setup_db_fails_naming_a_bad_variable(tmp_path):
    env = clean_env(tmp_path, SHORT_CODE_LENGTH="x")
    result = subprocess.run(
        [sys.executable, "setup_db.py"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "SHORT_CODE_LENGTH" in result.stderr


def request(url: str, data: dict | None = None) -> tuple[int, dict]:
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as response:
        return response.status, json.loads(response.read())


def test_run_py_migrates_and_serves_until_sigterm(tmp_path):
    port = free_port()
    env = clean_env(tmp_path, PORT=str(port), HOST="127.0.0.1", WEB_CONCURRENCY="1")
    server = subprocess.Popen(
        [sys.executable, "run.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = request(f"{base}/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "run.py did not start serving"
                time.sleep(0.2)
        assert (status, body["database"]) == (200, "ok")
        status, created = request(f"{base}/shorten", {"url": "https://example.com/run"})
        assert status == 201 and created["short_url"] == f"{base}/{created['short_code']}"
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=20)
    assert server.returncode == 0, output
    assert "migrations applied: 0001_create_link" in output
