"""Watches and leases over both transports against a real server: SSE on REST, a stream on gRPC."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import grpc
import pytest
from photoncloud.chainfire.v1 import kv_pb2 as pb
from photoncloud.chainfire.v1 import kv_pb2_grpc as pb_grpc
from photoncloud.common import sse
from photoncloud.common.rpc import error_from_rpc

SECONDS = 10  # every wait is bounded by this


class Sse:
    """Reads one server-sent event stream: comments and (event, data) pairs."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response
        self.comments: list[str] = []

    async def next_event(self) -> tuple[str, dict] | None:
        name = None
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), SECONDS)
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                return name, json.loads(line.removeprefix("data: "))


@pytest.fixture
def rest(server, auth):
    base = f"http://127.0.0.1:{server.rest_port}/api/v1"

    async def call(method, path, headers=None, **kw):
        async with aiohttp.ClientSession(headers=auth.headers if headers is None else headers) as session:
            async with session.request(method, base + path, **kw) as r:
                return r.status, await r.json()
    call.base = base
    return call


async def put(rest, key, value, **extra):
    status, body = await rest("PUT", f"/kv/{key}", json={"value": value, **extra})
    assert status == 200, body
    return body["data"]["revision"]


async def test_sse_replays_history_then_streams_live_events(server, rest, auth):
    for i in range(5):
        await put(rest, f"app/{i % 2}", str(i))
    await put(rest, "other", "x")
    params = {"key": "app/", "prefix": "true", "start_revision": "2", "prev_kv": "true"}
    async with aiohttp.ClientSession(headers={**auth.headers, "X-Request-ID": "watch-1"}) as session:
        async with session.get(rest.base + "/watch", params=params) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["X-Request-ID"] == "watch-1"
            stream = Sse(response)
            seen = [await stream.next_event() for _ in range(4)]  # revisions 2..5
            assert stream.comments[0] == ": watching from revision 6"
            await put(rest, "app/1", "live")
            await put(rest, "nope", "filtered out")
            status, _ = await rest("DELETE", "/kv/app/", params={"prefix": "true"})
            assert status == 200
            seen += [await stream.next_event() for _ in range(3)]
    assert [(name, e["kv"]["key"], e["kv"]["mod_revision"]) for name, e in seen] == [
        ("put", "app/1", 2), ("put", "app/0", 3), ("put", "app/1", 4), ("put", "app/0", 5),
        ("put", "app/1", 7), ("delete", "app/0", 9), ("delete", "app/1", 9)]
    assert seen[4][1]["prev_kv"]["value"] == "3" and seen[4][1]["type"] == "PUT"
    assert seen[5][1]["kv"]["value"] == "" and seen[5][1]["prev_kv"]["value"] == "4"


async def test_sse_heartbeats_and_timeout(server, auth, rest, monkeypatch):
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.1)
    async with aiohttp.ClientSession(headers=auth.headers) as session:
        async with session.get(rest.base + "/watch", params={"key": "k", "timeout_seconds": "0.5"}) as response:
            body = await asyncio.wait_for(response.read(), SECONDS)  # the stream ends by itself
    lines = body.decode().splitlines()
    assert lines[0] == ": watching from revision 0"
    assert ": heartbeat" in lines
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{server.rest_port}/metrics") as response:
            metrics = await response.text()
    assert 'method="GET",route="/api/v1/watch",service="chainfire",transport="rest"' in metrics


async def test_compacted_watches_are_out_of_range_on_both_transports(server, rest, auth):
    for value in "123":
        await put(rest, "c", value)
    status, body = await rest("POST", "/compact", json={"revision": 3})
    assert (status, body["data"]) == (200, {"revision": 3, "compact_revision": 3})
    status, body = await rest("GET", "/watch", params={"key": "c", "start_revision": "1"})
    assert status == 400
    assert body["error"]["code"] == "OUT_OF_RANGE"
    assert body["error"]["details"]["compact_revision"] == 3
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(key=b"c", start_revision=1), metadata=auth.metadata)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(call.read(), SECONDS)
    error = error_from_rpc(caught.value)
    assert (error.code.name, error.message) == ("OUT_OF_RANGE", "required revision has been compacted")
    assert error.details["compact_revision"] == 3


async def test_grpc_watch_sees_lease_expiry_as_deletes_at_one_revision(server, rest, auth):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        lease = await pb_grpc.LeaseStub(channel).Grant(pb.LeaseGrantRequest(ttl=1), metadata=auth.metadata)
        call = pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(key=b"eph/", prefix=True, prev_kv=True),
                                                metadata=auth.metadata)
        created = await asyncio.wait_for(call.read(), SECONDS)
        assert list(created.events) == []
        for key in ("eph/a", "eph/b"):
            await put(rest, key, "v", lease=lease.id)
        events = []
        while len(events) < 4:  # two puts, then two deletes when the lease expires (about 1 s)
            response = await asyncio.wait_for(call.read(), SECONDS)
            events += [(pb.Event.EventType.Name(e.type), e.kv.key, response.header.revision) for e in response.events]
        call.cancel()
    assert events[:2] == [("PUT", b"eph/a", 1), ("PUT", b"eph/b", 2)]
    assert events[2:] == [("DELETE", b"eph/a", 3), ("DELETE", b"eph/b", 3)]
    status, body = await rest("GET", f"/leases/{lease.id}")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")


async def test_lease_routes_over_rest(server, rest):
    status, body = await rest("POST", "/leases", json={"ttl": 30})
    assert (status, body["data"]) == (200, {"id": 1, "ttl": 30, "revision": 0})
    await put(rest, "l/a", "1", lease=1)
    status, body = await rest("GET", "/kv/l/a")
    assert body["data"]["lease"] == 1
    status, body = await rest("GET", "/leases/1", params={"keys": "true"})
    assert body["data"]["keys"] == ["l/a"] and 0 < body["data"]["ttl"] <= 30
    status, body = await rest("GET", "/leases/1")
    assert body["data"]["keys"] == []
    status, body = await rest("GET", "/leases/abc")
    assert (status, body["error"]["details"]["field"]) == (400, "id")
    status, body = await rest("PUT", "/kv/l/b", json={"value": "1", "lease": 2})
    assert (status, body["error"]["message"]) == (404, "lease not found")
    status, body = await rest("POST", "/txn", json={"success": [{"put": {"key": "l/t", "value": "1", "lease": 1}}]})
    assert status == 200
    status, body = await rest("DELETE", "/leases/1")
    assert (status, body["data"]) == (200, {"id": 1, "revision": 3})
    status, body = await rest("GET", "/kv", params={"prefix": "l/"})
    assert body["data"]["items"] == []


async def test_permissions(server, rest, mint):
    viewer = {"Authorization": f"Bearer {mint.token(permissions=('*:*:read',), roles=('viewer',))}"}
    leaser = {"Authorization": f"Bearer {mint.token(permissions=('chainfire:leases:*',), roles=('x',))}"}
    status, _ = await rest("POST", "/leases", headers=viewer, json={"ttl": 5})
    assert status == 403
    status, _ = await rest("POST", "/compact", headers=viewer, json={"revision": 1})
    assert status == 403
    status, _ = await rest("POST", "/leases", headers=leaser, json={"ttl": 5})
    assert status == 200
    status, _ = await rest("GET", "/leases", headers=viewer)
    assert status == 200
    status, _ = await rest("GET", "/watch", headers=leaser, params={"key": "k"})
    assert status == 403
    status, _ = await rest("GET", "/watch", headers={}, params={"key": "k"})
    assert status == 401
    async with aiohttp.ClientSession(headers=viewer) as session:
        async with session.get(rest.base + "/watch", params={"key": "k", "timeout_seconds": "0.1"}) as response:
            assert response.status == 200
            await asyncio.wait_for(response.read(), SECONDS)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(key=b"k"))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(call.read(), SECONDS)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.LeaseStub(channel).Grant(pb.LeaseGrantRequest(ttl=5), metadata=(
                ("authorization", viewer["Authorization"]),))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_stopping_ends_open_watches_at_once(start, auth, tmp_path):
    running = await start(tmp_path / "stopping")
    base = f"http://127.0.0.1:{running.rest_port}/api/v1"
    async with aiohttp.ClientSession(headers=auth.headers) as session, \
            grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        call = pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(key=b"k"), metadata=auth.metadata)
        await asyncio.wait_for(call.read(), SECONDS)
        async with session.get(base + "/watch", params={"key": "k"}) as response:
            assert response.status == 200
            await asyncio.wait_for(response.content.readline(), SECONDS)
            started = asyncio.get_running_loop().time()
            await asyncio.wait_for(running.stop(), SECONDS)
            # Well inside the grace period (2 s): the streams were ended, not waited for.
            assert asyncio.get_running_loop().time() - started < 1.5
            assert (await asyncio.wait_for(response.content.read(), SECONDS)).strip() == b""  # ended
        assert await asyncio.wait_for(call.read(), SECONDS) == grpc.aio.EOF
