"""WSGI entry point for gunicorn (`app.wsgi:app`): loads .env, then builds the app."""

import atexit

from dotenv import load_dotenv

from app import create_app
from app.logs import configure_logging

load_dotenv()
configure_logging()
app = create_app()
# Graceful shutdown (SIGTERM → worker exit) writes the clicks still buffered in this process.
atexit.register(app.extensions["clicks"].close)
