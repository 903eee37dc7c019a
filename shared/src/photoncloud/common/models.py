"""Base classes for the pydantic models that REST bodies and query strings are parsed into."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from .errors import InvalidArgument

# Every integer a request carries fits a signed 64-bit integer: what gRPC's int64 carries and SQLite
# stores (a larger one was an OverflowError deep in a store, an INTERNAL error, where it is the
# caller's INVALID_ARGUMENT).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _too_big(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return not INT64_MIN <= value <= INT64_MAX
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(map(_too_big, value))
    if isinstance(value, dict):
        return any(map(_too_big, value.values()))
    if isinstance(value, BaseModel) and not isinstance(value, (Body, Query)):  # those check themselves
        return any(map(_too_big, vars(value).values()))
    return False


def _int64_format(schema: dict[str, Any]) -> None:
    """Mark the integers of a request model's JSON schema as int64 (in place)."""
    for node in schema.get("properties", {}).values():
        for option in [node, *node.get("anyOf", []), node.get("items") or {}]:
            if option.get("type") == "integer":
                option.setdefault("format", "int64")


class _Request(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _fits_int64(cls, value: Any) -> Any:
        if _too_big(value):
            raise ValueError(f"integers must be between {INT64_MIN} and {INT64_MAX}")
        return value


class Body(_Request):
    """A JSON request body; unknown fields are refused so that typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_int64_format)


class Query(_Request):
    """Query-string parameters; unknown ones are refused so that typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_int64_format)


class Result(BaseModel):
    """A response's `data`, described for the OpenAPI document."""


def from_base64(text: str, field: str) -> bytes:
    """The bytes text encodes in standard base64; INVALID_ARGUMENT naming field when it does not
    (a character that is not ASCII included: b64decode raises ValueError for it, not binascii.Error)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"{field} is not valid base64", {"field": field}) from None
