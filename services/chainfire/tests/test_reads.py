"""Reads from a snapshot of the last commit (a store on a file): never a part of a commit, always
every acknowledged write, and a single key read as a range of one."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from photoncloud.chainfire.core import (
    KeyValue,
    KVCore,
    KVStateMachine,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from photoncloud.chainfire.store import SqliteKVStore
from photoncloud.common.replication import LocalLog


@pytest.fixture
def store(tmp_path):
    opened = SqliteKVStore(tmp_path / "kv.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
async def kv(store):
    machine = KVStateMachine(store)
    core = KVCore(machine, LocalLog(machine), "test")
    yield core
    await core.close()


def write(store: SqliteKVStore, revision: int, key: bytes, value: bytes) -> None:
    """One committed change of key at revision, through the writer's connection."""
    with store.transaction():
        store.put(revision, 0, KeyValue(key, value, revision, revision, 1))
        store.set_revision(revision)


def test_a_snapshot_never_shows_what_the_writer_has_not_committed(store):
    write(store, 1, b"a", b"1")
    with store.transaction():
        store.put(2, 0, KeyValue(b"a", b"2", 1, 2, 2))
        store.put(2, 1, KeyValue(b"b", b"2", 2, 2, 1))
        store.set_revision(2)
        with store.reading():
            assert store.revision() == 1
            assert [kv.value for kv in store.range(b"a", b"c", 1, 0)] == [b"1"]
    with store.reading():
        assert store.revision() == 2
        assert [(kv.key, kv.value) for kv in store.range(b"a", b"c", 2, 0)] == [(b"a", b"2"), (b"b", b"2")]


def test_one_reading_is_one_snapshot_while_the_writer_commits(store):
    write(store, 1, b"a", b"1")
    with store.reading():
        assert store.get(b"a").value == b"1"
        writer = threading.Thread(target=write, args=(store, 2, b"a", b"2"))  # the applying thread
        writer.start()
        writer.join()
        assert store.get(b"a").value == b"1" and store.revision() == 1
    with store.reading():
        assert store.get(b"a").value == b"2" and store.revision() == 2
    assert store.get(b"a").value == b"2"  # outside: the writer's own connection


def test_an_in_memory_store_has_no_snapshot_reads():
    memory = SqliteKVStore(":memory:")
    try:
        assert KVStateMachine(memory).reading() is None  # its reads stay on the applying thread
    finally:
        memory.close()


async def test_reads_concurrent_with_transactions_see_each_whole_or_not_at_all(kv):
    await kv.txn(TxnRequest(success=(PutRequest(b"a", b"0"), PutRequest(b"b", b"0"))))
    seen: set[bytes] = set()
    writing = True

    async def writer(n: int) -> None:
        for i in range(30):
            value = f"{n}-{i}".encode()
            await kv.txn(TxnRequest(success=(PutRequest(b"a", value), PutRequest(b"b", value))))

    async def reader() -> None:
        while writing:
            result = await kv.range(RangeRequest(b"a", b"c"))
            a, b = result.kvs
            assert (a.value, a.mod_revision) == (b.value, b.mod_revision)
            assert result.count == 2 and result.revision >= a.mod_revision
            seen.add(a.value)
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    await asyncio.gather(*(writer(n) for n in range(4)))
    writing = False
    await asyncio.gather(*readers)
    assert len(seen) > 10  # the reads did overlap the writes


async def test_a_read_sees_every_write_acknowledged_before_it_began(kv):
    acknowledged = 0  # the highest revision any put has returned so far

    async def client(name: bytes) -> None:
        nonlocal acknowledged
        for i in range(25):
            put = await kv.put(PutRequest(name, str(i).encode()))
            acknowledged = max(acknowledged, put.revision)
            floor = acknowledged
            result = await kv.range(RangeRequest(name))
            assert result.revision >= floor
            assert result.kvs[0].mod_revision >= put.revision and result.kvs[0].value == str(i).encode()
            if random.random() < 0.5:
                await asyncio.sleep(0)

    await asyncio.gather(*(client(f"k{n}".encode()) for n in range(10)))


@pytest.mark.parametrize("present", [True, False])
async def test_one_key_is_read_like_a_range_of_one(kv, present):
    await kv.put(PutRequest(b"k0", b"before"))
    if present:
        await kv.put(PutRequest(b"k", b"value"))
    await kv.put(PutRequest(b"k1", b"after"))
    one = await kv.range(RangeRequest(b"k"))
    span = await kv.range(RangeRequest(b"k", b"k\0"))
    assert one == span
    assert one.count == len(one.kvs) == (1 if present else 0)
    assert (await kv.range(RangeRequest(b"k", count_only=True))).count == one.count
    keys_only = await kv.range(RangeRequest(b"k", keys_only=True))
    assert [(kv.key, kv.value) for kv in keys_only.kvs] == ([(b"k", b"")] if present else [])


async def test_overwriting_a_key_moves_it_between_leases(kv):
    first = (await kv.grant_lease(60)).id
    second = (await kv.grant_lease(60)).id
    await kv.put(PutRequest(b"k", b"1"))
    await kv.put(PutRequest(b"k", b"2", lease=first))
    await kv.put(PutRequest(b"k", b"3", lease=first))
    assert (await kv.time_to_live(first, keys=True)).keys == [b"k"]
    await kv.put(PutRequest(b"k", b"4", lease=second))
    assert (await kv.time_to_live(first, keys=True)).keys == []
    assert (await kv.time_to_live(second, keys=True)).keys == [b"k"]
    await kv.put(PutRequest(b"k", b"5"))
    await kv.revoke_lease(second)
    [k] = (await kv.range(RangeRequest(b"k"))).kvs
    assert (k.value, k.version, k.lease, k.create_revision) == (b"5", 5, 0, 1)
