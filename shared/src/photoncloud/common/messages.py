"""Protobuf messages built from a service's records (frozen dataclasses), for its converter module."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from . import protojson
from .times import rfc3339

M = TypeVar("M", bound=Message)


def from_record(message_class: type[M], record: Any, **overrides: Any) -> M:
    """A message_class message holding every field of record (a dataclass) that it has by name,
    then overrides. Records keep times as epoch seconds, messages as RFC 3339 strings: a float
    field of the record named `*_at` becomes one; a nested record (or a sequence of them) becomes
    the field's message type."""
    values = {name: _value(field, getattr(record, name))
              for name, field in _shared_fields(type(record), message_class) if name not in overrides}
    return message_class(**values, **overrides)


_SHARED: dict[tuple[type, type[Message]], list[tuple[str, FieldDescriptor]]] = {}


def _shared_fields(record_type: type, message_class: type[Message]) -> list[tuple[str, FieldDescriptor]]:
    """The fields a record type and a message have by name, found once per pair (it is on every reply's path)."""
    found = _SHARED.get((record_type, message_class))
    if found is None:
        fields = protojson.descriptor_of(message_class).fields_by_name
        found = [(f.name, fields[f.name]) for f in dataclasses.fields(record_type) if f.name in fields]
        _SHARED[(record_type, message_class)] = found
    return found


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        cls = protojson.message_class(protojson.message_type(field))
        if isinstance(value, (list, tuple)):
            return [from_record(cls, v) if dataclasses.is_dataclass(v) else v for v in value]
        return from_record(cls, value) if dataclasses.is_dataclass(value) else value
    if field.type == FieldDescriptor.TYPE_STRING and field.name.endswith("_at") and isinstance(value, (int, float)):
        return rfc3339(value)
    return value


def optional(message: Message, field: str, default: Any = None) -> Any:
    """A field with presence's value, or default when the message leaves it unset."""
    return getattr(message, field) if message.HasField(field) else default
