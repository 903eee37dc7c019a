"""Times on the wire: RFC 3339 UTC strings outside, epoch seconds inside."""

from __future__ import annotations

from datetime import UTC, datetime

from .errors import InvalidArgument


def rfc3339(epoch: float) -> str:
    """An epoch time as RFC 3339 UTC ("" for 0: never)."""
    if not epoch:
        return ""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str, field_name: str) -> float:
    """An RFC 3339 time as epoch seconds; INVALID_ARGUMENT naming field_name otherwise."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidArgument(f"{field_name} must be an RFC 3339 time with a time zone, e.g. 2026-01-02T03:04:05Z",
                              {"field": field_name})
    return moment.timestamp()
