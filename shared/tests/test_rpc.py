"""The gRPC side: ServiceError mapped to its status with recoverable details, everything else INTERNAL."""

from __future__ import annotations

import logging

import grpc
import pytest

from photoncloud.common import errors, rpc
from photoncloud.common.errors import Code, ServiceError
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import Service

SERVICE = "test.v1.Faults"
SECRET = "s3cr3t-token-in-an-exception"
# DESIGN.md's table, code -> gRPC status name.
GRPC_STATUS = {
    "INVALID_ARGUMENT": "INVALID_ARGUMENT", "FAILED_PRECONDITION": "FAILED_PRECONDITION",
    "OUT_OF_RANGE": "OUT_OF_RANGE", "UNAUTHENTICATED": "UNAUTHENTICATED",
    "PERMISSION_DENIED": "PERMISSION_DENIED", "NOT_FOUND": "NOT_FOUND", "ALREADY_EXISTS": "ALREADY_EXISTS",
    "ABORTED": "ABORTED", "RESOURCE_EXHAUSTED": "RESOURCE_EXHAUSTED", "UNIMPLEMENTED": "UNIMPLEMENTED",
    "UNAVAILABLE": "UNAVAILABLE", "DEADLINE_EXCEEDED": "DEADLINE_EXCEEDED", "INTERNAL": "INTERNAL",
}
ERROR_CLASSES = {
    "INVALID_ARGUMENT": errors.InvalidArgument, "FAILED_PRECONDITION": errors.FailedPrecondition,
    "OUT_OF_RANGE": errors.OutOfRange, "UNAUTHENTICATED": errors.Unauthenticated,
    "PERMISSION_DENIED": errors.PermissionDenied, "NOT_FOUND": errors.NotFound,
    "ALREADY_EXISTS": errors.AlreadyExists, "ABORTED": errors.Aborted,
    "RESOURCE_EXHAUSTED": errors.ResourceExhausted, "UNIMPLEMENTED": errors.Unimplemented,
    "UNAVAILABLE": errors.Unavailable, "DEADLINE_EXCEEDED": errors.DeadlineExceeded,
    "INTERNAL": errors.Internal,
}


@pytest.mark.parametrize("code", sorted(GRPC_STATUS))
def test_grpc_status_is_the_table_and_maps_back(code):
    status = getattr(grpc.StatusCode, GRPC_STATUS[code])
    assert rpc.grpc_status(Code[code]) is status
    assert rpc.code_of(status) is Code[code]


@pytest.mark.parametrize("status", [grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS])
def test_a_status_outside_the_table_maps_back_to_internal(status):
    assert rpc.code_of(status) is Code.INTERNAL


async def fail(request: bytes, context) -> bytes:
    """Raise the error class named by the request; no details for a request ending in '!'."""
    name = request.decode()
    if name.endswith("!"):
        raise ERROR_CLASSES[name[:-1]](f"bare {name[:-1]}")
    raise ERROR_CLASSES[name](f"failing with {name}", {"reason": "TEST", "code": name, "text": "ünï \"q\"\n"})


async def crash(request: bytes, context) -> bytes:
    raise RuntimeError(f"database said {SECRET}")


async def echo(request: bytes, context) -> bytes:
    return request


async def self_abort(request: bytes, context) -> bytes:
    await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the servicer aborted itself")


async def stream_then_fail(request: bytes, context):
    yield b"first"
    yield b"second"
    if request == b"crash":
        raise RuntimeError(f"stream broke: {SECRET}")
    raise errors.NotFound("ran out of things", {"after": 2})


async def stream_fail_at_once(request: bytes, context):
    raise errors.PermissionDenied("not yours", {"resource": "x"})
    yield b"never"  # pragma: no cover - makes this an async generator


async def stream_ok(request: bytes, context):
    for n in range(3):
        yield str(n).encode()


@pytest.fixture
async def channel(start, grpc_service):
    methods = {
        "Fail": fail, "Crash": crash, "Echo": echo, "SelfAbort": self_abort,
        "StreamThenFail": stream_then_fail, "StreamFailAtOnce": stream_fail_at_once, "StreamOk": stream_ok,
    }
    server = await start(Service("t", "1.0.0", RouteTable(), [grpc_service(SERVICE, methods)]))
    async with rpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield channel


def unary(channel, method):
    return channel.unary_unary(f"/{SERVICE}/{method}")


def stream(channel, method):
    return channel.unary_stream(f"/{SERVICE}/{method}")


async def test_success_passes_through(channel):
    assert await unary(channel, "Echo")(b"hello") == b"hello"
    assert [part async for part in stream(channel, "StreamOk")(b"")] == [b"0", b"1", b"2"]


@pytest.mark.parametrize("code", sorted(GRPC_STATUS))
async def test_service_error_maps_to_its_status_with_details(channel, code):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(channel, "Fail")(code.encode())
    assert caught.value.code() is getattr(grpc.StatusCode, GRPC_STATUS[code])
    assert caught.value.details() == f"failing with {code}"
    recovered = rpc.error_from_rpc(caught.value)
    assert isinstance(recovered, ServiceError)
    assert recovered.code is Code[code]
    assert recovered.message == f"failing with {code}"
    assert recovered.details == {"reason": "TEST", "code": code, "text": "ünï \"q\"\n"}


async def test_service_error_without_details_recovers_none(channel):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(channel, "Fail")(b"NOT_FOUND!")
    recovered = rpc.error_from_rpc(caught.value)
    assert recovered.code is Code.NOT_FOUND
    assert recovered.message == "bare NOT_FOUND"
    assert recovered.details is None


async def test_unexpected_exception_is_internal_without_its_text(channel, caplog):
    caplog.set_level(logging.ERROR)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(channel, "Crash")(b"")
    exc = caught.value
    assert exc.code() is grpc.StatusCode.INTERNAL
    assert SECRET not in (exc.details() or "")
    assert "RuntimeError" not in (exc.details() or "")
    assert all(SECRET not in str(value) for _, value in exc.trailing_metadata() or ())
    assert rpc.error_from_rpc(exc).code is Code.INTERNAL
    # the service log keeps what the caller was not told
    assert any(r.exc_info and SECRET in str(r.exc_info[1]) for r in caplog.records)


async def test_a_servicer_abort_is_kept(channel):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(channel, "SelfAbort")(b"")
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == "the servicer aborted itself"


async def test_stream_error_after_messages(channel):
    call = stream(channel, "StreamThenFail")(b"")
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for part in call:
            received.append(part)
    assert received == [b"first", b"second"]
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    recovered = rpc.error_from_rpc(caught.value)
    assert recovered.code is Code.NOT_FOUND
    assert recovered.message == "ran out of things"
    assert recovered.details == {"after": 2}


async def test_stream_error_before_any_message(channel):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stream(channel, "StreamFailAtOnce")(b""):
            pass
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert rpc.error_from_rpc(caught.value).details == {"resource": "x"}


async def test_stream_unexpected_exception_is_internal_without_its_text(channel):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stream(channel, "StreamThenFail")(b"crash"):
            pass
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert SECRET not in (caught.value.details() or "")


async def test_unknown_method_is_unimplemented(channel):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(f"/{SERVICE}/NoSuchMethod")(b"")
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert rpc.error_from_rpc(caught.value).code is Code.UNIMPLEMENTED


def echoed(metadata) -> list[str]:
    return [value for key, value in metadata or () if key == "x-request-id"]


@pytest.mark.parametrize("method, request_body", [("Echo", b"hi"), ("Fail", b"NOT_FOUND"), ("Crash", b""),
                                                   ("SelfAbort", b"")])
async def test_a_unary_call_echoes_its_request_id_with_its_status(channel, method, request_body):
    call = unary(channel, method)(request_body, metadata=(("x-request-id", f"unary-{method}"),))
    try:
        await call
    except grpc.aio.AioRpcError:
        pass
    assert echoed(await call.trailing_metadata()) == [f"unary-{method}"]
    assert echoed(await call.initial_metadata()) == []  # no separate operation for a unary call


@pytest.mark.parametrize("method, request_body", [("StreamOk", b""), ("StreamThenFail", b""),
                                                   ("StreamFailAtOnce", b"")])
async def test_a_stream_echoes_its_request_id_at_its_start_and_with_its_status(channel, method, request_body):
    call = stream(channel, method)(request_body, metadata=(("x-request-id", f"stream-{method}"),))
    assert echoed(await call.initial_metadata()) == [f"stream-{method}"]
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError:
        pass
    assert echoed(await call.trailing_metadata()) == [f"stream-{method}"]


async def test_calls_alternating_between_methods_each_run_their_own(channel):  # each method wrapped once
    for n in range(3):
        assert await unary(channel, "Echo")(str(n).encode()) == str(n).encode()
        with pytest.raises(grpc.aio.AioRpcError):
            await unary(channel, "Fail")(b"NOT_FOUND")
