"""The response envelopes every REST endpoint sends: success, list and error; and the error one read back."""

from __future__ import annotations

import time
from typing import Any

from . import request_id
from .errors import Code, ServiceError


_second: tuple[int, str] = (-1, "")  # the last whole second written, and its text: one per second is formatted


def timestamp(at: float | None = None) -> str:
    """Epoch time `at` (default now) as RFC 3339 UTC with millisecond precision (e.g. 2026-01-02T03:04:05.678Z)."""
    global _second
    # Whole microseconds first, as datetime rounds them (the float 1.001 is 1.000999...), then cut to milliseconds.
    whole, micro = divmod(round((time.time() if at is None else at) * 1_000_000), 1_000_000)
    seconds, text = _second
    if seconds != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)
    return f"{text}.{micro // 1000:03d}Z"


def meta() -> dict[str, str]:
    """The `meta` member: the current request ID and the time of the response."""
    return {"request_id": request_id.current(), "timestamp": timestamp()}


def success(data: Any) -> dict[str, Any]:
    """A success body around data."""
    return {"data": data, "meta": meta()}


def page(items: list[Any], next_page_token: str = "", **extra: Any) -> dict[str, Any]:
    """The `data` of a list response; next_page_token is empty on the last page."""
    return {"items": items, "next_page_token": next_page_token, **extra}


def error(code: Code, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """An error body."""
    return {"error": {"code": code.name, "message": message, "details": details}, "meta": meta()}


def error_from_body(status: int, body: Any, default_message: str | None = None) -> ServiceError:
    """The ServiceError an error answer of another service stands for (the REST twin of rpc.error_from_rpc)."""
    # The envelope's code, message and details; a body that is no error envelope (a proxy's page, a
    # truncated answer) or a code outside the table means the service could not answer: UNAVAILABLE.
    member = body.get("error") if isinstance(body, dict) else None
    member = member if isinstance(member, dict) else {}
    name = member.get("code")
    code = Code[name] if isinstance(name, str) and name in Code.__members__ else Code.UNAVAILABLE
    message = member.get("message") or default_message or f"HTTP {status}"
    details = member.get("details")
    return ServiceError(str(message), details if isinstance(details, dict) else None, code=code)

