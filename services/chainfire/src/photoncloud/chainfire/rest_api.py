"""ChainFire's REST adapter: JSON in, `await core.x(...)`, JSON out. Keys and values are UTF-8 text
(`value_base64` carries a value that is not)."""

from __future__ import annotations

import base64
from typing import Literal

from aiohttp import web
from pydantic import Field, model_validator

from photoncloud.common import paging, sse
from photoncloud.common.auth import OPERATOR, TENANT
from photoncloud.common.errors import InvalidArgument, NotFound
from photoncloud.common.models import Body, Query, Result, from_base64
from photoncloud.common.rest import RouteTable
from photoncloud.common.streams import StreamGuard, watch_guard

from . import core, keyspace

KEY = "/api/v1/kv/{key:.+}"
KV = "photoncloud.chainfire.v1.KV/"
READ, WRITE = "chainfire:kv:read", "chainfire:kv:write"
LEASE = "photoncloud.chainfire.v1.Lease/"
LEASES_READ, LEASES_WRITE = "chainfire:leases:read", "chainfire:leases:write"
CLUSTER = "photoncloud.chainfire.v1.Cluster/"
CLUSTER_READ, CLUSTER_MANAGE = "chainfire:cluster:read", "chainfire:cluster:manage"


class KeyValueOut(Result):
    """A key-value pair with its MVCC revisions."""

    key: str
    value: str | None = Field(description="the value as UTF-8 text (null if it is not UTF-8)")
    value_base64: str | None = Field(None, description="the value in base64, set only when it is not UTF-8")
    create_revision: int
    mod_revision: int
    version: int
    lease: int = Field(0, description="the lease the key is attached to (0: none)")


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
    lease: int = Field(0, description="attach the key to this lease (0: none)")


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
    lease: int = 0


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
    def _exactly_one(self) -> OpIn:
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


class MemberOut(Result):
    """A member of the cluster."""

    id: int = Field(description="a hash of the peer address, the same on every member")
    peer_address: str
    client_urls: dict[str, str] = Field(description='"rest" (URL) and "grpc" (host:port), once published')
    is_leader: bool


class MembersOut(Result):
    """Every member of the cluster."""

    members: list[MemberOut]


class MemberAddBody(Body):
    """The member to add (started first, with the current members as its peers)."""

    peer_address: str = Field(description="host:port where the other members reach it")


def members_out(members: list[core.Member]) -> MembersOut:
    """Members for the REST API."""
    return MembersOut(members=[MemberOut(id=m.member_id, peer_address=m.peer_address,
                                         client_urls=dict(m.client_urls), is_leader=m.is_leader)
                               for m in members])


class CompactBody(Body):
    """The revision to compact at."""

    revision: int = Field(description="forget the history before this revision")
    physical: bool = Field(False, description="accepted for etcd compatibility; compaction is always physical")


class CompactOut(Result):
    """The store's revision and its new compact revision."""

    revision: int
    compact_revision: int


class WatchQuery(Query):
    """What to watch (one key, a prefix, or [key, range_end)) and from which revision."""

    key: str = Field(description="the key, the prefix (with prefix=true) or the start of the range")
    prefix: bool = Field(False, description="watch every key that starts with key")
    range_end: str | None = Field(None, description="watch [key, range_end); \\u0000: every key from key on")
    start_revision: int = Field(0, description="send the changes from this revision on (0: from now)")
    prev_kv: bool = Field(False, description="send each event with the pair as it was before")
    timeout_seconds: float = Field(0, ge=0, description="end the stream after this long (0: never)")


class EventOut(Result):
    """One change: a PUT or a DELETE (whose kv holds the key and the revision of the delete)."""

    type: Literal["PUT", "DELETE"]
    kv: KeyValueOut
    prev_kv: KeyValueOut | None = None


class LeaseGrantBody(Body):
    """A lease to grant."""

    ttl: int = Field(description="seconds the lease lives without a keep-alive")
    id: int = Field(0, description="the lease's id (0: the store picks one)")


class LeaseOut(Result):
    """A lease granted or kept alive: its id and ttl."""

    id: int
    ttl: int
    revision: int


class LeaseRevokeOut(Result):
    """The lease revoked, and the revision that deleted its keys."""

    id: int
    revision: int


class TimeToLiveQuery(Query):
    """Options of a lease read."""

    keys: bool = Field(False, description="also list the keys attached to the lease")


class TimeToLiveOut(Result):
    """A lease's remaining and granted ttl, and (with keys=true) its keys."""

    id: int
    ttl: int = Field(description="seconds left")
    granted_ttl: int
    keys: list[str]
    revision: int


class LeaseListQuery(Query):
    """A page of leases."""

    page_size: int = Field(0, description=f"leases per page (default {paging.DEFAULT_PAGE_SIZE})")
    page_token: str = ""


class LeaseItem(Result):
    """A lease in a listing."""

    id: int


class LeaseListOut(Result):
    """A page of leases, by id."""

    items: list[LeaseItem]
    next_page_token: str
    revision: int


def _path_id(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"{what} id must be an integer", {"field": "id"}) from None


def _lease_id(text: str) -> int:
    return _path_id(text, "lease")


def _bytes(text: str | None) -> bytes:
    return (text or "").encode()


def _value(text: str | None, encoded: str | None) -> bytes:
    """The bytes of exactly one of `value` (text) and `value_base64`."""
    if (text is None) == (encoded is None):
        raise InvalidArgument("give exactly one of value and value_base64", {"field": "value"})
    if encoded is None:
        return _bytes(text)
    return from_base64(encoded, "value_base64")


def kv_out(kv: core.KeyValue) -> KeyValueOut:
    """A pair as JSON: text where it is UTF-8, base64 where it is not."""
    try:
        text, encoded = kv.value.decode(), None
    except UnicodeDecodeError:
        text, encoded = None, base64.b64encode(kv.value).decode()
    return KeyValueOut(
        key=kv.key.decode(errors="backslashreplace"), value=text, value_base64=encoded,
        create_revision=kv.create_revision, mod_revision=kv.mod_revision, version=kv.version, lease=kv.lease,
    )


def event_out(event: core.Event) -> EventOut:
    """An event as JSON."""
    return EventOut(type=event.type.value, kv=kv_out(event.kv),
                    prev_kv=kv_out(event.prev_kv) if event.prev_kv else None)


def _put_out(result: core.PutResult) -> PutOut:
    return PutOut(revision=result.revision, prev_kv=kv_out(result.prev_kv) if result.prev_kv else None)


def _delete_out(result: core.DeleteResult) -> DeleteOut:
    return DeleteOut(revision=result.revision, deleted=result.deleted,
                     prev_kvs=[kv_out(kv) for kv in result.prev_kvs])


def _op(op: OpIn) -> core.Op:
    if op.put is not None:
        return core.PutRequest(_bytes(op.put.key), _value(op.put.value, op.put.value_base64), op.put.prev_kv,
                               op.put.lease)
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


def routes(kv: core.KVCore, heartbeat_seconds: float | None = None, streams: StreamGuard | None = None) -> RouteTable:
    """ChainFire's REST routes over kv, each call in its token's keyspace (watch streams send a
    heartbeat when idle that long, and go through streams: capped per caller, ended with the token)."""
    table = RouteTable()
    kv = keyspace.scoped(kv)
    streams = streams or watch_guard()

    @table.get(KEY, "Read one key", query=GetQuery, response=KeyValueOut, rpc=KV + "Range", permission=READ, who=TENANT)
    async def get_key(request: web.Request, key: str, query: GetQuery) -> KeyValueOut:
        result = await kv.range(core.RangeRequest(_bytes(key), revision=query.revision,
                                                  serializable=query.serializable))
        if not result.kvs:
            raise NotFound(f"key {key!r} not found", {"key": key})
        return kv_out(result.kvs[0])

    async def put(key: str, body: PutBody) -> PutOut:
        value = _value(body.value, body.value_base64)
        return _put_out(await kv.put(core.PutRequest(_bytes(key), value, body.prev_kv, body.lease)))

    @table.put(KEY, "Write one key", body=PutBody, response=PutOut, rpc=KV + "Put", permission=WRITE, who=TENANT)
    async def put_key(request: web.Request, key: str, body: PutBody) -> PutOut:
        return await put(key, body)

    @table.post(KEY + "/put", "Write one key (the same as PUT on the key)", body=PutBody, response=PutOut,
                rpc=KV + "Put", permission=WRITE, who=TENANT)
    async def post_put_key(request: web.Request, key: str, body: PutBody) -> PutOut:
        return await put(key, body)

    async def delete(key: str, options: DeleteOptions) -> DeleteOut:
        request = core.DeleteRangeRequest(_bytes(key), _bytes(options.range_end), options.prefix, options.prev_kv)
        return _delete_out(await kv.delete_range(request))

    @table.delete(KEY, "Delete a key, a prefix or a range", query=DeleteOptions, response=DeleteOut,
                  rpc=KV + "DeleteRange", permission=WRITE, who=TENANT)
    async def delete_key(request: web.Request, key: str, query: DeleteOptions) -> DeleteOut:
        return await delete(key, query)

    @table.post(KEY + "/delete", "Delete a key, a prefix or a range (the same as DELETE)",
                body=DeleteBody, response=DeleteOut, rpc=KV + "DeleteRange", permission=WRITE, who=TENANT)
    async def post_delete_key(request: web.Request, key: str, body: DeleteBody) -> DeleteOut:
        return await delete(key, body)

    @table.get("/api/v1/kv", "List keys: a prefix or a range, paginated", query=ListQuery, response=ListOut,
               rpc=KV + "Range", permission=READ, who=TENANT)
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
                body=TxnBody, response=TxnOut, rpc=KV + "Txn", permission=WRITE, who=TENANT)
    async def txn(request: web.Request, body: TxnBody) -> TxnOut:
        result = await kv.txn(core.TxnRequest(
            compare=tuple(_compare(c) for c in body.compare),
            success=tuple(_op(op) for op in body.success),
            failure=tuple(_op(op) for op in body.failure),
        ))
        return TxnOut(revision=result.revision, succeeded=result.succeeded,
                      responses=[_op_out(r) for r in result.responses])

    @table.post("/api/v1/compact", "Forget the history before a revision", body=CompactBody,
                response=CompactOut, rpc=KV + "Compact", permission=WRITE, who=OPERATOR)
    async def compact(request: web.Request, body: CompactBody) -> CompactOut:
        result = await kv.compact(core.CompactRequest(body.revision))
        return CompactOut(revision=result.revision, compact_revision=result.compact_revision)

    @table.get("/api/v1/watch", "Watch a key, a prefix or a range: server-sent events (text/event-stream)",
               query=WatchQuery, raw=True, rpc="photoncloud.chainfire.v1.Watch/Watch", permission=READ, who=TENANT)
    async def watch(request: web.Request, query: WatchQuery) -> web.StreamResponse:
        if query.prefix and query.range_end is not None:
            raise InvalidArgument("give either prefix or range_end, not both", {"field": "range_end"})
        async with streams.hold():
            opened = await kv.watch(core.WatchRequest(_bytes(query.key), _bytes(query.range_end), query.prefix,
                                                      query.start_revision, query.prev_kv))
            return await sse.stream(
                request, streams.watch(opened), f"watching from revision {opened.revision}",
                lambda batch: b"".join(sse.event(e.type.value.lower(), event_out(e).model_dump(mode="json"))
                                       for e in batch.events),
                query.timeout_seconds, heartbeat_seconds)

    @table.post("/api/v1/leases", "Grant a lease", body=LeaseGrantBody, response=LeaseOut,
                rpc=LEASE + "Grant", permission=LEASES_WRITE, who=TENANT)
    async def grant_lease(request: web.Request, body: LeaseGrantBody) -> LeaseOut:
        result = await kv.grant_lease(body.ttl, body.id)
        return LeaseOut(id=result.id, ttl=result.ttl, revision=result.revision)

    @table.get("/api/v1/leases", "List leases", query=LeaseListQuery, response=LeaseListOut,
               rpc=LEASE + "Leases", permission=LEASES_READ, who=TENANT)
    async def list_leases(request: web.Request, query: LeaseListQuery) -> LeaseListOut:
        result = await kv.leases(paging.page_size(query.page_size), query.page_token)
        return LeaseListOut(items=[LeaseItem(id=i) for i in result.ids], next_page_token=result.next_page_token,
                            revision=result.revision)

    @table.get("/api/v1/leases/{id}", "A lease's remaining ttl (and keys, with keys=true)",
               query=TimeToLiveQuery, response=TimeToLiveOut, rpc=LEASE + "TimeToLive", permission=LEASES_READ,
               who=TENANT)
    async def time_to_live(request: web.Request, id: str, query: TimeToLiveQuery) -> TimeToLiveOut:
        result = await kv.time_to_live(_lease_id(id), query.keys)
        return TimeToLiveOut(id=result.id, ttl=result.ttl, granted_ttl=result.granted_ttl,
                             keys=[k.decode(errors="backslashreplace") for k in result.keys],
                             revision=result.revision)

    @table.delete("/api/v1/leases/{id}", "Revoke a lease, deleting its keys", response=LeaseRevokeOut,
                  rpc=LEASE + "Revoke", permission=LEASES_WRITE, who=TENANT)
    async def revoke_lease(request: web.Request, id: str) -> LeaseRevokeOut:
        result = await kv.revoke_lease(_lease_id(id))
        return LeaseRevokeOut(id=result.id, revision=result.revision)

    @table.post("/api/v1/leases/{id}/keepalive", "Restart a lease's ttl", response=LeaseOut,
                rpc=LEASE + "KeepAlive", permission=LEASES_WRITE, who=TENANT)
    async def keep_alive(request: web.Request, id: str) -> LeaseOut:
        result = await kv.keep_alive(_lease_id(id))
        return LeaseOut(id=result.id, ttl=result.ttl, revision=result.revision)

    @table.get("/api/v1/cluster/status", "This member, the leader, Raft term and index, revision",
               response=StatusOut, rpc=CLUSTER + "Status", permission=CLUSTER_READ, who=OPERATOR)
    async def cluster_status(request: web.Request) -> StatusOut:
        return StatusOut(**(await kv.status()).__dict__)

    @table.get("/api/v1/cluster/members", "Every member, where clients reach it, and which one leads",
               response=MembersOut, rpc=CLUSTER + "MemberList", permission=CLUSTER_READ, who=OPERATOR)
    async def member_list(request: web.Request) -> MembersOut:
        return members_out(kv.members())

    @table.post("/api/v1/cluster/members", "Add a member by its peer address", body=MemberAddBody,
                response=MembersOut, rpc=CLUSTER + "MemberAdd", permission=CLUSTER_MANAGE, status=201, who=OPERATOR)
    async def member_add(request: web.Request, body: MemberAddBody) -> MembersOut:
        return members_out(await kv.add_member(body.peer_address))

    @table.delete("/api/v1/cluster/members/{id}", "Remove a member (not the leader)", response=MembersOut,
                  rpc=CLUSTER + "MemberRemove", permission=CLUSTER_MANAGE, who=OPERATOR)
    async def member_remove(request: web.Request, id: str) -> MembersOut:
        return members_out(await kv.remove_member(_path_id(id, "member")))

    return table
