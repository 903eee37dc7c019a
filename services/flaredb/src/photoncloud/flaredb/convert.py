"""FlareDB's results as the messages of its contract, and the messages' parts the core takes.

Keys are UTF-8 text; a value is text when it is UTF-8 (`value`) and bytes otherwise (`value_base64`,
base64 in JSON); a KV request that names no namespace uses "default"."""

from __future__ import annotations

from typing import Any

from photoncloud.common.errors import InvalidArgument
from photoncloud.common.messages import from_record
from photoncloud.flaredb.v1 import flaredb_pb2 as pb

from . import core
from .commands import Mode, Statement, Value
from .results import CasResult, DeleteResult, Entry, Namespace, PutResult, ScanResult, StatementResult, Table

# -- requests ---------------------------------------------------------------------------------

def consistency(value: int) -> core.Consistency:
    """A request's consistency (unspecified: weak)."""
    if value == pb.CONSISTENCY_UNSPECIFIED:
        return core.Consistency.WEAK
    if value not in pb.Consistency.values():
        raise InvalidArgument("consistency is none, weak or strong", {"field": "consistency"})
    return core.Consistency(pb.Consistency.Name(value))  # the enums' names are the core's values


def mode(value: int) -> Mode:
    """A namespace's mode as a request gives it."""
    if value == pb.Namespace.MODE_UNSPECIFIED or value not in pb.Namespace.Mode.values():
        raise InvalidArgument("mode is strong or eventual", {"field": "mode"})
    return Mode(pb.Namespace.Mode.Name(value))  # the enums' names are the core's values


def ns(name: str) -> str:
    """The namespace a request names (none: the default one)."""
    return name or core.DEFAULT_NAMESPACE


def key(text: str) -> bytes:
    """A key as the core keeps it."""
    return text.encode()


def sql_value(m: pb.SqlValue) -> Value:
    """A protobuf value for SQLite (unset: NULL)."""
    kind = m.WhichOneof("kind")
    return None if kind in (None, "null") else getattr(m, kind)


def statement(m: pb.Statement) -> Statement:
    """A protobuf statement for the core."""
    return Statement(m.sql, tuple(sql_value(v) for v in m.params),
                          tuple((k, sql_value(v)) for k, v in sorted(m.named_params.items())))


def value(request: pb.PutBody | pb.CompareAndSwapRequest) -> bytes:
    """The bytes of exactly one of `value` (text) and `value_base64`."""
    has_text, has_bytes = request.HasField("value"), request.HasField("value_base64")
    if has_text == has_bytes:
        raise InvalidArgument("give exactly one of value and value_base64", {"field": "value"})
    return request.value.encode() if has_text else request.value_base64


# -- results ----------------------------------------------------------------------------------

def _text(data: bytes) -> str:
    return data.decode(errors="backslashreplace")


def _value_fields(data: bytes | None) -> dict[str, Any]:
    """A value as `value` when it is UTF-8 text, else as `value_base64` (None: neither)."""
    if data is None:
        return {}
    try:
        return {"value": data.decode()}
    except UnicodeDecodeError:
        return {"value_base64": data}


def sql_value_pb(v: Value) -> pb.SqlValue:
    """A SQLite value as protobuf."""
    if v is None:
        return pb.SqlValue(null=True)
    if isinstance(v, bytes):
        return pb.SqlValue(blob=v)
    if isinstance(v, int):
        return pb.SqlValue(integer=v)
    if isinstance(v, float):
        return pb.SqlValue(real=v)
    return pb.SqlValue(text=str(v))


def statement_result(result: StatementResult) -> pb.StatementResult:
    """A statement's result."""
    if result.columns is not None:
        return pb.StatementResult(is_query=True, columns=result.columns, types=result.types,
                                  rows=[pb.Row(values=[sql_value_pb(v) for v in row]) for row in result.rows])
    return pb.StatementResult(rows_affected=result.rows_affected, last_insert_id=result.last_insert_id)


def table(t: Table) -> pb.Table:
    """A table, its columns and indexes."""
    return from_record(pb.Table, t)


def namespace(n: Namespace) -> pb.Namespace:
    """A namespace and its number of keys."""
    return pb.Namespace(name=n.name, mode=n.mode.value, keys=n.keys)


def entry(namespace: str, e: Entry) -> pb.KeyValue:
    """A key of namespace, its value and version."""
    return pb.KeyValue(namespace=namespace, key=_text(e.key), version=e.version, **_value_fields(e.value))


def put(namespace: str, r: PutResult) -> pb.PutResponse:
    """The key's version after a put."""
    return pb.PutResponse(namespace=namespace, key=_text(r.key), version=r.version)


def delete(namespace: str, r: DeleteResult) -> pb.DeleteResponse:
    """How many keys a delete removed."""
    return pb.DeleteResponse(namespace=namespace, key=_text(r.key), deleted=r.deleted)


def scan(namespace: str, r: ScanResult) -> pb.ScanResponse:
    """A page of keys, and where the next one starts."""
    return pb.ScanResponse(items=[entry(namespace, e) for e in r.items], has_more=r.has_more,
                           next_key=_text(r.next_key) if r.next_key else None)


def cas(namespace: str, r: CasResult) -> pb.CompareAndSwapResponse:
    """Whether a compare-and-swap swapped, and the key's version and value afterwards."""
    return pb.CompareAndSwapResponse(succeeded=r.succeeded, namespace=namespace, key=_text(r.key), version=r.version,
                                     **_value_fields(r.value))
