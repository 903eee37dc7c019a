"""Structured logs: one JSON object per line, carrying the request ID bound at the time."""

from __future__ import annotations

import io
import json
import logging

import pytest

from photoncloud.common import request_id
from photoncloud.common.logs import JsonFormatter
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import Service


@pytest.fixture
def capture():
    """A logger that writes through JsonFormatter into a string buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("chainfire"))
    logger = logging.getLogger("photoncloud.test.logs")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.handlers[:] = []


def lines(stream: io.StringIO) -> list[dict]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_object_per_line_with_the_bound_request_id(capture):
    logger, stream = capture
    token = request_id.bind("log-rid-1")
    try:
        logger.info("put key %s", "a")
        logger.warning("second")
    finally:
        request_id.reset(token)
    first, second = lines(stream)
    assert first["request_id"] == "log-rid-1" == second["request_id"]
    assert first["message"] == "put key a"
    assert first["level"] == "INFO" and second["level"] == "WARNING"
    assert first["service"] == "chainfire"
    assert first["logger"] == "photoncloud.test.logs"
    assert first["ts"].endswith("Z")


def test_no_request_id_outside_a_request(capture):
    logger, stream = capture
    logger.info("starting")
    (line,) = lines(stream)
    assert not line["request_id"]


def test_multi_line_messages_and_exceptions_stay_on_one_line(capture):
    logger, stream = capture
    token = request_id.bind("log-rid-2")
    try:
        try:
            raise ValueError("broken\nacross lines")
        except ValueError:
            logger.exception("failed:\n%s", "second line")
    finally:
        request_id.reset(token)
    (line,) = lines(stream)
    assert line["message"] == "failed:\nsecond line"
    assert "ValueError" in line["exception"]
    assert line["request_id"] == "log-rid-2"


def test_extra_fields_are_merged(capture):
    logger, stream = capture
    logger.info("GET /x 200", extra={"fields": {"status": 200, "duration_ms": 1.5}})
    (line,) = lines(stream)
    assert line["status"] == 200
    assert line["duration_ms"] == 1.5


def test_values_that_are_not_json_are_written_as_text(capture):
    logger, stream = capture
    logger.info("odd", extra={"fields": {"where": object.__new__(type("Thing", (), {}))}})
    (line,) = lines(stream)
    assert "Thing" in line["where"]


async def test_request_log_lines_carry_the_request_id(start, http):
    """The access log line the REST middleware writes is formatted with the request's ID."""
    routes = RouteTable()

    @routes.get("/api/v1/ping", "Ping")
    async def ping(request):
        logging.getLogger("photoncloud.test.handler").info("inside the handler")
        return {}

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("t"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        server = await start(Service("t", "1.0.0", routes, []))
        async with http.get(f"http://127.0.0.1:{server.rest_port}/api/v1/ping",
                            headers={"X-Request-ID": "access-log-1"}) as resp:
            assert resp.status == 200
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    records = lines(stream)
    mine = [r for r in records if r["request_id"] == "access-log-1"]
    assert any(r["message"] == "inside the handler" for r in mine)
    assert any("/api/v1/ping" in r["message"] and r.get("status") == 200 for r in mine)
