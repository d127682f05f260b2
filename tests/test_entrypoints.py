"""The real entry points: setup_db.py migrates, run.py serves over HTTP with gunicorn."""

from __future__ import annotations

import subprocess
import sys

from tests.system.service import ROOT, Service, service_env


def test_setup_db_applies_migrations_then_reports_up_to_date(tmp_path):
    env = service_env(tmp_path)
    first = subprocess.run(
        [sys.executable, "setup_db.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert "applied: 0001_create_link" in first.stdout
    second = subprocess.run(
        [sys.executable, "setup_db.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert "up to date" in second.stdout


def test_setup_db_fails_naming_a_bad_variable(tmp_path):
    env = service_env(tmp_path, SHORT_CODE_LENGTH="x")
    result = subprocess.run(
        [sys.executable, "setup_db.py"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "SHORT_CODE_LENGTH" in result.stderr


def test_run_py_migrates_and_serves_until_sigterm(tmp_path):
    service = Service(service_env(tmp_path, WEB_CONCURRENCY="1"))
    service.start()
    try:
        health = service.call("GET", "/health")
        created = service.call("POST", "/shorten", {"url": "https://example.com/run"})
        followed = service.call("GET", f"/{created.body['short_code']}")
    finally:
        returncode = service.stop()
    assert (health.status, health.body["database"]) == (200, "ok")
    assert created.status == 201 and created.body["short_url"].startswith(service.base)
    assert followed.status == 302 and followed.headers["Location"] == "https://example.com/run"
    assert returncode == 0, service.output
    assert "migrations applied: 0001_create_link" in service.output
    assert "Traceback" not in service.output
