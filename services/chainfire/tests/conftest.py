"""Fixtures: a ChainFire core on an in-memory store, and a real ChainFire server on free ports."""

from __future__ import annotations

import pytest

from photoncloud.chainfire.app import build
from photoncloud.chainfire.core import KVCore, KVStateMachine
from photoncloud.chainfire.store import SqliteKVStore
from photoncloud.common.config import ServerConfig
from photoncloud.common.replication import LocalLog
from photoncloud.common.server import Server


@pytest.fixture
async def kv():
    """A KVCore over an in-memory SQLite store."""
    store = SqliteKVStore(":memory:")
    machine = KVStateMachine(store)
    core = KVCore(machine, LocalLog(machine), "test")
    yield core
    await core.close()
    store.close()


@pytest.fixture
async def server(tmp_path):
    """A running ChainFire (REST and gRPC on 127.0.0.1, free ports) over a fresh data directory."""
    config = ServerConfig(service="chainfire", bind="127.0.0.1", rest_port=0, grpc_port=0,
                          data_dir=tmp_path, shutdown_grace=2)
    running = Server(await build(config), config)
    await running.start()
    yield running
    await running.stop()
