"""The Raft log: members in one process on 127.0.0.1; elections, replication, forwarding, failover,
restart, snapshots, membership changes, batched applies and linearizable reads under a partition."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from photoncloud.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from photoncloud.common.raft import RaftLog
from photoncloud.common.replication import member_id
from photoncloud.common.testing import free_ports, wait_for

SECRET = "cluster-secret-for-tests"
FAST = {"election_timeout": (0.5, 1.0), "heartbeat": 0.05, "connection_retry": 0.3, "propose_timeout": 5.0}


class Register:
    """A toy state machine: a dict of registers, kept (with its applied index) in a JSON file.

    Commands are ("set", key, value) -> the previous value, or ("get-or-fail", key) -> NotFound.
    """

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.restored = 0
        self._load()

    def _load(self) -> None:
        if self.path.exists():
            state = json.loads(self.path.read_text())
        else:
            state = {"index": 0, "values": {}, "applied": []}
        self.index: int = state["index"]
        self.values: dict[str, Any] = state["values"]
        self.applied: list[list[Any]] = state["applied"]

    def snapshot(self, path: str) -> None:
        Path(path).write_text(self.path.read_text() if self.path.exists() else json.dumps(
            {"index": 0, "values": {}, "applied": []}))

    def restore(self, path: str) -> None:
        Path(path).replace(self.path)
        self._load()
        self.restored += 1

    def applied_index(self) -> int:
        return self.index

    def apply(self, index: int, command: Any) -> Any:
        assert self.lock.acquire(blocking=False), "apply overlapped another apply or a read"
        try:
            assert index > self.index, (index, self.index)  # never applied twice, always in order
            self.index = index
            self.applied.append([index, list(command)])
            kind, key, *rest = command
            result: Any
            if kind == "set":
                result = self.values.get(key)
                self.values[key] = rest[0]
            else:
                result = self.values[key] if key in self.values else NotFound(f"no register {key}")
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"index": self.index, "values": self.values, "applied": self.applied}))
            tmp.replace(self.path)
            return result
        finally:
            self.lock.release()


class BatchingRegister(Register):
    """A Register that also applies several commands at once, recording how many each time."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.batches: list[int] = []

    def apply_batch(self, entries: list[tuple[int, Any]]) -> list[Any]:
        self.batches.append(len(entries))
        return [self.apply(index, command) for index, command in entries]


def partition(*pairs: tuple[RaftLog, RaftLog]) -> Callable[[], None]:
    """Cut the two members of each pair apart (their transports drop whatever they send to or receive
    from each other, as a network partition would; both still reach everyone else); returns the
    function that heals the partition."""
    cut = {(a.self_address, b.self_address) for a, b in pairs} | {(b.self_address, a.self_address) for a, b in pairs}
    heals = []
    for log in {log.self_address: log for pair in pairs for log in pair}.values():
        transport = log._node._SyncObj__transport  # type: ignore[attr-defined]
        send, receive = transport.send, transport._onMessageReceivedCallback

        def apart(node: Any, me: str = log.self_address) -> bool:
            return (me, node.address) in cut

        transport.send = lambda node, message, send=send, apart=apart: True if apart(node) else send(node, message)
        transport._onMessageReceivedCallback = (
            lambda node, message, receive=receive, apart=apart: None if apart(node) else receive(node, message))
        heals.append(lambda transport=transport, receive=receive: (
            delattr(transport, "send"), setattr(transport, "_onMessageReceivedCallback", receive)))

    def heal() -> None:
        for undo in heals:
            undo()

    return heal


def between(group: Sequence[RaftLog], others: Sequence[RaftLog]) -> list[tuple[RaftLog, RaftLog]]:
    """Every pair of a member of group and a member of others."""
    return [(a, b) for a in group for b in others]


async def reads_eventually(log: RaftLog, query: Callable[[], Any], expected: Any) -> None:
    """Retry a linearizable read (Unavailable while leadership settles) until it returns expected."""
    for _ in range(100):
        try:
            if await log.read(query, linearizable=True) == expected:
                return
        except Unavailable:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"never read {expected!r}")


class Cluster:
    """Members numbered 1..n in the tests (their Raft ids are hashes of their addresses)."""

    def __init__(self, root: Path, n: int = 4):
        self.root = root
        self.addresses = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(free_ports(n))}
        self.logs: dict[int, RaftLog] = {}
        self.machines: dict[int, Register] = {}

    def start(self, member: int, secret: str = SECRET, peers: Sequence[int] = (1, 2, 3), batching: bool = False,
              **options: Any) -> RaftLog:
        machine = (BatchingRegister if batching else Register)(self.root / f"state-{member}.json")
        self.machines[member] = machine
        self.logs[member] = RaftLog(machine, self.addresses[member], [self.addresses[m] for m in peers], secret,
                                    self.root / f"raft-{member}", client_urls={"rest": f"http://member-{member}"},
                                    **{**FAST, **options})
        return self.logs[member]

    def id(self, member: int) -> int:
        return member_id(self.addresses[member])

    async def stop(self, member: int) -> None:
        await self.logs.pop(member).close()

    async def close(self) -> None:
        for member in list(self.logs):
            await self.stop(member)

    async def leader(self, among: list[int] | None = None, not_: int | None = None) -> int:
        members = among or list(self.logs)

        def find() -> int | None:
            leaders = [m for m in members if self.logs[m].status().role == "LEADER" and m != not_]
            if len(leaders) != 1:
                return None
            leader = leaders[0]
            return leader if all(self.logs[m].status().leader == self.id(leader) for m in members) else None

        return await wait_for(find)

    async def caught_up(self, members: list[int], index: int) -> None:
        await wait_for(lambda: all(self.machines[m].applied_index() >= index for m in members))


@pytest.fixture
async def cluster(tmp_path):
    cluster = Cluster(tmp_path)
    yield cluster
    await cluster.close()


async def test_leader_applies_on_every_member_in_the_same_order(cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member)
    leader = await cluster.leader()
    log = cluster.logs[leader]
    status = log.status()
    assert (status.member_id, status.leader, status.role) == (cluster.id(leader),) * 2 + ("LEADER",)
    assert status.term >= 1

    assert await log.propose(("set", "a", 1)) is None
    assert await log.propose(("set", "a", 2)) == 1
    results = await asyncio.gather(*(log.propose(("set", f"k{i}", i)) for i in range(20)))
    assert results == [None] * 20
    with pytest.raises(NotFound):
        await log.propose(("get-or-fail", "missing"))

    index = cluster.machines[leader].applied_index()
    await cluster.caught_up([1, 2, 3], index)
    histories = [cluster.machines[m].applied for m in (1, 2, 3)]
    assert histories[0] == histories[1] == histories[2]
    indexes = [entry[0] for entry in histories[0]]
    assert len(indexes) == 23 and indexes == sorted(set(indexes))
    assert [entry[1] for entry in histories[0]][:2] == [["set", "a", 1], ["set", "a", 2]]

    assert (await log.read(lambda: dict(cluster.machines[leader].values)))["a"] == 2
    assert (await log.read(lambda: cluster.machines[leader].values["a"], linearizable=True)) == 2
    assert log.status().index == index
    expected = sorted((cluster.id(m), cluster.addresses[m], m == leader) for m in (1, 2, 3))
    for viewer in (1, 2, 3):  # every member knows every member, and where its clients reach it
        members = await wait_for(lambda: all(m.client_urls for m in cluster.logs[viewer].members())
                                 and cluster.logs[viewer].members())
        assert [(m.member_id, m.peer_address, m.is_leader) for m in members] == expected
        assert [m.is_self for m in members] == [m.member_id == cluster.id(viewer) for m in members]
        by_address = {m.peer_address: m.client_urls for m in members}
        assert by_address == {cluster.addresses[m]: {"rest": f"http://member-{m}"} for m in (1, 2, 3)}


async def test_a_follower_forwards_proposals_and_reads_linearizably(cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member)
    leader = await cluster.leader()
    follower = next(m for m in (1, 2, 3) if m != leader)
    assert cluster.logs[follower].status().role == "FOLLOWER"
    assert await cluster.logs[follower].propose(("set", "x", 1)) is None
    assert await cluster.logs[follower].propose(("set", "x", 2)) == 1  # the result of its own apply
    with pytest.raises(NotFound):
        await cluster.logs[follower].propose(("get-or-fail", "missing"))
    # A write through the leader is seen by a linearizable read on a follower at once.
    await cluster.logs[leader].propose(("set", "x", 3))
    assert await cluster.logs[follower].read(lambda: cluster.machines[follower].values["x"], linearizable=True) == 3
    await cluster.caught_up([1, 2, 3], cluster.machines[leader].applied_index())
    assert cluster.machines[follower].applied == cluster.machines[leader].applied


async def test_linearizable_reads_add_nothing_to_the_log(cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member)
    leader = await cluster.leader()
    await cluster.logs[leader].propose(("set", "x", 1))
    # Each member publishes its client URLs through the log once it knows a leader: let those entries
    # be committed first, so that only reads could add one below.
    await wait_for(lambda: all(log._client_urls.get(log.self_address) == log.client_urls
                               for log in (cluster.logs[m] for m in (1, 2, 3))))
    await cluster.caught_up([1, 2, 3], cluster.machines[leader].applied_index())
    committed = cluster.logs[leader]._node.raftCommitIndex
    for member in (1, 2, 3):
        reads = [cluster.logs[member].read(lambda m=member: cluster.machines[m].values["x"], linearizable=True)
                 for _ in range(20)]
        assert await asyncio.gather(*reads) == [1] * 20
    assert cluster.logs[leader]._node.raftCommitIndex == committed


async def test_a_leader_cut_off_from_the_majority_serves_no_stale_linearizable_read(cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member, propose_timeout=2.0)
    old = await cluster.leader()
    await cluster.logs[old].propose(("set", "x", "before"))
    assert await cluster.logs[old].read(lambda: cluster.machines[old].values["x"], linearizable=True) == "before"

    heal = partition(*between([cluster.logs[old]], [cluster.logs[m] for m in (1, 2, 3) if m != old]))
    majority = [m for m in (1, 2, 3) if m != old]
    new = await cluster.leader(among=majority)
    await cluster.logs[new].propose(("set", "x", "after"))  # acknowledged: every later read must see it
    follower = next(m for m in majority if m != new)
    assert await cluster.logs[follower].read(lambda: cluster.machines[follower].values["x"],
                                             linearizable=True) == "after"

    # The old leader has not noticed (it has heard no higher term) and its state is stale: it may
    # serve that state to a serializable read, never to a linearizable one.
    assert cluster.logs[old].status().role == "LEADER"
    assert await cluster.logs[old].read(lambda: cluster.machines[old].values["x"]) == "before"
    with pytest.raises(Unavailable):
        await cluster.logs[old].read(lambda: cluster.machines[old].values["x"], linearizable=True)

    heal()  # it follows the new leader again and reads the write
    await reads_eventually(cluster.logs[old], lambda: cluster.machines[old].values["x"], "after")
    assert cluster.logs[old].status().role == "FOLLOWER"


async def test_a_member_that_voted_for_a_later_leader_does_not_confirm_the_old_one(cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member, propose_timeout=2.0)
    old = await cluster.leader()
    await cluster.logs[old].propose(("set", "x", "before"))
    await cluster.caught_up([1, 2, 3], cluster.machines[old].applied_index())
    bridge, cut_off = [m for m in (1, 2, 3) if m != old]
    # Only the old leader and one follower are cut apart: that follower elects itself with the vote
    # of the bridge, which still hears the old leader (and ignores it: its term is older).
    heal = partition((cluster.logs[old], cluster.logs[cut_off]))
    new = await cluster.leader(among=[bridge, cut_off])
    assert new == cut_off
    await cluster.logs[new].propose(("set", "x", "after"))
    assert cluster.logs[old].status().role == "LEADER"
    with pytest.raises(Unavailable):  # the bridge answers no ping of an older term
        await cluster.logs[old].read(lambda: cluster.machines[old].values["x"], linearizable=True)
    heal()
    await reads_eventually(cluster.logs[old], lambda: cluster.machines[old].values["x"], "after")


async def test_a_follower_in_a_minority_with_the_old_leader_serves_no_stale_linearizable_read(
        tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, n=5)
    members = [1, 2, 3, 4, 5]
    try:
        for member in members:
            cluster.start(member, peers=members, propose_timeout=2.0)
        old = await cluster.leader()
        follower = next(m for m in members if m != old)
        await cluster.logs[old].propose(("set", "x", "before"))
        await cluster.caught_up([follower], cluster.machines[old].applied_index())

        majority = [m for m in members if m not in (old, follower)]
        heal = partition(*between([cluster.logs[old], cluster.logs[follower]], [cluster.logs[m] for m in majority]))
        new = await cluster.leader(among=majority)
        await cluster.logs[new].propose(("set", "x", "after"))
        # The follower still hears from its old leader, which still believes it leads: together
        # they are two of five, and must not confirm a read between them.
        assert cluster.logs[old].status().role == "LEADER"
        assert cluster.logs[follower].status().leader == cluster.id(old)
        with pytest.raises(Unavailable):
            await cluster.logs[follower].read(lambda: cluster.machines[follower].values["x"], linearizable=True)

        heal()
        await reads_eventually(cluster.logs[follower], lambda: cluster.machines[follower].values["x"], "after")
    finally:
        await cluster.close()


async def test_commands_committed_together_are_applied_in_one_batch_each_with_its_own_result(
        cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member, batching=True)
    leader = await cluster.leader()
    follower = next(m for m in (1, 2, 3) if m != leader)
    results = await asyncio.gather(*(cluster.logs[m].propose(("set", "k", i))
                                     for i, m in enumerate([leader, follower] * 32)))
    # Each entry is applied by its proposer before it answers, but a follower may apply an entry
    # before the leader does (commits are sent first): wait for the furthest member.
    await cluster.caught_up([1, 2, 3], max(cluster.machines[m].applied_index() for m in (1, 2, 3)))
    history = cluster.machines[leader].applied
    assert len(history) == 64
    assert all(cluster.machines[m].applied == history for m in (1, 2, 3))
    # Each proposer got the result of its own entry: the value the entry before it had set.
    previous: dict[int, Any] = {}
    last = None
    for _, (_, _, value) in history:
        previous[value] = last
        last = value
    assert results == [previous[i] for i in range(64)]
    assert sorted(previous) == list(range(64))
    assert max(max(cluster.machines[m].batches) for m in (1, 2, 3)) > 1


async def test_a_member_with_the_wrong_secret_cannot_join(cluster: Cluster) -> None:
    cluster.start(1)
    cluster.start(2)
    cluster.start(3, secret="not-the-secret")
    leader = await cluster.leader(among=[1, 2])
    for i in range(5):
        await cluster.logs[leader].propose(("set", "k", i))
    await cluster.caught_up([1, 2], cluster.machines[leader].applied_index())
    await asyncio.sleep(0.5)
    outsider = cluster.logs[3].status()
    assert cluster.machines[3].applied == [] and outsider.index == 0
    assert outsider.leader == 0 and outsider.role != "LEADER"


async def test_failover_keeps_acknowledged_commands_and_a_restarted_member_catches_up(cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member)
    old = await cluster.leader()
    acknowledged = {}
    for i in range(5):
        await cluster.logs[old].propose(("set", f"before{i}", i))
        acknowledged[f"before{i}"] = i

    await cluster.stop(old)
    survivors = [m for m in (1, 2, 3) if m != old]
    new = await cluster.leader(among=survivors)
    for i in range(5):
        await cluster.logs[new].propose(("set", f"after{i}", i))
        acknowledged[f"after{i}"] = i
    await cluster.caught_up(survivors, cluster.machines[new].applied_index())
    for member in survivors:
        assert {k: cluster.machines[member].values[k] for k in acknowledged} == acknowledged

    applied_before_restart = cluster.machines[old].applied_index()
    restarted = cluster.start(old)  # same data directory, its state machine reloaded from disk
    assert restarted.status().index == applied_before_restart
    await cluster.caught_up([old], cluster.machines[new].applied_index())
    assert cluster.machines[old].applied == cluster.machines[new].applied  # nothing applied twice
    assert await cluster.leader() == new
    await cluster.logs[new].propose(("set", "last", 1))
    await cluster.caught_up([1, 2, 3], cluster.machines[new].applied_index())
    assert cluster.machines[old].values["last"] == 1


async def test_the_leader_knows_how_far_each_follower_lags(cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member)
    leader = await cluster.leader()
    log = cluster.logs[leader]
    await log.propose(("set", "a", 1))
    follower, stopped = [m for m in (1, 2, 3) if m != leader]

    def lag(member: int) -> int | None:
        commit, matched = log.progress()
        return commit - matched[cluster.id(member)] if cluster.id(member) in matched else None

    await wait_for(lambda: lag(follower) == 0 and lag(stopped) == 0)
    await cluster.stop(stopped)
    for i in range(5):
        await log.propose(("set", f"k{i}", i))
    assert log.progress()[0] >= cluster.machines[leader].applied_index() >= 6
    assert lag(stopped) == 5  # the five entries committed without it
    await wait_for(lambda: lag(follower) == 0)
    # A follower knows the commit index, but not the others' progress.
    await wait_for(lambda: cluster.logs[follower].progress()[0] == log.progress()[0])
    assert cluster.logs[follower].progress()[1] == {}


async def test_a_member_far_behind_catches_up_from_a_snapshot(cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member, snapshot_entries=20)
    leader = await cluster.leader()
    lagging = next(m for m in (1, 2, 3) if m != leader)
    await cluster.stop(lagging)
    log = cluster.logs[leader]
    for i in range(120):
        await log.propose(("set", f"k{i}", i))
    snapshot = cluster.root / f"raft-{leader}" / "raft.snapshot"
    await wait_for(snapshot.exists)

    restarted = cluster.start(lagging, snapshot_entries=20)
    await cluster.caught_up([lagging], cluster.machines[leader].applied_index())
    machine = cluster.machines[lagging]
    assert machine.restored >= 1  # the journal it missed is gone: it installed the leader's snapshot
    assert machine.values == cluster.machines[leader].values
    assert len(machine.values) == 120
    await log.propose(("set", "after", 1))  # and it follows the log from there
    await cluster.caught_up([lagging], cluster.machines[leader].applied_index())
    assert (await restarted.read(lambda: machine.values["after"], linearizable=True)) == 1


async def test_a_member_restarts_from_its_own_snapshot_without_applying_anything_twice(cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member, snapshot_entries=10)
    leader = await cluster.leader()
    for i in range(40):
        await cluster.logs[leader].propose(("set", f"k{i}", i))
    follower = next(m for m in (1, 2, 3) if m != leader)
    await cluster.caught_up([follower], cluster.machines[leader].applied_index())
    cluster.logs[follower].snapshot_now()
    await wait_for((cluster.root / f"raft-{follower}" / "raft.snapshot").exists)
    await cluster.stop(follower)
    applied = list(cluster.machines[follower].applied)
    cluster.start(follower, snapshot_entries=10)  # Register asserts that no index is applied twice
    await cluster.logs[leader].propose(("set", "more", 1))
    await cluster.caught_up([follower], cluster.machines[leader].applied_index())
    assert cluster.machines[follower].restored == 0  # its own state was already past its snapshot
    assert cluster.machines[follower].applied[:len(applied)] == applied
    assert cluster.machines[follower].values == cluster.machines[leader].values


async def test_members_are_added_and_removed_through_the_log(cluster: Cluster) -> None:
    for member in (1, 2, 3):
        cluster.start(member)
    leader = await cluster.leader()
    log = cluster.logs[leader]
    await log.propose(("set", "a", 1))
    follower = next(m for m in (1, 2, 3) if m != leader)

    newcomer = cluster.start(4, peers=[1, 2, 3, 4])
    added = await cluster.logs[follower].add_member(cluster.addresses[4])  # through a follower too
    assert (added.member_id, added.peer_address) == (cluster.id(4), cluster.addresses[4])
    await cluster.caught_up([4], cluster.machines[leader].applied_index())
    assert cluster.machines[4].values == {"a": 1}
    await wait_for(lambda: len(log.members()) == 4 and len(newcomer.members()) == 4)
    with pytest.raises(AlreadyExists):
        await log.add_member(cluster.addresses[4])
    with pytest.raises(InvalidArgument):
        await log.add_member("no-port")

    with pytest.raises(FailedPrecondition):
        await log.remove_member(cluster.id(leader))
    with pytest.raises(NotFound):
        await log.remove_member(12345)
    removed = await log.remove_member(cluster.id(4))
    assert removed.peer_address == cluster.addresses[4]
    assert sorted(m.member_id for m in log.members()) == sorted(cluster.id(m) for m in (1, 2, 3))
    await cluster.stop(4)
    assert await log.propose(("set", "a", 2)) == 1  # three members still make a majority of three


def test_a_secret_and_peer_addresses_are_required(tmp_path: Path) -> None:
    machine = Register(tmp_path / "state.json")
    with pytest.raises(ValueError, match="secret"):
        RaftLog(machine, "127.0.0.1:1", ["127.0.0.1:2"], "", tmp_path / "raft")
    with pytest.raises(InvalidArgument):
        RaftLog(machine, "127.0.0.1", ["127.0.0.1:2"], SECRET, tmp_path / "raft")


def test_importing_the_raft_log_leaves_the_socket_module_working() -> None:
    # pysyncobj, once imported, replaces socket.inet_ntop with a function that only works on Windows.
    assert socket.inet_ntop(socket.AF_INET, bytes([10, 0, 0, 1])) == "10.0.0.1"
    assert socket.inet_ntop(socket.AF_INET6, bytes(15) + b"\x01") == "::1"
