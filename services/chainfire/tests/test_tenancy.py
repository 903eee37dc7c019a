"""Each project works in a keyspace of its own, over REST, ChainFire's gRPC API and etcd's API:
project B's token cannot read, overwrite, delete, compare, watch or lease anything of project A's,
and the operator's (system) token sees both projects' keys under `/projects/<id>/`."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import grpc
import pytest

from photoncloud.chainfire.v1 import kv_pb2 as pb
from photoncloud.chainfire.v1 import kv_pb2_grpc as pb_grpc
from photoncloud.common.auth import ORG, PROJECT, Scope
from photoncloud.etcd.v3 import rpc_pb2 as etcd
from photoncloud.etcd.v3 import rpc_pb2_grpc as etcd_grpc

SECONDS = 10  # every wait is bounded by this
A, B = Scope(PROJECT, "org-1", "proj-a"), Scope(PROJECT, "org-1", "proj-b")


class Caller:
    """One token, over REST, ChainFire's gRPC API and etcd's."""

    def __init__(self, server, channel, token: str):
        self.base = f"http://127.0.0.1:{server.rest_port}/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.kv, self.leases = pb_grpc.KVStub(channel), pb_grpc.LeaseStub(channel)
        self.watches = pb_grpc.WatchStub(channel)
        self.etcd_kv, self.etcd_leases = etcd_grpc.KVStub(channel), etcd_grpc.LeaseStub(channel)
        self.etcd_watch = etcd_grpc.WatchStub(channel)

    async def rest(self, method: str, path: str, **kw) -> tuple[int, dict]:
        async with aiohttp.ClientSession(headers=self.headers) as session:
            async with session.request(method, self.base + path, **kw) as r:
                return r.status, await r.json()

    async def keys(self) -> list[str]:
        """Every key this caller sees, over REST."""
        status, body = await self.rest("GET", "/kv", params={"keys_only": "true"})
        assert status == 200, body
        return [item["key"] for item in body["data"]["items"]]


@pytest.fixture
async def callers(server, mint):
    """Project A's member, project B's member and the operator, on one server."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield (Caller(server, channel, mint.token(scope=A, subject="user:alice", roles=("member",))),
               Caller(server, channel, mint.token(scope=B, subject="user:bob", roles=("member",))),
               Caller(server, channel, mint.token()))


async def test_rest_keeps_each_project_in_its_keyspace(callers):
    a, b, operator = callers
    assert (await operator.rest("PUT", "/kv/platform/secret", json={"value": "s"}))[0] == 200
    assert (await a.rest("PUT", "/kv/app/db", json={"value": "a's"}))[0] == 200
    assert (await a.rest("PUT", "/kv/app/cache", json={"value": "a's"}))[0] == 200
    status, body = await b.rest("GET", "/kv/app/db")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body = await b.rest("GET", "/kv/platform/secret")
    assert status == 404
    # B's write of the same name is B's own key; A's stays as it was.
    status, body = await b.rest("PUT", "/kv/app/db", json={"value": "b's", "prev_kv": True})
    assert (status, body["data"]["prev_kv"]) == (200, None)
    await b.rest("PUT", "/kv/b/only", json={"value": "b's"})
    assert await b.keys() == ["app/db", "b/only"]
    status, body = await b.rest("GET", "/kv", params={"prefix": "app/"})
    assert [(i["key"], i["value"]) for i in body["data"]["items"]] == [("app/db", "b's")]
    # "Every key" from B: B's keys only.
    status, body = await b.rest("DELETE", "/kv/%00", params={"range_end": "\0", "prev_kv": "true"})
    assert status == 200, body
    assert sorted(kv["key"] for kv in body["data"]["prev_kvs"]) == ["app/db", "b/only"]
    assert body["data"]["deleted"] == 2
    assert await b.keys() == []
    assert await a.keys() == ["app/cache", "app/db"]
    status, body = await a.rest("GET", "/kv/app/db")
    assert body["data"]["value"] == "a's"
    # The operator sees the raw keyspace: the platform's keys and A's under its prefix.
    assert await operator.keys() == ["/projects/proj-a/app/cache", "/projects/proj-a/app/db", "platform/secret"]


async def test_rest_transactions_compare_and_touch_only_the_callers_keys(callers):
    a, b, _ = callers
    await a.rest("PUT", "/kv/lock", json={"value": "held"})
    # B tries to take A's lock when it is free, and otherwise to delete it: both land in B's keyspace.
    status, body = await b.rest("POST", "/txn", json={
        "compare": [{"key": "lock", "target": "VALUE", "value": "held"}],
        "success": [{"put": {"key": "lock", "value": "stolen"}}],
        "failure": [{"delete": {"key": "lock", "prev_kv": True}}, {"range": {"key": "\0", "range_end": "\0"}}]})
    assert status == 200, body
    assert body["data"]["succeeded"] is False
    assert body["data"]["responses"][0]["delete"]["deleted"] == 0
    assert body["data"]["responses"][1]["range"]["items"] == []
    status, body = await a.rest("GET", "/kv/lock")
    assert (body["data"]["value"], body["data"]["version"]) == ("held", 1)


async def test_rest_watch_and_leases_stay_inside_the_project(callers):
    a, b, operator = callers
    async with aiohttp.ClientSession(headers=b.headers) as session:
        params = {"key": "", "prefix": "true", "timeout_seconds": "2"}
        async with session.get(b.base + "/watch", params=params) as response:
            assert response.status == 200
            await asyncio.wait_for(response.content.readline(), SECONDS)  # the greeting: the watch is in place
            await a.rest("PUT", "/kv/k", json={"value": "a's"})
            await b.rest("PUT", "/kv/k", json={"value": "b's"})
            body = (await asyncio.wait_for(response.read(), SECONDS)).decode()
    events = [json.loads(line.removeprefix("data: ")) for line in body.splitlines() if line.startswith("data: ")]
    assert [(e["kv"]["key"], e["kv"]["value"]) for e in events] == [("k", "b's")]

    status, body = await a.rest("POST", "/leases", json={"ttl": 60})
    lease = body["data"]["id"]
    assert (await a.rest("PUT", "/kv/session", json={"value": "a", "lease": lease}))[0] == 200
    status, body = await a.rest("GET", f"/leases/{lease}", params={"keys": "true"})
    assert body["data"]["keys"] == ["session"]
    for method, path, kw in (("GET", f"/leases/{lease}", {}), ("POST", f"/leases/{lease}/keepalive", {}),
                             ("DELETE", f"/leases/{lease}", {}),
                             ("PUT", "/kv/mine", {"json": {"value": "b", "lease": lease}})):
        status, body = await b.rest(method, path, **kw)
        assert (status, body["error"]["code"]) == (404, "NOT_FOUND"), (method, path)
    status, body = await b.rest("GET", "/leases")
    assert body["data"]["items"] == []
    status, body = await operator.rest("GET", "/leases")
    assert [item["id"] for item in body["data"]["items"]] == [lease]
    assert await a.keys() == ["k", "session"]  # B's revoke deleted nothing


async def test_an_org_token_has_no_keyspace(server, mint):
    org = {"Authorization": f"Bearer {mint.token(scope=Scope(ORG, 'org-1'), roles=('admin',))}"}
    async with aiohttp.ClientSession(headers=org) as session:
        async with session.get(f"http://127.0.0.1:{server.rest_port}/api/v1/kv") as r:
            status, body = r.status, await r.json()
    assert (status, body["error"]["code"], body["error"]["details"]["reason"]) == \
        (403, "PERMISSION_DENIED", "PROJECT_SCOPE_REQUIRED")


async def test_chainfires_grpc_api_keeps_each_project_in_its_keyspace(callers):
    a, b, operator = callers
    await a.kv.Put(pb.PutRequest(key=b"cfg", value=b"a's"), metadata=a.metadata)
    got = await b.kv.Range(pb.RangeRequest(key=b"cfg"), metadata=b.metadata)
    assert list(got.kvs) == []
    put = await b.kv.Put(pb.PutRequest(key=b"cfg", value=b"b's", prev_kv=True), metadata=b.metadata)
    assert not put.HasField("prev_kv")
    listed = await b.kv.Range(pb.RangeRequest(key=b"", prefix=True), metadata=b.metadata)
    assert [(kv.key, kv.value) for kv in listed.kvs] == [(b"cfg", b"b's")]
    deleted = await b.kv.DeleteRange(pb.DeleteRangeRequest(key=b"\0", range_end=b"\0"), metadata=b.metadata)
    assert deleted.deleted == 1
    txn = await b.kv.Txn(pb.TxnRequest(
        compare=[pb.Compare(key=b"cfg", target=pb.Compare.VERSION, result=pb.Compare.GREATER, version=0)],
        success=[pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=b"cfg"))]), metadata=b.metadata)
    assert not txn.succeeded  # A's cfg exists, B's does not
    got = await a.kv.Range(pb.RangeRequest(key=b"cfg"), metadata=a.metadata)
    assert [kv.value for kv in got.kvs] == [b"a's"]
    raw = await operator.kv.Range(pb.RangeRequest(key=b"/projects/", prefix=True), metadata=operator.metadata)
    assert [kv.key for kv in raw.kvs] == [b"/projects/proj-a/cfg"]

    call = b.watches.Watch(pb.WatchRequest(key=b"", prefix=True), metadata=b.metadata)
    await asyncio.wait_for(call.read(), SECONDS)  # created
    await a.kv.Put(pb.PutRequest(key=b"w", value=b"a's"), metadata=a.metadata)
    await b.kv.Put(pb.PutRequest(key=b"w", value=b"b's"), metadata=b.metadata)
    response = await asyncio.wait_for(call.read(), SECONDS)
    assert [(e.kv.key, e.kv.value) for e in response.events] == [(b"w", b"b's")]
    call.cancel()

    lease = await a.leases.Grant(pb.LeaseGrantRequest(ttl=60), metadata=a.metadata)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await b.leases.Revoke(pb.LeaseRevokeRequest(id=lease.id), metadata=b.metadata)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert list((await b.leases.Leases(pb.LeaseLeasesRequest(), metadata=b.metadata)).leases) == []
    assert [x.id for x in (await a.leases.Leases(pb.LeaseLeasesRequest(), metadata=a.metadata)).leases] == [lease.id]


async def test_etcds_api_keeps_each_project_in_its_keyspace(callers):
    a, b, operator = callers
    for key in (b"x/1", b"x/2"):
        await a.etcd_kv.Put(etcd.PutRequest(key=key, value=b"a's"), metadata=a.metadata)
    await b.etcd_kv.Put(etcd.PutRequest(key=b"x/1", value=b"b's"), metadata=b.metadata)
    every = etcd.RangeRequest(key=b"\0", range_end=b"\0")  # etcdctl's `get --prefix ""`
    assert [kv.key for kv in (await b.etcd_kv.Range(every, metadata=b.metadata)).kvs] == [b"x/1"]
    assert [kv.key for kv in (await a.etcd_kv.Range(every, metadata=a.metadata)).kvs] == [b"x/1", b"x/2"]
    from_key = etcd.RangeRequest(key=b"x/", range_end=b"\0", sort_order=etcd.RangeRequest.DESCEND)
    assert [kv.key for kv in (await a.etcd_kv.Range(from_key, metadata=a.metadata)).kvs] == [b"x/2", b"x/1"]
    txn = await b.etcd_kv.Txn(etcd.TxnRequest(
        compare=[etcd.Compare(key=b"x/2", target=etcd.Compare.VERSION, result=etcd.Compare.EQUAL, version=1)],
        success=[etcd.RequestOp(request_delete_range=etcd.DeleteRangeRequest(key=b"\0", range_end=b"\0"))],
        failure=[etcd.RequestOp(request_range=etcd.RangeRequest(key=b"x/2"))]), metadata=b.metadata)
    assert not txn.succeeded and list(txn.responses[0].response_range.kvs) == []
    deleted = await b.etcd_kv.DeleteRange(etcd.DeleteRangeRequest(key=b"\0", range_end=b"\0"), metadata=b.metadata)
    assert deleted.deleted == 1
    assert len((await a.etcd_kv.Range(every, metadata=a.metadata)).kvs) == 2
    raw = await operator.etcd_kv.Range(every, metadata=operator.metadata)
    assert [kv.key for kv in raw.kvs] == [b"/projects/proj-a/x/1", b"/projects/proj-a/x/2"]

    # B's watch of every key sees B's change only, under B's name for it.
    requests: asyncio.Queue = asyncio.Queue()
    requests.put_nowait(etcd.WatchRequest(create_request=etcd.WatchCreateRequest(key=b"\0", range_end=b"\0")))

    async def send():
        while (item := await requests.get()) is not None:
            yield item

    call = b.etcd_watch.Watch(send(), metadata=b.metadata)
    assert (await asyncio.wait_for(call.read(), SECONDS)).created
    await a.etcd_kv.Put(etcd.PutRequest(key=b"x/1", value=b"a again"), metadata=a.metadata)
    await b.etcd_kv.Put(etcd.PutRequest(key=b"y", value=b"b's"), metadata=b.metadata)
    response = await asyncio.wait_for(call.read(), SECONDS)
    assert [(e.kv.key, e.kv.value) for e in response.events] == [(b"y", b"b's")]
    requests.put_nowait(None)
    call.cancel()

    lease = await a.etcd_leases.LeaseGrant(etcd.LeaseGrantRequest(TTL=60), metadata=a.metadata)
    ttl = await b.etcd_leases.LeaseTimeToLive(etcd.LeaseTimeToLiveRequest(ID=lease.ID), metadata=b.metadata)
    assert ttl.TTL == -1  # etcd's "no such lease"
    assert list((await b.etcd_leases.LeaseLeases(etcd.LeaseLeasesRequest(), metadata=b.metadata)).leases) == []

    async def one_keep_alive():
        yield etcd.LeaseKeepAliveRequest(ID=lease.ID)

    kept = [r async for r in b.etcd_leases.LeaseKeepAlive(one_keep_alive(), metadata=b.metadata)]
    assert [(r.ID, r.TTL) for r in kept] == [(lease.ID, 0)]  # etcd's "lease gone"
    with pytest.raises(grpc.aio.AioRpcError):
        await b.etcd_leases.LeaseRevoke(etcd.LeaseRevokeRequest(ID=lease.ID), metadata=b.metadata)
    ttl = await a.etcd_leases.LeaseTimeToLive(etcd.LeaseTimeToLiveRequest(ID=lease.ID), metadata=a.metadata)
    assert ttl.TTL > 0
