"""Prometheus metrics at GET /metrics, request ids and the access log of every request.

Metric objects are module-level because prometheus-client's registry is per process by design. With
PROMETHEUS_MULTIPROC_DIR (set up by run.py / gunicorn.conf.py, app/metrics_dir.py) every worker
process writes its values to its own files there and /metrics sums the files of all workers;
without it (tests, the Flask dev server) values live in this process's memory.

What a request updates directly: requests, latency, redirects, rate-limit rejections. What lives in
plain per-process state (the click buffer, the redirect cache's hit/miss counters, the database
pool) is copied into the metrics by `RequestObserver.sample`: at every scrape for the scraping
process and, with several processes, every second by a thread in each worker. The hot path pays
nothing for those.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import re
import threading
import time
from bisect import bisect_left
from pathlib import Path
from time import perf_counter

from flask import Blueprint, Flask, Response, current_app, g, request
from playhouse.pool import PooledDatabase
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from app.api.http import require_principal
from app.api.openapi import documented
from app.config import Settings
from app.db import db
from app.errors import Forbidden
from app.logs import log_access, request_id_from
from app.processes import current_pid

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "shortener_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DURATION = Histogram(
    "shortener_http_request_duration_seconds",
    "Time from receiving a request to having its response ready, by route template.",
    ["route"],
    buckets=DURATION_BUCKETS,
)
DURATION_BOUNDS = (*DURATION_BUCKETS, float("inf"))  # the histogram's buckets, +Inf included
REDIRECTS = Counter(
    "shortener_redirects_total",
    "Short-code lookups (GET/HEAD /<code>) by status: 301/302/307/308 redirects, 404, 410, 429.",
    ["status"],
)
REDIRECT_CACHE = Counter(
    "shortener_redirect_cache_total", "Redirect cache lookups by result (hit or miss).", ["result"]
)
CLICK_BUFFER_DEPTH = Gauge(
    "shortener_click_buffer_depth",
    "Clicks buffered in memory, not yet written (summed over live processes).",
    multiprocess_mode="livesum",
)
CLICKS_DROPPED = Counter(
    "shortener_clicks_dropped_total",
    "Clicks not stored: the buffer was full, the database refused them, or their link was deleted.",
)
DB_POOL = Gauge(
    "shortener_db_pool_connections",
    "PostgreSQL pool connections by state: in_use or available (idle), summed over live processes.",
    ["state"],
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "shortener_rate_limited_total", "Requests refused with 429, by the limit that refused them.", ["limit"]
)

FAST_ROUTE = "/<code>"  # the route template of the fast path's answers (app/api/redirect.py)
REDIRECT_ENDPOINT = "redirect.follow"
UNMATCHED = "unmatched"  # requests no route matched (404/405): one label, never the raw path
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STARTED = "shortener.started"  # environ key: when the WSGI middleware received the request
SAMPLE_INTERVAL = 1.0
# True when this process's values go to files (PROMETHEUS_MULTIPROC_DIR was set before the import).
WRITES_FILES = values.ValueClass is not values.MutexValue
_CONVERTER = re.compile(r"<(?:[^<>]*:)?([^<>:]+)>")
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")

bp = Blueprint("metrics", __name__)


@functools.lru_cache(maxsize=512)
def route_label(rule: str) -> str:
    """A URL rule without its converters: `/keys/<int:key_id>` → `/keys/<key_id>`."""
    return _CONVERTER.sub(r"<\1>", rule)


def count_rate_limited(limit: object) -> None:
    """Count one 429 under the name of the limit (a flask-limiter scope, or "code-guessing")."""
    RATE_LIMITED.labels(limit if isinstance(limit, str) else "other").inc()


class _Synced:
    """Adds to a counter what a per-process tally gained since the last sync (from 0 for a new source)."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.source: object = None
        self.seen = 0

    def sync(self, source: object, value: int) -> None:
        if source is not self.source:
            self.source, self.seen = source, 0
        if value > self.seen:
            self.counter.inc(value - self.seen)
            self.seen = value


class RequestObserver:
    """Per-app metrics and access logging, for the Flask hooks and the fast path alike."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.extensions = app.extensions
        self.metrics = settings.metrics_enabled
        self.access_log = settings.access_log
        self.multiproc_dir = settings.metrics_multiproc_dir
        # (route, method, status) → [requests, requests per duration bucket, total duration]
        self._fast: dict[tuple[str, str, int], list] = {}
        self._fast_lock = threading.Lock()
        self._hits = _Synced(REDIRECT_CACHE.labels("hit"))
        self._misses = _Synced(REDIRECT_CACHE.labels("miss"))
        self._dropped = _Synced(CLICKS_DROPPED)
        self._lock = threading.Lock()
        self._sampler_pid = 0

    def fast_answer(
        self, method: str, status: int, route: str, path: str, client: str, request_id: str, started: float
    ) -> None:
        """Record a request answered by the fast path (app/api/fast_redirect.py) under `route`.

        Counted in this process (one lock) and added to the metrics by `sample`, every second and
        at every scrape: four updates of the multiprocess files per request cost a fifth of a
        fast-path redirect.
        """
        duration = perf_counter() - started
        if self.metrics:
            bucket = bisect_left(DURATION_BOUNDS, duration)
            key = (route, method, status)
            with self._fast_lock:
                tally = self._fast.get(key)
                if tally is None:
                    tally = self._fast[key] = [0, [0] * len(DURATION_BOUNDS), 0.0]
                tally[0] += 1
                tally[1][bucket] += 1
                tally[2] += duration
            if self._sampler_pid != current_pid():
                self.ensure_sampling()
        if self.access_log:
            log_access(request_id, method, route, path, status, duration, client)

    def _publish_fast(self) -> None:
        """Add the fast path's tallies since the last call to the metrics."""
        with self._fast_lock:
            tallies, self._fast = self._fast, {}
        for (route, method, status), (count, buckets, total) in tallies.items():
            REQUESTS.labels(route, method, str(status)).inc(count)
            if route == FAST_ROUTE:
                REDIRECTS.labels(str(status)).inc(count)
            add_observations(DURATION.labels(route), buckets, total)

    def request_done(
        self, route: str, method: str, status: int, duration: float, endpoint: str | None
    ) -> None:
        """Record a request answered by Flask."""
        if not self.metrics:
            return
        REQUESTS.labels(route, method, str(status)).inc()
        DURATION.labels(route).observe(duration)
        if endpoint == REDIRECT_ENDPOINT:
            REDIRECTS.labels(str(status)).inc()

    def sample(self) -> None:
        """Copy this process's click buffer, cache counters and pool usage into the metrics."""
        clicks = self.extensions["clicks"]
        cache = self.extensions["link_cache"]
        with self._lock:
            self._publish_fast()
            CLICK_BUFFER_DEPTH.set(clicks.depth())
            self._dropped.sync(clicks, clicks.dropped)
            self._hits.sync(cache, cache.hits)
            self._misses.sync(cache, cache.misses)
            pool = db.obj
            if isinstance(pool, PooledDatabase):
                DB_POOL.labels("in_use").set(len(pool._in_use))
                DB_POOL.labels("available").set(len(pool._connections))

    def ensure_sampling(self) -> None:
        """With several processes: start this process's sampling thread (threads do not survive fork)."""
        if not (self.metrics and WRITES_FILES) or self._sampler_pid == current_pid():
            return
        with self._lock:
            if self._sampler_pid == current_pid():
                return
            self._sampler_pid = current_pid()
        threading.Thread(target=self._sample_forever, name="metrics-sampler", daemon=True).start()

    def _sample_forever(self) -> None:
        me = current_pid()
        while self._sampler_pid == me:  # a reset `_sampler_pid` stops the thread
            time.sleep(SAMPLE_INTERVAL)
            try:
                self.sample()
            except Exception:  # a boundary: sampling must never take the process down
                log.exception("metrics sampling failed")

    def exposition(self) -> bytes:
        """The Prometheus text exposition: every worker's files, or this process's registry."""
        self.sample()
        if self.multiproc_dir is None:
            return generate_latest(REGISTRY)
        forget_dead_processes(self.multiproc_dir)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiproc_dir)
        return generate_latest(registry)


def add_observations(histogram: Histogram, buckets: list[int], total: float) -> None:
    """Add observations counted per bucket (`DURATION_BOUNDS` order) to a histogram child, as that
    many `observe` calls would (prometheus-client keeps a count per bucket and the sum)."""
    for bucket, count in zip(histogram._buckets, buckets, strict=True):
        if count:
            bucket.inc(count)
    histogram._sum.inc(total)


def forget_dead_processes(directory: str) -> None:
    """Drop the live gauges of processes that are gone (granian respawns workers without a hook)."""
    for file in Path(directory).glob("gauge_live*_*.db"):
        match = _LIVE_GAUGE_FILE.fullmatch(file.name)
        if match is not None and not _alive(int(match.group(1))):
            mark_process_dead(int(match.group(1)), directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def init_app(app: Flask, settings: Settings) -> None:
    """Request ids, access log and metrics for every request; GET /metrics when METRICS_ENABLED."""
    observer = RequestObserver(app, settings)
    app.extensions["request_observer"] = observer

    @app.before_request
    def _start_request() -> None:
        request.environ.setdefault(STARTED, perf_counter())  # set earlier by the fast-path middleware
        g.request_id = request_id_from(request.headers.get("X-Request-ID"))
        observer.ensure_sampling()

    @app.after_request
    def _finish_request(response: Response) -> Response:
        request_id = g.get("request_id") or request_id_from(None)
        response.headers["X-Request-ID"] = request_id
        environ = request.environ
        duration = perf_counter() - environ.get(STARTED, perf_counter())
        rule = request.url_rule
        route = route_label(rule.rule) if rule is not None else UNMATCHED
        method = request.method
        status = response.status_code
        observer.request_done(
            route, method if method in METHODS else "other", status, duration, request.endpoint
        )
        if observer.access_log:
            path = environ.get("PATH_INFO", "")
            log_access(request_id, method, route, path, status, duration, request.remote_addr or "")
        return response

    if settings.metrics_enabled:
        app.register_blueprint(bp)


@bp.get("/metrics")
@documented(
    {200: None}, auth="required", errors=(401, 403), tags=("operations",), media={200: ("text/plain",)}
)
def metrics() -> Response:
    """Prometheus metrics of all worker processes (METRICS_TOKEN as a bearer token, or an admin key)."""
    _authorize(current_app.extensions["settings"].metrics_token)
    body = current_app.extensions["request_observer"].exposition()
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _authorize(token: str | None) -> None:
    """METRICS_TOKEN when configured and sent; otherwise an admin API key (401 without, 403 if not admin)."""
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if token is not None and scheme.lower() == "bearer" and _same(sent.strip(), token):
        return
    if not require_principal().is_admin:
        raise Forbidden("Only admins (or the METRICS_TOKEN) may read the metrics.")


def _same(sent: str, expected: str) -> bool:
    return hmac.compare_digest(
        sent.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
