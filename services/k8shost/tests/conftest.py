"""Fixtures: a k8shost core on an in-memory store, with a clock the tests move."""

from __future__ import annotations

import pytest

from photoncloud.common.replication import LocalLog
from photoncloud.k8shost.core import KubeCore
from photoncloud.k8shost.machine import ObjectStateMachine
from photoncloud.k8shost.store import SqliteObjectStore


class Clock:
    """Wall-clock seconds the test sets."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    """The core's clock."""
    return Clock()


@pytest.fixture
async def kube(clock):
    """A KubeCore over an in-memory store; its scheduler and node monitor run only when a test calls them."""
    store = SqliteObjectStore(":memory:")
    machine = ObjectStateMachine(store, history_kept=50)
    core = KubeCore(machine, LocalLog(machine), clock=clock, node_grace_seconds=10)
    yield core
    await core.close()
    store.close()
