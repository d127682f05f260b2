"""The directory where every worker process writes its metrics (prometheus-client multiprocess mode).

prometheus-client decides at import whether values live in memory or in per-process files under
PROMETHEUS_MULTIPROC_DIR, so the entry points (run.py, gunicorn.conf.py) prepare the directory and
export the variable before anything imports it; forked and spawned workers inherit it. This module
must therefore not import prometheus_client.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import MutableMapping

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(environ: MutableMapping[str, str] | None = None) -> str:
    """The operator's PROMETHEUS_MULTIPROC_DIR (created if missing), else a fresh temporary directory
    exported in `environ` and removed when this process exits."""
    environ = os.environ if environ is None else environ
    configured = environ.get(VARIABLE, "").strip()
    if configured:
        os.makedirs(configured, exist_ok=True)
        return configured
    path = tempfile.mkdtemp(prefix="shortener-metrics-")
    environ[VARIABLE] = path
    atexit.register(_remove, path, os.getpid())
    return path


def _remove(path: str, owner: int) -> None:
    # gunicorn's forked workers run the master's atexit handlers too: only the creator removes it.
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)
