"""ChainFire admits only valid tokens, and writes only with a permission to write, on both transports."""

from __future__ import annotations

import base64
import json

import aiohttp
import grpc
import pytest

from photoncloud.chainfire.v1 import kv_pb2 as pb
from photoncloud.chainfire.v1 import kv_pb2_grpc as pb_grpc
from photoncloud.common.testing import TokenMint


def tampered(token: str) -> str:
    """token with its payload changed (admin permissions added) but the old signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["permissions"] = ["*"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return ".".join([header, forged, signature])


def bad_tokens(mint: TokenMint) -> dict[str, str | None]:
    viewer = mint.token(permissions=("*:*:read",), roles=("viewer",))
    return {
        "missing": None,
        "not a JWT": "Bearer not-a-jwt",
        "wrong scheme": f"Basic {mint.token()}",
        "expired": f"Bearer {mint.token(ttl=-60)}",
        "another key": f"Bearer {TokenMint(issuer=mint.issuer, kid=mint.kid).token()}",
        "another issuer": f"Bearer {TokenMint(issuer='http://elsewhere', kid=mint.kid).token()}",
        "altered": f"Bearer {tampered(viewer)}",
    }


async def rest(server, method, path, authorization, **kw):
    headers = {"Authorization": authorization} if authorization else {}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.request(method, f"http://127.0.0.1:{server.rest_port}{path}", **kw) as r:
            return r.status, await r.json()


async def grpc_put(server, authorization):
    metadata = (("authorization", authorization),) if authorization else ()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        try:
            await pb_grpc.KVStub(channel).Put(pb.PutRequest(key=b"k", value=b"v"), metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("case", list(bad_tokens(TokenMint())))
async def test_bad_tokens_are_unauthenticated(server, mint, case):
    authorization = bad_tokens(mint)[case]
    status, body = await rest(server, "PUT", "/api/v1/kv/k", authorization, json={"value": "v"})
    assert (status, body["error"]["code"]) == (401, "UNAUTHENTICATED"), body
    assert await grpc_put(server, authorization) == grpc.StatusCode.UNAUTHENTICATED
    status, body = await rest(server, "GET", "/api/v1/kv", f"Bearer {mint.token()}")
    assert body["data"]["items"] == []  # nothing was written


async def test_a_viewer_reads_but_cannot_write(server, mint, auth):
    await rest(server, "PUT", "/api/v1/kv/k", auth.headers["Authorization"], json={"value": "v"})
    viewer = f"Bearer {mint.token(permissions=('*:*:read',), roles=('viewer',))}"
    status, body = await rest(server, "GET", "/api/v1/kv/k", viewer)
    assert (status, body["data"]["value"]) == (200, "v")
    status, body = await rest(server, "PUT", "/api/v1/kv/k", viewer, json={"value": "w"})
    assert (status, body["error"]["code"], body["error"]["details"]["action"]) == \
        (403, "PERMISSION_DENIED", "chainfire:kv:write")
    assert await grpc_put(server, viewer) == grpc.StatusCode.PERMISSION_DENIED
    status, body = await rest(server, "GET", "/api/v1/kv/k", viewer)
    assert body["data"]["value"] == "v"


async def test_a_precise_grant_is_enough(server, mint):
    writer = f"Bearer {mint.token(permissions=('chainfire:kv:write',), roles=('custom',))}"
    assert await grpc_put(server, writer) == grpc.StatusCode.OK
    status, _ = await rest(server, "GET", "/api/v1/kv/k", writer)
    assert status == 403  # writing does not imply reading


async def test_operations_routes_need_no_token(server):
    for path in ("/health", "/metrics", "/api/v1/openapi.json"):
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{server.rest_port}{path}") as r:
                assert r.status == 200, path
