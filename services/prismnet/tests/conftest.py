"""Fixtures: a PrismNET core on an in-memory store."""

from __future__ import annotations

import pytest

from photoncloud.common.replication import LocalLog
from photoncloud.prismnet.core import NetworkCore
from photoncloud.prismnet.machine import NetworkStateMachine
from photoncloud.prismnet.store import SqliteNetworkStore


@pytest.fixture
async def net():
    """A NetworkCore over an in-memory store."""
    store = SqliteNetworkStore(":memory:")
    machine = NetworkStateMachine(store)
    core = NetworkCore(machine, LocalLog(machine))
    yield core
    await core.close()
    store.close()
