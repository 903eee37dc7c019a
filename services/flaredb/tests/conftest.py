"""Fixtures: a FlareDB core over a temporary data directory, and a real FlareDB server on free ports."""

from __future__ import annotations

import pytest
from photoncloud.common.config import ServerConfig
from photoncloud.common.replication import LocalLog
from photoncloud.common.server import Server
from photoncloud.common.testing import TokenMint
from photoncloud.flaredb.app import build
from photoncloud.flaredb.core import FlareDBCore
from photoncloud.flaredb.machine import FlareDBStateMachine
from photoncloud.flaredb.store import ProjectFiles


@pytest.fixture
async def db(tmp_path):
    """A FlareDBCore alone (LocalLog) over tmp_path."""
    machine = FlareDBStateMachine(ProjectFiles(tmp_path))
    core = FlareDBCore(machine, LocalLog(machine), "test")
    yield core
    await core.close()
    machine.close()


@pytest.fixture(scope="session")
def mint():
    """Signs test tokens; the servers below trust its key instead of fetching IAM's."""
    return TokenMint()


async def start_flaredb(data_dir, mint) -> Server:
    """A running FlareDB (REST and gRPC on 127.0.0.1, free ports) that trusts mint's tokens."""
    config = ServerConfig(service="flaredb", bind="127.0.0.1", rest_port=0, grpc_port=0,
                          data_dir=data_dir, shutdown_grace=2)
    service = await build(config)
    service.verifier = mint.verifier()
    running = Server(service, config)
    await running.start()
    return running


@pytest.fixture
async def server(tmp_path, mint):
    """A running FlareDB over a fresh data directory."""
    running = await start_flaredb(tmp_path, mint)
    yield running
    await running.stop()
