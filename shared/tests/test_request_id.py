"""Request IDs: sane ones accepted, others replaced, echoed over REST and gRPC, forwarded to other services."""

from __future__ import annotations

import asyncio
import re

import grpc
import pytest

from photoncloud.common import request_id, rpc
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import Service

SANE_IDS = ["abc", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "trace-1.2_3:4@host/5+6=7", "x" * 128]
INSANE_IDS = [
    "x" * 129,                 # too long
    "has space",
    "line\nbreak",
    "trailing-newline\n",
    "\nleading-newline",
    "tab\there",
    'quote"d',
    "semi;colon",
    "ünïcode",
]
GENERATED = re.compile(r"^[A-Za-z0-9._:@/+=-]{8,128}$")  # something a caller could send back sanely


@pytest.mark.parametrize("candidate", SANE_IDS)
def test_sane_id_is_accepted(candidate):
    assert request_id.accept(candidate) == candidate


@pytest.mark.parametrize("candidate", [*INSANE_IDS, "", None])
def test_insane_or_missing_id_is_replaced(candidate):
    replacement = request_id.accept(candidate)
    assert replacement != candidate
    assert GENERATED.match(replacement)
    # a replacement is itself sane: sending it back keeps it
    assert request_id.accept(replacement) == replacement


def test_generated_ids_are_unique():
    assert len({request_id.new_request_id() for _ in range(1000)}) == 1000


def test_bind_current_reset():
    assert request_id.current() == ""
    outer = request_id.bind("outer")
    inner = request_id.bind("inner")
    assert request_id.current() == "inner"
    request_id.reset(inner)
    assert request_id.current() == "outer"
    request_id.reset(outer)
    assert request_id.current() == ""


async def test_bound_id_is_per_task():
    seen = {}

    async def work(name: str) -> None:
        token = request_id.bind(name)
        await asyncio.sleep(0.01)
        seen[name] = request_id.current()
        request_id.reset(token)

    await asyncio.gather(work("a"), work("b"))
    assert seen == {"a": "a", "b": "b"}
    assert request_id.current() == ""


def test_outgoing_headers():
    assert request_id.outgoing_headers() == {}
    token = request_id.bind("rid-42")
    try:
        headers = request_id.outgoing_headers()
    finally:
        request_id.reset(token)
    assert {k.lower(): v for k, v in headers.items()} == {"x-request-id": "rid-42"}


# --- over REST --------------------------------------------------------------------------------


def rest_service() -> Service:
    routes = RouteTable()

    @routes.get("/api/v1/whoami", "The request ID the handler sees")
    async def whoami(request):
        return {"request_id": request_id.current()}

    return Service("t", "1.0.0", routes, [])


async def test_rest_echoes_a_sane_request_id(start, http):
    server = await start(rest_service())
    url = f"http://127.0.0.1:{server.rest_port}/api/v1/whoami"
    async with http.get(url, headers={"X-Request-ID": "client-chosen-1"}) as resp:
        body = await resp.json()
        assert resp.status == 200
        assert resp.headers["X-Request-ID"] == "client-chosen-1"
    assert body["meta"]["request_id"] == "client-chosen-1"
    assert body["data"]["request_id"] == "client-chosen-1"


@pytest.mark.parametrize("sent", ["x" * 129, "has spaces in it", "quote\"d"])
async def test_rest_replaces_an_insane_request_id(start, http, sent):
    server = await start(rest_service())
    url = f"http://127.0.0.1:{server.rest_port}/api/v1/whoami"
    async with http.get(url, headers={"X-Request-ID": sent}) as resp:
        body = await resp.json()
        echoed = resp.headers["X-Request-ID"]
    assert echoed != sent
    assert GENERATED.match(echoed)
    assert body["meta"]["request_id"] == echoed == body["data"]["request_id"]


async def test_rest_generates_a_request_id_when_absent(start, http):
    server = await start(rest_service())
    url = f"http://127.0.0.1:{server.rest_port}/api/v1/whoami"
    ids = []
    for _ in range(2):
        async with http.get(url) as resp:
            body = await resp.json()
            ids.append(resp.headers["X-Request-ID"])
        assert GENERATED.match(ids[-1])
        assert body["meta"]["request_id"] == ids[-1]
    assert ids[0] != ids[1]


async def test_rest_error_envelope_carries_the_request_id(start, http):
    server = await start(rest_service())
    url = f"http://127.0.0.1:{server.rest_port}/api/v1/no-such-route"
    async with http.get(url, headers={"X-Request-ID": "err-id-7"}) as resp:
        body = await resp.json()
        assert resp.status == 404
        assert resp.headers["X-Request-ID"] == "err-id-7"
    assert body["meta"]["request_id"] == "err-id-7"


async def test_request_id_does_not_leak_out_of_the_request(start, http):
    server = await start(rest_service())
    async with http.get(f"http://127.0.0.1:{server.rest_port}/api/v1/whoami", headers={"X-Request-ID": "leak"}):
        pass
    assert request_id.current() == ""


# --- over gRPC --------------------------------------------------------------------------------

SERVICE = "test.v1.Echo"


@pytest.fixture
def recorder(grpc_service):
    """A gRPC service whose Record method remembers the request ID and metadata of each call."""
    calls: list[dict] = []

    async def record(request: bytes, context) -> bytes:
        metadata = [(key, value) for key, value in context.invocation_metadata()]
        calls.append({"current": request_id.current(), "metadata": metadata})
        return request

    return grpc_service(SERVICE, {"Record": record}), calls


async def call_record(channel, metadata=None):
    call = channel.unary_unary(f"/{SERVICE}/Record")(b"ping", metadata=metadata)
    response = await call
    trailing = await call.trailing_metadata()  # the ID travels with the status
    return response, trailing


def sent_ids(metadata):
    return [value for key, value in metadata if key == "x-request-id"]


async def test_grpc_echoes_a_sane_request_id(start, recorder):
    service, calls = recorder
    server = await start(Service("t", "1.0.0", RouteTable(), [service]))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        response, trailing = await call_record(channel, (("x-request-id", "grpc-client-9"),))
    assert response == b"ping"
    assert trailing["x-request-id"] == "grpc-client-9"
    assert calls[-1]["current"] == "grpc-client-9"


@pytest.mark.parametrize("sent", [None, "x" * 129, "has space"])
async def test_grpc_generates_a_request_id_when_absent_or_insane(start, recorder, sent):
    service, calls = recorder
    server = await start(Service("t", "1.0.0", RouteTable(), [service]))
    metadata = None if sent is None else (("x-request-id", sent),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        _, trailing = await call_record(channel, metadata)
    echoed = trailing["x-request-id"]
    assert echoed != sent
    assert GENERATED.match(echoed)
    assert calls[-1]["current"] == echoed


async def test_client_channel_forwards_the_current_request_id(start, recorder):
    service, calls = recorder
    server = await start(Service("t", "1.0.0", RouteTable(), [service]))
    token = request_id.bind("forwarded-id-3")
    try:
        async with rpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            _, trailing = await call_record(channel)
            # metadata the caller adds itself still arrives next to the request ID
            await call_record(channel, (("x-extra", "kept"),))
    finally:
        request_id.reset(token)
    first, second = calls[-2:]
    assert sent_ids(first["metadata"]) == ["forwarded-id-3"]
    assert first["current"] == "forwarded-id-3"
    assert trailing["x-request-id"] == "forwarded-id-3"
    assert sent_ids(second["metadata"]) == ["forwarded-id-3"]
    assert ("x-extra", "kept") in second["metadata"]


async def test_client_channel_sends_no_request_id_outside_a_request(start, recorder):
    service, calls = recorder
    server = await start(Service("t", "1.0.0", RouteTable(), [service]))
    assert request_id.current() == ""
    async with rpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        _, trailing = await call_record(channel)
    assert sent_ids(calls[-1]["metadata"]) == []
    assert GENERATED.match(trailing["x-request-id"])  # the server made one up


async def test_client_channel_forwards_on_streaming_calls(start, grpc_service):
    seen = []

    async def stream(request: bytes, context):
        seen.append(request_id.current())
        for part in (b"a", b"b"):
            yield part

    server = await start(Service("t", "1.0.0", RouteTable(), [grpc_service(SERVICE, {"Stream": stream})]))
    token = request_id.bind("stream-id-5")
    try:
        async with rpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            parts = [part async for part in channel.unary_stream(f"/{SERVICE}/Stream")(b"go")]
    finally:
        request_id.reset(token)
    assert parts == [b"a", b"b"]
    assert seen == ["stream-id-5"]


async def test_client_channel_forwards_on_client_streaming_calls(start, grpc_service):
    seen = []

    async def gather_parts(requests, context) -> bytes:
        parts = [part async for part in requests]
        seen.append(request_id.current())
        return b"".join(parts)

    async def echo_each(requests, context):
        seen.append(request_id.current())
        async for part in requests:
            yield part

    methods = {
        "Gather": grpc.stream_unary_rpc_method_handler(gather_parts),
        "EchoEach": grpc.stream_stream_rpc_method_handler(echo_each),
    }
    server = await start(Service("t", "1.0.0", RouteTable(), [grpc_service(SERVICE, methods)]))

    async def parts():
        for part in (b"x", b"y"):
            yield part

    token = request_id.bind("client-stream-id")
    try:
        async with rpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            gathered = await channel.stream_unary(f"/{SERVICE}/Gather")(parts())
            echoed = [part async for part in channel.stream_stream(f"/{SERVICE}/EchoEach")(parts())]
    finally:
        request_id.reset(token)
    assert gathered == b"xy"
    assert echoed == [b"x", b"y"]
    assert seen == ["client-stream-id", "client-stream-id"]
