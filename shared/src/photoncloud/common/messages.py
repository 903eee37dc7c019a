"""Protobuf messages built from the plain data the views make, for the gRPC adapters."""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


def to_message(data: dict[str, Any], message_class: type[M]) -> M:
    """A new message_class message holding data (a view's dict, in its JSON field names and values)."""
    return json_format.ParseDict(data, message_class())
