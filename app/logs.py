"""Logging to stdout, one line per record: JSON objects (LOG_FORMAT=json, the default) or text.

Every record emitted while a request is handled carries that request's id (`RequestIdFilter`), so an
error's traceback can be matched with the request's access line. Access lines (`log_access`) go
through the `app.access` logger at INFO, one per request, from the Flask hooks (app/api/metrics.py)
and from the cached-redirect fast path.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from json.encoder import encode_basestring_ascii as _quoted
from typing import NamedTuple, TextIO

from flask import g, has_request_context

from app.processes import current_pid

ACCESS = logging.getLogger("app.access")
_direct: BufferedStreamHandler | None = None  # configure_logging's handler, when log_access may feed it
# An incoming X-Request-ID is kept only if it is short and plain (it is echoed and logged).
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}").fullmatch
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


class _RequestIds:
    """Request ids: 32 hex digits, a random per-process prefix and a counter.

    Unique without a system call per request (os.urandom cost ~10% of a cached redirect under
    load): the 64-bit prefix is drawn again in every process, forked workers included.
    """

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_request_id = _RequestIds()


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID when it is 1-128 plain characters, else a new id."""
    if header and VALID_REQUEST_ID(header):
        return header
    return new_request_id()


class AccessFields(NamedTuple):
    """The fields of an access line, in their order in the JSON object."""

    method: str
    route: str
    path: str
    status: int
    duration_ms: float
    client: str


def log_access(
    request_id: str, method: str, route: str, path: str, status: int, duration: float, client: str
) -> None:
    """One access line: INFO on `app.access` with the request's fields (duration in seconds)."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    duration_ms = round(duration * 1000, 3)
    handler = _direct
    if handler is not None and handler.sole_destination():
        # The line the record would become, without the record: building it and passing it down
        # the logger tree to this one handler cost a third of a cached redirect.
        line = handler.formatter.access_line(  # type: ignore[union-attr]
            time.time(), request_id, (method, route, path, status, duration_ms, client)
        )
        handler.append(line + handler.terminator)
        return
    fields = AccessFields(method, route, path, status, duration_ms, client)
    record = _access_record((method, path, status))
    record.request_id = request_id
    record.fields = fields
    ACCESS.handle(record)


class _AccessRecords:
    """LogRecords for access lines, built from a template (LogRecord.__init__ cost a fifth of a
    cached redirect: path splitting, thread and process lookups). Every standard attribute is set,
    so any handler or formatter works; only the time, thread, process and arguments vary."""

    def __init__(self) -> None:
        template = logging.LogRecord(ACCESS.name, logging.INFO, "", 0, "%s %s %s", (), None).__dict__
        self.template = {
            key: value for key, value in template.items() if key not in ("thread", "threadName", "process")
        }
        self.start_ns = int(logging._startTime * 1e9)  # what relativeCreated counts from

    def __call__(self, args: tuple) -> logging.LogRecord:
        record = logging.LogRecord.__new__(logging.LogRecord)
        fields = record.__dict__
        fields.update(self.template)
        now = time.time_ns()
        fields["created"] = now / 1e9
        fields["msecs"] = (now % 1_000_000_000) // 1_000_000 + 0.0
        fields["relativeCreated"] = (now - self.start_ns) / 1e6
        fields["thread"] = threading.get_ident()
        fields["threadName"] = threading.current_thread().name
        fields["process"] = current_pid()
        fields["args"] = args
        return record


_access_record = _AccessRecords()


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being handled (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


class _UtcTime:
    """ISO 8601 UTC timestamps with milliseconds; the part up to the second is formatted once a
    second, the whole once a millisecond (20,000 requests/s log ~20 lines a millisecond)."""

    def __init__(self) -> None:
        # (second, its formatted prefix) and (millisecond, its timestamp): each replaced as one
        # object, so threads may share them.
        self._second = (-1, "")
        self._millisecond = (-1, "")

    def __call__(self, created: float) -> str:
        second = int(created)
        millisecond = (second, int((created - second) * 1000))
        cached_millisecond, text = self._millisecond
        if millisecond == cached_millisecond:
            return text
        cached_second, prefix = self._second
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, prefix)
        text = f"{prefix}.{millisecond[1]:03d}Z"
        self._millisecond = (millisecond, text)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, extra fields, exception."""

    def __init__(self) -> None:
        super().__init__()
        self._time = _UtcTime()

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if type(fields) is AccessFields and record.request_id is not None:
            return self._access_line(record, fields)
        payload = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            payload["request_id"] = request_id
        if fields:
            payload.update(fields._asdict() if isinstance(fields, AccessFields) else fields)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(payload)

    def _access_line(self, record: logging.LogRecord, fields: AccessFields) -> str:
        return self.access_line(
            record.created, record.request_id, fields, record.levelname, record.name, record.getMessage()
        )

    def access_line(
        self,
        created: float,
        request_id: str,
        fields: tuple[str, str, str, int, float, str],
        level: str = "INFO",
        logger: str = "app.access",
        message: str | None = None,
    ) -> str:
        """The object `format` builds for an access record (`log_access`), written directly: a third
        of the time, once per request."""
        method, route, path, status, duration_ms, client = fields
        if message is None:
            message = f"{method} {path} {status}"  # the record's "%s %s %s"
        return (
            f'{{"time":"{self._time(created)}","level":"{level}","logger":"{logger}",'
            f'"message":{_quoted(message)},"request_id":{_quoted(request_id)},'
            f'"method":{_quoted(method)},"route":{_quoted(route)},"path":{_quoted(path)},'
            f'"status":{int(status)},"duration_ms":{float(duration_ms)!r},"client":{_quoted(client)}}}'
        )


_ESCAPE_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message`, then `[request id]` and the record's fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line += f" [{request_id}]"
        fields = getattr(record, "fields", None)
        if fields:
            pairs = fields._asdict() if isinstance(fields, AccessFields) else fields
            line += "".join(f" {key}={value}" for key, value in pairs.items())
        # One record, one line: a client-supplied CR/LF (a decoded path, a header) cannot forge another.
        # (A traceback is appended after this by `format`, with its own lines.)
        return line.translate(_ESCAPE_CONTROL)


class BufferedStreamHandler(logging.StreamHandler):
    """A StreamHandler that writes buffered lines at most every `interval` seconds, in one write.

    Writing and flushing stdout for every access line was a system call per request under the
    handler's lock (a fifth of a cached redirect, and the threads queued on the lock). Records at
    WARNING and above are written at once, after every line buffered before them; a full buffer,
    `flush()`, a fork (the parent writes first, so no child repeats its lines) and interpreter exit
    (`logging.shutdown`; granian workers: `flush_logs` from app/wsgi.py) write the rest.
    At most `interval` of access lines is lost if the process is killed.
    """

    MAX_LINES = 2048

    def __init__(self, stream: TextIO, interval: float) -> None:
        super().__init__(stream)
        self.interval = interval
        self._lines: deque[str] = deque()
        self._thread_pid = 0
        self._thread_lock = threading.Lock()
        os.register_at_fork(before=self.flush)

    def handle(self, record: logging.LogRecord) -> logging.LogRecord | bool:
        if not self.filter(record):
            return False
        try:
            line = self.format(record) + self.terminator  # formatted outside the lock
        except Exception:
            self.handleError(record)
            return record
        self._lines.append(line)  # deque.append is atomic: no lock on the request path
        if record.levelno >= logging.WARNING or len(self._lines) >= self.MAX_LINES:
            try:
                self.flush()
            except Exception:  # a broken stdout must not break the caller, as StreamHandler
                self.handleError(record)
        elif self._thread_pid != current_pid():
            self._start_writer()
        return record

    def append(self, line: str) -> None:
        """Buffer a formatted INFO line (`log_access`), as `handle` buffers a record's."""
        self._lines.append(line)
        if len(self._lines) >= self.MAX_LINES:
            with contextlib.suppress(Exception):  # a broken stdout must not break the caller
                self.flush()
        elif self._thread_pid != current_pid():
            self._start_writer()

    def sole_destination(self) -> bool:
        """True while an `app.access` record would reach this handler only, through no filter but
        the request-id one (as `configure_logging` set it up): `log_access` may then hand it the
        line directly. A handler or filter added since (a test's log capture) gets records again.
        (Only the `app.access` logger's own filters apply to its records, not its ancestors'.)"""
        root = logging.root
        parent = ACCESS.parent
        return (
            not ACCESS.handlers
            and not ACCESS.filters
            and ACCESS.propagate
            and parent is not None
            and (parent is root or (not parent.handlers and parent.propagate and parent.parent is root))
            and len(root.handlers) == 1
            and root.handlers[0] is self
            and len(self.filters) == 1
            and type(self.filters[0]) is RequestIdFilter
            and self.level <= logging.INFO
            and type(self.formatter) is JsonFormatter
            and not ACCESS.disabled
        )

    def flush(self) -> None:
        """Write everything buffered, in order, with one write and one flush of the stream."""
        with self.lock:  # type: ignore[union-attr]  (created by Handler.__init__)
            count = len(self._lines)
            if count:
                popleft = self._lines.popleft
                self.stream.write("".join([popleft() for _ in range(count)]))
            if self.stream and hasattr(self.stream, "flush"):
                self.stream.flush()

    def _start_writer(self) -> None:
        with self._thread_lock:
            if self._thread_pid == current_pid():
                return
            self._thread_pid = current_pid()
            threading.Thread(target=self._write_forever, name="log-writer", daemon=True).start()

    def _write_forever(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self.flush()
            except Exception:  # noqa: S112 (a failing stdout: the lines are lost, the next write may work)
                continue


def flush_logs() -> None:
    """Write the lines the root logger's handlers still buffer (for exits that skip atexit)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def configure_logging(
    level: str | None = None,
    log_format: str = "text",
    stream: TextIO | None = None,
    flush_interval: float = 0.0,
) -> None:
    """Send every log record to stdout (or `stream`) at `level`, as JSON or text (entry points only).

    `flush_interval` > 0 buffers lines and writes them that often (LOG_FLUSH_INTERVAL_MS); 0 writes
    each record at once.
    """
    global _direct
    stream = stream or sys.stdout
    handler = (
        BufferedStreamHandler(stream, flush_interval) if flush_interval > 0 else logging.StreamHandler(stream)
    )
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    json_buffered = isinstance(handler, BufferedStreamHandler) and log_format == "json"
    _direct = handler if json_buffered else None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO").upper())
