"""Page sizes and opaque page tokens shared by every list endpoint."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(requested: int | None, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """The page size to use: the default for 0/None, else the request if within 1..maximum."""
    if not requested:
        return default
    if requested < 0 or requested > maximum:
        raise InvalidArgument(
            f"page_size must be between 1 and {maximum}", {"field": "page_size", "maximum": maximum}
        )
    return requested


def encode_token(position: dict[str, Any]) -> str:
    """An opaque, URL-safe token for a position in a listing."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    """The position a token stands for; INVALID_ARGUMENT for anything encode_token did not make."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):  # deep nesting
        position = None
    if not isinstance(position, dict):
        raise InvalidArgument("page_token is not valid", {"field": "page_token"})
    return position
