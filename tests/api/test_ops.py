"""GET /health and GET /livez."""

from __future__ import annotations

import time


def test_health_reports_database_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert isinstance(body["database_latency_ms"], float) and 0 < body["database_latency_ms"] < 1000
    assert response.headers["Cache-Control"] == "no-store"


def test_health_is_503_within_a_second_when_database_is_down(broken_db_client):
    started = time.monotonic()
    response = broken_db_client.get("/health")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "unavailable" and body["code"] == "database_unavailable"
    assert body["error"]
    assert response.headers["Retry-After"] == "1"


def test_livez_answers_even_when_database_is_down(broken_db_client):
    response = broken_db_client.get("/livez")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
