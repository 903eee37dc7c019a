"""The runner: /health, /metrics, gRPC health and reflection, and graceful shutdown of both transports."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from photoncloud.common import errors
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import Service

SERVICE = "test.v1.Echo"
OTHER_SERVICE = "test.v1.Other"


def routes() -> RouteTable:
    table = RouteTable()

    @table.get("/api/v1/items/{item_id}", "Get an item")
    async def get_item(request, item_id: str):
        if item_id == "missing":
            raise errors.NotFound("no such item")
        return {"id": item_id}

    @table.get("/api/v1/kv/{key:.+}", "Get a key")
    async def get_key(request, key: str):
        return {"key": key}

    return table


async def echo(request: bytes, context) -> bytes:
    if request == b"missing":
        raise errors.NotFound("no such thing")
    return request


async def nothing(request: bytes, context) -> bytes:
    return b""


@pytest.fixture
def services(grpc_service):
    return [grpc_service(SERVICE, {"Echo": echo}), grpc_service(OTHER_SERVICE, {"Nothing": nothing})]


# --- /health ------------------------------------------------------------------------------------


async def test_health_is_serving_with_version_and_dependencies(start, http, services):
    async def dependencies():
        return {"store": {"ok": True}, "raft": {"role": "LEADER"}}

    server = await start(Service("t", "9.8.7", routes(), services, dependencies))
    async with http.get(f"http://127.0.0.1:{server.rest_port}/health") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["data"]["status"] == "SERVING"
    assert body["data"]["version"] == "9.8.7"
    assert body["data"]["dependencies"] == {"store": {"ok": True}, "raft": {"role": "LEADER"}}
    assert body["meta"]["request_id"] == resp.headers["X-Request-ID"]


async def test_health_without_dependencies_is_serving(start, http):
    server = await start(Service("t", "1.0.0", routes(), []))
    async with http.get(f"http://127.0.0.1:{server.rest_port}/health") as resp:
        assert resp.status == 200
        data = (await resp.json())["data"]
    assert data["status"] == "SERVING"
    assert "dependencies" in data


async def test_health_is_not_serving_when_dependencies_fail(start, http):
    async def dependencies():
        raise errors.Unavailable("the store is gone")

    server = await start(Service("t", "1.0.0", routes(), [], dependencies))
    async with http.get(f"http://127.0.0.1:{server.rest_port}/health") as resp:
        assert resp.status == 503
        data = (await resp.json())["data"]
    assert data["status"] == "NOT_SERVING"
    assert data["version"] == "1.0.0"


# --- /metrics -----------------------------------------------------------------------------------


def samples(text: str, name: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


def total(found: list, **labels: str) -> float:
    return sum(s.value for s in found if all(s.labels.get(k) == v for k, v in labels.items()))


async def test_metrics_count_requests_by_route_template_and_code(start, http, services):
    server = await start(Service("t", "1.0.0", routes(), services))
    base = f"http://127.0.0.1:{server.rest_port}"
    for path in ("/api/v1/items/a", "/api/v1/items/b", "/api/v1/items/c", "/api/v1/items/missing",
                 "/api/v1/kv/x/y/z", "/api/v1/nowhere/at/all"):
        async with http.get(base + path):
            pass
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        for request in (b"a", b"b"):
            await channel.unary_unary(f"/{SERVICE}/Echo")(request)
        with pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary(f"/{SERVICE}/Echo")(b"missing")

    async with http.get(f"{base}/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()

    counts = samples(text, "photoncloud_requests_total")
    items = "/api/v1/items/{item_id}"
    assert total(counts, service="t", transport="rest", method="GET", route=items, code="OK") == 3
    assert total(counts, transport="rest", route=items, code="NOT_FOUND") == 1
    assert total(counts, transport="rest", code="NOT_FOUND") == 2  # the unknown route counts too
    kv_routes = {s.labels["route"] for s in counts if s.labels["route"].startswith("/api/v1/kv/")}
    assert kv_routes and kv_routes <= {"/api/v1/kv/{key}", "/api/v1/kv/{key:.+}"}
    # raw paths never become labels (they would be unbounded)
    raw = {"/api/v1/items/a", "/api/v1/items/missing", "/api/v1/kv/x/y/z", "/api/v1/nowhere/at/all"}
    assert not raw & {s.labels["route"] for s in counts}

    grpc_route = {s.labels["route"] for s in counts if s.labels["transport"] == "grpc"}
    assert len(grpc_route) == 1 and "Echo" in grpc_route.pop()
    assert total(counts, transport="grpc", code="OK") == 2
    assert total(counts, transport="grpc", code="NOT_FOUND") == 1

    latencies = samples(text, "photoncloud_request_duration_seconds_count")
    assert total(latencies, transport="rest", route=items, code="OK") == 3


# --- gRPC health and reflection -----------------------------------------------------------------


async def test_grpc_health_is_serving_for_the_server_and_each_service(start, services):
    server = await start(Service("t", "1.0.0", routes(), services))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE, OTHER_SERVICE):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def reflect(channel, request: reflection_pb2.ServerReflectionRequest):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = [reply async for reply in stub.ServerReflectionInfo(iter([request]))]
    assert len(replies) == 1
    return replies[0]


async def test_reflection_lists_the_services(start, services):
    server = await start(Service("t", "1.0.0", routes(), services))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        reply = await reflect(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
        names = {service.name for service in reply.list_services_response.service}
        assert {SERVICE, OTHER_SERVICE, "grpc.health.v1.Health"} <= names
        assert any(name.endswith("ServerReflection") for name in names)
        # a listed service with a descriptor can be resolved to its file
        reply = await reflect(
            channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.health.v1.Health")
        )
        assert reply.file_descriptor_response.file_descriptor_proto


# --- graceful shutdown --------------------------------------------------------------------------


async def test_stop_lets_an_in_flight_rest_request_finish_then_closes(start):
    events: list[str] = []
    entered = asyncio.Event()
    table = RouteTable()

    @table.get("/api/v1/slow", "Takes a while")
    async def slow(request):
        entered.set()
        await asyncio.sleep(0.5)
        events.append("handler finished")
        return {"done": True}

    async def close():
        await asyncio.sleep(0)
        events.append("closed")

    server = await start(Service("t", "1.0.0", table, [], close=close))
    port = server.rest_port

    async def fetch():
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/api/v1/slow") as resp:
                return resp.status, await resp.json()

    request = asyncio.create_task(fetch())
    await asyncio.wait_for(entered.wait(), 5)
    await asyncio.wait_for(server.stop(), 5)
    status, body = await asyncio.wait_for(request, 5)
    assert status == 200
    assert body["data"] == {"done": True}
    assert events == ["handler finished", "closed"]
    assert server.serving is False
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_stop_lets_an_in_flight_grpc_call_finish(start, grpc_service):
    entered = asyncio.Event()
    closed = []

    async def slow(request: bytes, context) -> bytes:
        entered.set()
        await asyncio.sleep(0.5)
        return b"finished " + request

    async def close():
        closed.append(True)

    server = await start(Service("t", "1.0.0", RouteTable(), [grpc_service(SERVICE, {"Slow": slow})], close=close))
    port = server.grpc_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = asyncio.ensure_future(channel.unary_unary(f"/{SERVICE}/Slow")(b"job"))
        await asyncio.wait_for(entered.wait(), 5)
        await asyncio.wait_for(server.stop(), 5)
        assert await asyncio.wait_for(call, 5) == b"finished job"
    assert closed == [True]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)



async def test_a_second_server_cannot_share_a_taken_grpc_port(start):
    """gRPC binds with SO_REUSEPORT unless told not to: a second server would then share the port and
    answer some of the first one's calls (with its own gates). Binding a taken port must fail."""
    first = await start(Service("first", "1.0.0", RouteTable(), []))
    with pytest.raises(RuntimeError):
        await start(Service("second", "1.0.0", RouteTable(), []), grpc_port=first.grpc_port)
