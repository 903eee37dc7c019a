"""ChainFire's gRPC adapter: protobuf in, `await core.x(...)` (in the caller's keyspace), protobuf out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from photoncloud.chainfire.v1 import kv_pb2 as pb
from photoncloud.chainfire.v1 import kv_pb2_grpc as pb_grpc
from photoncloud.common import paging
from photoncloud.common.server import GrpcService
from photoncloud.common.streams import StreamGuard, watch_guard

from . import core, keyspace


def kv_pb(kv: core.KeyValue) -> pb.KeyValue:
    """A core pair as protobuf."""
    return pb.KeyValue(key=kv.key, value=kv.value, create_revision=kv.create_revision,
                       mod_revision=kv.mod_revision, version=kv.version, lease=kv.lease)


def event_pb(event: core.Event) -> pb.Event:
    """A core event as protobuf."""
    return pb.Event(type=pb.Event.EventType.Value(event.type.value), kv=kv_pb(event.kv),
                    prev_kv=kv_pb(event.prev_kv) if event.prev_kv else None)


def range_request(m: pb.RangeRequest) -> core.RangeRequest:
    """A protobuf range request for the core."""
    return core.RangeRequest(m.key, m.range_end, m.prefix, m.limit, m.revision, m.keys_only,
                             m.count_only, m.serializable, m.page_token)


def put_request(m: pb.PutRequest) -> core.PutRequest:
    """A protobuf put request for the core."""
    return core.PutRequest(m.key, m.value, m.prev_kv, m.lease)


def delete_request(m: pb.DeleteRangeRequest) -> core.DeleteRangeRequest:
    """A protobuf delete request for the core."""
    return core.DeleteRangeRequest(m.key, m.range_end, m.prefix, m.prev_kv)


def compare(m: pb.Compare) -> core.Compare:
    """A protobuf comparison for the core (the operand is None unless the target's field is set)."""
    target = core.CompareTarget(pb.Compare.CompareTarget.Name(m.target))
    field = core.OPERAND_FIELD[target]
    operand = getattr(m, field) if m.WhichOneof("target_union") == field else None
    return core.Compare(m.key, target, core.CompareResult(pb.Compare.CompareResult.Name(m.result)), operand)


def op(m: pb.RequestOp) -> core.Op:
    """A protobuf transaction operation for the core."""
    kind = m.WhichOneof("request")
    if kind == "request_put":
        return put_request(m.request_put)
    if kind == "request_delete_range":
        return delete_request(m.request_delete_range)
    return range_request(m.request_range)


class KVServicer(pb_grpc.KVServicer):
    """photoncloud.chainfire.v1.KV over the core."""

    def __init__(self, kv: keyspace.ScopedKV):
        self.kv = kv

    def header(self, revision: int) -> pb.ResponseHeader:
        """The header every response carries."""
        status = self.kv.log_status()
        return pb.ResponseHeader(revision=revision, member_id=status.member_id, raft_term=status.term)

    def range_response(self, result: core.RangeResult) -> pb.RangeResponse:
        """A core range result as protobuf."""
        return pb.RangeResponse(header=self.header(result.revision), kvs=[kv_pb(kv) for kv in result.kvs],
                                more=result.more, count=result.count, next_page_token=result.next_page_token)

    def put_response(self, result: core.PutResult) -> pb.PutResponse:
        """A core put result as protobuf."""
        return pb.PutResponse(header=self.header(result.revision),
                              prev_kv=kv_pb(result.prev_kv) if result.prev_kv else None)

    def delete_response(self, result: core.DeleteResult) -> pb.DeleteRangeResponse:
        """A core delete result as protobuf."""
        return pb.DeleteRangeResponse(header=self.header(result.revision), deleted=result.deleted,
                                      prev_kvs=[kv_pb(kv) for kv in result.prev_kvs])

    def op_response(self, result: core.OpResult) -> pb.ResponseOp:
        """A core transaction operation result as protobuf."""
        if isinstance(result, core.PutResult):
            return pb.ResponseOp(response_put=self.put_response(result))
        if isinstance(result, core.DeleteResult):
            return pb.ResponseOp(response_delete_range=self.delete_response(result))
        return pb.ResponseOp(response_range=self.range_response(result))

    async def Range(self, request: pb.RangeRequest, context: grpc.aio.ServicerContext) -> pb.RangeResponse:
        return self.range_response(await self.kv.range(range_request(request)))

    async def Put(self, request: pb.PutRequest, context: grpc.aio.ServicerContext) -> pb.PutResponse:
        return self.put_response(await self.kv.put(put_request(request)))

    async def DeleteRange(self, request: pb.DeleteRangeRequest,
                          context: grpc.aio.ServicerContext) -> pb.DeleteRangeResponse:
        return self.delete_response(await self.kv.delete_range(delete_request(request)))

    async def Txn(self, request: pb.TxnRequest, context: grpc.aio.ServicerContext) -> pb.TxnResponse:
        result = await self.kv.txn(core.TxnRequest(
            compare=tuple(compare(c) for c in request.compare),
            success=tuple(op(o) for o in request.success),
            failure=tuple(op(o) for o in request.failure),
        ))
        return pb.TxnResponse(header=self.header(result.revision), succeeded=result.succeeded,
                              responses=[self.op_response(r) for r in result.responses])

    async def Compact(self, request: pb.CompactionRequest,
                      context: grpc.aio.ServicerContext) -> pb.CompactionResponse:
        result = await self.kv.compact(core.CompactRequest(request.revision))
        return pb.CompactionResponse(header=self.header(result.revision), compact_revision=result.compact_revision)


def _header(kv: keyspace.ScopedKV, revision: int) -> pb.ResponseHeader:
    status = kv.log_status()
    return pb.ResponseHeader(revision=revision, member_id=status.member_id, raft_term=status.term)


class WatchServicer(pb_grpc.WatchServicer):
    """photoncloud.chainfire.v1.Watch over the core: each watch counts against its caller's limit
    and ends (UNAUTHENTICATED) when its token expires or is revoked."""

    def __init__(self, kv: keyspace.ScopedKV, streams: StreamGuard):
        self.kv, self.streams = kv, streams

    async def Watch(self, request: pb.WatchRequest,
                    context: grpc.aio.ServicerContext) -> AsyncIterator[pb.WatchResponse]:
        async with self.streams.hold():
            watch = await self.kv.watch(core.WatchRequest(request.key, request.range_end, request.prefix,
                                                          request.start_revision, request.prev_kv))
            try:
                # The first response confirms the watch is in place (etcd's "created" response).
                yield pb.WatchResponse(header=_header(self.kv, watch.revision))
                async for batch in self.streams.until_token_ends(watch):
                    yield pb.WatchResponse(header=_header(self.kv, batch.revision),
                                           events=[event_pb(e) for e in batch.events])
            finally:
                watch.close()


class LeaseServicer(pb_grpc.LeaseServicer):
    """photoncloud.chainfire.v1.Lease over the core."""

    def __init__(self, kv: keyspace.ScopedKV):
        self.kv = kv

    async def Grant(self, request: pb.LeaseGrantRequest, context: grpc.aio.ServicerContext) -> pb.LeaseGrantResponse:
        result = await self.kv.grant_lease(request.ttl, request.id)
        return pb.LeaseGrantResponse(header=_header(self.kv, result.revision), id=result.id, ttl=result.ttl)

    async def Revoke(self, request: pb.LeaseRevokeRequest,
                     context: grpc.aio.ServicerContext) -> pb.LeaseRevokeResponse:
        result = await self.kv.revoke_lease(request.id)
        return pb.LeaseRevokeResponse(header=_header(self.kv, result.revision))

    async def KeepAlive(self, request: pb.LeaseKeepAliveRequest,
                        context: grpc.aio.ServicerContext) -> pb.LeaseKeepAliveResponse:
        result = await self.kv.keep_alive(request.id)
        return pb.LeaseKeepAliveResponse(header=_header(self.kv, result.revision), id=result.id, ttl=result.ttl)

    async def TimeToLive(self, request: pb.LeaseTimeToLiveRequest,
                         context: grpc.aio.ServicerContext) -> pb.LeaseTimeToLiveResponse:
        result = await self.kv.time_to_live(request.id, request.keys)
        return pb.LeaseTimeToLiveResponse(header=_header(self.kv, result.revision), id=result.id, ttl=result.ttl,
                                          granted_ttl=result.granted_ttl, keys=result.keys)

    async def Leases(self, request: pb.LeaseLeasesRequest,
                     context: grpc.aio.ServicerContext) -> pb.LeaseLeasesResponse:
        result = await self.kv.leases(paging.page_size(request.page_size), request.page_token)
        return pb.LeaseLeasesResponse(header=_header(self.kv, result.revision),
                                      leases=[pb.LeaseStatus(id=i) for i in result.ids],
                                      next_page_token=result.next_page_token)


class ClusterServicer(pb_grpc.ClusterServicer):
    """photoncloud.chainfire.v1.Cluster over the core."""

    def __init__(self, kv: keyspace.ScopedKV):
        self.kv = kv

    async def Status(self, request: pb.StatusRequest, context: grpc.aio.ServicerContext) -> pb.StatusResponse:
        status = await self.kv.status()
        header = pb.ResponseHeader(revision=status.revision, member_id=status.member_id,
                                   raft_term=status.raft_term)
        return pb.StatusResponse(header=header, **status.__dict__)

    async def MemberList(self, request: pb.MemberListRequest,
                         context: grpc.aio.ServicerContext) -> pb.MemberListResponse:
        return pb.MemberListResponse(header=self.header(), members=members_pb(self.kv.members()))

    async def MemberAdd(self, request: pb.MemberAddRequest, context: grpc.aio.ServicerContext) -> pb.MemberAddResponse:
        members = members_pb(await self.kv.add_member(request.peer_address))
        added = next(m for m in members if m.peer_address == request.peer_address)
        return pb.MemberAddResponse(header=self.header(), member=added, members=members)

    async def MemberRemove(self, request: pb.MemberRemoveRequest,
                           context: grpc.aio.ServicerContext) -> pb.MemberRemoveResponse:
        members = members_pb(await self.kv.remove_member(request.id))
        return pb.MemberRemoveResponse(header=self.header(), members=members)

    def header(self) -> pb.ResponseHeader:
        """The header of a membership response: revision 0, since no key was read."""
        return _header(self.kv, 0)


def members_pb(members: list[core.Member]) -> list[pb.Member]:
    """Core members as protobuf."""
    return [pb.Member(id=m.member_id, peer_address=m.peer_address, client_urls=dict(m.client_urls),
                      is_leader=m.is_leader) for m in members]


def services(kv: core.KVCore, streams: StreamGuard | None = None) -> list[GrpcService]:
    """ChainFire's gRPC services over kv, each call in its token's keyspace; watches go through streams."""
    kv = keyspace.scoped(kv)
    streams = streams or watch_guard()
    descriptor = pb.DESCRIPTOR.services_by_name
    return [
        GrpcService(descriptor["KV"].full_name,
                    lambda server: pb_grpc.add_KVServicer_to_server(KVServicer(kv), server)),
        GrpcService(descriptor["Watch"].full_name,
                    lambda server: pb_grpc.add_WatchServicer_to_server(WatchServicer(kv, streams), server)),
        GrpcService(descriptor["Lease"].full_name,
                    lambda server: pb_grpc.add_LeaseServicer_to_server(LeaseServicer(kv), server)),
        GrpcService(descriptor["Cluster"].full_name,
                    lambda server: pb_grpc.add_ClusterServicer_to_server(ClusterServicer(kv), server)),
    ]
