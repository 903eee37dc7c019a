"""Fixtures: a PrismNET core on an in-memory store and on a file."""

from __future__ import annotations

import pytest

from photoncloud.common.replication import LocalLog
from photoncloud.prismnet.core import NetworkCore
from photoncloud.prismnet.machine import NetworkStateMachine
from photoncloud.prismnet.store import SqliteNetworkStore


@pytest.fixture(params=["memory", "file"])
async def net(request, tmp_path):
    """A NetworkCore over an in-memory store (reads run on the applying thread) and over a file
    (reads run on the loop, from a snapshot of the last commit)."""
    store = SqliteNetworkStore(":memory:" if request.param == "memory" else tmp_path / "net.sqlite3")
    machine = NetworkStateMachine(store)
    core = NetworkCore(machine, LocalLog(machine))
    yield core
    await core.close()
    store.close()
