"""Request IDs: accepted from the caller when sane, generated otherwise, kept in a contextvar."""

from __future__ import annotations

import contextvars
import os
import re

HEADER = "X-Request-ID"
METADATA_KEY = "x-request-id"

# Printable, log-safe and short: anything else (spaces, newlines, quotes) is replaced, so a
# caller cannot forge log lines or bloat them through the header.
_SANE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def new_request_id() -> str:
    """A fresh random request ID: 128 random bits as 32 hex digits."""
    return os.urandom(16).hex()


def accept(candidate: str | None) -> str:
    """The caller's request ID if it is sane, otherwise a new one."""
    if candidate and _SANE.fullmatch(candidate):  # match() lets '$' pass a trailing newline
        return candidate
    return new_request_id()


def current() -> str:
    """The request ID of the request being served ('' outside any request)."""
    return _current.get()


def bind(request_id: str) -> contextvars.Token[str]:
    """Make request_id the current one; returns the token to reset it with."""
    return _current.set(request_id)


def reset(token: contextvars.Token[str]) -> None:
    """Restore the request ID that was current before bind()."""
    _current.reset(token)


def outgoing_headers() -> dict[str, str]:
    """Headers that carry the current request ID on a call to another service."""
    rid = current()
    return {HEADER: rid} if rid else {}
