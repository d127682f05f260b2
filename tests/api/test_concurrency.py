"""Races that only real commits on separate connections can show (threads, outside the test transaction)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.db import connected
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
