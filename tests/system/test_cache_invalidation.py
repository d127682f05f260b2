"""Two worker processes with long-lived redirect caches: a change made through one is applied by both
within a second, by PostgreSQL notifications alone (the cache TTL is a minute)."""

from __future__ import annotations

import os
import time

import psycopg2
import pytest

from tests.system.service import Service, service_env

SERVER = "postgresql://postgres@127.0.0.1:5432"
ADMIN_KEY = "invalidation-admin-key-" + "k" * 20


def postgres_reachable() -> bool:
    try:
        psycopg2.connect(f"{SERVER}/postgres", connect_timeout=2).close()
    except psycopg2.Error:
        return False
    return True


pytestmark = pytest.mark.skipif(not postgres_reachable(), reason="no PostgreSQL on 127.0.0.1:5432")


@pytest.fixture
def database_url():
    name = f"shortener_sys_invalidation_{os.getpid()}"
    admin = psycopg2.connect(f"{SERVER}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield f"{SERVER}/{name}"
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def service(database_url, tmp_path):
    env = service_env(
        tmp_path,
        DATABASE_URL=database_url,
        WEB_CONCURRENCY="2",
        REDIRECT_CACHE_TTL_MS="60000",
        INITIAL_API_KEY=ADMIN_KEY,
        RATELIMIT_ENABLED="false",
    )
    running = Service(env)
    running.start()
    yield running
    running.stop()


def answers(service: Service, code: str, rounds: int = 30) -> set[tuple[int, str | None]]:
    """(status, Location) over `rounds` fresh connections: the kernel spreads them over both workers."""
    return {
        (reply.status, reply.headers.get("Location"))
        for reply in (service.call("GET", f"/{code}") for _ in range(rounds))
    }


def seconds_until(service: Service, code: str, expected: set) -> float:
    started = time.monotonic()
    while answers(service, code) != expected:
        assert time.monotonic() - started < 3, f"still {answers(service, code)}"
    return time.monotonic() - started


def assert_within_a_second(seconds: float) -> None:
    assert seconds < 1.0, f"the change took {seconds:.2f} s to reach both workers"


def wait_until_both_workers_listen(service: Service) -> None:
    """Until then a worker trusts its cache for REDIRECT_CACHE_TTL_MS (a minute here).

    The service answers as soon as its first worker is up: wait for the second one too.
    """
    started = time.monotonic()
    while len(service.worker_pids()) < 2 or {
        service.call("GET", "/health").body["cache_notifications"] for _ in range(30)
    } != {"listening"}:
        assert time.monotonic() - started < 10, "the two workers did not both start listening"
        time.sleep(0.05)


def test_edit_deactivate_and_delete_apply_in_every_process_within_a_second(service):
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    code = service.call("POST", "/shorten", {"url": "https://example.com/old"}).body["short_code"]
    wait_until_both_workers_listen(service)
    assert answers(service, code) == {(302, "https://example.com/old")}  # cached in both workers

    edited = service.call("PATCH", f"/urls/{code}", {"url": "https://example.com/new"}, headers=admin)
    assert edited.status == 200
    assert_within_a_second(seconds_until(service, code, {(302, "https://example.com/new")}))

    deactivated = service.call("PATCH", f"/urls/{code}", {"is_active": False}, headers=admin)
    assert deactivated.status == 200
    assert_within_a_second(seconds_until(service, code, {(410, None)}))

    reactivated = service.call("PATCH", f"/urls/{code}", {"is_active": True}, headers=admin)
    assert reactivated.status == 200
    assert_within_a_second(seconds_until(service, code, {(302, "https://example.com/new")}))

    assert service.call("DELETE", f"/urls/{code}", headers=admin).status == 204
    assert_within_a_second(seconds_until(service, code, {(410, None)}))


def test_a_probed_alias_redirects_everywhere_as_soon_as_it_is_created(service):
    wait_until_both_workers_listen(service)
    assert answers(service, "fresh-alias") == {(404, None)}  # a cached miss in both workers
    created = service.call("POST", "/shorten", {"url": "https://example.com/a", "alias": "fresh-alias"})
    assert created.status == 201
    assert_within_a_second(seconds_until(service, "fresh-alias", {(302, "https://example.com/a")}))
