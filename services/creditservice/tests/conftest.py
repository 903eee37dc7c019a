"""Fixtures: a CreditService core on an in-memory store, with a clock the tests move."""

from __future__ import annotations

import pytest

from photoncloud.common.replication import LocalLog
from photoncloud.common.testing import Clock
from photoncloud.creditservice.core import CreditCore
from photoncloud.creditservice.machine import CreditStateMachine
from photoncloud.creditservice.store import SqliteCreditStore


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def credits(clock):
    """A CreditCore over an in-memory store; reservations expire only when a test asks."""
    store = SqliteCreditStore(":memory:")
    machine = CreditStateMachine(store)
    core = CreditCore(machine, LocalLog(machine), clock, expiry_check_seconds=None)
    yield core
    await core.close()
    store.close()
