"""WSGI entry point for granian and gunicorn (`app.wsgi:app`): loads .env, then builds the app."""

import atexit
import multiprocessing.util
import sys

from dotenv import load_dotenv
from flask import Flask

from app import create_app
from app.config import Settings
from app.logs import configure_logging, flush_logs
from app.services.user_agents import classify

# A thread that wants the GIL gets it within 1 ms instead of 5: background work (a click flush
# formats 5,000 rows) no longer holds a redirect for up to 5 ms at a time. Measured under the
# redirect benchmark: p99 11.3-13.0 → 9.9-10.5 ms for ~3-5% of throughput (docs/PERFORMANCE.md).
sys.setswitchinterval(0.001)

load_dotenv()
settings = Settings.from_env()
configure_logging(settings.log_level, settings.log_format, flush_interval=settings.log_flush_interval)
app = create_app(settings)
# Load the User-Agent parser's rules now, in the gunicorn master (preload_app): forked workers share
# the pages instead of each building its own copy on its first click (~25 MiB each).
classify("Mozilla/5.0")
# Graceful shutdown (SIGTERM → worker exit) writes the clicks still buffered in this process:
# atexit for gunicorn's forked workers, multiprocessing finalizers for granian's workers (which
# leave through os._exit, skipping atexit). Closing twice is harmless.
if "link_events" in app.extensions:  # announce the codes created here and not announced yet
    # (atexit runs last registered first: after the clicks are written, waiting 1 s at most)
    atexit.register(app.extensions["link_events"].stop, 1.0)
atexit.register(app.extensions["clicks"].close)
atexit.register(app.extensions["request_observer"].sample)  # the fast path's last second of metrics


def _finalize_on_exit(app: Flask) -> None:
    """Write buffered clicks, announce the codes created here, then metrics and log lines, when
    this multiprocessing worker exits."""
    multiprocessing.util.Finalize(None, app.extensions["clicks"].close, exitpriority=10)
    if "link_events" in app.extensions:  # after the clicks, waiting 1 s at most
        multiprocessing.util.Finalize(None, app.extensions["link_events"].stop, (1.0,), exitpriority=9)
    multiprocessing.util.Finalize(None, app.extensions["request_observer"].sample, exitpriority=7)
    multiprocessing.util.Finalize(None, flush_logs, exitpriority=5)


_finalize_on_exit(app)
# granian forks its workers from run.py, which preloaded this module; multiprocessing clears the
# finalizers a forked worker inherits, then runs the after-fork hooks: register them there again.
multiprocessing.util.register_after_fork(app, _finalize_on_exit)
