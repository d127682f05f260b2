"""Start the service: load .env, apply pending migrations, then serve on PORT (8080).

WEB_SERVER picks the server: granian (the default: 3-4x gunicorn's redirect throughput on two cores,
docs/PERFORMANCE.md) or gunicorn (gunicorn.conf.py: its workers share one accept queue, so the
connections waiting for a stuck worker are served by the others; under granian they are lost when
the watchdog replaces it, docs/FAILURE_MODES.md).
"""

import os
import sys


def main() -> None:
    from app.allocator import keep_large_blocks_returnable

    keep_large_blocks_returnable()  # before the app is built: inherited by every forked worker
    from dotenv import load_dotenv

    from app.bootstrap import prepare_database, settings_from_env_or_exit
    from app.logs import configure_logging
    from app.metrics_dir import prepare_multiprocess_dir

    load_dotenv()
    prepare_multiprocess_dir()  # exported before the server starts: every worker writes its metrics there
    settings = settings_from_env_or_exit()
    configure_logging(settings.log_level, settings.log_format, flush_interval=settings.log_flush_interval)
    applied = prepare_database(settings)
    print(f"migrations applied: {', '.join(applied) or 'none pending'}", flush=True)
    if os.environ.get("WEB_SERVER", "granian").strip().lower() == "gunicorn":
        serve_with_gunicorn()
    else:
        serve_with_granian()


def serve_with_gunicorn() -> None:
    """gunicorn with gunicorn.conf.py (gthread workers)."""
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "--config", "gunicorn.conf.py", "app.wsgi:app", *sys.argv[1:]]
    run()


def serve_with_granian() -> None:
    """granian: Rust HTTP/1.1 front end, WSGI workers; settings from the environment (checked at start)."""
    import multiprocessing

    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    from app.watchdog import Watchdog

    env = os.environ
    watchdog = Watchdog(positive_number("WORKER_TIMEOUT", 30))
    preload_app()
    os.register_at_fork(after_in_child=watchdog.start_beating)  # in every forked worker
    watchdog.start_watching()
    Granian(
        "app.wsgi:app",
        address=env.get("HOST", "0.0.0.0"),
        port=int(env.get("PORT", "8080")),
        interface=Interfaces.WSGI,
        # One worker per two cores: a worker's HTTP work runs in Rust threads outside the GIL,
        # so one worker keeps two cores busy with the database; measured in docs/PERFORMANCE.md.
        workers=int(env.get("WEB_CONCURRENCY") or max(1, multiprocessing.cpu_count() // 2)),
        # Threads that run the app per worker: more overlap database waits (creates), fewer keep
        # the GIL uncontended (redirect latency). 3: creates +20-40% over 2 for a redirect p99
        # ~1-2 ms higher; 4 pushed it past 10 ms. Measured in docs/PERFORMANCE.md.
        blocking_threads=int(env.get("WEB_THREADS") or 3),
        runtime_threads=1,
        backlog=2048,
        # A slow client gets 10 s to send its request headers (slowloris), not a worker thread.
        http1_settings=HTTP1Settings(header_read_timeout=10_000, max_buffer_size=64 * 1024),
        respawn_failed_workers=True,
        respawn_interval=0.1,
        workers_kill_timeout=30,  # seconds a stopping worker may take to finish in-flight requests
        log_access=False,  # the app logs every request as JSON (app/logs.py, ACCESS_LOG)
    ).serve()
    watchdog.close()


def positive_number(name: str, default: int) -> int:
    """A positive integer setting from the environment; a bad value stops the start naming it."""
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"configuration error: {name} must be a positive integer, got {raw!r}")
    return int(raw)


def preload_app() -> None:
    """Build the app here, before granian forks its workers (as gunicorn's preload_app does).

    granian's workers are forked from this process (the "fork" start method, Python's default on
    Linux up to 3.13) and then import `app.wsgi`: found already imported, the modules, the app and
    the User-Agent rules are pages shared with this process instead of a private copy per worker
    (the whole tree: ~235 → ~150 MiB PSS with 2 workers, docs/PERFORMANCE.md). The app opens no
    connection at import, so nothing is shared that must not be. `gc.freeze()` keeps the collector
    from touching (and so copying) the preloaded objects in every worker.
    """
    import gc

    import app.wsgi  # noqa: F401  (imported for its side effect: the app is built)

    gc.collect()
    gc.freeze()


if __name__ == "__main__":
    main()
