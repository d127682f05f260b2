"""Races that only real commits on separate connections can show (threads, outside the test transaction)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from app import create_app
from app.db import connected, db
from app.models import Link


def in_own_thread(function):
    """Run `function` on a fresh thread, hence on its own connection that commits for real."""

    def run():
        with connected():
            return function()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def committed_cleanup(app):
    """Delete what the threads committed, on a connection outside the rolled-back test transaction."""
    yield
    in_own_thread(lambda: Link.delete().where(Link.code.startswith("race-")).execute())


def test_two_concurrent_requests_for_one_alias_give_one_201_and_one_409(app, committed_cleanup):
    for attempt in range(5):
        alias = f"race-{attempt}"
        barrier = threading.Barrier(2)

        def claim(url, alias=alias, barrier=barrier):
            client = app.test_client()
            barrier.wait()
            return client.post("/shorten", json={"url": url, "alias": alias}).status_code

        with ThreadPoolExecutor(max_workers=2) as pool:
            statuses = sorted(pool.map(claim, ["https://a.example", "https://b.example"]))
        assert statuses == [201, 409]
        stored = in_own_thread(lambda alias=alias: Link.get(Link.code == alias).target_url)
        assert stored in ("https://a.example", "https://b.example")


@pytest.fixture
def bulk_cleanup(app):
    """Delete the links the bulk test committed."""
    yield
    in_own_thread(lambda: Link.delete().where(Link.target_url.startswith("https://bulk.example/")).execute())


@pytest.fixture
def app_for_32_threads(settings):
    """An app whose pool holds a connection for each of 32 threads (each thread keeps its own)."""
    original = db.obj
    application = create_app(replace(settings, db_pool_size=40))
    yield application
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()
    db.initialize(original)


def test_2000_creates_from_32_threads_give_2000_distinct_codes_that_all_redirect(
    app_for_32_threads, bulk_cleanup
):
    app, total, threads = app_for_32_threads, 2000, 32

    def create(index: int) -> tuple[int, str, str]:
        response = app.test_client().post("/shorten", json={"url": f"https://bulk.example/{index}"})
        body = response.get_json()
        return response.status_code, body.get("short_code", ""), body.get("original_url", "")

    def follow(item: tuple[str, str]) -> bool:
        code, url = item
        response = app.test_client().head(f"/{code}")
        return response.status_code == 302 and response.headers["Location"] == url

    # One set of threads for both phases: each thread keeps its pooled connection, like a server's.
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(create, range(total)))
        assert {status for status, _, _ in results} == {201}
        codes = {code: url for _, code, url in results}
        assert len(codes) == total
        assert sorted(codes.values()) == sorted(f"https://bulk.example/{i}" for i in range(total))
        assert all(pool.map(follow, codes.items()))
    stored = in_own_thread(
        lambda: Link.select().where(Link.target_url.startswith("https://bulk.example/")).count()
    )
    assert stored == total
