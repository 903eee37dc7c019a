"""Fixtures for the shared library's tests: throwaway servers on 127.0.0.1 port 0, and an HTTP client."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import grpc
import pytest

from photoncloud.common.config import ServerConfig
from photoncloud.common.rpc import Access
from photoncloud.common.server import GrpcService, Server, Service

StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start(tmp_path) -> AsyncIterator[StartServer]:
    """A factory that starts a Server for a Service on free ports; every one is stopped afterwards."""
    running: list[Server] = []

    async def start_server(service: Service, **overrides: Any) -> Server:
        options: dict[str, Any] = {"shutdown_grace": 5.0, "rest_port": 0, "grpc_port": 0, **overrides}
        config = ServerConfig(service=service.name, bind="127.0.0.1", data_dir=tmp_path, **options)
        server = Server(service, config)
        await server.start()
        running.append(server)
        return server

    yield start_server
    for server in running:
        if server.serving:  # a test that stopped its server itself has stopped it already
            await server.stop()


@pytest.fixture
async def http(start: StartServer) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client, closed before the servers stop (it depends on `start` for that order)."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def grpc_service() -> Callable[..., GrpcService]:
    """Builds a gRPC service from plain functions (raw bytes in and out, no .proto needed).

    An async generator function becomes a unary-stream method, a coroutine function a unary one;
    a ready grpc.RpcMethodHandler is used as it is. With no .proto, no option declares the methods'
    gates: access does (by "/Service/Method"), or they are the operator's.
    """

    def build(name: str, methods: dict[str, Callable], access: Mapping[str, Access] | None = None) -> GrpcService:
        handlers = {}
        for method, behavior in methods.items():
            if isinstance(behavior, grpc.RpcMethodHandler):
                handlers[method] = behavior
            elif inspect.isasyncgenfunction(behavior):
                handlers[method] = grpc.unary_stream_rpc_method_handler(behavior)
            else:
                handlers[method] = grpc.unary_unary_rpc_method_handler(behavior)
        generic = grpc.method_handlers_generic_handler(name, handlers)
        return GrpcService(name, lambda server: server.add_generic_rpc_handlers((generic,)), access or {})

    return build
