"""Structured logs: one JSON line per request, request ids accepted or generated, errors carry the id."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from app.logs import (
    JsonFormatter,
    _access_record,
    configure_logging,
    flush_logs,
    log_access,
    new_request_id,
    request_id_from,
)
from tests.factories import make_link

ACCESS_FIELDS = ["method", "route", "path", "status", "duration_ms", "client"]


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict]]]:
    """Logging configured as in production (JSON, INFO) into a buffer; returns the parsed lines."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", "json", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.handlers[:], root.level = saved


def access_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "app.access"]


def test_each_request_is_one_json_access_line(client, log_lines):
    response = client.get("/livez", headers={"X-Request-ID": "req-1"})
    [line] = access_lines(log_lines())
    assert response.headers["X-Request-ID"] == "req-1"
    assert line["request_id"] == "req-1" and line["level"] == "INFO" and line["message"] == "GET /livez 200"
    assert {key: line[key] for key in ACCESS_FIELDS[:4]} == {
        "method": "GET",
        "route": "/livez",
        "path": "/livez",
        "status": 200,
    }
    assert line["client"] == "127.0.0.1" and 0 <= line["duration_ms"] < 10_000
    assert line["time"].endswith("Z") and len(line["time"]) == len("2026-01-01T00:00:00.000Z")


def test_a_fast_path_redirect_is_logged_like_any_request(make_client, log_lines):
    client = make_client()
    code = make_link().code
    client.get(f"/{code}")  # through Flask: cached now
    client.application.view_functions["redirect.follow"] = None  # only the fast path can answer
    response = client.get(f"/{code}", headers={"X-Request-ID": "fast-1"})
    flask_line, fast_line = access_lines(log_lines())
    assert response.status_code == 302 and response.headers["X-Request-ID"] == "fast-1"
    assert list(fast_line) == list(flask_line)  # the same keys in the same order
    assert (fast_line["request_id"], fast_line["route"], fast_line["path"]) == (
        "fast-1",
        "/<code>",
        f"/{code}",
    )
    assert flask_line["route"] == "/<code>" and flask_line["status"] == fast_line["status"] == 302


@pytest.mark.parametrize(
    "sent",
    [
        None,
        "",
        "x" * 129,
        "abc\r\nSet-Cookie: a=1",
        "with space",
        'quote"d',
        "ünïcode",
        "-leading-dash",
    ],
)
def test_a_missing_or_unsafe_request_id_is_replaced_by_a_new_one(client, sent):
    environ = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    returned = client.get("/livez", environ_base=environ).headers["X-Request-ID"]
    assert returned != sent and len(returned) == 32 and int(returned, 16) >= 0


@pytest.mark.parametrize("sent", ["a", "x" * 128, "0f8fad5b-d9cb-469f-a165-70867728950e", "edge:1/2+3=4_5.6"])
def test_a_plain_request_id_of_up_to_128_characters_is_kept(client, sent):
    assert client.get("/livez", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent
    assert request_id_from(sent) == sent


def test_generated_request_ids_are_unique():
    assert len({new_request_id() for _ in range(1000)}) == 1000


def test_a_forked_process_draws_its_own_request_id_prefix():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send one id, leave without running the parent's cleanup
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    mine = new_request_id()
    assert len(child) == len(mine) == 32
    assert child[:16] != mine[:16]  # the per-process prefix, drawn again after the fork


def test_an_error_logged_during_a_request_carries_its_request_id(make_client, log_lines):
    client = make_client()

    def explode():
        raise RuntimeError("kaboom")

    client.application.add_url_rule("/explode", "explode", explode)
    response = client.get("/explode", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "trace-me"
    [error] = [line for line in log_lines() if line["level"] == "ERROR"]
    assert error["request_id"] == "trace-me" and error["message"] == "unhandled error"
    assert "RuntimeError: kaboom" in error["exception"]
    [access] = access_lines(log_lines())
    assert (access["request_id"], access["status"], access["route"]) == ("trace-me", 500, "/explode")


def test_records_outside_requests_have_no_request_id(log_lines):
    logging.getLogger("app.test").warning("plain %s", "record", extra={"fields": {"batch": 3}})
    [line] = log_lines()
    assert "request_id" not in line
    assert (line["level"], line["logger"], line["message"], line["batch"]) == (
        "WARNING",
        "app.test",
        "plain record",
        3,
    )


def test_the_access_log_can_be_switched_off(make_client, log_lines):
    client = make_client(access_log=False)
    assert client.get("/livez").headers["X-Request-ID"]
    assert access_lines(log_lines()) == []


def test_access_lines_escape_what_the_client_controls(log_lines):
    hostile = 'a"b\\c\n\u2028ü\x00'
    log_access("rid", "GET", "/<code>", f"/{hostile}", 404, 0.0012344, hostile)
    [line] = log_lines()
    assert line["path"] == f"/{hostile}" and line["client"] == hostile and line["duration_ms"] == 1.234
    assert line["message"] == f"GET /{hostile} 404"


def test_the_handwritten_access_line_is_what_the_generic_formatter_writes():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("app.access")
    logger.addHandler(handler)
    saved = logger.level
    logger.setLevel(logging.INFO)
    try:
        log_access("rid-1", "HEAD", "/<code>", "/abc", 302, 0.5, "192.0.2.1")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
    # Re-create the record and format it through both paths.
    record = logging.makeLogRecord({"name": "app.access", "levelno": 20, "levelname": "INFO"})
    record.msg, record.args, record.request_id = "%s %s %s", ("HEAD", "/abc", 302), "rid-1"
    from app.logs import AccessFields

    record.fields = AccessFields("HEAD", "/<code>", "/abc", 302, 500.0, "192.0.2.1")
    formatter = JsonFormatter()
    fast = json.loads(formatter.format(record))
    record.fields = record.fields._asdict()
    generic = json.loads(formatter.format(record))
    assert fast == generic and list(fast) == list(generic)


def test_text_format_keeps_the_request_id_and_fields(client):
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", "text", stream=stream)
        client.get("/livez", headers={"X-Request-ID": "txt-1"})
    finally:
        root.handlers[:], root.level = saved
    line = stream.getvalue().strip()
    assert "INFO app.access GET /livez 200 [txt-1] method=GET route=/livez path=/livez status=200" in line


def test_text_lines_cannot_be_forged_with_control_characters():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", "text", stream)
        logging.getLogger("app.test").warning(
            "path /abc\n2026-01-01 00:00:00 ERROR app.security admin login\r"
        )
    finally:
        root.handlers[:], root.level = saved
    output = stream.getvalue()
    assert output.count("\n") == 1 and "\\x0a2026-01-01" in output and "\r" not in output


@pytest.fixture
def buffered() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    """Logging as configured in production: lines buffered and written every 500 ms."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", "json", stream=stream, flush_interval=0.5)
    yield stream, root.handlers[0]
    root.handlers[:], root.level = saved


def test_buffered_access_lines_are_written_together_within_the_flush_interval(buffered):
    stream, _ = buffered
    log_access("id-1", "GET", "/<code>", "/abc", 302, 0.001, "127.0.0.1")
    log_access("id-2", "GET", "/<code>", "/abd", 404, 0.001, "127.0.0.1")
    assert stream.getvalue() == ""  # not yet: one write per interval, not per line
    deadline = time.monotonic() + 5
    while stream.getvalue().count("\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["id-1", "id-2"]


def test_a_warning_is_written_at_once_after_the_lines_buffered_before_it(buffered):
    stream, _ = buffered
    log_access("id-1", "GET", "/<code>", "/abc", 302, 0.001, "127.0.0.1")
    logging.getLogger("app.test").warning("something is wrong")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line.get("request_id") for line in lines] == ["id-1", None]
    assert lines[1]["message"] == "something is wrong"


def test_flush_logs_writes_what_is_buffered(buffered):
    stream, _ = buffered
    log_access("id-1", "GET", "/livez", "/livez", 200, 0.001, "127.0.0.1")
    flush_logs()
    assert json.loads(stream.getvalue())["request_id"] == "id-1"


def test_a_full_buffer_is_written_without_waiting():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", "json", stream=stream, flush_interval=60)  # the timer never fires here
    try:
        handler = root.handlers[0]
        for number in range(handler.MAX_LINES - 1):
            log_access(f"id-{number}", "GET", "/livez", "/livez", 200, 0.001, "127.0.0.1")
        assert stream.getvalue() == ""
        log_access("id-last", "GET", "/livez", "/livez", 200, 0.001, "127.0.0.1")
        assert stream.getvalue().count("\n") == handler.MAX_LINES
    finally:
        root.handlers[:], root.level = saved


def alone(handler: logging.Handler) -> None:
    """Make `handler` the root's only one, as in production (pytest adds its own capture per test)."""
    logging.getLogger().handlers[:] = [handler]


def test_access_lines_skip_the_logger_tree_when_the_buffer_is_their_only_destination(buffered, monkeypatch):
    stream, handler = buffered
    alone(handler)

    def refuse(record: logging.LogRecord) -> None:
        raise AssertionError("a record was built and passed down the logger tree")

    monkeypatch.setattr(logging.getLogger("app.access"), "handle", refuse)
    log_access("direct-1", "GET", "/<code>", "/abc", 302, 0.001, "127.0.0.1")
    flush_logs()
    assert json.loads(stream.getvalue())["request_id"] == "direct-1"


def test_the_line_handed_over_directly_is_the_line_the_record_would_have_made(buffered, monkeypatch):
    stream, handler = buffered
    alone(handler)
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.2504)
    monkeypatch.setattr(time, "time_ns", lambda: 1_790_000_000_250_400_000)
    hostile = 'a"b\\c\n\u2028ü'
    log_access("same-1", "HEAD", "/<code>", f"/{hostile}", 404, 0.0012344, hostile)  # direct
    flush_logs()
    direct = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    extra = logging.NullHandler()
    logging.getLogger("app.access").addHandler(extra)  # another destination: records again
    try:
        log_access("same-1", "HEAD", "/<code>", f"/{hostile}", 404, 0.0012344, hostile)
    finally:
        logging.getLogger("app.access").removeHandler(extra)
    flush_logs()
    assert stream.getvalue() == direct and json.loads(direct)["time"] == "2026-09-21T14:13:20.250Z"


def test_a_log_capture_added_at_the_root_still_receives_access_records(buffered):
    stream, handler = buffered
    alone(handler)
    captured: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = captured.append
    logging.getLogger().addHandler(capture)
    try:
        log_access("seen-1", "GET", "/<code>", "/abc", 302, 0.001, "127.0.0.1")
    finally:
        logging.getLogger().removeHandler(capture)
    flush_logs()
    assert [record.request_id for record in captured] == ["seen-1"]
    assert json.loads(stream.getvalue())["request_id"] == "seen-1"


def test_a_filter_put_in_place_of_the_request_id_one_still_sees_access_lines(buffered):
    stream, handler = buffered
    alone(handler)
    handler.filters[:] = [lambda record: record.name != "app.access"]  # drops access lines
    log_access("dropped-1", "GET", "/<code>", "/abc", 302, 0.001, "127.0.0.1")
    flush_logs()
    assert stream.getvalue() == ""


def test_an_access_record_has_every_attribute_of_a_log_record():
    record = _access_record(("GET", "/abc", 302))
    reference = logging.LogRecord("app.access", logging.INFO, "", 0, "%s %s %s", ("GET", "/abc", 302), None)
    assert set(vars(record)) == set(vars(reference))
    assert record.getMessage() == "GET /abc 302"
    assert abs(record.created - reference.created) < 1
    assert record.process == os.getpid() and record.thread == threading.get_ident()
    formatted = logging.Formatter("%(asctime)s %(process)d %(threadName)s %(module)s %(message)s").format(
        record
    )
    assert formatted.endswith("GET /abc 302")


def test_a_failing_stdout_never_breaks_the_code_that_logs(monkeypatch):
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError("reader gone")

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", "json", stream=Broken(), flush_interval=60)
    reported = []
    monkeypatch.setattr(root.handlers[0], "handleError", reported.append)
    try:
        logging.getLogger("app.test").warning("written at once, and the write fails")
    finally:
        root.handlers[:], root.level = saved
    assert [record.getMessage() for record in reported] == ["written at once, and the write fails"]


def test_timestamps_are_utc_to_the_millisecond_in_any_order():
    from app.logs import _UtcTime

    stamp = _UtcTime()
    instants = [
        1_790_000_000.2504,
        1_790_000_000.2509,
        1_790_000_000.2511,
        1_790_000_001.0,
        1_790_000_000.2504,
    ]
    assert [stamp(instant) for instant in instants] == [
        "2026-09-21T14:13:20.250Z",
        "2026-09-21T14:13:20.250Z",
        "2026-09-21T14:13:20.251Z",
        "2026-09-21T14:13:21.000Z",
        "2026-09-21T14:13:20.250Z",  # an earlier second again (lines of several threads)
    ]
    assert stamp(1_790_001_000.2504) == "2026-09-21T14:30:00.250Z"  # same millisecond, another second
