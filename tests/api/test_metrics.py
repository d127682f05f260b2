"""GET /metrics: protection, what moves after requests (both redirect paths), several processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics_dir import VARIABLE, prepare_multiprocess_dir
from app.services.clicks import ClickRecorder
from tests.factories import auth, make_key, make_link, make_user
from tests.system.service import ROOT

TOKEN = "metrics-token-" + "t" * 32
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}


def admin_headers() -> dict[str, str]:
    return auth(make_key(make_user("metrics-admin", role="admin")))


def scrape(client, headers: dict[str, str]) -> dict[tuple, float]:
    """Every sample of /metrics as {(name, sorted label pairs): value}."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def without_flask_route(client) -> None:
    """Only the fast path can answer redirects now."""

    def boom(code):
        raise AssertionError(f"/{code} reached the Flask route")

    client.application.view_functions["redirect.follow"] = boom


def test_metrics_refuse_anonymous_callers_with_401_json(client):
    response = client.get("/metrics")
    assert response.status_code == 401 and response.get_json()["code"] == "unauthorized"


def test_metrics_refuse_keys_without_admin_role_with_403_json(client):
    response = client.get("/metrics", headers=auth(make_key(make_user("plain"))))
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"


def test_metrics_are_served_to_admins_in_the_prometheus_text_format(client):
    response = client.get("/metrics", headers=admin_headers())
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    for name in (
        "shortener_http_requests_total",
        "shortener_http_request_duration_seconds",
        "shortener_clicks",
    ):
        assert f"# TYPE {name}" in text


def test_the_metrics_token_is_accepted_and_a_wrong_token_is_401(make_client):
    client = make_client(metrics_token=TOKEN)
    assert client.get("/metrics", headers=auth(TOKEN)).status_code == 200
    wrong = client.get("/metrics", headers=auth(TOKEN + "x"))
    assert wrong.status_code == 401 and wrong.get_json()["code"] == "unauthorized"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=admin_headers()).status_code == 200  # admins still may


def test_metrics_can_be_switched_off(make_client):
    client = make_client(metrics_enabled=False)
    response = client.get("/metrics", headers=admin_headers())
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"
    assert response.headers["X-Request-ID"]  # request ids and the access log stay


def test_requests_are_counted_by_route_template_method_and_status(client):
    admin = admin_headers()
    code = make_link().code
    before = scrape(client, admin)
    assert client.get(f"/urls/{code}").status_code == 200
    assert client.delete(f"/urls/{code}").status_code == 401
    assert client.get("/no/such/page").status_code == 404
    assert client.open(f"/urls/{code}", method="BREW").status_code == 405
    after = scrape(client, admin)
    requests = "shortener_http_requests_total"
    assert moved(before, after, requests, route="/urls/<code>", method="GET", status="200") == 1
    assert moved(before, after, requests, route="/urls/<code>", method="DELETE", status="401") == 1
    assert moved(before, after, requests, route="unmatched", method="GET", status="404") == 1
    assert moved(before, after, requests, route="unmatched", method="other", status="405") == 1
    assert moved(before, after, requests, route="/metrics", method="GET", status="200") == 1
    histogram = "shortener_http_request_duration_seconds"
    assert moved(before, after, f"{histogram}_count", route="/urls/<code>") == 2
    assert moved(before, after, f"{histogram}_bucket", route="/urls/<code>", le="2.5") == 2
    assert not any(code in str(key) for key in after)  # never the raw path


def test_redirects_and_cache_results_are_counted_on_both_paths(client):
    admin = admin_headers()
    code = make_link().code
    before = scrape(client, admin)
    assert client.get(f"/{code}").status_code == 302  # Flask route: a cache miss
    assert client.head(f"/{code}").status_code == 302  # fast path: a hit
    assert client.get("/unknown1").status_code == 404  # Flask route: a miss
    after = scrape(client, admin)
    assert moved(before, after, "shortener_redirects_total", status="302") == 2
    assert moved(before, after, "shortener_redirects_total", status="404") == 1
    requests = "shortener_http_requests_total"
    assert moved(before, after, requests, route="/<code>", method="GET", status="302") == 1
    assert moved(before, after, requests, route="/<code>", method="HEAD", status="302") == 1
    assert moved(before, after, "shortener_http_request_duration_seconds_count", route="/<code>") == 3
    assert moved(before, after, "shortener_redirect_cache_total", result="hit") == 1
    assert moved(before, after, "shortener_redirect_cache_total", result="miss") == 2


def test_fast_path_redirects_are_counted_logged_and_carry_a_request_id(make_client, caplog):
    client = make_client()
    admin = admin_headers()
    code = make_link().code
    client.get(f"/{code}")  # cached now
    without_flask_route(client)
    before = scrape(client, admin)
    caplog.set_level(logging.INFO)
    response = client.get(f"/{code}", headers={**BROWSER, "X-Request-ID": "edge-42"})
    assert response.status_code == 302 and response.headers["X-Request-ID"] == "edge-42"
    generated = client.get(f"/{code}").headers["X-Request-ID"]
    assert len(generated) == 32 and generated != "edge-42"
    after = scrape(client, admin)
    assert moved(before, after, "shortener_redirects_total", status="302") == 2
    assert moved(before, after, "shortener_redirect_cache_total", result="hit") == 2
    lines = [
        record
        for record in caplog.records
        if record.name == "app.access" and record.fields.path != "/metrics"
    ]
    assert [(record.request_id, record.fields.route, record.fields.status) for record in lines] == [
        ("edge-42", "/<code>", 302),
        (generated, "/<code>", 302),
    ]
    assert lines[0].fields.client == "127.0.0.1" and lines[0].fields.duration_ms >= 0


def test_fast_path_404s_and_health_probes_are_counted_and_logged_under_their_routes(listening_client, caplog):
    client = listening_client()
    admin = admin_headers()
    without_flask_route(client)

    def no_flask_health():
        raise AssertionError("/health reached the Flask route")

    client.application.view_functions["ops.health"] = no_flask_health
    before = scrape(client, admin)
    caplog.set_level(logging.INFO)
    assert client.get("/kc-nosuch", headers={"X-Request-ID": "miss-1"}).status_code == 404
    assert client.get("/health", headers={"X-Request-ID": "probe-1"}).status_code == 200
    after = scrape(client, admin)
    requests = "shortener_http_requests_total"
    assert moved(before, after, requests, route="/<code>", method="GET", status="404") == 1
    assert moved(before, after, "shortener_redirects_total", status="404") == 1
    assert moved(before, after, requests, route="/health", method="GET", status="200") == 1
    assert moved(before, after, "shortener_redirects_total", status="200") == 0  # no redirect
    duration = "shortener_http_request_duration_seconds_count"
    assert moved(before, after, duration, route="/health") == 1
    assert moved(before, after, duration, route="/<code>") == 1
    lines = [
        (record.request_id, record.fields.route, record.fields.path, record.fields.status)
        for record in caplog.records
        if record.name == "app.access" and record.fields.path != "/metrics"
    ]
    assert lines == [("miss-1", "/<code>", "/kc-nosuch", 404), ("probe-1", "/health", "/health", 200)]


def test_rate_limited_requests_are_counted_by_limit(make_client):
    client = make_client(ratelimit_enabled=True, ratelimit_misses="2/minute", ratelimit_create="1/minute")
    admin = admin_headers()
    before = scrape(client, admin)
    for i in range(3):
        client.get(f"/guess{i}")
    assert client.get("/guess9").status_code == 429
    client.post("/shorten", json={"url": "https://example.com/a"})
    assert client.post("/shorten", json={"url": "https://example.com/b"}).status_code == 429
    after = scrape(client, admin)
    assert moved(before, after, "shortener_rate_limited_total", limit="code-guessing") == 2
    assert moved(before, after, "shortener_rate_limited_total", limit="create-ip") == 1


def test_click_buffer_depth_and_dropped_clicks_are_reported(client, app):
    admin = admin_headers()
    code = make_link().code
    app.extensions["clicks"] = ClickRecorder(background=False, max_events=2)
    before = scrape(client, admin)
    for _ in range(3):
        assert client.get(f"/{code}", headers=BROWSER).status_code == 302
    after = scrape(client, admin)
    assert value(after, "shortener_click_buffer_depth") == 2
    assert moved(before, after, "shortener_clicks_dropped_total") == 1


def test_database_pool_usage_is_reported_for_postgresql(client, settings):
    samples = scrape(client, admin_headers())
    if settings.is_postgres:  # this test's connection is checked out of the pool
        assert value(samples, "shortener_db_pool_connections", state="in_use") >= 1
        assert ("shortener_db_pool_connections", (("state", "available"),)) in samples
    else:
        assert not any(name == "shortener_db_pool_connections" for name, _ in samples)


WORKER = """
import sys
from app.api.metrics import CLICK_BUFFER_DEPTH, REQUESTS
REQUESTS.labels("/<code>", "GET", "302").inc(int(sys.argv[1]))
CLICK_BUFFER_DEPTH.set(int(sys.argv[1]) * 10)
print("ready", flush=True)
sys.stdin.read()  # stay alive until the test has scraped
"""


def test_metrics_of_several_processes_are_summed(make_client, tmp_path):
    env = {**os.environ, VARIABLE: str(tmp_path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(n)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in (2, 3)
    ]
    try:
        assert [worker.stdout.readline().strip() for worker in workers] == ["ready", "ready"]
        client = make_client(metrics_multiproc_dir=str(tmp_path))
        admin = admin_headers()
        alive = scrape(client, admin)
    finally:
        for worker in workers:
            worker.communicate("", timeout=30)
    gone = scrape(client, admin)
    requests = {"route": "/<code>", "method": "GET", "status": "302"}
    assert value(alive, "shortener_http_requests_total", **requests) == 5
    assert value(alive, "shortener_click_buffer_depth") == 50
    assert value(gone, "shortener_http_requests_total", **requests) == 5  # counters outlive processes
    assert value(gone, "shortener_click_buffer_depth") == 0  # live gauges do not


def test_the_multiprocess_directory_is_the_operators_or_a_fresh_one(tmp_path):
    configured = {VARIABLE: str(tmp_path / "metrics")}
    assert prepare_multiprocess_dir(configured) == str(tmp_path / "metrics")
    assert (tmp_path / "metrics").is_dir()
    environ: dict[str, str] = {}
    fresh = prepare_multiprocess_dir(environ)
    assert environ[VARIABLE] == fresh and os.path.isdir(fresh) and not os.listdir(fresh)
    os.rmdir(fresh)


@pytest.mark.parametrize(
    ("rule", "label"),
    [("/keys/<int(max=9223372036854775807):key_id>", "/keys/<key_id>"), ("/<code:code>", "/<code>")],
)
def test_route_labels_drop_converters(rule, label):
    from app.api.metrics import route_label

    assert route_label(rule) == label


def test_each_worker_process_starts_one_sampling_thread(make_client, monkeypatch, caplog):
    from app.api import metrics

    monkeypatch.setattr(metrics, "WRITES_FILES", True)  # as in a worker with PROMETHEUS_MULTIPROC_DIR
    monkeypatch.setattr(metrics, "SAMPLE_INTERVAL", 0.01)
    observer = make_client().application.extensions["request_observer"]
    calls = []

    def sample():
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise RuntimeError("transient")  # logged; sampling goes on
        observer._sampler_pid = 0  # stops the thread

    observer.sample = sample
    observer.ensure_sampling()
    observer.ensure_sampling()  # already running in this process
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert calls == ["metrics-sampler", "metrics-sampler"]
    assert "metrics sampling failed" in caplog.text


def test_only_the_creating_process_removes_the_temporary_directory(tmp_path):
    from app.metrics_dir import _remove

    _remove(str(tmp_path), os.getpid() + 1)  # a forked worker exiting
    assert tmp_path.is_dir()
    _remove(str(tmp_path), os.getpid())
    assert not tmp_path.exists()


def test_fast_path_observations_added_per_bucket_equal_observing_each_one():
    from bisect import bisect_left

    from prometheus_client import CollectorRegistry, Histogram

    from app.api.metrics import DURATION, DURATION_BOUNDS, DURATION_BUCKETS, add_observations

    assert list(DURATION.labels("/x")._upper_bounds) == list(DURATION_BOUNDS)
    durations = [0.0001, 0.0005, 0.0007, 0.003, 0.003, 0.2, 2.5, 7.0]
    registry = CollectorRegistry()
    one_by_one = Histogram("one", "h", buckets=DURATION_BUCKETS, registry=registry)
    tallied = Histogram("tallied", "h", buckets=DURATION_BUCKETS, registry=registry)
    for duration in durations:
        one_by_one.observe(duration)
    counts = [0] * len(DURATION_BOUNDS)
    for duration in durations:
        counts[bisect_left(DURATION_BOUNDS, duration)] += 1
    add_observations(tallied, counts, sum(durations))

    def samples(name: str) -> dict:
        return {
            (sample.name.removeprefix(name), tuple(sorted(sample.labels.items()))): sample.value
            for metric in registry.collect()
            if metric.name == name
            for sample in metric.samples
            if not sample.name.endswith("_created")
        }

    assert samples("one") == samples("tallied")
