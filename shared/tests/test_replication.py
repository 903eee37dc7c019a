"""The single-member log: commands apply in order with increasing indexes; errors and reads behave."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import pytest

from photoncloud.common.errors import FailedPrecondition, NotFound
from photoncloud.common.replication import LocalLog, member_id


class Counter:
    """A toy state machine: named counters; commands are ("add", name, n) or ("fail", ...)."""

    def __init__(self) -> None:
        self.index = 0
        self.values: dict[str, int] = {}
        self.applied: list[tuple[int, Any]] = []
        self.threads: set[int] = set()
        self.busy = False
        self.overlaps = 0

    def applied_index(self) -> int:
        return self.index

    def apply(self, index: int, command: Any) -> Any:
        if self.busy:
            self.overlaps += 1
        self.busy = True
        try:
            self.threads.add(threading.get_ident())
            assert index == self.index + 1, (index, self.index)
            self.index = index
            self.applied.append((index, command))
            kind, name, *rest = command
            if kind == "slow":
                time.sleep(0.01)
                kind = "add"
            if kind == "add":
                self.values[name] = self.values.get(name, 0) + rest[0]
                return self.values[name]
            if kind == "fail":
                return FailedPrecondition(f"{name} cannot be changed", {"name": name})
            raise ValueError(f"unknown command {kind}")
        finally:
            self.busy = False

    def value(self, name: str) -> int:
        if name not in self.values:
            raise NotFound(f"no counter {name}")
        return self.values[name]


@pytest.fixture
async def log():
    machine = Counter()
    local = LocalLog(machine)
    yield local, machine
    await local.close()


async def test_commands_apply_in_order_with_increasing_indexes(log):
    local, machine = log
    results = [await local.propose(("add", "a", n)) for n in (1, 2, 3)]
    assert results == [1, 3, 6]
    assert [index for index, _ in machine.applied] == [1, 2, 3]
    assert [command for _, command in machine.applied] == [("add", "a", 1), ("add", "a", 2), ("add", "a", 3)]
    assert local.status().index == 3


async def test_concurrent_proposals_never_interleave(log):
    local, machine = log
    results = await asyncio.gather(*(local.propose(("slow", "c", 1)) for _ in range(20)))
    assert sorted(results) == list(range(1, 21))
    assert [index for index, _ in machine.applied] == list(range(1, 21))
    assert machine.overlaps == 0
    assert len(machine.threads) == 1  # one thread owns the state machine


async def test_a_returned_error_is_raised_by_propose_and_still_takes_an_index(log):
    local, machine = log
    await local.propose(("add", "a", 5))
    with pytest.raises(FailedPrecondition) as caught:
        await local.propose(("fail", "a"))
    assert caught.value.details == {"name": "a"}
    # the failed command is in the log; the next one follows it
    assert await local.propose(("add", "a", 1)) == 6
    assert [index for index, _ in machine.applied] == [1, 2, 3]


async def test_an_exception_raised_by_apply_reaches_the_proposer(log):
    local, _ = log
    with pytest.raises(ValueError):
        await local.propose(("explode", "a"))


async def test_read_sees_previous_writes(log):
    local, machine = log
    with pytest.raises(NotFound):
        await local.read(lambda: machine.value("b"))
    await local.propose(("add", "b", 41))
    assert await local.read(lambda: machine.value("b")) == 41
    write = asyncio.ensure_future(local.propose(("add", "b", 1)))
    await asyncio.sleep(0)  # the write is submitted before the read
    assert await local.read(lambda: machine.value("b")) == 42
    assert await write == 42


async def test_status_of_a_single_member():
    local = LocalLog(Counter(), "127.0.0.1:2380", {"rest": "http://127.0.0.1:8081"})
    try:
        status = local.status()
        assert status.member_id == member_id("127.0.0.1:2380")
        assert status.leader == status.member_id
        [member] = local.members()
        assert (member.member_id, member.peer_address) == (status.member_id, "127.0.0.1:2380")
        assert member.client_urls == {"rest": "http://127.0.0.1:8081"}
        assert member.is_self and member.is_leader
        assert status.role == "LEADER"
        assert status.term >= 1
        assert status.index == 0
    finally:
        await local.close()


async def test_close_waits_for_commands_in_flight():
    machine = Counter()
    local = LocalLog(machine)
    pending = [asyncio.ensure_future(local.propose(("slow", "d", 1))) for _ in range(5)]
    await asyncio.sleep(0)
    await local.close()
    assert await asyncio.gather(*pending) == [1, 2, 3, 4, 5]
    assert machine.index == 5


def test_member_ids_are_stable_distinct_and_exact_in_json():
    ids = {member_id(f"10.0.0.{i}:2380") for i in range(1, 200)}
    assert len(ids) == 199
    assert member_id("10.0.0.1:2380") == member_id("10.0.0.1:2380")
    assert all(0 < i < 2**53 for i in ids)


class BatchCounter(Counter):
    """Counter with group commit: records the size of each batch it applies."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def apply_batch(self, entries: list[tuple[int, Any]]) -> list[Any]:
        self.batches.append(len(entries))
        time.sleep(0.005)  # a commit's fsync: commands proposed meanwhile wait for the next batch
        return [self.apply(index, command) for index, command in entries]


async def test_commands_proposed_together_are_applied_in_batches_in_order():
    machine = BatchCounter()
    local = LocalLog(machine)
    try:
        results = await asyncio.gather(*(local.propose(("add", "n", 1)) for _ in range(100)))
        assert results == list(range(1, 101))  # in proposal order, each seeing the ones before
        assert [index for index, _ in machine.applied] == list(range(1, 101))
        assert sum(machine.batches) == 100 and len(machine.batches) < 10  # not one commit each
        with pytest.raises(FailedPrecondition):  # a refused command in a batch fails alone
            await asyncio.gather(local.propose(("add", "n", 1)), local.propose(("fail", "n")))
        assert machine.values["n"] == 101
    finally:
        await local.close()


class SnapshotCounter(Counter):
    """Counter whose commands can be held half-applied, and that offers reads of its last commit
    (SnapshotReads) while they are."""

    def __init__(self) -> None:
        super().__init__()
        self.committed: dict[str, int] = {}  # what a snapshot read sees
        self.release = threading.Event()  # a "hold" command waits for it before committing
        self.snapshot_threads: set[int] = set()

    def apply(self, index: int, command: Any) -> Any:
        if command[0] == "hold":
            self.values["held"] = 1  # changed, not yet committed
            self.release.wait(10)
            command = ("add", "held", 0)
        result = super().apply(index, command)
        self.committed = dict(self.values)
        return result

    @contextlib.contextmanager
    def snapshot(self):
        self.snapshot_threads.add(threading.get_ident())
        yield

    def reading(self):
        return self.snapshot()

    def read_committed(self, name: str) -> int:
        if name not in self.committed:
            raise NotFound(f"no counter {name}")
        return self.committed[name]


async def test_with_snapshot_reads_a_read_does_not_wait_for_the_command_being_applied():
    machine = SnapshotCounter()
    local = LocalLog(machine)
    try:
        assert await local.propose(("add", "a", 1)) == 1
        held = asyncio.ensure_future(local.propose(("hold", "x")))
        await asyncio.sleep(0.05)  # the worker is inside the held command
        assert not held.done()
        assert await asyncio.wait_for(local.read(lambda: machine.read_committed("a")), 1) == 1
        with pytest.raises(NotFound):  # the half-applied command is not seen
            await local.read(lambda: machine.read_committed("held"))
        assert local.status().index == 1  # applied and committed: the first command only
        machine.release.set()
        await held
        assert await local.read(lambda: machine.read_committed("held")) == 1  # acknowledged: seen
        assert local.status().index == 2
        assert machine.snapshot_threads == {threading.get_ident()}  # read on the loop's own thread
    finally:
        machine.release.set()
        await local.close()
