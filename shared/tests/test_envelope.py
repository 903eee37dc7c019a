"""The REST envelopes: success, list and error shapes, and their meta (request ID, RFC 3339 UTC time)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from photoncloud.common import envelope, request_id
from photoncloud.common.errors import Code

# RFC 3339 date-time in UTC, written with the "Z" designator.
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


@pytest.fixture
def bound_id():
    token = request_id.bind("req-envelope-1")
    yield "req-envelope-1"
    request_id.reset(token)


def parse_utc(stamp: str) -> datetime:
    assert RFC3339_UTC.match(stamp), stamp
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_timestamp_is_rfc3339_utc_and_now():
    before = datetime.now(UTC)
    stamp = parse_utc(envelope.timestamp())
    after = datetime.now(UTC)
    assert stamp.utcoffset() == timedelta(0)
    # the stamp may be truncated to a coarser precision, never later than now
    assert before - timedelta(seconds=1) <= stamp <= after


@pytest.mark.parametrize("at, expected", [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (1_800_000_000.9996, "2027-01-15T08:00:00.999Z"),  # milliseconds cut, never rounded up into the next second
    (951_782_400.25, "2000-02-29T00:00:00.250Z"),
    (4_102_444_799.001, "2099-12-31T23:59:59.001Z"),
])
def test_timestamp_of_a_given_time(at, expected):
    assert envelope.timestamp(at) == expected


def test_timestamps_within_one_second_and_across_seconds():
    """The text of a second is kept between calls: a later second must not reuse an earlier's."""
    stamps = [envelope.timestamp(1_800_000_000 + step / 4) for step in range(12)]
    expected = [datetime.fromtimestamp(1_800_000_000 + step / 4, UTC) for step in range(12)]
    assert [parse_utc(s) for s in stamps] == expected


def test_meta_carries_request_id_and_timestamp(bound_id):
    meta = envelope.meta()
    assert set(meta) == {"request_id", "timestamp"}
    assert meta["request_id"] == bound_id
    parse_utc(meta["timestamp"])


def test_success_shape(bound_id):
    body = envelope.success({"key": "a", "value": "1"})
    assert set(body) == {"data", "meta"}
    assert body["data"] == {"key": "a", "value": "1"}
    assert body["meta"]["request_id"] == bound_id
    parse_utc(body["meta"]["timestamp"])


def test_success_keeps_falsy_data():
    for data in (None, [], {}, 0, ""):
        assert envelope.success(data)["data"] == data


def test_list_shape():
    data = envelope.page([{"id": 1}, {"id": 2}], "tok")
    assert data["items"] == [{"id": 1}, {"id": 2}]
    assert data["next_page_token"] == "tok"
    body = envelope.success(data)
    assert body["data"]["items"] == [{"id": 1}, {"id": 2}]


def test_last_page_has_an_empty_token_and_extra_members_are_kept():
    data = envelope.page([], count=0)
    assert data["next_page_token"] == ""
    assert data["items"] == []
    assert data["count"] == 0


def test_error_shape(bound_id):
    body = envelope.error(Code.NOT_FOUND, "no such key", {"key": "a"})
    assert set(body) == {"error", "meta"}
    assert body["error"] == {"code": "NOT_FOUND", "message": "no such key", "details": {"key": "a"}}
    assert body["meta"]["request_id"] == bound_id
    parse_utc(body["meta"]["timestamp"])


def test_error_without_details_has_null_details():
    body = envelope.error(Code.INTERNAL, "oops")
    assert "details" in body["error"]
    assert body["error"]["details"] is None
    assert body["error"]["code"] == "INTERNAL"


# -- another service's error body, read back ------------------------------------------------------

@pytest.mark.parametrize("code", list(Code))
def test_error_from_body_reads_back_every_code_of_an_envelope(code):
    exc = envelope.error_from_body(code.http_status, envelope.error(code, "went wrong", {"reason": "TEST"}))
    assert (exc.code, exc.message, exc.details) == (code, "went wrong", {"reason": "TEST"})


@pytest.mark.parametrize("body", [None, "<html>bad gateway</html>", [], {}, {"data": {}}, {"error": "x"}])
def test_error_from_body_of_no_envelope_is_unavailable_with_the_status(body):
    exc = envelope.error_from_body(502, body)
    assert (exc.code, exc.message, exc.details) == (Code.UNAVAILABLE, "HTTP 502", None)


def test_error_from_body_of_a_code_outside_the_table_is_unavailable():
    exc = envelope.error_from_body(500, {"error": {"code": "NO_SUCH_CODE", "message": "odd", "details": None}})
    assert (exc.code, exc.message) == (Code.UNAVAILABLE, "odd")


def test_error_from_body_takes_a_default_message():
    assert envelope.error_from_body(500, {}, "IAM answered 500").message == "IAM answered 500"
    assert envelope.error_from_body(404, envelope.error(Code.NOT_FOUND, "gone"), "unused").message == "gone"
