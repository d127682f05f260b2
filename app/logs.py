"""Logging to stdout, one line per record: JSON objects (LOG_FORMAT=json, the default) or text.

Every record emitted while a request is handled carries that request's id (`RequestIdFilter`), so an
error's traceback can be matched with the request's access line. Access lines (`log_access`) go
through the `app.access` logger at INFO, one per request, from the Flask hooks (app/api/metrics.py)
and from the cached-redirect fast path.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from json.encoder import encode_basestring_ascii as _quoted
from typing import NamedTuple, TextIO

from flask import g, has_request_context

ACCESS = logging.getLogger("app.access")
# An incoming X-Request-ID is kept only if it is short and plain (it is echoed and logged).
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}").fullmatch
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def new_request_id() -> str:
    """A random UUID4 as 32 hex digits (what uuid.uuid4().hex gives, in a third of the time)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


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
    if ACCESS.isEnabledFor(logging.INFO):
        # Built by hand rather than through Logger.info: no caller lookup, no `extra` copying.
        record = logging.LogRecord(ACCESS.name, logging.INFO, "", 0, "%s %s %s", (method, path, status), None)
        record.request_id = request_id
        record.fields = AccessFields(method, route, path, status, round(duration * 1000, 3), client)
        ACCESS.handle(record)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being handled (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


class _UtcTime:
    """ISO 8601 UTC timestamps with milliseconds; the part up to the second is formatted once a second."""

    def __init__(self) -> None:
        self._cached = (-1, "")  # (second, its formatted prefix): replaced as one object, thread-safe

    def __call__(self, created: float) -> str:
        second = int(created)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        return f"{prefix}.{int((created - second) * 1000):03d}Z"


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
        """The same object `format` would build, written directly (a third of the time, once per request)."""
        return (
            f'{{"time":"{self._time(record.created)}","level":"{record.levelname}","logger":"{record.name}",'
            f'"message":{_quoted(record.getMessage())},"request_id":{_quoted(record.request_id)},'
            f'"method":{_quoted(fields.method)},"route":{_quoted(fields.route)},"path":{_quoted(fields.path)},'
            f'"status":{int(fields.status)},"duration_ms":{float(fields.duration_ms)!r},'
            f'"client":{_quoted(fields.client)}}}'
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


def configure_logging(
    level: str | None = None, log_format: str = "text", stream: TextIO | None = None
) -> None:
    """Send every log record to stdout (or `stream`) at `level`, as JSON or text (entry points only)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO").upper())
