"""Fixtures: a CreditService core on an in-memory store and on a file, with a clock the tests move."""

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


@pytest.fixture(params=["memory", "file"])
async def credits(request, tmp_path, clock):
    """A CreditCore over an in-memory store (reads run on the applying thread) and over a file
    (reads run on the loop, from a snapshot of the last commit); reservations expire only when a test asks."""
    store = SqliteCreditStore(":memory:" if request.param == "memory" else tmp_path / "credit.sqlite3")
    machine = CreditStateMachine(store)
    core = CreditCore(machine, LocalLog(machine), clock, expiry_check_seconds=None)
    yield core
    await core.close()
    store.close()
