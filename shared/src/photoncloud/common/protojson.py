"""Protobuf messages to and from the JSON the REST routes speak, and that JSON's schema.

The mapping is proto3's JSON mapping with three choices of the platform's REST API:
- field names are the .proto's own (snake_case), as gRPC-gateway's `UseProtoNames`;
- every field is written, defaults included, and a field with presence that is unset is null;
- 64-bit integers are JSON numbers (proto3 writes them as strings for JavaScript's sake; the REST
  API has always answered numbers, and reads either).
Reading is strict where proto3's parser is lenient: an unknown field, a wrong type or a missing
field the .proto marks `(google.api.field_behavior) = REQUIRED` is INVALID_ARGUMENT naming every
offending field, so a typo never passes silently. null leaves a field unset.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from google.api import field_behavior_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from .errors import InvalidArgument

F = FieldDescriptor
_INT_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1), F.TYPE_SINT32: (-(2**31), 2**31 - 1), F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1), F.TYPE_SINT64: (-(2**63), 2**63 - 1), F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}
_64_BIT = {F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64, F.TYPE_UINT64, F.TYPE_FIXED64}
_FLOATS = {F.TYPE_FLOAT, F.TYPE_DOUBLE}
# Well-known types whose JSON form is not an object of their fields (a Struct is any object, a
# Timestamp an RFC 3339 string, ...): protobuf's own json_format converts those.
_WELL_KNOWN = {"google.protobuf." + name for name in (
    "Struct", "Value", "ListValue", "Timestamp", "Duration", "FieldMask", "Any", "Empty", "DoubleValue",
    "FloatValue", "Int64Value", "UInt64Value", "Int32Value", "UInt32Value", "BoolValue", "StringValue", "BytesValue")}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
# Well-known types holding any JSON, whose numbers are doubles: a whole number among them is written
# as a JSON integer (`3`, not `3.0`), as Go's protojson writes it, up to 2**53 where doubles stay exact.
_DYNAMIC = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}


class Problems(list[dict[str, str]]):
    """Every offending field of one request, as the error's details list them."""

    def add(self, path: str, message: str) -> None:
        self.append({"field": path, "message": message})


@dataclass(frozen=True)
class _Field:
    name: str
    descriptor: FieldDescriptor
    repeated: bool
    map_value: FieldDescriptor | None  # the value field of a map entry
    presence: bool
    required: bool


_FIELDS: dict[str, tuple[_Field, ...]] = {}
_CLASSES: dict[str, type[Message]] = {}


def fields_of(descriptor: Descriptor) -> tuple[_Field, ...]:
    """The fields of a message type, with what conversion needs to know of each (computed once)."""
    found = _FIELDS.get(descriptor.full_name)
    if found is None:
        found = tuple(_field(f) for f in descriptor.fields)
        _FIELDS[descriptor.full_name] = found
    return found


def _field(f: FieldDescriptor) -> _Field:
    entry = f.message_type if f.message_type is not None and f.message_type.GetOptions().map_entry else None
    repeated = _is_repeated(f)
    return _Field(f.name, f, repeated, entry.fields_by_name["value"] if entry is not None else None,
                  f.has_presence and not repeated, is_required(f))


def _is_repeated(f: FieldDescriptor) -> bool:
    # protobuf 6 added is_repeated and deprecated label; both are read for older releases.
    return bool(getattr(f, "is_repeated", None) or getattr(f, "label", None) == F.LABEL_REPEATED)


def extension(options: Any, ext: Any) -> Any:
    """An extension's value on a descriptor's options (the generated stubs type extensions loosely)."""
    return options.Extensions[ext]


def message_type(f: FieldDescriptor) -> Descriptor:
    """The message type of a message field."""
    if f.message_type is None:
        raise TypeError(f"{f.full_name} is not a message field")
    return f.message_type


def enum_type(f: FieldDescriptor) -> EnumDescriptor:
    """The enum type of an enum field."""
    if f.enum_type is None:
        raise TypeError(f"{f.full_name} is not an enum field")
    return f.enum_type


def descriptor_of(cls: type[Message] | Message) -> Descriptor:
    """The descriptor of a message class or message."""
    # Typed as the pure-Python Descriptor or upb's, which offer the same reading interface.
    return cast(Descriptor, cls.DESCRIPTOR)


def message_class(descriptor: Descriptor) -> type[Message]:
    """The generated class of a message type."""
    found = _CLASSES.get(descriptor.full_name)
    if found is None:
        found = _CLASSES[descriptor.full_name] = message_factory.GetMessageClass(descriptor)
    return found


def is_required(descriptor: FieldDescriptor) -> bool:
    """Whether the .proto marks the field `(google.api.field_behavior) = REQUIRED`."""
    return field_behavior_pb2.REQUIRED in extension(descriptor.GetOptions(), field_behavior_pb2.field_behavior)


# -- writing ----------------------------------------------------------------------------------

def to_json(message: Message) -> Any:
    """message as the REST API's JSON data."""
    descriptor = descriptor_of(message)
    if descriptor.full_name in _WELL_KNOWN:
        data = json_format.MessageToDict(message)
        return _whole_numbers(data) if descriptor.full_name in _DYNAMIC else data
    out: dict[str, Any] = {}
    for f in fields_of(descriptor):
        value = getattr(message, f.name)
        if f.map_value is not None:
            out[f.name] = {k: _write(f.map_value, v) for k, v in value.items()}
        elif f.repeated:
            out[f.name] = [_write(f.descriptor, v) for v in value]
        elif f.presence and not message.HasField(f.name):
            out[f.name] = None
        else:
            out[f.name] = _write(f.descriptor, value)
    return out


def _whole_numbers(data: Any) -> Any:
    if isinstance(data, float) and data.is_integer() and abs(data) <= 2**53:
        return int(data)
    if isinstance(data, dict):
        return {k: _whole_numbers(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_whole_numbers(v) for v in data]
    return data


def _write(f: FieldDescriptor, value: Any) -> Any:
    kind = f.type
    if kind == F.TYPE_MESSAGE:
        return to_json(value)
    if kind == F.TYPE_ENUM:
        known = enum_type(f).values_by_number.get(value)
        return known.name if known is not None else value
    if kind == F.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    return value


# -- reading ----------------------------------------------------------------------------------

def read_fields(data: Any, descriptor: Descriptor, where: str, problems: Problems, prefix: str = "") -> dict[str, Any]:
    """The constructor arguments data (a JSON object) gives a message of descriptor's type; what is
    wrong is added to problems, each named by its path (prefix + field)."""
    if not isinstance(data, Mapping):
        problems.add(prefix.rstrip(".") or where, "Input should be an object")
        return {}
    known = {f.name: f for f in fields_of(descriptor)}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        path = prefix + str(name)
        f = known.get(name)
        if f is None:
            problems.add(path, "Extra inputs are not permitted")
        elif value is not None:
            converted = _read_field(f, value, where, problems, path)
            if converted is not _INVALID:
                kwargs[name] = converted
    return kwargs


def missing_required(kwargs: Mapping[str, Any], descriptor: Descriptor, problems: Problems, prefix: str = "") -> None:
    """Add a problem for each REQUIRED field of descriptor that kwargs lacks (one given with a wrong
    value has its problem already)."""
    reported = {problem["field"] for problem in problems}
    for f in fields_of(descriptor):
        if f.required and f.name not in kwargs and prefix + f.name not in reported:
            problems.add(prefix + f.name, "Field required")


def raise_problems(problems: Problems, where: str) -> None:
    """INVALID_ARGUMENT listing problems (naming the first in its message), if there are any."""
    if problems:
        first = problems[0]
        raise InvalidArgument(f"invalid {where}: {first['field']}: {first['message']}",
                              {"field": first["field"], "errors": list(problems)})


def from_json(data: Any, cls: type[Message], where: str = "request body") -> Message:
    """A cls message holding data (the REST API's JSON); INVALID_ARGUMENT naming each bad field."""
    problems = Problems()
    kwargs = read_fields(data, descriptor_of(cls), where, problems)
    missing_required(kwargs, descriptor_of(cls), problems)
    raise_problems(problems, where)
    return cls(**kwargs)


_INVALID = object()


def _read_field(f: _Field, value: Any, where: str, problems: Problems, path: str) -> Any:
    if f.map_value is not None:
        if not isinstance(value, Mapping):
            problems.add(path, "Input should be an object")
            return _INVALID
        entries = {str(k): _read_value(f.map_value, v, where, problems, f"{path}.{k}") for k, v in value.items()}
        return _INVALID if _INVALID in entries.values() else entries
    if f.repeated:
        if not isinstance(value, list):
            problems.add(path, "Input should be a valid list")
            return _INVALID
        items = [_read_value(f.descriptor, v, where, problems, f"{path}.{i}") for i, v in enumerate(value)]
        return _INVALID if any(item is _INVALID for item in items) else items
    return _read_value(f.descriptor, value, where, problems, path)


def _read_value(f: FieldDescriptor, value: Any, where: str, problems: Problems, path: str) -> Any:
    reader = _READERS.get(f.type)
    if reader is not None:
        result, message = reader(f, value)
        if message:
            problems.add(path, message)
            return _INVALID
        return result
    if f.type == F.TYPE_MESSAGE:
        nested = message_type(f)
        cls = message_class(nested)
        if nested.full_name in _WELL_KNOWN:
            try:
                return json_format.ParseDict(value, cls())
            except json_format.ParseError as exc:
                problems.add(path, str(exc))
                return _INVALID
        kwargs = read_fields(value, nested, where, problems, path + ".")
        missing_required(kwargs, nested, problems, path + ".")
        return cls(**kwargs)
    problems.add(path, "unsupported field type")  # groups: no .proto of ours has any
    return _INVALID


def _read_int(f: FieldDescriptor, value: Any) -> tuple[Any, str]:
    if isinstance(value, bool):
        return None, "Input should be a valid integer"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None, "Input should be a valid integer, unable to parse string as an integer"
    if not isinstance(value, int):
        return None, "Input should be a valid integer"
    low, high = _INT_RANGES[f.type]
    if not low <= value <= high:
        return None, f"Input should be between {low} and {high}"
    return value, ""


def _read_float(f: FieldDescriptor, value: Any) -> tuple[Any, str]:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None, "Input should be a valid number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, "Input should be a valid number"
    return float(value), ""


def _read_bool(f: FieldDescriptor, value: Any) -> tuple[Any, str]:
    if isinstance(value, bool):
        return value, ""
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE, ""
    return None, "Input should be a valid boolean"


def _read_string(f: FieldDescriptor, value: Any) -> tuple[Any, str]:
    return (value, "") if isinstance(value, str) else (None, "Input should be a valid string")


def _read_bytes(f: FieldDescriptor, value: Any) -> tuple[Any, str]:
    if not isinstance(value, str):
        return None, "Input should be a valid string"
    try:
        return base64.b64decode(value, validate=True), ""
    except (binascii.Error, ValueError):
        return None, "Input should be valid base64"


def _read_enum(f: FieldDescriptor, value: Any) -> tuple[Any, str]:
    names = enum_type(f).values_by_name
    if isinstance(value, str) and value in names:
        return names[value].number, ""
    if isinstance(value, int) and not isinstance(value, bool) and value in enum_type(f).values_by_number:
        return value, ""
    return None, f"Input should be one of {', '.join(names)}"


_READERS: dict[int, Callable[[FieldDescriptor, Any], tuple[Any, str]]] = {
    **{kind: _read_int for kind in _INT_RANGES}, F.TYPE_FLOAT: _read_float, F.TYPE_DOUBLE: _read_float,
    F.TYPE_BOOL: _read_bool, F.TYPE_STRING: _read_string, F.TYPE_BYTES: _read_bytes, F.TYPE_ENUM: _read_enum,
}


# -- schema -----------------------------------------------------------------------------------

def schema_name(descriptor: Descriptor) -> str:
    """The OpenAPI component name of a message type."""
    return descriptor.full_name


def field_schema(f: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of one field's value (message types are added to schemas, by reference)."""
    info = _field(f)
    if info.map_value is not None:
        return {"type": "object", "additionalProperties": _value_schema(info.map_value, schemas)}
    if info.repeated:
        return {"type": "array", "items": _value_schema(f, schemas)}
    schema = _value_schema(f, schemas)
    return {"anyOf": [schema, {"type": "null"}]} if info.presence else schema


def _value_schema(f: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    kind = f.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return {"type": "integer", "format": "int64" if kind in _64_BIT else "int32", "minimum": low, "maximum": high}
    if kind in _FLOATS:
        return {"type": "number"}
    if kind == F.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == F.TYPE_STRING:
        return {"type": "string"}
    if kind == F.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    if kind == F.TYPE_ENUM:
        return {"type": "string", "enum": list(enum_type(f).values_by_name)}
    return message_schema(message_type(f), schemas)


_WELL_KNOWN_SCHEMAS: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Value": {},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.FieldMask": {"type": "string"},
}


def message_schema(descriptor: Descriptor, schemas: dict[str, Any], exclude: frozenset[str] = frozenset(),
                   inline: bool = False) -> dict[str, Any]:
    """A reference to the schema of a message type, added to schemas; inline, the schema itself
    without the excluded fields (a request body whose other fields come from the path)."""
    name = descriptor.full_name
    if name in _WELL_KNOWN_SCHEMAS:
        return dict(_WELL_KNOWN_SCHEMAS[name])
    if not inline and name in schemas:
        return {"$ref": f"#/components/schemas/{schema_name(descriptor)}"}
    if not inline:
        schemas[name] = {}  # a placeholder first: a message may contain itself
    fields = [f for f in descriptor.fields if f.name not in exclude]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: field_schema(f, schemas) for f in fields},
        "additionalProperties": False,
    }
    required = [f.name for f in fields if is_required(f)]
    if required:
        schema["required"] = required
    if inline:
        return schema
    schemas[name] = schema
    return {"$ref": f"#/components/schemas/{schema_name(descriptor)}"}
