"""The gRPC side of a service: the gRPC half of the error table, the one interceptor that maps
errors, and client-side helpers."""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc

from . import auth, request_id
from .auth import Verifier
from .errors import Code, ServiceError, Unauthenticated
from .metrics import RequestMetrics

log = logging.getLogger("photoncloud.rpc")

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
# A servicer's method as grpc.aio calls it (request or request iterator, context).
_Context = grpc.aio.ServicerContext[Any, Any]
_Unary = Callable[[Any, _Context], Awaitable[Any]]
_Streaming = Callable[[Any, _Context], AsyncIterator[Any]]
_Metadata = Iterable[tuple[str, str | bytes]] | None

DETAILS_KEY = "photoncloud-error-details"
OK = "OK"  # the metrics label of a call that succeeded

# The gRPC half of the error table: every code is sent as the gRPC status of the same name.
_STATUS_BY_CODE = {code: grpc.StatusCode[code.name] for code in Code}
_CODE_BY_STATUS = {status: code for code, status in _STATUS_BY_CODE.items()}


def grpc_status(code: Code) -> grpc.StatusCode:
    """The gRPC status an error code is sent with."""
    return _STATUS_BY_CODE[code]


def code_of(status: grpc.StatusCode) -> Code:
    """The error code a gRPC status maps back to (INTERNAL for ones the table lacks)."""
    return _CODE_BY_STATUS.get(status, Code.INTERNAL)


def _metadata_value(metadata: _Metadata, key: str) -> str | None:
    for item_key, value in metadata or ():
        if item_key == key:
            return cast(str, value)  # the keys read here carry text (only a "-bin" key carries bytes)
    return None


# etcd clients send their token bare in this metadata key (not `authorization`); it is accepted as
# a bearer token, so that etcd clients talking to a service's etcd-compatible API are admitted.
ETCD_TOKEN_KEY = "token"

# Served without a token on every port: health checks and server reflection.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class Access:
    """What calling one method takes: who may call it (auth.PUBLIC, TENANT or OPERATOR; a method
    with no entry is the operator's) and the permission the token must grant."""

    who: str = auth.OPERATOR
    permission: str | None = None
    # The message of an UNAUTHENTICATED refusal, when a compatibility API's clients expect their
    # own wording (etcd's clients sign in again only on "etcdserver: invalid auth token").
    unauthenticated_message: str | None = None


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Binds the request ID, admits the caller, maps ServiceError to its status, hides unexpected
    errors and counts calls.

    The request ID is echoed in every call's trailing metadata, which travels with the status in
    the operation that ends the call; a stream also sends it at its start, in its initial metadata
    (a unary call does not: that costs a separate operation, about a fifth of a short call).
    """

    def __init__(self, metrics: RequestMetrics, verifier: Verifier | None = None,
                 access: dict[str, Access] | None = None):
        self.metrics = metrics
        self.verifier = verifier
        self.access = access or {}  # by full method name, "/package.Service/Method"
        # Each method's handler as served and as wrapped, so that a call reuses the wrapping.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        kind = next(k for k in ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
                    if getattr(handler, k) is not None)
        behavior = getattr(handler, kind)
        access = self.access.get(method) or Access(auth.PUBLIC if method.startswith(PUBLIC_PREFIXES) else auth.OPERATOR)
        wrapped = (self._wrap_stream if inspect.isasyncgenfunction(behavior) else self._wrap_unary)(
            behavior, method, access
        )
        factory = getattr(grpc, f"{kind}_rpc_method_handler")
        intercepted: grpc.RpcMethodHandler[Any, Any] = factory(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = (handler, intercepted)
        return intercepted

    def _wrap_unary(self, behavior: _Unary, method: str, access: Access) -> _Unary:
        async def call(request: Any, context: _Context) -> Any:
            metadata = context.invocation_metadata()
            token, started = self._enter(metadata, context)
            bound = None  # the contextvar token of the admitted principal
            try:
                bound = auth.bind(await self._admit(access, metadata))
                return await behavior(request, context)
            except BaseException as exc:  # noqa: BLE001 - every failure is mapped or re-raised
                await self._fail(exc, context, method)
            finally:
                if bound is not None:
                    auth.reset(bound)
                self._leave(token, started, method, context)

        return call

    def _wrap_stream(self, behavior: _Streaming, method: str, access: Access) -> _Streaming:
        async def call(request: Any, context: _Context) -> AsyncIterator[Any]:
            metadata = context.invocation_metadata()
            token, started = self._enter(metadata, context)
            bound = None  # the contextvar token of the admitted principal
            try:
                await context.send_initial_metadata(((request_id.METADATA_KEY, request_id.current()),))
                bound = auth.bind(await self._admit(access, metadata))
                async for response in behavior(request, context):
                    yield response
            except BaseException as exc:  # noqa: BLE001 - every failure is mapped or re-raised
                await self._fail(exc, context, method)
            finally:
                if bound is not None:
                    auth.reset(bound)
                self._leave(token, started, method, context)

        return call

    async def _admit(self, access: Access, metadata: _Metadata) -> auth.Principal | None:
        if access.who == auth.PUBLIC:
            return None
        authorization = _metadata_value(metadata, "authorization")
        if authorization is None and (token := _metadata_value(metadata, ETCD_TOKEN_KEY)):
            authorization = f"Bearer {token}"
        try:
            return await auth.admit(self.verifier, authorization, access.who, access.permission)
        except Unauthenticated as exc:
            if access.unauthenticated_message:
                raise Unauthenticated(access.unauthenticated_message, exc.details) from None
            raise

    @staticmethod
    def _enter(metadata: _Metadata, context: _Context) -> tuple[contextvars.Token[str], float]:
        rid = request_id.accept(_metadata_value(metadata, request_id.METADATA_KEY))
        context.set_trailing_metadata(((request_id.METADATA_KEY, rid),))
        return request_id.bind(rid), time.perf_counter()

    async def _fail(self, exc: BaseException, context: _Context, method: str) -> None:
        """Abort the call with the status exc maps to (INTERNAL, logged, for unexpected ones); the
        trailing metadata keeps the request ID."""
        echoed = ((request_id.METADATA_KEY, request_id.current()),)
        if isinstance(exc, ServiceError):
            trailer = echoed + (((DETAILS_KEY, json.dumps(exc.details)),) if exc.details else ())
            await context.abort(grpc_status(exc.code), exc.message, trailing_metadata=trailer)
        if isinstance(exc, Exception) and not isinstance(exc, grpc.aio.AbortError):
            log.error("unhandled error in %s", method, exc_info=exc)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the service log",
                                trailing_metadata=echoed)
        raise exc  # cancellation, or an abort the servicer made itself

    def _leave(self, token: contextvars.Token[str], started: float, method: str, context: _Context) -> None:
        status = context.code()
        code = OK if status in (None, grpc.StatusCode.OK) else code_of(status).name
        self.metrics.observe("grpc", "POST", method, code, time.perf_counter() - started)
        request_id.reset(token)


def error_from_rpc(exc: grpc.aio.AioRpcError) -> ServiceError:
    """The ServiceError a failed call stands for, with the details the server sent."""
    raw = _metadata_value(exc.trailing_metadata(), DETAILS_KEY)
    details = json.loads(raw) if raw else None
    return ServiceError(exc.details() or "", details, code=code_of(exc.code()))


class _RequestIdClientInterceptor:
    """Adds the current request ID and the caller's token to every outgoing call's metadata."""

    @staticmethod
    def _forwarding(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        """details with the request ID and the caller's token added to its metadata."""
        forwarded = {request_id.METADATA_KEY: request_id.current(),
                     **{k.lower(): v for k, v in auth.outgoing_headers().items()}}
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        for key, value in forwarded.items():
            if value and key not in metadata.keys():
                metadata[key] = value
        # At run time the call details are a namedtuple; the stubs do not say so.
        replaced: grpc.aio.ClientCallDetails = details._replace(metadata=metadata)  # type: ignore[attr-defined]
        return replaced


# grpc.aio files each interceptor under the first of the four kinds it is an instance of, so one
# object implementing all four would only ever see unary-unary calls: one object per kind.
class _UnaryUnaryRequestId(_RequestIdClientInterceptor, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, _Request],
                               Awaitable[grpc.aio.UnaryUnaryCall[_Request, _Response]]],
        client_call_details: grpc.aio.ClientCallDetails, request: _Request,
    ) -> _Response | grpc.aio.UnaryUnaryCall[_Request, _Response]:
        return await continuation(self._forwarding(client_call_details), request)


class _UnaryStreamRequestId(_RequestIdClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, _Request],
                               Awaitable[grpc.aio.UnaryStreamCall[_Request, _Response]]],
        client_call_details: grpc.aio.ClientCallDetails, request: _Request,
    ) -> AsyncIterator[_Response] | grpc.aio.UnaryStreamCall[_Request, _Response]:
        return await continuation(self._forwarding(client_call_details), request)


class _StreamUnaryRequestId(_RequestIdClientInterceptor, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, AsyncIterable[_Request] | Iterable[_Request]],
                               Awaitable[grpc.aio.StreamUnaryCall[_Request, _Response]]],
        client_call_details: grpc.aio.ClientCallDetails, request_iterator: AsyncIterable[_Request] | Iterable[_Request],
    ) -> _Response | grpc.aio.StreamUnaryCall[_Request, _Response]:
        return await continuation(self._forwarding(client_call_details), request_iterator)


class _StreamStreamRequestId(_RequestIdClientInterceptor, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, AsyncIterable[_Request] | Iterable[_Request]],
                               Awaitable[grpc.aio.StreamStreamCall[_Request, _Response]]],
        client_call_details: grpc.aio.ClientCallDetails, request_iterator: AsyncIterable[_Request] | Iterable[_Request],
    ) -> AsyncIterator[_Response] | grpc.aio.StreamStreamCall[_Request, _Response]:
        return await continuation(self._forwarding(client_call_details), request_iterator)


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for a channel to another service (request ID and token forwarding)."""
    return [_UnaryUnaryRequestId(), _UnaryStreamRequestId(), _StreamUnaryRequestId(), _StreamStreamRequestId()]


def insecure_channel(target: str) -> grpc.aio.Channel:
    """A plaintext channel to another service that forwards the current request ID and the caller's token."""
    return grpc.aio.insecure_channel(target, interceptors=client_interceptors())

