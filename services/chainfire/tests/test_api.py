"""ChainFire's adapters against a real server: REST specifics, gRPC health and reflection."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from photoncloud.chainfire.v1 import kv_pb2 as pb
from photoncloud.chainfire.v1 import kv_pb2_grpc as pb_grpc


@pytest.fixture
def call(server, auth):
    """call(method, path, **kw) -> (status, body) over REST, with an admin token unless headers are given."""
    async def call(method, path, headers=None, **kw):
        async with aiohttp.ClientSession(headers=auth.headers if headers is None else headers) as session:
            async with session.request(method, f"http://127.0.0.1:{server.rest_port}{path}", **kw) as r:
                return r.status, await r.json()
    return call


async def test_keys_may_contain_slashes_and_escapes(server, call):
    status, body = await call("PUT", "/api/v1/kv/config/db/host", json={"value": "db1"})
    assert status == 200
    status, body = await call("GET", "/api/v1/kv/config/db/host")
    assert (status, body["data"]["key"], body["data"]["value"]) == (200, "config/db/host", "db1")
    await call("PUT", "/api/v1/kv/with%20space", json={"value": "x"})
    status, body = await call("GET", "/api/v1/kv", params={"prefix": "with "})
    assert [kv["key"] for kv in body["data"]["items"]] == ["with space"]


async def test_binary_values_travel_as_base64(server, call, auth):
    raw = bytes([0, 159, 255, 10])
    encoded = base64.b64encode(raw).decode()
    status, _ = await call("PUT", "/api/v1/kv/bin", json={"value_base64": encoded})
    assert status == 200
    _, body = await call("GET", "/api/v1/kv/bin")
    assert (body["data"]["value"], body["data"]["value_base64"]) == (None, encoded)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        reply = await pb_grpc.KVStub(channel).Range(pb.RangeRequest(key=b"bin"), metadata=auth.metadata)
    assert reply.kvs[0].value == raw


async def test_bad_values_are_refused_in_the_envelope(server, call):
    for body, field in (({}, "value"), ({"value": "a", "value_base64": "YQ=="}, "value"),
                        ({"value_base64": "%%%"}, "value_base64"), ({"value": 1}, "value"),
                        ({"value": "a", "extra": True}, "extra")):
        status, reply = await call("PUT", "/api/v1/kv/k", json=body)
        assert (status, reply["error"]["code"], reply["error"]["details"]["field"]) == \
            (400, "INVALID_ARGUMENT", field), body
    status, reply = await call("GET", "/api/v1/kv/k")
    assert status == 404  # nothing was written


async def test_post_delete_without_a_body_deletes_the_key(server, call):
    await call("POST", "/api/v1/kv/gone/put", json={"value": "1"})
    status, body = await call("POST", "/api/v1/kv/gone/delete")
    assert (status, body["data"]["deleted"]) == (200, 1)


async def test_list_refuses_prefix_with_a_range_and_unknown_parameters(server, call):
    status, body = await call("GET", "/api/v1/kv", params={"prefix": "a", "key": "a"})
    assert (status, body["error"]["code"]) == (400, "INVALID_ARGUMENT")
    status, body = await call("GET", "/api/v1/kv", params={"prefx": "a"})
    assert (status, body["error"]["details"]["field"]) == (400, "prefx")
    status, body = await call("GET", "/api/v1/kv", params={"range_end": "b"})
    assert (status, body["error"]["details"]["field"]) == (400, "key")
    status, body = await call("GET", "/api/v1/kv", params={"page_size": 5000})
    assert (status, body["error"]["details"]["field"]) == (400, "page_size")


async def test_txn_ops_hold_exactly_one_operation(server, call):
    status, body = await call("POST", "/api/v1/txn", json={
        "success": [{"put": {"key": "a", "value": "1"}, "delete": {"key": "a"}}]})
    assert (status, body["error"]["code"]) == (400, "INVALID_ARGUMENT")
    status, body = await call("POST", "/api/v1/txn", json={
        "compare": [{"key": "a", "target": "VERSION", "result": "EQUAL"}]})
    assert (status, body["error"]["details"]["field"]) == (400, "version")


async def test_openapi_describes_every_chainfire_route(server, call):
    _, doc = await call("GET", "/api/v1/openapi.json")
    assert set(doc["paths"]["/api/v1/kv/{key}"]) == {"get", "put", "delete"}
    assert doc["paths"]["/api/v1/kv/{key}/put"]["post"]["x-grpc-method"] == "photoncloud.chainfire.v1.KV/Write"
    assert "/api/v1/txn" in doc["paths"] and "/api/v1/cluster/status" in doc["paths"]


async def test_grpc_health_and_reflection_name_the_chainfire_services(server, call):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "photoncloud.chainfire.v1.KV", "photoncloud.chainfire.v1.Cluster"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    def list_services() -> set[str]:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as sync_channel:
            return set(ProtoReflectionDescriptorDatabase(sync_channel).get_services())

    # The reflection client is synchronous: run it off the loop that serves it.
    services = await asyncio.to_thread(list_services)
    assert {"photoncloud.chainfire.v1.KV", "photoncloud.chainfire.v1.Cluster", "grpc.health.v1.Health"} <= services
