"""Leases: grant, attach, keep alive, revoke, expire (through the log, at one revision)."""

from __future__ import annotations

import asyncio

import pytest
from photoncloud.chainfire.core import (
    DeleteRangeRequest,
    EventType,
    ExpireLeases,
    KVCore,
    KVStateMachine,
    LeaseGrant,
    PutRequest,
    RangeRequest,
    TxnRequest,
    WatchRequest,
)
from photoncloud.chainfire.store import SqliteKVStore
from photoncloud.common.errors import AlreadyExists, InvalidArgument, NotFound
from photoncloud.common.replication import LocalLog
from photoncloud.common.testing import Clock


@pytest.fixture
async def timed():
    """A core on an in-memory store with a hand-moved clock and no background expiry."""
    store = SqliteKVStore(":memory:")
    machine = KVStateMachine(store)
    clock = Clock()
    kv = KVCore(machine, LocalLog(machine), "test", clock=clock, lease_check_seconds=None)
    yield kv, clock
    await kv.close()
    store.close()


async def keys(kv) -> list[bytes]:
    return [x.key for x in (await kv.range(RangeRequest(b"\0", range_end=b"\0"))).kvs]


async def test_expiry_deletes_the_keys_at_one_revision_with_delete_events(timed):
    kv, clock = timed
    lease = await kv.grant_lease(10)
    assert (lease.id, lease.ttl, lease.revision) == (1, 10, 0)  # granting creates no revision
    for key in (b"a", b"b", b"c"):
        await kv.put(PutRequest(key, b"v", lease=lease.id))
    await kv.put(PutRequest(b"keep", b"v"))
    attached = await kv.range(RangeRequest(b"a"))
    assert attached.kvs[0].lease == lease.id
    watch = await kv.watch(WatchRequest(b"\0", range_end=b"\0"))
    clock.now += 9.5
    assert await kv.expire_leases() == []  # not yet
    clock.now += 0.5
    assert await kv.expire_leases() == [lease.id]
    assert await keys(kv) == [b"keep"]
    events = []

    async def read():
        async for batch in watch:
            events.extend(batch.events)
            return

    await asyncio.wait_for(read(), 5)
    watch.close()
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in events] == [
        (EventType.DELETE, b"a", 5), (EventType.DELETE, b"b", 5), (EventType.DELETE, b"c", 5)]
    assert (await kv.leases()).ids == []
    with pytest.raises(NotFound):
        await kv.time_to_live(lease.id)


async def test_keep_alive_extends_the_deadline(timed):
    kv, clock = timed
    lease = await kv.grant_lease(10, 42)
    await kv.put(PutRequest(b"k", b"v", lease=42))
    clock.now += 8
    assert (await kv.time_to_live(42)).ttl == 2
    assert (await kv.keep_alive(42)).ttl == 10
    clock.now += 8
    assert await kv.expire_leases() == []
    ttl = await kv.time_to_live(42, keys=True)
    assert (ttl.ttl, ttl.granted_ttl, ttl.keys) == (2, 10, [b"k"])
    clock.now += 2
    with pytest.raises(NotFound):  # past its deadline: gone, even before the expiry is applied
        await kv.keep_alive(lease.id)
    with pytest.raises(NotFound):
        await kv.time_to_live(lease.id)
    assert await kv.expire_leases() == [42]
    assert await keys(kv) == []


async def test_revoke_deletes_the_keys(timed):
    kv, _ = timed
    lease = await kv.grant_lease(60)
    await kv.put(PutRequest(b"x", b"1", lease=lease.id))
    await kv.put(PutRequest(b"y", b"2", lease=lease.id))
    await kv.put(PutRequest(b"y", b"3"))  # rewritten without the lease: detached
    result = await kv.revoke_lease(lease.id)
    assert result.revision == 4
    assert await keys(kv) == [b"y"]
    with pytest.raises(NotFound):
        await kv.revoke_lease(lease.id)
    empty = await kv.grant_lease(60)
    assert (await kv.revoke_lease(empty.id)).revision == 4  # nothing deleted: no new revision


async def test_unknown_leases_and_bad_arguments(timed):
    kv, _ = timed
    with pytest.raises(NotFound) as caught:
        await kv.put(PutRequest(b"k", b"v", lease=7))
    assert caught.value.message == "lease not found"
    with pytest.raises(NotFound):
        await kv.txn(TxnRequest(success=(PutRequest(b"k", b"v", lease=7),)))
    assert await keys(kv) == []
    for ttl in (0, -1, 9_000_000_001):
        with pytest.raises(InvalidArgument):
            await kv.grant_lease(ttl)
    with pytest.raises(InvalidArgument):
        await kv.grant_lease(10, -3)
    with pytest.raises(InvalidArgument):
        await kv.put(PutRequest(b"k", b"v", lease=-1))
    await kv.grant_lease(10, 7)
    with pytest.raises(AlreadyExists):
        await kv.grant_lease(10, 7)
    for call in (kv.revoke_lease, kv.keep_alive, kv.time_to_live):
        with pytest.raises(NotFound):
            await call(8)


async def test_ids_and_listing(timed):
    kv, _ = timed
    await kv.grant_lease(10, 2)
    ids = [(await kv.grant_lease(10)).id for _ in range(3)]
    assert ids == [1, 3, 4]  # the store's counter skips ids taken explicitly
    first = await kv.leases(limit=3)
    assert first.ids == [1, 2, 3] and first.next_page_token
    rest = await kv.leases(limit=3, page_token=first.next_page_token)
    assert (rest.ids, rest.next_page_token) == ([4], "")
    with pytest.raises(InvalidArgument):
        await kv.leases(page_token="bogus")


def test_the_state_machine_reads_no_clock():
    """Replaying the same commands gives the same state, whatever time it is."""
    def run() -> list:
        machine = KVStateMachine(SqliteKVStore(":memory:"))
        commands = [LeaseGrant(5, 0, 100.0), PutRequest(b"a", b"1", lease=1), LeaseGrant(50, 0, 100.0),
                    PutRequest(b"b", b"2", lease=2), ExpireLeases(106.0), DeleteRangeRequest(b"z")]
        results = [machine.apply(i, c) for i, c in enumerate(commands, 1)]
        return [repr(r) for r in results] + [machine.store.range(b"", None, 99, 0)]

    assert run() == run()
    assert run()[-1][0].key == b"b"


async def test_the_core_expires_leases_in_the_background():
    store = SqliteKVStore(":memory:")
    machine = KVStateMachine(store)
    kv = KVCore(machine, LocalLog(machine), "test", lease_check_seconds=0.05)
    try:
        lease = await kv.grant_lease(1)
        await kv.put(PutRequest(b"ephemeral", b"v", lease=lease.id))
        for _ in range(100):  # at most 5 s
            if not (await kv.range(RangeRequest(b"ephemeral"))).kvs:
                break
            await asyncio.sleep(0.05)
        assert not (await kv.range(RangeRequest(b"ephemeral"))).kvs
        assert (await kv.leases()).ids == []
    finally:
        await kv.close()
        store.close()


async def test_leases_survive_a_restart(tmp_path):
    path = tmp_path / "kv.sqlite3"
    for round in range(2):
        store = SqliteKVStore(path)
        machine = KVStateMachine(store)
        kv = KVCore(machine, LocalLog(machine), "test", lease_check_seconds=None)
        try:
            if round == 0:
                lease = await kv.grant_lease(3600)
                await kv.put(PutRequest(b"k", b"v", lease=lease.id))
            else:
                ttl = await kv.time_to_live(1, keys=True)
                assert ttl.keys == [b"k"] and 3500 < ttl.ttl <= 3600
                assert (await kv.grant_lease(10)).id == 2
        finally:
            await kv.close()
            store.close()
