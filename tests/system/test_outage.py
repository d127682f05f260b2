"""A real database outage: stop a throwaway PostgreSQL under the running service, then restart it."""

from __future__ import annotations

import pytest

from tests.system.pgcluster import ThrowawayCluster
from tests.system.service import Service, service_env, wait_for

pytestmark = pytest.mark.skipif(not ThrowawayCluster.available(), reason="initdb/pg_ctl not installed")


def test_outage_gives_fast_503_then_recovers_without_restart_and_loses_nothing(cluster, tmp_path):
    # A long cache TTL: links resolved before the outage keep redirecting through it. Frequent
    # flushes: click writes fail during the outage and must be retried afterwards.
    env = service_env(
        tmp_path,
        DATABASE_URL=cluster.url,
        WEB_CONCURRENCY="2",
        REDIRECT_CACHE_TTL_MS="60000",
        CLICK_FLUSH_INTERVAL_MS="100",
    )
    service = Service(env)
    service.start()
    try:
        acked = {}
        for i in range(20):
            reply = service.call("POST", "/shorten", {"url": f"https://example.com/{i}"})
            assert reply.status == 201
            acked[reply.body["short_code"]] = reply.body["original_url"]

        popular = next(iter(acked))
        # 30 fresh connections: the kernel spreads them over both workers (each misses with p=2^-30).
        warm = [service.call("GET", f"/{popular}") for _ in range(30)]
        assert {r.status for r in warm} == {302}

        cluster.stop()
        during = [service.call("GET", f"/{popular}") for _ in range(8)]
        assert {r.status for r in during} == {302}, "cached links must keep redirecting"
        down = [
            service.call("GET", "/health"),
            service.call("POST", "/shorten", {"url": "https://x.org"}),
            service.call("GET", f"/{list(acked)[1]}"),  # not cached anywhere
            service.call("GET", "/urls"),
        ]
        for reply in down:
            assert reply.status == 503, reply
            assert reply.body["code"] == "database_unavailable"
            assert reply.headers["Retry-After"] == "1"
            assert reply.seconds < 1.0
        assert down[0].body["database"] == "unavailable"
        assert service.call("GET", "/livez").status == 200

        cluster.start()
        recovered_in = wait_for(lambda: service.call("GET", "/health").status == 200, timeout=2.0)
        # Every worker thread held a connection that died with the server: none may fail now.
        for i in range(16):
            after = service.call("POST", "/shorten", {"url": f"https://example.com/after/{i}"})
            assert after.status == 201, after
            acked[after.body["short_code"]] = after.body["original_url"]
        for code, url in acked.items():
            reply = service.call("GET", f"/{code}")
            assert (reply.status, reply.headers["Location"]) == (302, url)
        # 39 clicks on the popular link, 8 of them while the database was down: kept in the
        # buffers, written once it was back.
        wait_for(lambda: service.call("GET", f"/urls/{popular}").body["click_count"] >= 39, timeout=5)
        assert service.call("GET", f"/urls/{popular}").body["click_count"] == 39
    finally:
        assert service.stop() == 0, service.output
    print(
        f"\noutage: slowest 503 {max(r.seconds for r in down) * 1000:.1f} ms; "
        f"health green {recovered_in * 1000:.0f} ms after the database was back"
    )
