"""Production gunicorn settings; every value can be overridden by the environment."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
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
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# No runtime control socket: it would need a writable home directory and nothing here uses it.
control_socket_disable = True
