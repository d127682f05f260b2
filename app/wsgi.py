"""WSGI entry point for gunicorn (`app.wsgi:app`): loads .env, then builds the app."""

import atexit
import multiprocessing.util

from dotenv import load_dotenv

from app import create_app
from app.config import Settings
from app.logs import configure_logging, flush_logs
from app.services.user_agents import classify

load_dotenv()
settings = Settings.from_env()
configure_logging(settings.log_level, settings.log_format, flush_interval=settings.log_flush_interval)
app = create_app(settings)
# Load the User-Agent parser's rules now, in the gunicorn master (preload_app): forked workers share
# the pages instead of each building its own copy on its first click (~25 MiB each).
classify("Mozilla/5.0")
# Graceful shutdown (SIGTERM → worker exit) writes the clicks still buffered in this process:
# atexit for gunicorn's forked workers, a multiprocessing finalizer for granian's workers (which
# leave through os._exit, skipping atexit). Closing twice is harmless.
atexit.register(app.extensions["clicks"].close)
multiprocessing.util.Finalize(None, app.extensions["clicks"].close, exitpriority=10)
# Buffered log lines (LOG_FLUSH_INTERVAL_MS), after the click flush's own messages.
multiprocessing.util.Finalize(None, flush_logs, exitpriority=5)
