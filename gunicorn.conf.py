"""Production gunicorn settings; every value can be overridden by the environment."""

import multiprocessing
import os

from app.metrics_dir import prepare_multiprocess_dir


def _positive_int(name: str, default: int) -> int:
    """An integer setting from the environment; a bad value stops the start naming the variable."""
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"configuration error: {name} must be a positive integer, got {raw!r}")
    return int(raw)


bind = f"{os.environ.get('HOST', '0.0.0.0')}:{_positive_int('PORT', 8080)}"
# One process per core: on 2 cores, 4 or 8 processes measured no faster and cost ~25-40 MiB each
# (docs/PERFORMANCE.md).
workers = _positive_int("WEB_CONCURRENCY", multiprocessing.cpu_count())
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = _positive_int("GUNICORN_THREADS", 4)
# One listening socket shared by all workers (the default). With SO_REUSEPORT each worker gets its
# own socket and the kernel spreads connections evenly (faster on 2 cores: docs/PERFORMANCE.md), but
# connections queued on a stuck or dying worker's socket are never served by the others and are reset
# when it dies (tests/system/test_process_faults.py), so it is opt-in.
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "false").lower() == "true"
preload_app = True  # the app opens no connection at import, so forking after loading is safe
keepalive = 5
timeout = 30
graceful_timeout = 30
max_requests = 0
# Bounded request sizes: the request line and headers of a hostile client stay small.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# Forwarded headers are trusted only through TRUSTED_PROXIES (werkzeug ProxyFix in the app).
forwarded_allow_ips = ""
secure_scheme_headers = {}
accesslog = None  # the app logs every request as one JSON line (app/logs.py, ACCESS_LOG)
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# No runtime control socket: it would need a writable home directory and nothing here uses it.
control_socket_disable = True
# Metrics: every worker writes its own files here and /metrics sums them (app/api/metrics.py).
prepare_multiprocess_dir()


def child_exit(server: object, worker: object) -> None:
    """A dead worker's live gauges (click buffer, pool) leave the metrics with it."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _drop_server_header() -> None:
    """Send no `Server` header: naming the server software and version only helps an attacker.

    gunicorn has no setting for it, so its response's default header list is filtered (the patch is
    made in the master before workers fork, so every worker inherits it).
    """
    from gunicorn.http import wsgi

    original = wsgi.Response.default_headers
    if getattr(original, "drops_server_header", False):
        return

    def default_headers(self: wsgi.Response) -> list[str]:
        return [line for line in original(self) if not line.startswith("Server:")]

    default_headers.drops_server_header = True
    wsgi.Response.default_headers = default_headers


_drop_server_header()
