"""Streams live no longer than their token: a watch (REST's server-sent events, ChainFire's gRPC
Watch, etcd's Watch) and etcd's lease keep-alive stream end with UNAUTHENTICATED when the token
expires or is revoked; and each caller holds at most --max-watches-per-caller watches open."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import jwt
import pytest

from photoncloud.chainfire.app import build
from photoncloud.chainfire.etcd_api import INVALID_TOKEN
from photoncloud.chainfire.v1 import kv_pb2 as pb
from photoncloud.chainfire.v1 import kv_pb2_grpc as pb_grpc
from photoncloud.common.rpc import error_from_rpc
from photoncloud.common.testing import ListedRevocations, serve, sse_events
from photoncloud.etcd.v3 import rpc_pb2 as etcd
from photoncloud.etcd.v3 import rpc_pb2_grpc as etcd_grpc

SECONDS = 10  # every wait is bounded by this
LIMIT = 3  # the first two tests open three watches with one token


@pytest.fixture
def revocations():
    return ListedRevocations()


@pytest.fixture
async def server(tmp_path, mint, revocations):
    """A ChainFire that trusts mint's tokens, checks revocations, and allows LIMIT watches per caller."""
    verifier = mint.verifier()
    verifier.revocations = revocations
    running = await serve(build, "chainfire", tmp_path, verifier, options={"max_watches_per_caller": LIMIT})
    yield running
    await running.stop()


def jti(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["jti"]


async def sse_until_end(server, token: str, opened: asyncio.Event | None = None) -> list[tuple[str, dict]]:
    """Every event of a REST watch of every key, until the server ends the stream."""
    url = f"http://127.0.0.1:{server.rest_port}/api/v1/watch"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.get(url, params={"key": "", "prefix": "true"}) as response:
            assert response.status == 200, await response.text()
            return await sse_events(response, opened=opened)


async def grpc_until_end(channel, token: str) -> grpc.aio.AioRpcError:
    """ChainFire's gRPC watch of every key, read until the server ends it with an error."""
    call = pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(key=b"", prefix=True),
                                            metadata=(("authorization", f"Bearer {token}"),))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        while await call.read() != grpc.aio.EOF:
            pass
    return ended.value


async def etcd_watch_until_end(channel, token: str) -> grpc.aio.AioRpcError:
    """etcd's watch of every key (the token in etcd's own metadata key), read until the server ends it."""
    async def requests():
        yield etcd.WatchRequest(create_request=etcd.WatchCreateRequest(key=b"\0", range_end=b"\0"))
        await asyncio.sleep(SECONDS * 2)  # keep our side open: the server is to end the stream

    call = etcd_grpc.WatchStub(channel).Watch(requests(), metadata=(("token", token),))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        while await call.read() != grpc.aio.EOF:
            pass
    return ended.value


async def keep_alive_until_end(channel, token: str, opened: asyncio.Event | None = None) -> grpc.aio.AioRpcError:
    """etcd's lease keep-alive stream, read until the server ends it (opened is set at its first answer:
    the lease was granted, before any revocation, and the stream runs)."""
    lease = await etcd_grpc.LeaseStub(channel).LeaseGrant(etcd.LeaseGrantRequest(TTL=60), metadata=(("token", token),))
    # One keep-alive, then only reads: a write the client makes after the server has ended the call
    # makes the client library report its own INTERNAL error in place of the server's status (an
    # open defect of grpc.aio's client, grpc/grpc#36066). The stream waits for the next keep-alive
    # meanwhile, as an etcd client's between two.
    call = etcd_grpc.LeaseStub(channel).LeaseKeepAlive(metadata=(("token", token),))
    await call.write(etcd.LeaseKeepAliveRequest(ID=lease.ID))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        while (response := await call.read()) != grpc.aio.EOF:
            assert response.TTL == 60
            if opened is not None:
                opened.set()
    return ended.value


def reason(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, str]:
    return error.code(), error.details(), (error_from_rpc(error).details or {}).get("reason")


async def test_every_stream_ends_when_its_token_expires(server, mint):
    token = mint.token(ttl=2)  # whole seconds: it expires 1 to 2 s after a whole second
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        sse, chainfire, etcd_watch, keep_alive = await asyncio.wait_for(asyncio.gather(
            sse_until_end(server, token), grpc_until_end(channel, token), etcd_watch_until_end(channel, token),
            keep_alive_until_end(channel, token)), SECONDS)
    assert sse[-1][0] == "error"
    assert sse[-1][1]["error"] == {"code": "UNAUTHENTICATED", "message": "the token has expired",
                                   "details": {"reason": "EXPIRED"}}
    assert reason(chainfire) == (grpc.StatusCode.UNAUTHENTICATED, "the token has expired", "EXPIRED")
    # etcd's clients sign in again on this very message, and watch on.
    assert reason(etcd_watch) == (grpc.StatusCode.UNAUTHENTICATED, INVALID_TOKEN, "EXPIRED")
    assert reason(keep_alive) == (grpc.StatusCode.UNAUTHENTICATED, INVALID_TOKEN, "EXPIRED")


async def test_every_stream_ends_soon_after_its_token_is_revoked(server, mint, revocations):
    token, other = mint.token(), mint.token(subject="user:other")
    opened, kept_alive = asyncio.Event(), asyncio.Event()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        streams = asyncio.gather(
            sse_until_end(server, token, opened), grpc_until_end(channel, token),
            etcd_watch_until_end(channel, token), keep_alive_until_end(channel, token, kept_alive))
        survivor = asyncio.ensure_future(sse_until_end(server, other))  # another token's watch goes on
        # On a busy host the lease's grant (a write) may come later than the watches: revoked before
        # it, the grant itself is refused and the keep-alive stream never runs.
        await asyncio.wait_for(asyncio.gather(opened.wait(), kept_alive.wait()), SECONDS)
        await asyncio.sleep(0.5)  # the streams are in place and have been checked a few times
        revoked_at = asyncio.get_running_loop().time()
        revocations.revoked.add(jti(token))
        sse, chainfire, etcd_watch, keep_alive = await asyncio.wait_for(streams, SECONDS)
        # Checked every half poll interval; generous slack for a busy host.
        assert asyncio.get_running_loop().time() - revoked_at < 2
        assert not survivor.done()
        survivor.cancel()
    assert sse[-1][1]["error"]["details"] == {"reason": "REVOKED"}
    assert reason(chainfire) == (grpc.StatusCode.UNAUTHENTICATED, "the token has been revoked", "REVOKED")
    assert reason(etcd_watch) == (grpc.StatusCode.UNAUTHENTICATED, INVALID_TOKEN, "REVOKED")
    assert reason(keep_alive)[2] == "REVOKED"


async def test_a_caller_holds_at_most_the_limit_of_watches(server, mint):
    alice, bob = mint.token(subject="user:alice"), mint.token(subject="user:bob")
    opened = asyncio.Event()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        # Alice's LIMIT watches: one over REST, the rest over gRPC.
        rest_watch = asyncio.ensure_future(sse_until_end(server, alice, opened))
        await asyncio.wait_for(opened.wait(), SECONDS)
        calls = [pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(key=b"k"), metadata=(("token", alice),))
                 for _ in range(LIMIT - 1)]
        for call in calls:
            await asyncio.wait_for(call.read(), SECONDS)  # created

        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {alice}"}) as session:
            async with session.get(f"http://127.0.0.1:{server.rest_port}/api/v1/watch", params={"key": "k"}) as r:
                status, body = r.status, await r.json()
        assert (status, body["error"]["code"]) == (429, "RESOURCE_EXHAUSTED")
        assert body["error"]["details"]["limit"] == LIMIT
        refused = pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(key=b"k"), metadata=(("token", alice),))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(refused.read(), SECONDS)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_from_rpc(caught.value).details["limit"] == LIMIT
        # etcd's API refuses the one watch (the stream stays), saying why.
        requests: asyncio.Queue = asyncio.Queue()
        requests.put_nowait(etcd.WatchRequest(create_request=etcd.WatchCreateRequest(key=b"k")))

        async def send():
            while (item := await requests.get()) is not None:
                yield item

        etcd_call = etcd_grpc.WatchStub(channel).Watch(send(), metadata=(("token", alice),))
        created = await asyncio.wait_for(etcd_call.read(), SECONDS)
        canceled = await asyncio.wait_for(etcd_call.read(), SECONDS)
        assert created.created and canceled.canceled and f"at most {LIMIT}" in canceled.cancel_reason

        # Another caller is not held back by Alice's watches.
        other = pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(key=b"k"), metadata=(("token", bob),))
        assert list((await asyncio.wait_for(other.read(), SECONDS)).events) == []
        other.cancel()

        # A watch that ends gives its slot back: the same etcd stream's next watch is created.
        calls[0].cancel()
        for _ in range(50):
            requests.put_nowait(etcd.WatchRequest(create_request=etcd.WatchCreateRequest(key=b"k")))
            response = await asyncio.wait_for(etcd_call.read(), SECONDS)
            if not response.canceled:
                break
            await asyncio.wait_for(etcd_call.read(), SECONDS)  # the cancel that followed the creation
            await asyncio.sleep(0.1)
        assert response.created and not response.canceled
        requests.put_nowait(None)
        etcd_call.cancel()
        rest_watch.cancel()
