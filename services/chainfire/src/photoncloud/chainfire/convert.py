"""ChainFire's core results as the messages of its contract, and the messages' parts the core takes.

Two shapes: the etcd-shaped messages (bytes keys and values) and the REST-shaped ones (`Text*`
and friends: keys as UTF-8 text, a value as text where it is UTF-8 and in `value_base64` where it
is not)."""

from __future__ import annotations

import base64
from typing import Any

from photoncloud.chainfire.v1 import kv_pb2 as pb
from photoncloud.common import paging, protojson
from photoncloud.common.errors import InvalidArgument, NotFound
from photoncloud.common.messages import from_record, optional
from photoncloud.common.models import from_base64

from . import core


def text(data: bytes) -> str:
    """Bytes as text (a byte that is not UTF-8 shown as a backslash escape)."""
    return data.decode(errors="backslashreplace")


def _bytes(text: str | None) -> bytes:
    return (text or "").encode()


def value(m: Any) -> bytes:
    """The bytes of exactly one of m's `value` (text) and `value_base64`."""
    given, encoded = optional(m, "value"), optional(m, "value_base64")
    if (given is None) == (encoded is None):
        raise InvalidArgument("give exactly one of value and value_base64", {"field": "value"})
    if encoded is None:
        return _bytes(given)
    return from_base64(encoded, "value_base64")


# -- the etcd-shaped messages -------------------------------------------------------------------

def kv_pb(kv: core.KeyValue) -> pb.KeyValue:
    """A pair."""
    return from_record(pb.KeyValue, kv)


def event_pb(event: core.Event) -> pb.Event:
    """An event."""
    return pb.Event(type=event.type.value, kv=kv_pb(event.kv),
                    prev_kv=kv_pb(event.prev_kv) if event.prev_kv else None)


def range_request(m: pb.RangeRequest) -> core.RangeRequest:
    """A range request for the core."""
    return core.RangeRequest(m.key, m.range_end, m.prefix, m.limit, m.revision, m.keys_only,
                             m.count_only, m.serializable, m.page_token)


def put_request(m: pb.PutRequest) -> core.PutRequest:
    """A put request for the core."""
    return core.PutRequest(m.key, m.value, m.prev_kv, m.lease)


def delete_request(m: pb.DeleteRangeRequest) -> core.DeleteRangeRequest:
    """A delete request for the core."""
    return core.DeleteRangeRequest(m.key, m.range_end, m.prefix, m.prev_kv)


def compare(m: pb.Compare) -> core.Compare:
    """A comparison for the core (the operand is None unless the target's field is set)."""
    target = core.CompareTarget(pb.Compare.CompareTarget.Name(m.target))
    field = core.OPERAND_FIELD[target]
    operand = getattr(m, field) if m.WhichOneof("target_union") == field else None
    return core.Compare(m.key, target, core.CompareResult(pb.Compare.CompareResult.Name(m.result)), operand)


def op(m: pb.RequestOp) -> core.Op:
    """A transaction operation for the core."""
    kind = m.WhichOneof("request")
    if kind == "request_put":
        return put_request(m.request_put)
    if kind == "request_delete_range":
        return delete_request(m.request_delete_range)
    return range_request(m.request_range)


def txn_request(m: pb.TxnRequest) -> core.TxnRequest:
    """A transaction for the core."""
    return core.TxnRequest(compare=tuple(compare(c) for c in m.compare), success=tuple(op(o) for o in m.success),
                           failure=tuple(op(o) for o in m.failure))


def members_pb(members: list[core.Member]) -> list[pb.Member]:
    """Members."""
    return [pb.Member(id=m.member_id, peer_address=m.peer_address, client_urls=dict(m.client_urls),
                      is_leader=m.is_leader) for m in members]


# -- the REST-shaped messages -------------------------------------------------------------------

def text_kv(kv: core.KeyValue) -> pb.TextKeyValue:
    """A pair as text: the value where it is UTF-8, base64 where it is not."""
    try:
        values: dict[str, str] = {"value": kv.value.decode()}
    except UnicodeDecodeError:
        values = {"value_base64": base64.b64encode(kv.value).decode()}
    return pb.TextKeyValue(key=text(kv.key), create_revision=kv.create_revision, mod_revision=kv.mod_revision,
                           version=kv.version, lease=kv.lease, **values)


def text_event(event: core.Event) -> dict[str, Any]:
    """An event as the REST watch stream sends it."""
    return {"type": event.type.value, "kv": protojson.to_json(text_kv(event.kv)),
            "prev_kv": protojson.to_json(text_kv(event.prev_kv)) if event.prev_kv else None}


def get_request(m: pb.GetRequest) -> core.RangeRequest:
    """A single-key read."""
    return core.RangeRequest(_bytes(m.key), revision=m.revision, serializable=m.serializable)


def found(m: pb.GetRequest, result: core.RangeResult) -> pb.TextKeyValue:
    """The key a single-key read found (NOT_FOUND when it found none)."""
    if not result.kvs:
        raise NotFound(f"key {m.key!r} not found", {"key": m.key})
    return text_kv(result.kvs[0])


def list_request(m: pb.ListRequest) -> core.RangeRequest:
    """A listing: a prefix, [key, range_end) or every key, a page at a time."""
    prefix, key, range_end = optional(m, "prefix"), optional(m, "key"), optional(m, "range_end")
    if prefix is not None and (key is not None or range_end is not None):
        raise InvalidArgument("give either prefix or key/range_end, not both", {"field": "prefix"})
    if key is None and range_end is not None:
        raise InvalidArgument("range_end needs key", {"field": "key"})
    span: dict[str, Any] = (dict(key=_bytes(prefix), prefix=True) if prefix is not None or key is None
                            else dict(key=_bytes(key), range_end=_bytes(range_end)))
    return core.RangeRequest(**span, limit=paging.page_size(m.page_size), revision=m.revision, keys_only=m.keys_only,
                             count_only=m.count_only, serializable=m.serializable, page_token=m.page_token)


def listing(result: core.RangeResult) -> pb.ListResponse:
    """A page of pairs."""
    return pb.ListResponse(items=[text_kv(kv) for kv in result.kvs], next_page_token=result.next_page_token,
                           count=result.count, revision=result.revision)


def write_request(m: pb.WriteRequest | pb.PutOp) -> core.PutRequest:
    """A write of one key."""
    return core.PutRequest(_bytes(m.key), value(m), m.prev_kv, m.lease)


def written(result: core.PutResult) -> pb.WriteResponse:
    """The revision a write created, and the pair as it was if asked."""
    return pb.WriteResponse(revision=result.revision, prev_kv=text_kv(result.prev_kv) if result.prev_kv else None)


def text_delete_request(m: pb.DeleteRequest | pb.DeleteOp) -> core.DeleteRangeRequest:
    """A delete of a key, a prefix or a range."""
    return core.DeleteRangeRequest(_bytes(m.key), _bytes(optional(m, "range_end")), m.prefix, m.prev_kv)


def deleted(result: core.DeleteResult) -> pb.DeleteResponse:
    """How many keys a delete deleted."""
    return pb.DeleteResponse(revision=result.revision, deleted=result.deleted,
                             prev_kvs=[text_kv(kv) for kv in result.prev_kvs])


def _text_op(m: pb.Op, where: str) -> core.Op:
    kinds = [name for name in ("range", "put", "delete") if m.HasField(name)]
    if len(kinds) != 1:
        problem = "Value error, an operation holds exactly one of range, put and delete"
        raise InvalidArgument(f"invalid request body: {where}: {problem}",
                              {"field": where, "errors": [{"field": where, "message": problem}]})
    if m.HasField("put"):
        return write_request(m.put)
    if m.HasField("delete"):
        return text_delete_request(m.delete)
    r = m.range
    return core.RangeRequest(_bytes(r.key), _bytes(optional(r, "range_end")), r.prefix, r.limit,
                             keys_only=r.keys_only, count_only=r.count_only)


def _condition(c: pb.Condition) -> core.Compare:
    target = core.CompareTarget(pb.Compare.CompareTarget.Name(c.target))
    operand: int | bytes | None
    if target is core.CompareTarget.VALUE:
        operand = value(c) if c.HasField("value") or c.HasField("value_base64") else None
    else:
        operand = optional(c, core.OPERAND_FIELD[target])
    return core.Compare(_bytes(c.key), target, core.CompareResult(pb.Compare.CompareResult.Name(c.result)), operand)


def transact_request(m: pb.TransactRequest) -> core.TxnRequest:
    """A transaction."""
    return core.TxnRequest(
        compare=tuple(_condition(c) for c in m.compare),
        success=tuple(_text_op(o, f"success.{i}") for i, o in enumerate(m.success)),
        failure=tuple(_text_op(o, f"failure.{i}") for i, o in enumerate(m.failure)),
    )


def _op_result(result: core.OpResult) -> pb.OpResult:
    if isinstance(result, core.PutResult):
        return pb.OpResult(put=written(result))
    if isinstance(result, core.DeleteResult):
        return pb.OpResult(delete=deleted(result))
    return pb.OpResult(range=pb.RangeResult(items=[text_kv(kv) for kv in result.kvs], count=result.count,
                                            more=result.more))


def transacted(result: core.TxnResult) -> pb.TransactResponse:
    """Which branch a transaction ran, and what each of its operations returned."""
    return pb.TransactResponse(revision=result.revision, succeeded=result.succeeded,
                               responses=[_op_result(r) for r in result.responses])


def members(found: list[core.Member]) -> pb.Members:
    """Every member."""
    return pb.Members(members=members_pb(found))
