"""A service whose port is taken: one clear error naming the address, and no port of it left held."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from photoncloud.common import server as server_module
from photoncloud.common.config import ServerConfig
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import BindError, Server, Service
from photoncloud.common.testing import bindable, free_ports, taken_port


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another process listens on."""
    with taken_port() as port:
        yield port


def make_server(tmp_path, rest_port: int, grpc_port: int) -> tuple[Server, list[bool]]:
    """A server of an empty service on the given ports, and the list its close appends to."""
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    config = ServerConfig(service="demo", bind="127.0.0.1", rest_port=rest_port, grpc_port=grpc_port,
                          data_dir=tmp_path, shutdown_grace=1)
    return Server(Service("demo", "1.0.0", RouteTable(), [], close=close), config), closed


async def test_a_taken_rest_port_names_the_address_and_holds_no_grpc_port(tmp_path, taken):
    (grpc_port,) = free_ports(1)
    server, _ = make_server(tmp_path, taken, grpc_port)
    with pytest.raises(BindError) as raised:
        await server.start()
    assert str(raised.value) == f"demo cannot listen on 127.0.0.1:{taken} (REST): address already in use"
    assert raised.value.transport == "REST" and raised.value.address == f"127.0.0.1:{taken}"
    assert bindable(grpc_port)
    assert not server.serving


async def test_a_taken_grpc_port_names_the_address_and_holds_no_rest_port(tmp_path, taken):
    (rest_port,) = free_ports(1)
    server, _ = make_server(tmp_path, rest_port, taken)
    with pytest.raises(BindError) as raised:
        await server.start()
    assert str(raised.value) == f"demo cannot listen on 127.0.0.1:{taken} (gRPC): address already in use"
    assert bindable(rest_port)


async def test_a_port_taken_after_the_check_releases_the_port_already_bound(tmp_path, taken, monkeypatch):
    """The port is taken between the check and the bind: gRPC has bound by then, and must let go."""
    monkeypatch.setattr(server_module, "_check_free", lambda *args: None)
    (grpc_port,) = free_ports(1)
    server, _ = make_server(tmp_path, taken, grpc_port)
    with pytest.raises(BindError, match=rf"127\.0\.0\.1:{taken} \(REST\)"):
        await server.start()
    assert bindable(grpc_port)


async def test_serve_closes_the_core_when_it_cannot_bind(tmp_path, taken):
    (grpc_port,) = free_ports(1)
    server, closed = make_server(tmp_path, taken, grpc_port)
    with pytest.raises(BindError):
        await server_module.serve(server.service, server.config)
    assert closed == [True]
