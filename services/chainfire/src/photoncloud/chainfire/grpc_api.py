"""ChainFire's gRPC adapter: protobuf in, `await core.x(...)` (in the caller's keyspace), protobuf out.
The REST-shaped RPCs (Get, List, Write, ...) are also the REST routes (the gateway calls them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from photoncloud.chainfire.v1 import kv_pb2 as pb
from photoncloud.chainfire.v1 import kv_pb2_grpc as pb_grpc
from photoncloud.common import paging
from photoncloud.common.server import GrpcService, grpc_services
from photoncloud.common.streams import StreamGuard, watch_guard

from . import convert, core, keyspace

Context = grpc.aio.ServicerContext


def _header(kv: keyspace.ScopedKV, revision: int) -> pb.ResponseHeader:
    status = kv.log_status()
    return pb.ResponseHeader(revision=revision, member_id=status.member_id, raft_term=status.term)


class KVServicer(pb_grpc.KVServicer):
    """photoncloud.chainfire.v1.KV over the core."""

    def __init__(self, kv: keyspace.ScopedKV):
        self.kv = kv

    def range_response(self, result: core.RangeResult) -> pb.RangeResponse:
        """A range result."""
        return pb.RangeResponse(header=_header(self.kv, result.revision), kvs=[convert.kv_pb(kv) for kv in result.kvs],
                                more=result.more, count=result.count, next_page_token=result.next_page_token)

    def put_response(self, result: core.PutResult) -> pb.PutResponse:
        """A put result."""
        return pb.PutResponse(header=_header(self.kv, result.revision),
                              prev_kv=convert.kv_pb(result.prev_kv) if result.prev_kv else None)

    def delete_response(self, result: core.DeleteResult) -> pb.DeleteRangeResponse:
        """A delete result."""
        return pb.DeleteRangeResponse(header=_header(self.kv, result.revision), deleted=result.deleted,
                                      prev_kvs=[convert.kv_pb(kv) for kv in result.prev_kvs])

    def op_response(self, result: core.OpResult) -> pb.ResponseOp:
        """A transaction operation's result."""
        if isinstance(result, core.PutResult):
            return pb.ResponseOp(response_put=self.put_response(result))
        if isinstance(result, core.DeleteResult):
            return pb.ResponseOp(response_delete_range=self.delete_response(result))
        return pb.ResponseOp(response_range=self.range_response(result))

    async def Range(self, request: pb.RangeRequest, context: Context) -> pb.RangeResponse:
        return self.range_response(await self.kv.range(convert.range_request(request)))

    async def Put(self, request: pb.PutRequest, context: Context) -> pb.PutResponse:
        return self.put_response(await self.kv.put(convert.put_request(request)))

    async def DeleteRange(self, request: pb.DeleteRangeRequest, context: Context) -> pb.DeleteRangeResponse:
        return self.delete_response(await self.kv.delete_range(convert.delete_request(request)))

    async def Txn(self, request: pb.TxnRequest, context: Context) -> pb.TxnResponse:
        result = await self.kv.txn(convert.txn_request(request))
        return pb.TxnResponse(header=_header(self.kv, result.revision), succeeded=result.succeeded,
                              responses=[self.op_response(r) for r in result.responses])

    async def Compact(self, request: pb.CompactionRequest, context: Context) -> pb.CompactionResponse:
        result = await self.kv.compact(core.CompactRequest(request.revision))
        return pb.CompactionResponse(header=_header(self.kv, result.revision), compact_revision=result.compact_revision)

    async def Get(self, request: pb.GetRequest, context: Context) -> pb.TextKeyValue:
        return convert.found(request, await self.kv.range(convert.get_request(request)))

    async def List(self, request: pb.ListRequest, context: Context) -> pb.ListResponse:
        return convert.listing(await self.kv.range(convert.list_request(request)))

    async def Write(self, request: pb.WriteRequest, context: Context) -> pb.WriteResponse:
        return convert.written(await self.kv.put(convert.write_request(request)))

    async def Delete(self, request: pb.DeleteRequest, context: Context) -> pb.DeleteResponse:
        return convert.deleted(await self.kv.delete_range(convert.text_delete_request(request)))

    async def Transact(self, request: pb.TransactRequest, context: Context) -> pb.TransactResponse:
        return convert.transacted(await self.kv.txn(convert.transact_request(request)))

    async def CompactHistory(self, request: pb.CompactionRequest, context: Context) -> pb.CompactHistoryResponse:
        result = await self.kv.compact(core.CompactRequest(request.revision))
        return pb.CompactHistoryResponse(revision=result.revision, compact_revision=result.compact_revision)


class WatchServicer(pb_grpc.WatchServicer):
    """photoncloud.chainfire.v1.Watch over the core: each watch counts against its caller's limit
    and ends (UNAUTHENTICATED) when its token expires or is revoked."""

    def __init__(self, kv: keyspace.ScopedKV, streams: StreamGuard):
        self.kv, self.streams = kv, streams

    async def Watch(self, request: pb.WatchRequest, context: Context) -> AsyncIterator[pb.WatchResponse]:
        async with self.streams.hold():
            watch = await self.kv.watch(core.WatchRequest(request.key, request.range_end, request.prefix,
                                                          request.start_revision, request.prev_kv))
            try:
                # The first response confirms the watch is in place (etcd's "created" response).
                yield pb.WatchResponse(header=_header(self.kv, watch.revision))
                async for batch in self.streams.until_token_ends(watch):
                    yield pb.WatchResponse(header=_header(self.kv, batch.revision),
                                           events=[convert.event_pb(e) for e in batch.events])
            finally:
                watch.close()


class LeaseServicer(pb_grpc.LeaseServicer):
    """photoncloud.chainfire.v1.Lease over the core."""

    def __init__(self, kv: keyspace.ScopedKV):
        self.kv = kv

    async def Grant(self, request: pb.LeaseGrantRequest, context: Context) -> pb.LeaseGrantResponse:
        result = await self.kv.grant_lease(request.ttl, request.id)
        return pb.LeaseGrantResponse(header=_header(self.kv, result.revision), id=result.id, ttl=result.ttl)

    async def Revoke(self, request: pb.LeaseRevokeRequest, context: Context) -> pb.LeaseRevokeResponse:
        result = await self.kv.revoke_lease(request.id)
        return pb.LeaseRevokeResponse(header=_header(self.kv, result.revision))

    async def KeepAlive(self, request: pb.LeaseKeepAliveRequest, context: Context) -> pb.LeaseKeepAliveResponse:
        result = await self.kv.keep_alive(request.id)
        return pb.LeaseKeepAliveResponse(header=_header(self.kv, result.revision), id=result.id, ttl=result.ttl)

    async def TimeToLive(self, request: pb.LeaseTimeToLiveRequest, context: Context) -> pb.LeaseTimeToLiveResponse:
        result = await self.kv.time_to_live(request.id, request.keys)
        return pb.LeaseTimeToLiveResponse(header=_header(self.kv, result.revision), id=result.id, ttl=result.ttl,
                                          granted_ttl=result.granted_ttl, keys=result.keys)

    async def Leases(self, request: pb.LeaseLeasesRequest, context: Context) -> pb.LeaseLeasesResponse:
        result = await self.kv.leases(paging.page_size(request.page_size), request.page_token)
        return pb.LeaseLeasesResponse(header=_header(self.kv, result.revision),
                                      leases=[pb.LeaseStatus(id=i) for i in result.ids],
                                      next_page_token=result.next_page_token)

    async def Create(self, request: pb.LeaseGrantRequest, context: Context) -> pb.LeaseInfo:
        result = await self.kv.grant_lease(request.ttl, request.id)
        return pb.LeaseInfo(id=result.id, ttl=result.ttl, revision=result.revision)

    async def List(self, request: pb.LeaseLeasesRequest, context: Context) -> pb.LeaseList:
        result = await self.kv.leases(paging.page_size(request.page_size), request.page_token)
        return pb.LeaseList(items=[pb.LeaseStatus(id=i) for i in result.ids], next_page_token=result.next_page_token,
                            revision=result.revision)

    async def Get(self, request: pb.LeaseTimeToLiveRequest, context: Context) -> pb.LeaseTimeToLive:
        result = await self.kv.time_to_live(request.id, request.keys)
        return pb.LeaseTimeToLive(id=result.id, ttl=result.ttl, granted_ttl=result.granted_ttl,
                                  keys=[convert.text(k) for k in result.keys], revision=result.revision)

    async def Delete(self, request: pb.LeaseRevokeRequest, context: Context) -> pb.LeaseRevoked:
        result = await self.kv.revoke_lease(request.id)
        return pb.LeaseRevoked(id=result.id, revision=result.revision)

    async def Renew(self, request: pb.LeaseKeepAliveRequest, context: Context) -> pb.LeaseInfo:
        result = await self.kv.keep_alive(request.id)
        return pb.LeaseInfo(id=result.id, ttl=result.ttl, revision=result.revision)


class ClusterServicer(pb_grpc.ClusterServicer):
    """photoncloud.chainfire.v1.Cluster over the core."""

    def __init__(self, kv: keyspace.ScopedKV):
        self.kv = kv

    def header(self) -> pb.ResponseHeader:
        """The header of a membership response: revision 0, since no key was read."""
        return _header(self.kv, 0)

    async def Status(self, request: pb.StatusRequest, context: Context) -> pb.StatusResponse:
        status = await self.kv.status()
        header = pb.ResponseHeader(revision=status.revision, member_id=status.member_id, raft_term=status.raft_term)
        return pb.StatusResponse(header=header, **status.__dict__)

    async def MemberList(self, request: pb.MemberListRequest, context: Context) -> pb.MemberListResponse:
        return pb.MemberListResponse(header=self.header(), members=convert.members_pb(self.kv.members()))

    async def MemberAdd(self, request: pb.MemberAddRequest, context: Context) -> pb.MemberAddResponse:
        members = convert.members_pb(await self.kv.add_member(request.peer_address))
        added = next(m for m in members if m.peer_address == request.peer_address)
        return pb.MemberAddResponse(header=self.header(), member=added, members=members)

    async def MemberRemove(self, request: pb.MemberRemoveRequest, context: Context) -> pb.MemberRemoveResponse:
        members = convert.members_pb(await self.kv.remove_member(request.id))
        return pb.MemberRemoveResponse(header=self.header(), members=members)

    async def GetStatus(self, request: pb.StatusRequest, context: Context) -> pb.ClusterStatus:
        return pb.ClusterStatus(**(await self.kv.status()).__dict__)

    async def ListMembers(self, request: pb.MemberListRequest, context: Context) -> pb.Members:
        return convert.members(self.kv.members())

    async def AddMember(self, request: pb.MemberAddRequest, context: Context) -> pb.Members:
        return convert.members(await self.kv.add_member(request.peer_address))

    async def RemoveMember(self, request: pb.MemberRemoveRequest, context: Context) -> pb.Members:
        return convert.members(await self.kv.remove_member(request.id))


def services(kv: core.KVCore, streams: StreamGuard | None = None) -> list[GrpcService]:
    """ChainFire's gRPC services over kv, each call in its token's keyspace; watches go through streams."""
    scoped = keyspace.scoped(kv)
    return grpc_services(pb, pb_grpc, {
        "KV": KVServicer(scoped),
        "Watch": WatchServicer(scoped, streams or watch_guard()),
        "Lease": LeaseServicer(scoped),
        "Cluster": ClusterServicer(scoped),
    })
