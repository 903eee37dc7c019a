"""Every route and RPC of every running service is behind the token gate: without a token each
non-public one is UNAUTHENTICATED; a viewer is refused every write (PERMISSION_DENIED); an admin
passes the gate everywhere. Routes and their permissions are read from each service's OpenAPI."""

from __future__ import annotations

import asyncio
import importlib
import re
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory

from photoncloud.common.auth import permits

PROTOS = Path(__file__).resolve().parents[1] / "protos"
VIEWER_GRANTS = ("*:*:read",)  # the built-in viewer role: read anything, change nothing
GATE_CODES = (401, 403)


def operations(platform):
    """(service process, method, path, operation) for every route of every running service."""
    for process in [platform.iam, *platform.services.values()]:
        status, doc = platform.request("GET", f"{process.url}/api/v1/openapi.json")
        assert status == 200
        for path, methods in doc["paths"].items():
            for method, operation in methods.items():
                yield process, method.upper(), path, operation


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def viewer_is_refused(operation: dict) -> bool:
    """Whether the gate must refuse a viewer: every write, i.e. a permission a viewer lacks."""
    permission = operation.get("x-permission")
    return permission is not None and not permits(VIEWER_GRANTS, permission)


@pytest.fixture(scope="module")
def viewer(platform):
    """(name, password) of a user with the viewer role on the system scope."""
    return platform.user_with_role("viewer")


def test_every_write_declares_a_permission_a_viewer_lacks(platform):
    for process, method, path, operation in operations(platform):
        if method in ("PUT", "PATCH", "DELETE") and operation["security"]:
            assert viewer_is_refused(operation), (process.name, method, path)


class Tokens:
    """A viewer's and an admin's token, fetched again after a call that may have revoked them."""

    def __init__(self, platform, viewer):
        self.platform, self.viewer_login = platform, viewer
        self.renew()

    def renew(self) -> None:
        self.viewer, self.admin = self.platform.token(*self.viewer_login), self.platform.admin_token()


def test_rest_gate(platform, viewer):
    tokens = Tokens(platform, viewer)
    checked = 0
    for process, method, path, operation in operations(platform):
        if operation["security"] == []:
            continue  # public: health, metrics, OpenAPI, token issuance, JWKS and discovery
        url = process.url + concrete(path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        status, reply = platform.request(method, url, body)
        assert (status, reply["error"]["code"]) == (401, "UNAUTHENTICATED"), (method, path, reply)
        status, reply = platform.request(method, url, body, tokens.viewer)
        if viewer_is_refused(operation):
            assert (status, reply["error"]["code"]) == (403, "PERMISSION_DENIED"), (method, path, reply)
        else:
            assert status != 401, (method, path, reply)
        status, reply = platform.request(method, url, body, tokens.admin)
        assert status not in GATE_CODES, (method, path, reply)
        if "revoke" in path:
            tokens.renew()
        checked += 1
    assert checked >= 10


def rpc_table(platform):
    """(process, full method, operation) for every RPC a route of a running service mirrors."""
    seen = set()
    for process, method, path, operation in operations(platform):
        rpc = operation.get("x-grpc-method")
        if rpc and (process.name, rpc) not in seen:
            seen.add((process.name, rpc))
            yield process, rpc, operation


async def call(process, rpc: str, token: str | None) -> grpc.StatusCode:
    service, method = rpc.split("/")
    descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    request_class = message_factory.GetMessageClass(descriptor.input_type)
    response_class = message_factory.GetMessageClass(descriptor.output_type)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{process.grpc_port}") as channel:
        stub = channel.unary_unary(f"/{rpc}", request_serializer=request_class.SerializeToString,
                                   response_deserializer=response_class.FromString)
        try:
            await stub(request_class(), metadata=metadata, timeout=30)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_grpc_gate(platform, viewer):
    # Load every generated module so the descriptor pool knows every method.
    for path in PROTOS.glob("photoncloud/*/v1/*_pb2.py"):
        importlib.import_module(".".join(path.relative_to(PROTOS).with_suffix("").parts))

    tokens = Tokens(platform, viewer)

    async def walk() -> int:
        checked = 0
        for process, rpc, operation in rpc_table(platform):
            if operation["security"] == []:
                continue
            assert await call(process, rpc, None) == grpc.StatusCode.UNAUTHENTICATED, rpc
            viewer_code = await call(process, rpc, tokens.viewer)
            if viewer_is_refused(operation):
                assert viewer_code == grpc.StatusCode.PERMISSION_DENIED, rpc
            else:
                assert viewer_code != grpc.StatusCode.UNAUTHENTICATED, rpc
            admin_code = await call(process, rpc, tokens.admin)
            assert admin_code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), rpc
            if "Revoke" in rpc:
                tokens.renew()
            checked += 1
        return checked

    assert asyncio.run(walk()) >= 5
