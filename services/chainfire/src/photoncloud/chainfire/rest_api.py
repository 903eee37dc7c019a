"""ChainFire's REST adapter: JSON in, `await core.x(...)`, JSON out. Keys and values are UTF-8 text
(`value_base64` carries a value that is not)."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from aiohttp import web
from pydantic import Field, model_validator

from photoncloud.common import paging
from photoncloud.common.errors import InvalidArgument, NotFound
from photoncloud.common.models import Body, Query, Result
from photoncloud.common.rest import RouteTable

from . import core

KEY = "/api/v1/kv/{key:.+}"
KV = "photoncloud.chainfire.v1.KV/"
READ, WRITE = "chainfire:kv:read", "chainfire:kv:write"


class KeyValueOut(Result):
    """A key-value pair with its MVCC revisions."""

    key: str
    value: str | None = Field(description="the value as UTF-8 text (null if it is not UTF-8)")
    value_base64: str | None = Field(None, description="the value in base64, set only when it is not UTF-8")
    create_revision: int
    mod_revision: int
    version: int


class GetQuery(Query):
    """Options of a single-key read."""

    revision: int = Field(0, description="read the key as of this revision (0: latest)")
    serializable: bool = Field(False, description="serve from this member without a consistency check")


class ListQuery(Query):
    """A range of keys: a prefix, or [key, range_end); neither: every key."""

    prefix: str | None = Field(None, description="every key that starts with this")
    key: str | None = Field(None, description="the first key of [key, range_end)")
    range_end: str | None = Field(None, description="the end of [key, range_end); \\u0000: no end")
    revision: int = 0
    keys_only: bool = False
    count_only: bool = False
    serializable: bool = False
    page_size: int = Field(0, description=f"keys per page (default {paging.DEFAULT_PAGE_SIZE})")
    page_token: str = ""


class ListOut(Result):
    """A page of key-value pairs."""

    items: list[KeyValueOut]
    next_page_token: str
    count: int = Field(description="keys in the range from this page's first key on")
    revision: int


class ValueFields(Body):
    """A value to write: `value` as text or `value_base64`, exactly one."""

    value: str | None = None
    value_base64: str | None = None


class PutBody(ValueFields):
    """The value to write."""

    prev_kv: bool = Field(False, description="return the pair as it was before")


class PutOut(Result):
    """The revision the put created."""

    revision: int
    prev_kv: KeyValueOut | None = None


class DeleteOptions(Query):
    """Which keys to delete besides `key` itself."""

    prefix: bool = Field(False, description="delete every key that starts with key")
    range_end: str | None = Field(None, description="delete [key, range_end)")
    prev_kv: bool = Field(False, description="return the deleted pairs")


class DeleteBody(DeleteOptions):
    """The options of POST .../delete (the same as DELETE's query parameters)."""


class DeleteOut(Result):
    """How many keys were deleted."""

    revision: int
    deleted: int
    prev_kvs: list[KeyValueOut] = []


class RangeOp(Body):
    """A read inside a transaction."""

    key: str
    range_end: str | None = None
    prefix: bool = False
    limit: int = 0
    keys_only: bool = False
    count_only: bool = False


class PutOp(ValueFields):
    """A write inside a transaction."""

    key: str
    prev_kv: bool = False


class DeleteOp(Body):
    """A delete inside a transaction."""

    key: str
    range_end: str | None = None
    prefix: bool = False
    prev_kv: bool = False


class OpIn(Body):
    """One operation: exactly one of range, put and delete."""

    range: RangeOp | None = None
    put: PutOp | None = None
    delete: DeleteOp | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "OpIn":
        if sum(op is not None for op in (self.range, self.put, self.delete)) != 1:
            raise ValueError("an operation holds exactly one of range, put and delete")
        return self


class CompareIn(Body):
    """A condition: the key's target compared with the operand field that matches the target."""

    key: str
    target: Literal["VERSION", "CREATE", "MOD", "VALUE"]
    result: Literal["EQUAL", "NOT_EQUAL", "GREATER", "LESS"] = "EQUAL"
    value: str | None = None
    value_base64: str | None = None
    version: int | None = None
    create_revision: int | None = None
    mod_revision: int | None = None


class TxnBody(Body):
    """A transaction: if every comparison holds run success, else failure."""

    compare: list[CompareIn] = []
    success: list[OpIn] = []
    failure: list[OpIn] = []


class RangeOut(Result):
    """The result of a read in a transaction."""

    items: list[KeyValueOut]
    count: int
    more: bool


class OpOut(Result):
    """The result of one operation (the member named like the operation is set)."""

    range: RangeOut | None = None
    put: PutOut | None = None
    delete: DeleteOut | None = None


class TxnOut(Result):
    """Which branch ran, and what each of its operations returned."""

    revision: int
    succeeded: bool
    responses: list[OpOut]


class StatusOut(Result):
    """This member, its Raft log and its store."""

    member_id: int
    leader: int
    role: str
    raft_term: int
    raft_index: int
    revision: int
    version: str
    db_size_bytes: int


def _bytes(text: str | None) -> bytes:
    return (text or "").encode()


def _value(text: str | None, encoded: str | None) -> bytes:
    """The bytes of exactly one of `value` (text) and `value_base64`."""
    if (text is None) == (encoded is None):
        raise InvalidArgument("give exactly one of value and value_base64", {"field": "value"})
    if encoded is None:
        return _bytes(text)
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise InvalidArgument("value_base64 is not valid base64", {"field": "value_base64"}) from None


def kv_out(kv: core.KeyValue) -> KeyValueOut:
    """A pair as JSON: text where it is UTF-8, base64 where it is not."""
    try:
        text, encoded = kv.value.decode(), None
    except UnicodeDecodeError:
        text, encoded = None, base64.b64encode(kv.value).decode()
    return KeyValueOut(
        key=kv.key.decode(errors="backslashreplace"), value=text, value_base64=encoded,
        create_revision=kv.create_revision, mod_revision=kv.mod_revision, version=kv.version,
    )


def _put_out(result: core.PutResult) -> PutOut:
    return PutOut(revision=result.revision, prev_kv=kv_out(result.prev_kv) if result.prev_kv else None)


def _delete_out(result: core.DeleteResult) -> DeleteOut:
    return DeleteOut(revision=result.revision, deleted=result.deleted,
                     prev_kvs=[kv_out(kv) for kv in result.prev_kvs])


def _op(op: OpIn) -> core.Op:
    if op.put is not None:
        return core.PutRequest(_bytes(op.put.key), _value(op.put.value, op.put.value_base64), op.put.prev_kv)
    if op.delete is not None:
        d = op.delete
        return core.DeleteRangeRequest(_bytes(d.key), _bytes(d.range_end), d.prefix, d.prev_kv)
    r = op.range
    return core.RangeRequest(_bytes(r.key), _bytes(r.range_end), r.prefix, r.limit,
                             keys_only=r.keys_only, count_only=r.count_only)


def _compare(c: CompareIn) -> core.Compare:
    target = core.CompareTarget(c.target)
    if target is core.CompareTarget.VALUE:
        given = c.value is not None or c.value_base64 is not None
        operand: int | bytes | None = _value(c.value, c.value_base64) if given else None
    else:
        operand = getattr(c, core.OPERAND_FIELD[target])
    return core.Compare(_bytes(c.key), target, core.CompareResult(c.result), operand)


def _op_out(result: core.OpResult) -> OpOut:
    if isinstance(result, core.PutResult):
        return OpOut(put=_put_out(result))
    if isinstance(result, core.DeleteResult):
        return OpOut(delete=_delete_out(result))
    return OpOut(range=RangeOut(items=[kv_out(kv) for kv in result.kvs], count=result.count, more=result.more))


def routes(kv: core.KVCore) -> RouteTable:
    """ChainFire's REST routes over kv."""
    table = RouteTable()

    @table.get(KEY, "Read one key", query=GetQuery, response=KeyValueOut, rpc=KV + "Range", permission=READ)
    async def get_key(request: web.Request, key: str, query: GetQuery) -> KeyValueOut:
        result = await kv.range(core.RangeRequest(_bytes(key), revision=query.revision,
                                                  serializable=query.serializable))
        if not result.kvs:
            raise NotFound(f"key {key!r} not found", {"key": key})
        return kv_out(result.kvs[0])

    async def put(key: str, body: PutBody) -> PutOut:
        value = _value(body.value, body.value_base64)
        return _put_out(await kv.put(core.PutRequest(_bytes(key), value, body.prev_kv)))

    @table.put(KEY, "Write one key", body=PutBody, response=PutOut, rpc=KV + "Put", permission=WRITE)
    async def put_key(request: web.Request, key: str, body: PutBody) -> PutOut:
        return await put(key, body)

    @table.post(KEY + "/put", "Write one key (the same as PUT on the key)", body=PutBody, response=PutOut,
                rpc=KV + "Put", permission=WRITE)
    async def post_put_key(request: web.Request, key: str, body: PutBody) -> PutOut:
        return await put(key, body)

    async def delete(key: str, options: DeleteOptions) -> DeleteOut:
        request = core.DeleteRangeRequest(_bytes(key), _bytes(options.range_end), options.prefix, options.prev_kv)
        return _delete_out(await kv.delete_range(request))

    @table.delete(KEY, "Delete a key, a prefix or a range", query=DeleteOptions, response=DeleteOut,
                  rpc=KV + "DeleteRange", permission=WRITE)
    async def delete_key(request: web.Request, key: str, query: DeleteOptions) -> DeleteOut:
        return await delete(key, query)

    @table.post(KEY + "/delete", "Delete a key, a prefix or a range (the same as DELETE)",
                body=DeleteBody, response=DeleteOut, rpc=KV + "DeleteRange", permission=WRITE)
    async def post_delete_key(request: web.Request, key: str, body: DeleteBody) -> DeleteOut:
        return await delete(key, body)

    @table.get("/api/v1/kv", "List keys: a prefix or a range, paginated", query=ListQuery, response=ListOut,
               rpc=KV + "Range", permission=READ)
    async def list_keys(request: web.Request, query: ListQuery) -> ListOut:
        if query.prefix is not None and (query.key is not None or query.range_end is not None):
            raise InvalidArgument("give either prefix or key/range_end, not both", {"field": "prefix"})
        if query.key is None and query.range_end is not None:
            raise InvalidArgument("range_end needs key", {"field": "key"})
        if query.prefix is not None or query.key is None:
            span = dict(key=_bytes(query.prefix), prefix=True)
        else:
            span = dict(key=_bytes(query.key), range_end=_bytes(query.range_end))
        result = await kv.range(core.RangeRequest(
            **span, limit=paging.page_size(query.page_size), revision=query.revision,
            keys_only=query.keys_only, count_only=query.count_only,
            serializable=query.serializable, page_token=query.page_token,
        ))
        return ListOut(items=[kv_out(x) for x in result.kvs], next_page_token=result.next_page_token,
                       count=result.count, revision=result.revision)

    @table.post("/api/v1/txn", "Run a transaction: compare, then success or failure operations",
                body=TxnBody, response=TxnOut, rpc=KV + "Txn", permission=WRITE)
    async def txn(request: web.Request, body: TxnBody) -> TxnOut:
        result = await kv.txn(core.TxnRequest(
            compare=tuple(_compare(c) for c in body.compare),
            success=tuple(_op(op) for op in body.success),
            failure=tuple(_op(op) for op in body.failure),
        ))
        return TxnOut(revision=result.revision, succeeded=result.succeeded,
                      responses=[_op_out(r) for r in result.responses])

    @table.get("/api/v1/cluster/status", "This member, the leader, Raft term and index, revision",
               response=StatusOut, rpc="photoncloud.chainfire.v1.Cluster/Status",
               permission="chainfire:cluster:read")
    async def cluster_status(request: web.Request) -> StatusOut:
        return StatusOut(**(await kv.status()).__dict__)

    return table
