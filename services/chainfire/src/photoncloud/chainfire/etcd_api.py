"""etcd's v3 gRPC API (etcdserverpb: KV, Watch, Lease, Cluster, Maintenance.Status, Auth.Authenticate)
over the same core as photoncloud.chainfire.v1, so that etcdctl and etcd client libraries work
against ChainFire's gRPC port.

A thin adapter like grpc_api: it converts etcd's messages, awaits the core and converts back. What
is etcd's own lives here: its message shapes, its error messages (clients match on them), the
watch stream's multiplexing, and answering Authenticate by checking the credentials with IAM.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import grpc

from photoncloud.common import envelope, gateway, request_id, tls
from photoncloud.common.errors import (Code, FailedPrecondition, InvalidArgument, NotFound, ServiceError,
                                       Unauthenticated, Unavailable, Unimplemented)
from photoncloud.common.rpc import Access
from photoncloud.common.server import GrpcService
from photoncloud.common.streams import StreamGuard, watch_guard
from photoncloud.etcd.v3 import kv_pb2 as mvccpb
from photoncloud.etcd.v3 import rpc_pb2 as pb
from photoncloud.etcd.v3 import rpc_pb2_grpc as pb_grpc

from . import core, keyspace

# The etcd API level served: clients gate features on StatusResponse.version (ChainFire's own
# version is in photoncloud.chainfire.v1.Cluster/Status and /health).
ETCD_API_VERSION = "3.4.0"
IAM_TIMEOUT_SECONDS = 10
AUTH_FAILED = "etcdserver: authentication failed, invalid user ID or password"
COMPACTED = "etcdserver: mvcc: required revision has been compacted"
INVALID_TOKEN = "etcdserver: invalid auth token"  # etcd clients sign in again on this message

FUTURE = "etcdserver: mvcc: required revision is a future revision"

# The core's errors as etcd words them, told apart by code and details (etcd clients turn these
# exact messages back into their typed errors): a detail the core's error of that code carries,
# or its reason, with etcd's code and message.
ETCD_ERRORS: dict[tuple[Code, str], tuple[Code, str]] = {
    (Code.OUT_OF_RANGE, "compact_revision"): (Code.OUT_OF_RANGE, COMPACTED),
    (Code.OUT_OF_RANGE, "current_revision"): (Code.OUT_OF_RANGE, FUTURE),
    (Code.NOT_FOUND, "lease"): (Code.NOT_FOUND, "etcdserver: requested lease not found"),
    (Code.ALREADY_EXISTS, "lease"): (Code.FAILED_PRECONDITION, "etcdserver: lease already exists"),
    (Code.INVALID_ARGUMENT, core.KEY_REQUIRED): (Code.INVALID_ARGUMENT, "etcdserver: key is not provided"),
    (Code.INVALID_ARGUMENT, core.DUPLICATE_KEY):
        (Code.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"),
    (Code.INVALID_ARGUMENT, core.TOO_MANY_OPERATIONS):
        (Code.INVALID_ARGUMENT, "etcdserver: too many operations in txn request"),
    (Code.INVALID_ARGUMENT, core.TOO_LARGE): (Code.INVALID_ARGUMENT, "etcdserver: request is too large"),
}


def etcd_error(exc: ServiceError) -> ServiceError:
    """exc as etcd reports it (same details; etcd's code and message where etcd has its own)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    for mark in (details.get("reason"), *details):
        found = ETCD_ERRORS.get((exc.code, mark)) if isinstance(mark, str) else None
        if found is not None:
            return ServiceError(found[1], exc.details, code=found[0])
    return exc


async def token_bound(streams: StreamGuard, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """items until the caller's token expires or is revoked; then etcd's "invalid auth token", on which
    etcd's clients sign in again and resume (the reason, EXPIRED or REVOKED, in the details)."""
    try:
        async for item in streams.until_token_ends(items):
            yield item
    except Unauthenticated as exc:
        raise Unauthenticated(INVALID_TOKEN, exc.details) from None


@contextlib.contextmanager
def etcd_errors() -> Iterator[None]:
    """Re-raise the core's errors as etcd words them."""
    try:
        yield
    except ServiceError as exc:
        translated = etcd_error(exc)
        if translated is exc:
            raise
        raise translated from None


def kv_pb(kv: core.KeyValue) -> mvccpb.KeyValue:
    """A core pair as etcd's mvccpb.KeyValue (field by field: it is on every read's path)."""
    return mvccpb.KeyValue(key=kv.key, create_revision=kv.create_revision, mod_revision=kv.mod_revision,
                           version=kv.version, value=kv.value, lease=kv.lease)


def event_pb(event: core.Event) -> mvccpb.Event:
    """A core event as etcd's mvccpb.Event."""
    return mvccpb.Event(type=event.type.value, kv=kv_pb(event.kv),
                        prev_kv=kv_pb(event.prev_kv) if event.prev_kv else None)


_SORT_KEYS: dict[int, Callable[[core.KeyValue], Any]] = {
    pb.RangeRequest.KEY: lambda kv: kv.key,
    pb.RangeRequest.VERSION: lambda kv: kv.version,
    pb.RangeRequest.CREATE: lambda kv: kv.create_revision,
    pb.RangeRequest.MOD: lambda kv: kv.mod_revision,
    pb.RangeRequest.VALUE: lambda kv: kv.value,
}


class RangePlan:
    """An etcd Range as a core read, plus what etcd does after reading: filter, sort, then limit.

    The core reads in key order with a limit; any other order, or a revision filter, needs the
    whole range first (as etcd itself does), then the limit is applied here.
    """

    def __init__(self, m: pb.RangeRequest):
        self.m = m
        order = m.sort_order
        if order == pb.RangeRequest.NONE and m.sort_target != pb.RangeRequest.KEY:
            order = pb.RangeRequest.ASCEND  # etcd's rule: a sort target without an order ascends
        self.order = order
        self.filtered = any((m.min_mod_revision, m.max_mod_revision, m.min_create_revision, m.max_create_revision))
        self.native = not self.filtered and m.sort_target == pb.RangeRequest.KEY and order != pb.RangeRequest.DESCEND
        if m.limit < 0:
            raise InvalidArgument("limit must not be negative", {"field": "limit"})
        count_only = m.count_only and not self.filtered
        self.request = core.RangeRequest(m.key, m.range_end, False, m.limit if self.native else 0, m.revision,
                                         m.keys_only, count_only, m.serializable)

    def kvs(self, result: core.RangeResult) -> tuple[list[core.KeyValue], bool, int]:
        """The pairs etcd would return, whether more are left, and the count."""
        if self.native:
            return result.kvs, result.more, result.count
        m, kvs = self.m, result.kvs
        if self.filtered:
            kvs = [kv for kv in kvs
                   if (not m.min_mod_revision or kv.mod_revision >= m.min_mod_revision)
                   and (not m.max_mod_revision or kv.mod_revision <= m.max_mod_revision)
                   and (not m.min_create_revision or kv.create_revision >= m.min_create_revision)
                   and (not m.max_create_revision or kv.create_revision <= m.max_create_revision)]
        count = len(kvs) if self.filtered else result.count
        if self.order != pb.RangeRequest.NONE:
            kvs = sorted(kvs, key=_SORT_KEYS[self.m.sort_target], reverse=self.order == pb.RangeRequest.DESCEND)
        more = bool(m.limit) and len(kvs) > m.limit
        if m.count_only:
            return [], False, count
        return (kvs[:m.limit] if m.limit else kvs), more, count


def delete_request(m: pb.DeleteRangeRequest) -> core.DeleteRangeRequest:
    """An etcd delete for the core."""
    return core.DeleteRangeRequest(m.key, m.range_end, False, m.prev_kv)


def put_request(m: pb.PutRequest) -> core.PutRequest:
    """An etcd put for the core (the fields and their meaning are ChainFire's own)."""
    if m.ignore_value or m.ignore_lease:
        raise Unimplemented("etcdserver: ignore_value and ignore_lease are not supported")
    return core.PutRequest(m.key, m.value, m.prev_kv, m.lease)


def compare(m: pb.Compare) -> core.Compare:
    """An etcd comparison for the core (its targets and results number as ChainFire's do)."""
    if m.target == pb.Compare.LEASE or m.range_end:
        raise Unimplemented("etcdserver: LEASE comparisons and comparisons over a range are not supported")
    target = core.CompareTarget(pb.Compare.CompareTarget.Name(m.target))
    field = core.OPERAND_FIELD[target]
    operand = getattr(m, field) if m.WhichOneof("target_union") == field else None
    return core.Compare(m.key, target, core.CompareResult(pb.Compare.CompareResult.Name(m.result)), operand)


class Headers:
    """etcd's ResponseHeader: this member, the cluster, the Raft term, and a revision."""

    def __init__(self, kv: keyspace.ScopedKV):
        self.kv = kv
        self._cluster_id: int | None = None

    def cluster_id(self) -> int:
        """A hash of the member ids: the same on every member of one cluster (as in etcd)."""
        if self._cluster_id is None:
            ids = ",".join(str(m.member_id) for m in sorted(self.kv.members(), key=lambda m: m.member_id))
            self._cluster_id = int.from_bytes(hashlib.sha256(ids.encode()).digest()[:8], "big") >> 11
        return self._cluster_id

    def __call__(self, revision: int) -> pb.ResponseHeader:
        """The header of a response served at revision."""
        status = self.kv.log_status()
        return pb.ResponseHeader(cluster_id=self.cluster_id(), member_id=status.member_id, revision=revision,
                                 raft_term=status.term)

    async def current(self) -> pb.ResponseHeader:
        """The header at the store's current revision."""
        return self((await self.kv.status()).revision)


class KVServicer(pb_grpc.KVServicer):
    """etcdserverpb.KV over the core."""

    def __init__(self, kv: keyspace.ScopedKV, header: Headers):
        self.kv, self.header = kv, header

    def range_response(self, plan: RangePlan, result: core.RangeResult) -> pb.RangeResponse:
        """A core range result as etcd's."""
        kvs, more, count = plan.kvs(result)
        return pb.RangeResponse(header=self.header(result.revision), kvs=[kv_pb(kv) for kv in kvs], more=more,
                                count=count)

    def put_response(self, result: core.PutResult) -> pb.PutResponse:
        """A core put result as etcd's."""
        return pb.PutResponse(header=self.header(result.revision),
                              prev_kv=kv_pb(result.prev_kv) if result.prev_kv else None)

    def delete_response(self, result: core.DeleteResult) -> pb.DeleteRangeResponse:
        """A core delete result as etcd's."""
        return pb.DeleteRangeResponse(header=self.header(result.revision), deleted=result.deleted,
                                      prev_kvs=[kv_pb(kv) for kv in result.prev_kvs])

    async def Range(self, request: pb.RangeRequest, context: grpc.aio.ServicerContext) -> pb.RangeResponse:
        with etcd_errors():
            plan = RangePlan(request)
            return self.range_response(plan, await self.kv.range(plan.request))

    async def Put(self, request: pb.PutRequest, context: grpc.aio.ServicerContext) -> pb.PutResponse:
        with etcd_errors():
            return self.put_response(await self.kv.put(put_request(request)))

    async def DeleteRange(self, request: pb.DeleteRangeRequest,
                          context: grpc.aio.ServicerContext) -> pb.DeleteRangeResponse:
        with etcd_errors():
            return self.delete_response(await self.kv.delete_range(delete_request(request)))

    async def Txn(self, request: pb.TxnRequest, context: grpc.aio.ServicerContext) -> pb.TxnResponse:
        with etcd_errors():
            success, success_plans = self._ops(request.success)
            failure, failure_plans = self._ops(request.failure)
            result = await self.kv.txn(core.TxnRequest(tuple(compare(c) for c in request.compare), success, failure))
        plans = success_plans if result.succeeded else failure_plans
        responses = []
        for op_result, plan in zip(result.responses, plans):
            if isinstance(op_result, core.PutResult):
                responses.append(pb.ResponseOp(response_put=self.put_response(op_result)))
            elif isinstance(op_result, core.DeleteResult):
                responses.append(pb.ResponseOp(response_delete_range=self.delete_response(op_result)))
            elif plan is not None:  # a read's result has the plan of its read
                responses.append(pb.ResponseOp(response_range=self.range_response(plan, op_result)))
        return pb.TxnResponse(header=self.header(result.revision), succeeded=result.succeeded, responses=responses)

    @staticmethod
    def _ops(ops: Any) -> tuple[tuple[core.Op, ...], list[RangePlan | None]]:
        converted: list[core.Op] = []
        plans: list[RangePlan | None] = []
        for m in ops:
            kind = m.WhichOneof("request")
            if kind == "request_range":
                plan = RangePlan(m.request_range)
                converted.append(plan.request)
                plans.append(plan)
                continue
            if kind == "request_put":
                converted.append(put_request(m.request_put))
            elif kind == "request_delete_range":
                converted.append(delete_request(m.request_delete_range))
            elif kind == "request_txn":
                raise Unimplemented("etcdserver: nested transactions are not supported")
            else:
                raise InvalidArgument("a transaction operation is empty", {"field": "request"})
            plans.append(None)
        return tuple(converted), plans

    async def Compact(self, request: pb.CompactionRequest,
                      context: grpc.aio.ServicerContext) -> pb.CompactionResponse:
        with etcd_errors():
            result = await self.kv.compact(core.CompactRequest(request.revision))
        return pb.CompactionResponse(header=self.header(result.revision))


_END = object()  # the request stream ended: end the response stream


class WatchServicer(pb_grpc.WatchServicer):
    """etcdserverpb.Watch over the core: many watches on one stream, each under its watch_id and
    each counted against its caller's limit; the stream ends when its token does."""

    def __init__(self, kv: keyspace.ScopedKV, header: Headers, streams: StreamGuard):
        self.kv, self.header, self.streams = kv, header, streams

    async def Watch(self, requests: AsyncIterator[pb.WatchRequest],
                    context: grpc.aio.ServicerContext) -> AsyncIterator[pb.WatchResponse]:
        out: asyncio.Queue[Any] = asyncio.Queue()
        watches: dict[int, asyncio.Task] = {}
        next_id = 0

        async def receive() -> None:
            nonlocal next_id
            try:
                async for request in requests:
                    kind = request.WhichOneof("request_union")
                    if kind == "create_request":
                        create = request.create_request
                        watch_id = create.watch_id
                        if watch_id == 0:  # etcd's AutoWatchID: the next free id (the first is 0)
                            while next_id in watches:
                                next_id += 1
                            watch_id, next_id = next_id, next_id + 1
                        elif watch_id in watches:
                            out.put_nowait(pb.WatchResponse(header=await self.header.current(), watch_id=watch_id,
                                                            created=True, canceled=True,
                                                            cancel_reason="etcdserver: duplicate watch ID"))
                            continue
                        watches[watch_id] = asyncio.create_task(self._run(watch_id, create, out))
                    elif kind == "cancel_request":
                        watch_id = request.cancel_request.watch_id
                        task = watches.pop(watch_id, None)
                        if task is not None:
                            task.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await task
                            out.put_nowait(pb.WatchResponse(header=await self.header.current(), watch_id=watch_id,
                                                            canceled=True))
                    elif kind == "progress_request":
                        # Not tied to one watch: etcd answers with watch_id -1 and the current revision.
                        out.put_nowait(pb.WatchResponse(header=await self.header.current(), watch_id=-1))
            except Exception as exc:  # noqa: BLE001 - the stream's failure is reported by the main loop
                out.put_nowait(exc)
            finally:
                out.put_nowait(_END)

        async def responses() -> AsyncIterator[pb.WatchResponse]:
            while True:
                item = await out.get()
                if item is _END:
                    return  # the client closed its side: as etcd, end the stream
                if isinstance(item, BaseException):
                    raise item
                yield item

        receiver = asyncio.create_task(receive())
        try:
            async for response in token_bound(self.streams, responses()):
                yield response
        finally:
            receiver.cancel()
            for task in watches.values():
                task.cancel()
            await asyncio.gather(receiver, *watches.values(), return_exceptions=True)

    async def _run(self, watch_id: int, create: pb.WatchCreateRequest, out: asyncio.Queue) -> None:
        """One watch: acknowledge it, then send its events until it is canceled."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self.streams.hold())
                watch = await self.kv.watch(core.WatchRequest(create.key, create.range_end, False,
                                                              create.start_revision, create.prev_kv))
            except ServiceError as exc:
                # etcd acknowledges the watch, then cancels it (the stream's other watches go on); a
                # compacted start says where history begins, a watch over the limit names the limit.
                error = etcd_error(exc)
                header = await self.header.current()
                out.put_nowait(pb.WatchResponse(header=header, watch_id=watch_id, created=True))
                compacted = error.message == COMPACTED
                out.put_nowait(pb.WatchResponse(
                    header=header, watch_id=watch_id, canceled=True, cancel_reason=error.message,
                    compact_revision=int((exc.details or {}).get("compact_revision", 0)) if compacted else 0))
                return
            stack.callback(watch.close)
            await self._send(watch_id, create, watch, out)

    async def _send(self, watch_id: int, create: pb.WatchCreateRequest, watch: keyspace.ScopedWatch,
                    out: asyncio.Queue) -> None:
        """A watch's acknowledgement, then its events, until it or the service stops."""
        skip = {mvccpb.Event.PUT if f == pb.WatchCreateRequest.NOPUT else mvccpb.Event.DELETE for f in create.filters}
        out.put_nowait(pb.WatchResponse(header=self.header(watch.revision), watch_id=watch_id, created=True))
        async for batch in watch:
            events = [event_pb(e) for e in batch.events]
            events = [e for e in events if e.type not in skip]
            if events:
                out.put_nowait(pb.WatchResponse(header=self.header(batch.revision), watch_id=watch_id,
                                                events=events))
        # The core ended the watch: the service is stopping. UNAVAILABLE makes clients watch again elsewhere.
        out.put_nowait(Unavailable("etcdserver: server stopped"))


class LeaseServicer(pb_grpc.LeaseServicer):
    """etcdserverpb.Lease over the core."""

    def __init__(self, kv: keyspace.ScopedKV, header: Headers, streams: StreamGuard):
        self.kv, self.header, self.streams = kv, header, streams

    async def LeaseGrant(self, request: pb.LeaseGrantRequest,
                         context: grpc.aio.ServicerContext) -> pb.LeaseGrantResponse:
        with etcd_errors():
            if request.TTL > core.MAX_LEASE_TTL:
                raise ServiceError("etcdserver: too large lease TTL", code=Code.OUT_OF_RANGE)
            result = await self.kv.grant_lease(request.TTL, request.ID)
        return pb.LeaseGrantResponse(header=self.header(result.revision), ID=result.id, TTL=result.ttl)

    async def LeaseRevoke(self, request: pb.LeaseRevokeRequest,
                          context: grpc.aio.ServicerContext) -> pb.LeaseRevokeResponse:
        with etcd_errors():
            result = await self.kv.revoke_lease(request.ID)
        return pb.LeaseRevokeResponse(header=self.header(result.revision))

    async def LeaseKeepAlive(self, requests: AsyncIterator[pb.LeaseKeepAliveRequest],
                             context: grpc.aio.ServicerContext) -> AsyncIterator[pb.LeaseKeepAliveResponse]:
        # Not counted as a watch, but ended with its token like one: it would keep leases alive for good.
        async for response in token_bound(self.streams, self._keep_alive(requests)):
            yield response

    async def _keep_alive(self, requests: AsyncIterator[pb.LeaseKeepAliveRequest]
                          ) -> AsyncIterator[pb.LeaseKeepAliveResponse]:
        async for request in requests:
            try:
                result = await self.kv.keep_alive(request.ID)
            except NotFound:
                # etcd's answer for a lease that is gone (or another keyspace's): TTL 0 on the stream, not an error.
                yield pb.LeaseKeepAliveResponse(header=await self.header.current(), ID=request.ID, TTL=0)
                continue
            yield pb.LeaseKeepAliveResponse(header=self.header(result.revision), ID=result.id, TTL=result.ttl)

    async def LeaseTimeToLive(self, request: pb.LeaseTimeToLiveRequest,
                              context: grpc.aio.ServicerContext) -> pb.LeaseTimeToLiveResponse:
        try:
            result = await self.kv.time_to_live(request.ID, request.keys)
        except NotFound:
            # etcd's answer for a lease that is gone: TTL -1, not an error.
            return pb.LeaseTimeToLiveResponse(header=await self.header.current(), ID=request.ID, TTL=-1)
        return pb.LeaseTimeToLiveResponse(header=self.header(result.revision), ID=result.id, TTL=result.ttl,
                                          grantedTTL=result.granted_ttl, keys=result.keys)

    async def LeaseLeases(self, request: pb.LeaseLeasesRequest,
                          context: grpc.aio.ServicerContext) -> pb.LeaseLeasesResponse:
        result = await self.kv.leases()
        return pb.LeaseLeasesResponse(header=self.header(result.revision),
                                      leases=[pb.LeaseStatus(ID=i) for i in result.ids])


def _url(address: str) -> str:
    return address if "://" in address else f"http://{address}"


def _peer_address(url: str) -> str:
    """host:port of a peer URL (etcd's are http://host:port; ChainFire's peers speak Raft, not HTTP)."""
    return url.split("://", 1)[-1].rstrip("/")


def member_pb(member: core.Member) -> pb.Member:
    """A member as etcd lists it."""
    grpc_address = member.client_urls.get("grpc")
    return pb.Member(ID=member.member_id, name=member.peer_address or "default",
                     peerURLs=[_url(member.peer_address)] if member.peer_address else [],
                     # etcd clients connect to clientURLs with gRPC: the gRPC address, not REST.
                     clientURLs=[_url(grpc_address)] if grpc_address else [])


class ClusterServicer(pb_grpc.ClusterServicer):
    """etcdserverpb.Cluster over the core's membership."""

    def __init__(self, kv: keyspace.ScopedKV, header: Headers):
        self.kv, self.header = kv, header

    async def MemberList(self, request: pb.MemberListRequest,
                         context: grpc.aio.ServicerContext) -> pb.MemberListResponse:
        # As etcd's, membership headers carry no revision: no key was read.
        return pb.MemberListResponse(header=self.header(0), members=[member_pb(m) for m in self.kv.members()])

    async def MemberAdd(self, request: pb.MemberAddRequest, context: grpc.aio.ServicerContext) -> pb.MemberAddResponse:
        if request.isLearner:
            raise Unimplemented("etcdserver: learners are not supported")
        if len(request.peerURLs) != 1:
            raise InvalidArgument("give exactly one peer URL (http://host:port)", {"field": "peerURLs"})
        peer_address = _peer_address(request.peerURLs[0])
        members = await self.kv.add_member(peer_address)
        added = next(m for m in members if m.peer_address == peer_address)
        return pb.MemberAddResponse(header=self.header(0), member=member_pb(added),
                                    members=[member_pb(m) for m in members])

    async def MemberRemove(self, request: pb.MemberRemoveRequest,
                           context: grpc.aio.ServicerContext) -> pb.MemberRemoveResponse:
        members = await self.kv.remove_member(request.ID)
        return pb.MemberRemoveResponse(header=self.header(0), members=[member_pb(m) for m in members])


class MaintenanceServicer(pb_grpc.MaintenanceServicer):
    """etcdserverpb.Maintenance.Status over the core."""

    def __init__(self, kv: keyspace.ScopedKV, header: Headers):
        self.kv, self.header = kv, header

    async def Status(self, request: pb.StatusRequest, context: grpc.aio.ServicerContext) -> pb.StatusResponse:
        status = await self.kv.status()
        return pb.StatusResponse(header=self.header(status.revision), version=ETCD_API_VERSION,
                                 dbSize=status.db_size_bytes, dbSizeInUse=status.db_size_bytes, leader=status.leader,
                                 raftIndex=status.raft_index, raftTerm=status.raft_term,
                                 raftAppliedIndex=status.raft_index)


async def iam_login(iam_url: str, name: str, password: str) -> str:
    """An access token from IAM for name/password (etcd's auth error if IAM refuses them). A name
    `USER/PROJECT_ID` signs USER in for that project (its keyspace); a bare name, for the system."""
    user, _, project_id = name.partition("/")  # IAM's user names hold no "/"
    if not user or not password or (_ and not project_id):
        raise InvalidArgument(AUTH_FAILED)
    body: dict[str, Any] = {"grant_type": "password", "username": user, "password": password}
    if project_id:
        body["scope"] = {"project_id": project_id}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=IAM_TIMEOUT_SECONDS)) as session:
            url = f"{iam_url}/api/v1/auth/token"
            async with session.post(url, json=body, headers=request_id.outgoing_headers(),
                                    ssl=tls.http_ssl(url)) as response:  # https: verified against the CA
                reply = await response.json(content_type=None)
                status = response.status
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise Unavailable(f"cannot reach IAM to check the credentials: {exc}") from None
    if status in (400, 401, 403, 404):  # 404: no such project, told apart from a wrong password no more
        raise InvalidArgument(AUTH_FAILED)
    if status != 200:
        error = envelope.error_from_body(status, reply, f"IAM answered {status}")
        raise ServiceError(error.message, code=error.code)
    return reply["data"]["access_token"]


class AuthServicer(pb_grpc.AuthServicer):
    """etcdserverpb.Auth's login: IAM checks the user's password and its token becomes etcd's token."""

    def __init__(self, kv: keyspace.ScopedKV, header: Headers, iam_url: str | None):
        self.kv, self.header, self.iam_url = kv, header, iam_url

    async def AuthStatus(self, request: pb.AuthStatusRequest,
                         context: grpc.aio.ServicerContext) -> pb.AuthStatusResponse:
        return pb.AuthStatusResponse(header=await self.header.current(), enabled=self.iam_url is not None)

    async def Authenticate(self, request: pb.AuthenticateRequest,
                           context: grpc.aio.ServicerContext) -> pb.AuthenticateResponse:
        if self.iam_url is None:
            # etcd clients read this error as "go on without a token".
            raise FailedPrecondition("etcdserver: authentication is not enabled")
        token = await iam_login(self.iam_url, request.name, request.password)
        return pb.AuthenticateResponse(header=await self.header.current(), token=token)


def access() -> dict[str, Access]:
    """What calling each etcd method takes, as rpc.proto declares it (each method like its ChainFire
    counterpart); refused for want of a valid token with etcd's "invalid auth token", on which etcd's
    clients sign in again."""
    table: dict[str, Access] = {}
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method, declared in gateway.access_table(service).items():
            if declared is not None:
                table[method] = dataclasses.replace(declared, unauthenticated_message=INVALID_TOKEN)
    return table


def services(kv: core.KVCore, iam_url: str | None, streams: StreamGuard | None = None) -> list[GrpcService]:
    """etcd's v3 services over kv, each call in its token's keyspace; Authenticate asks IAM at iam_url
    (None: authentication is off); watches and keep-alive streams go through streams."""
    gates = access()
    scoped = keyspace.scoped(kv)
    streams = streams or watch_guard()
    header = Headers(scoped)
    servicers: dict[str, tuple[Any, Callable[[Any, grpc.aio.Server], None]]] = {
        "KV": (KVServicer(scoped, header), pb_grpc.add_KVServicer_to_server),
        "Watch": (WatchServicer(scoped, header, streams), pb_grpc.add_WatchServicer_to_server),
        "Lease": (LeaseServicer(scoped, header, streams), pb_grpc.add_LeaseServicer_to_server),
        "Cluster": (ClusterServicer(scoped, header), pb_grpc.add_ClusterServicer_to_server),
        "Maintenance": (MaintenanceServicer(scoped, header), pb_grpc.add_MaintenanceServicer_to_server),
        "Auth": (AuthServicer(scoped, header, iam_url), pb_grpc.add_AuthServicer_to_server),
    }
    result = []
    for name, (servicer, add) in servicers.items():
        full_name = pb.DESCRIPTOR.services_by_name[name].full_name
        # The descriptors' gates, each refusing a missing or bad token in etcd's words.
        result.append(GrpcService(full_name, functools.partial(add, servicer),
                                  {method: gate for method, gate in gates.items()
                                   if method.startswith(f"/{full_name}/")}))
    return result
