"""The real entry points: setup_db.py migrates, run.py serves over HTTP with gunicorn."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from tests.system.service import ROOT, Service, service_env


def test_setup_db_applies_migrations_then_reports_up_to_date(tmp_path):
    env = service_env(tmp_path)
    first = subprocess.run(
        [sys.executable, "setup_db.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert "applied: 0001_create_link, 0002_link_management, 0003_click_analytics, 0004" in first.stdout
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


def test_the_served_app_does_not_load_what_only_optional_features_use(tmp_path):
    # Each server process holds what it imports: redis (~5 MiB, for REDIS_URL), rich (~1.5 MiB, for
    # the CLI's output) and segno (QR codes) are loaded when used, not by every worker.
    probe = "import sys, app.wsgi; print(sorted({'redis', 'rich', 'segno'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=service_env(tmp_path), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_run_py_refuses_a_bad_server_setting_naming_it(tmp_path):
    env = service_env(tmp_path, WEB_CONCURRENCY="many", PORT="8999")
    result = subprocess.run(
        [sys.executable, "run.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "WEB_CONCURRENCY must be an integer, got 'many'" in result.stderr


def test_run_py_migrates_and_serves_until_sigterm_then_flushes_clicks(tmp_path):
    admin_key = "initial-admin-key-" + "x" * 30
    # A one-minute flush interval: only the shutdown flush can write the clicks in time.
    env = service_env(
        tmp_path, WEB_CONCURRENCY="1", INITIAL_API_KEY=admin_key, CLICK_FLUSH_INTERVAL_MS="60000"
    )
    service = Service(env)
    service.start()
    try:
        health = service.call("GET", "/health")
        created = service.call("POST", "/shorten", {"url": "https://example.com/run"})
        code = created.body["short_code"]
        followed = [service.call("GET", f"/{code}") for _ in range(3)]
        users = service.call("GET", "/users", headers={"Authorization": f"Bearer {admin_key}"})
    finally:
        returncode = service.stop()
    assert (health.status, health.body["database"]) == (200, "ok")
    # No server software or version: granian sends the app's fixed token, gunicorn none at all.
    for reply in (health, followed[0]):
        assert reply.headers.getlist("Server") in ([], ["shortener"])
    assert health.headers["X-Content-Type-Options"] == "nosniff"
    assert created.status == 201 and created.body["short_url"].startswith(service.base)
    assert {(r.status, r.headers["Location"]) for r in followed} == {(302, "https://example.com/run")}
    assert users.status == 200 and [u["name"] for u in users.body] == ["admin"]
    assert returncode == 0, service.output
    applied = "migrations applied: 0001_create_link, 0002_link_management, 0003_click_analytics, 0004"
    assert applied in service.output
    assert "Traceback" not in service.output
    with sqlite3.connect(tmp_path / "svc.sqlite3") as stored:
        clicks = stored.execute("SELECT click_count FROM link WHERE code = ?", (code,)).fetchone()[0]
    assert clicks == 3
