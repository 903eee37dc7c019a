"""k8shost's watches live no longer than their token, over server-sent events and gRPC, and each
caller holds at most --max-watches-per-caller of them open."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import jwt
import pytest

from photoncloud.common.config import ServerConfig
from photoncloud.common.rpc import error_from_rpc
from photoncloud.common.server import Server
from photoncloud.common.testing import ListedRevocations, TokenMint, sse_events
from photoncloud.k8shost.app import build
from photoncloud.k8shost.v1 import k8shost_pb2 as pb
from photoncloud.k8shost.v1 import k8shost_pb2_grpc as pb_grpc

SECONDS = 10  # every wait is bounded by this
LIMIT = 2


@pytest.fixture
def mint():
    return TokenMint()


@pytest.fixture
def revocations():
    return ListedRevocations()


@pytest.fixture
async def server(tmp_path, mint, revocations):
    """k8shost trusting mint's tokens, checking revocations, with LIMIT watches per caller."""
    config = ServerConfig(service="k8shost", bind="127.0.0.1", rest_port=0, grpc_port=0, data_dir=tmp_path,
                          shutdown_grace=2, iam_url="", options={"max_watches_per_caller": LIMIT,
                                                                 "disable_scheduler": True})
    service = await build(config)
    service.verifier = mint.verifier()
    service.verifier.revocations = revocations
    running = Server(service, config)
    await running.start()
    yield running
    await running.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sse_until_end(server, token: str) -> list[tuple[str, dict]]:
    """Every event of a REST watch of pods, until the server ends the stream."""
    async with aiohttp.ClientSession(headers=bearer(token)) as session:
        async with session.get(f"http://127.0.0.1:{server.rest_port}/api/v1/watch/pods") as response:
            assert response.status == 200, await response.text()
            return await sse_events(response)


async def grpc_until_end(server, token: str) -> grpc.aio.AioRpcError:
    """A gRPC watch of pods, read until the server ends it with an error."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(kind="pods"),
                                                metadata=(("authorization", f"Bearer {token}"),))
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while await call.read() != grpc.aio.EOF:
                pass
        return ended.value


def reason(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str]:
    return error.code(), (error_from_rpc(error).details or {}).get("reason")


async def test_watches_end_when_their_token_expires(server, mint):
    token = mint.token(ttl=2)
    sse, over_grpc = await asyncio.wait_for(asyncio.gather(sse_until_end(server, token),
                                                           grpc_until_end(server, token)), SECONDS)
    assert (sse[-1][0], sse[-1][1]["error"]) == ("error", {"code": "UNAUTHENTICATED",
                                                          "message": "the token has expired",
                                                          "details": {"reason": "EXPIRED"}})
    assert reason(over_grpc) == (grpc.StatusCode.UNAUTHENTICATED, "EXPIRED")


async def test_watches_end_soon_after_their_token_is_revoked(server, mint, revocations):
    token = mint.token()
    watches = asyncio.gather(sse_until_end(server, token), grpc_until_end(server, token))
    await asyncio.sleep(0.5)
    assert not watches.done()  # a good token's watches stay open
    revocations.revoked.add(jwt.decode(token, options={"verify_signature": False})["jti"])
    sse, over_grpc = await asyncio.wait_for(watches, SECONDS)
    assert sse[-1][1]["error"]["details"] == {"reason": "REVOKED"}
    assert reason(over_grpc) == (grpc.StatusCode.UNAUTHENTICATED, "REVOKED")


async def test_a_caller_holds_at_most_the_limit_of_watches(server, mint):
    token = mint.token(subject="user:greedy")
    watches = [asyncio.ensure_future(sse_until_end(server, token)),
               asyncio.ensure_future(grpc_until_end(server, token))]
    await asyncio.sleep(0.5)
    try:
        async with aiohttp.ClientSession(headers=bearer(token)) as session:
            async with session.get(f"http://127.0.0.1:{server.rest_port}/api/v1/watch/pods") as response:
                body = await response.json()
                assert response.status == 429
        assert body["error"]["code"] == "RESOURCE_EXHAUSTED" and body["error"]["details"]["limit"] == LIMIT
        refused = await asyncio.wait_for(grpc_until_end(server, token), SECONDS)
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # another caller is not held back by this one's watches
        other = asyncio.ensure_future(sse_until_end(server, mint.token(subject="user:other", ttl=2)))
        assert (await asyncio.wait_for(other, SECONDS))[-1][1]["error"]["details"] == {"reason": "EXPIRED"}
    finally:
        for watch in watches:
            watch.cancel()
        await asyncio.gather(*watches, return_exceptions=True)


async def test_a_watch_whose_client_went_away_gives_its_slot_back_at_once(server, mint):
    """Not at the next heartbeat (10 s): the stream looks for its client every second."""
    token = mint.token(subject="user:leaver")
    url = f"http://127.0.0.1:{server.rest_port}/api/v1/watch/pods"
    async with aiohttp.ClientSession(headers=bearer(token)) as session:
        for _ in range(LIMIT):
            async with session.get(url) as response:
                assert response.status == 200
                await response.content.readline()  # opened; leaving the block hangs up
        async def reopened() -> int:
            while True:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=SECONDS)) as response:
                    if response.status != 429:
                        return response.status
                await asyncio.sleep(0.2)

        assert await asyncio.wait_for(reopened(), 4) == 200
