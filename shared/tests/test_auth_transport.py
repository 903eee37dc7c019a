"""Authentication on both transports of a real server: who is admitted, what the handler sees,
what stays public, what OpenAPI declares, and the caller's token forwarded to another service."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from photoncloud.common import auth, rpc
from photoncloud.common.errors import Code
from photoncloud.common.models import Body
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import Service
from photoncloud.common.testing import TokenMint

SERVICE = "test.v1.Things"
DOWNSTREAM = "test.v1.Downstream"
READ, WRITE = "test:things:read", "test:things:write"


class NewThing(Body):
    """A thing to create."""

    name: str


def seen() -> dict[str, Any]:
    """What a handler sees of its caller."""
    current = auth.current()
    return {
        "current": current.subject if current else None,
        "caller": auth.caller().subject if current else None,
        "outgoing": auth.outgoing_headers(),
    }


def build_routes() -> RouteTable:
    routes = RouteTable()

    @routes.get("/api/v1/things", "List things", rpc=f"{SERVICE}/List", permission=READ, who=auth.TENANT)
    async def list_things(request):
        return seen()

    @routes.post("/api/v1/things", "Create a thing", body=NewThing, rpc=f"{SERVICE}/Create", permission=WRITE,
                 who=auth.TENANT)
    async def create_thing(request, body: NewThing):
        return {"name": body.name, **seen()}

    @routes.get("/api/v1/whoami", "The caller", rpc=f"{SERVICE}/WhoAmI", who=auth.TENANT)
    async def whoami(request):
        return seen()

    @routes.post("/api/v1/things/purge", "Purge every thing", rpc=f"{SERVICE}/Purge", permission=WRITE,
                 who=auth.OPERATOR)
    async def purge(request):
        return seen()

    @routes.get("/api/v1/undeclared", "A route that forgot to say who it is for")
    async def undeclared(request):
        return seen()

    @routes.get("/api/v1/ping", "Public ping", rpc=f"{SERVICE}/Ping", who=auth.PUBLIC)
    async def ping(request):
        return seen()

    return routes


async def subject_of_caller(request: bytes, context) -> bytes:
    return auth.caller().subject.encode()


async def ping(request: bytes, context) -> bytes:
    return b"anonymous" if auth.current() is None else b"someone"


async def stream_subject(request: bytes, context):
    for _ in range(2):
        yield auth.caller().subject.encode()


@pytest.fixture(scope="module")
def mint() -> TokenMint:
    return TokenMint()


def gates_of(routes: RouteTable) -> dict[str, rpc.Access]:
    """The gRPC gates of a service with no .proto (no method option to read them from): those its
    REST routes declare for the RPC each names."""
    return {f"/{route.rpc}": rpc.Access(route.who, route.permission) for route in routes.routes if route.rpc}


@pytest.fixture
async def server(start, grpc_service, mint):
    methods = {"List": subject_of_caller, "Create": subject_of_caller, "WhoAmI": subject_of_caller,
               "Ping": ping, "Undeclared": subject_of_caller, "Purge": subject_of_caller, "Stream": stream_subject}
    routes = build_routes()
    service = Service("things", "1.0.0", routes, [grpc_service(SERVICE, methods, gates_of(routes))],
                      verifier=mint.verifier())
    return await start(service)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(http, server, method: str, path: str, headers: dict[str, str] | None = None,
               **kwargs: Any) -> tuple[int, dict[str, Any], Any]:
    url = f"http://127.0.0.1:{server.rest_port}{path}"
    async with http.request(method, url, headers=headers or {}, **kwargs) as response:
        return response.status, await response.json(), response.headers


# --- REST ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer not-a-jwt"},
])
async def test_rest_without_a_valid_token_is_401(http, server, headers):
    status, body, response_headers = await call(http, server, "GET", "/api/v1/things", headers)
    assert status == 401
    assert body["error"]["code"] == "UNAUTHENTICATED"
    assert body["error"]["message"]
    assert body["meta"]["request_id"] == response_headers["X-Request-ID"]
    assert "data" not in body


async def test_rest_expired_token_is_401_with_its_reason(http, server, mint):
    status, body, _ = await call(http, server, "GET", "/api/v1/things", bearer(mint.token(ttl=-120)))
    assert status == 401
    assert body["error"]["details"]["reason"] == "EXPIRED"


async def test_rest_token_is_checked_before_the_body(http, server):
    status, body, _ = await call(http, server, "POST", "/api/v1/things", data=b"{not json")
    assert (status, body["error"]["code"]) == (401, "UNAUTHENTICATED")


async def test_rest_without_the_permission_is_403(http, server, mint):
    reader = mint.token(permissions=(READ,), subject="user:reader")
    status, body, _ = await call(http, server, "POST", "/api/v1/things", bearer(reader), json={"name": "x"})
    assert status == 403
    assert body["error"]["code"] == "PERMISSION_DENIED"
    assert body["error"]["details"]["action"] == WRITE
    assert body["error"]["details"]["reason"] == "MISSING_PERMISSION"
    # the same token may do what it grants
    status, body, _ = await call(http, server, "GET", "/api/v1/things", bearer(reader))
    assert status == 200
    assert body["data"]["caller"] == "user:reader"


async def test_rest_with_the_permission_sees_its_principal(http, server, mint):
    token = mint.token(permissions=("test:*:write",), subject="user:writer")
    status, body, _ = await call(http, server, "POST", "/api/v1/things", bearer(token), json={"name": "x"})
    assert status == 200
    assert body["data"]["name"] == "x"
    assert body["data"]["current"] == "user:writer"
    assert body["data"]["caller"] == "user:writer"
    assert body["data"]["outgoing"] == {"Authorization": f"Bearer {token}"}


async def test_rest_route_without_a_permission_needs_only_a_token(http, server, mint):
    status, _, _ = await call(http, server, "GET", "/api/v1/whoami")
    assert status == 401
    token = mint.token(permissions=(), roles=(), subject="user:nobody")
    status, body, _ = await call(http, server, "GET", "/api/v1/whoami", bearer(token))
    assert status == 200
    assert body["data"]["caller"] == "user:nobody"


TENANT_ADMIN = {"permissions": ("*",), "scope": auth.Scope(auth.PROJECT, "org-a", "project-a"),
                "subject": "user:project-admin"}


@pytest.mark.parametrize("path", ["/api/v1/things/purge", "/api/v1/undeclared"])
async def test_rest_operator_route_refuses_a_tenant_whatever_its_grants(http, server, mint, path):
    method = "POST" if path.endswith("purge") else "GET"
    for scope in (auth.Scope(auth.PROJECT, "org-a", "project-a"), auth.Scope(auth.ORG, "org-a")):
        tenant = mint.token(permissions=("*",), scope=scope, subject="user:tenant-admin")
        status, body, _ = await call(http, server, method, path, bearer(tenant))
        assert (status, body["error"]["code"]) == (403, "PERMISSION_DENIED"), path
        assert body["error"]["details"]["reason"] == "OPERATOR_ONLY"
    operator = mint.token(permissions=(WRITE,), subject="user:operator")
    status, body, _ = await call(http, server, method, path, bearer(operator))
    assert (status, body["data"]["caller"]) == (200, "user:operator")


async def test_rest_tenant_route_admits_a_tenant(http, server, mint):
    tenant = mint.token(**TENANT_ADMIN)
    status, body, _ = await call(http, server, "GET", "/api/v1/things", bearer(tenant))
    assert (status, body["data"]["caller"]) == (200, "user:project-admin")


async def test_rest_public_route_needs_no_token(http, server, mint):
    status, body, _ = await call(http, server, "GET", "/api/v1/ping")
    assert status == 200
    assert body["data"] == {"current": None, "caller": None, "outgoing": {}}
    # a public route runs as nobody, whatever the caller sends
    for headers in (bearer(mint.token()), {"Authorization": "Bearer garbage"}):
        status, body, _ = await call(http, server, "GET", "/api/v1/ping", headers)
        assert status == 200
        assert body["data"]["current"] is None


async def test_the_principal_does_not_leak_into_the_next_request(http, server, mint):
    await call(http, server, "GET", "/api/v1/whoami", bearer(mint.token(subject="user:first")))
    status, body, _ = await call(http, server, "GET", "/api/v1/ping")
    assert status == 200
    assert body["data"]["current"] is None
    assert auth.current() is None


@pytest.mark.parametrize("path", ["/health", "/metrics", "/api/v1/openapi.json"])
async def test_operations_routes_stay_public(http, server, path):
    for headers in ({}, {"Authorization": "Bearer garbage"}):
        async with http.get(f"http://127.0.0.1:{server.rest_port}{path}", headers=headers) as response:
            assert response.status == 200, path


async def test_openapi_declares_security_per_route(http, server):
    status, document, _ = await call(http, server, "GET", "/api/v1/openapi.json")
    assert status == 200
    paths = document["paths"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert paths["/api/v1/things"]["get"]["security"] == [{"bearer": []}]
    assert paths["/api/v1/things"]["get"]["x-permission"] == READ
    assert paths["/api/v1/things"]["post"]["security"] == [{"bearer": []}]
    assert paths["/api/v1/things"]["post"]["x-permission"] == WRITE
    assert paths["/api/v1/whoami"]["get"]["security"] == [{"bearer": []}]
    assert "x-permission" not in paths["/api/v1/whoami"]["get"]
    assert paths["/api/v1/ping"]["get"]["security"] == []
    assert (paths["/api/v1/ping"]["get"]["x-who"], paths["/api/v1/things"]["get"]["x-who"],
            paths["/api/v1/things/purge"]["post"]["x-who"]) == (auth.PUBLIC, auth.TENANT, auth.OPERATOR)
    assert "x-who" not in paths["/api/v1/undeclared"]["get"]
    assert "x-permission" not in paths["/api/v1/ping"]["get"]
    for path in ("/health", "/metrics", "/api/v1/openapi.json"):
        assert paths[path]["get"]["security"] == [], path
    # the gRPC methods' gates, as the interceptor applies them
    methods = document["x-grpc-methods"]
    assert methods[f"/{SERVICE}/Purge"] == {"x-who": auth.OPERATOR, "x-permission": WRITE}
    assert methods[f"/{SERVICE}/List"] == {"x-who": auth.TENANT, "x-permission": READ}
    assert methods[f"/{SERVICE}/Ping"]["x-who"] == auth.PUBLIC


# --- gRPC ---------------------------------------------------------------------------------------


def metadata_for(token: str | None, request_id: str | None = None) -> tuple[tuple[str, str], ...]:
    items = []
    if token is not None:
        items.append(("authorization", f"Bearer {token}"))
    if request_id is not None:
        items.append(("x-request-id", request_id))
    return tuple(items)


async def unary(server, method: str, metadata=(), service: str = SERVICE) -> bytes:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        return await channel.unary_unary(f"/{service}/{method}")(b"", metadata=metadata)


async def failure(server, method: str, metadata=()) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(server, method, metadata)
    return caught.value


@pytest.mark.parametrize("metadata", [
    (), (("authorization", ""),), (("authorization", "Basic dXNlcjpwYXNz"),),
    (("authorization", "Bearer not-a-jwt"),),
])
async def test_grpc_without_a_valid_token_is_unauthenticated(server, metadata):
    exc = await failure(server, "List", metadata)
    assert exc.code() is grpc.StatusCode.UNAUTHENTICATED
    assert rpc.error_from_rpc(exc).code is Code.UNAUTHENTICATED


async def test_grpc_expired_token_carries_its_reason(server, mint):
    exc = await failure(server, "List", metadata_for(mint.token(ttl=-120)))
    assert exc.code() is grpc.StatusCode.UNAUTHENTICATED
    assert rpc.error_from_rpc(exc).details["reason"] == "EXPIRED"


async def test_grpc_without_the_permission_is_denied(server, mint):
    reader = mint.token(permissions=(READ,), subject="user:reader")
    exc = await failure(server, "Create", metadata_for(reader))
    assert exc.code() is grpc.StatusCode.PERMISSION_DENIED
    details = rpc.error_from_rpc(exc).details
    assert details["action"] == WRITE
    assert details["reason"] == "MISSING_PERMISSION"
    assert await unary(server, "List", metadata_for(reader)) == b"user:reader"


async def test_grpc_with_the_permission_sees_its_principal(server, mint):
    writer = mint.token(permissions=(WRITE,), subject="serviceaccount:builder")
    assert await unary(server, "Create", metadata_for(writer)) == b"serviceaccount:builder"


async def test_grpc_streams_are_admitted_and_see_the_principal(server, mint):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        method = channel.unary_stream(f"/{SERVICE}/Stream")
        token = mint.token(permissions=(), subject="user:streamer")
        assert [m async for m in method(b"", metadata=metadata_for(token))] == [b"user:streamer"] * 2
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in method(b""):
                pass
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_grpc_method_without_a_route_is_the_operators(server, mint):
    """Only what is declared public is public, and only what is declared a tenant's is a tenant's:
    an undeclared method takes a system-scoped token."""
    exc = await failure(server, "Undeclared")
    assert exc.code() is grpc.StatusCode.UNAUTHENTICATED
    exc = await failure(server, "Undeclared", metadata_for(mint.token(**TENANT_ADMIN)))
    assert exc.code() is grpc.StatusCode.PERMISSION_DENIED
    assert rpc.error_from_rpc(exc).details["reason"] == "OPERATOR_ONLY"
    token = mint.token(permissions=(), subject="user:plain")
    assert await unary(server, "Undeclared", metadata_for(token)) == b"user:plain"


async def test_grpc_operator_method_refuses_a_tenant_whatever_its_grants(server, mint):
    exc = await failure(server, "Purge", metadata_for(mint.token(**TENANT_ADMIN)))
    assert exc.code() is grpc.StatusCode.PERMISSION_DENIED
    assert rpc.error_from_rpc(exc).details["reason"] == "OPERATOR_ONLY"
    assert await unary(server, "Create", metadata_for(mint.token(**TENANT_ADMIN))) == b"user:project-admin"
    operator = mint.token(permissions=(WRITE,), subject="user:operator")
    assert await unary(server, "Purge", metadata_for(operator)) == b"user:operator"


async def test_grpc_public_method_needs_no_token(server, mint):
    assert await unary(server, "Ping") == b"anonymous"
    assert await unary(server, "Ping", metadata_for(mint.token())) == b"anonymous"


async def test_grpc_health_and_reflection_need_no_token(server):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = [r async for r in stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]))]
        names = {s.name for s in replies[0].list_services_response.service}
        assert SERVICE in names


# --- forwarding the caller's token --------------------------------------------------------------


@pytest.fixture
async def pair(start, grpc_service, mint):
    """An upstream server whose handlers call a downstream one through rpc.insecure_channel."""
    received: list[dict[str, Any]] = []

    async def record(request: bytes, context) -> bytes:
        metadata = dict(context.invocation_metadata())
        received.append({"authorization": metadata.get("authorization"),
                         "x-request-id": metadata.get("x-request-id"),
                         "subject": auth.caller().subject})
        return b"recorded"

    downstream = await start(Service("down", "1.0.0", RouteTable(), [grpc_service(DOWNSTREAM, {"Record": record})],
                                     verifier=mint.verifier()))
    target = f"127.0.0.1:{downstream.grpc_port}"

    async def relay() -> bytes:
        async with rpc.insecure_channel(target) as channel:
            return await channel.unary_unary(f"/{DOWNSTREAM}/Record")(b"")

    routes = RouteTable()

    @routes.post("/api/v1/relay", "Call downstream", rpc=f"{SERVICE}/Relay", permission=READ,
                 who=auth.TENANT)
    async def relay_rest(request):
        return {"reply": (await relay()).decode()}

    async def relay_grpc(request: bytes, context) -> bytes:
        return await relay()

    relayed = grpc_service(SERVICE, {"Relay": relay_grpc}, gates_of(routes))
    upstream = await start(Service("up", "1.0.0", routes, [relayed], verifier=mint.verifier()))
    return upstream, downstream, received


async def test_rest_handler_forwards_token_and_request_id(http, pair, mint):
    upstream, _, received = pair
    token = mint.token(permissions=(READ,), subject="user:forwarded")
    headers = {**bearer(token), "X-Request-ID": "rid-relay-rest-1"}
    status, body, _ = await call(http, upstream, "POST", "/api/v1/relay", headers)
    assert (status, body["data"]) == (200, {"reply": "recorded"})
    assert received == [{"authorization": f"Bearer {token}", "x-request-id": "rid-relay-rest-1",
                         "subject": "user:forwarded"}]


async def test_grpc_servicer_forwards_token_and_request_id(pair, mint):
    upstream, _, received = pair
    token = mint.token(permissions=(READ,), subject="user:forwarded-grpc")
    assert await unary(upstream, "Relay", metadata_for(token, "rid-relay-grpc-1")) == b"recorded"
    assert received == [{"authorization": f"Bearer {token}", "x-request-id": "rid-relay-grpc-1",
                         "subject": "user:forwarded-grpc"}]


async def test_no_token_is_forwarded_outside_a_request(pair, mint):
    _, downstream, received = pair
    assert auth.outgoing_headers() == {}
    async with rpc.insecure_channel(f"127.0.0.1:{downstream.grpc_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/{DOWNSTREAM}/Record")(b"")
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert received == []


async def test_an_explicit_authorization_is_not_overridden(pair, mint):
    _, downstream, received = pair
    own = mint.token(permissions=(), subject="serviceaccount:upstream")
    token = auth.bind(await mint.verifier().verify(mint.token(subject="user:someone")))
    try:
        async with rpc.insecure_channel(f"127.0.0.1:{downstream.grpc_port}") as channel:
            await channel.unary_unary(f"/{DOWNSTREAM}/Record")(b"", metadata=metadata_for(own))
    finally:
        auth.reset(token)
    assert received[0]["authorization"] == f"Bearer {own}"
    assert received[0]["subject"] == "serviceaccount:upstream"


async def test_upstream_refusal_means_no_downstream_call(http, pair, mint):
    upstream, _, received = pair
    no_grant = mint.token(permissions=("test:other:read",))
    status, body, _ = await call(http, upstream, "POST", "/api/v1/relay", bearer(no_grant))
    assert (status, body["error"]["details"]["action"]) == (403, READ)
    exc = await failure(upstream, "Relay", metadata_for(no_grant))
    assert exc.code() is grpc.StatusCode.PERMISSION_DENIED
    assert received == []
