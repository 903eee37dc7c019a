"""Compaction: history before the compact revision goes; everything at or after it reads as before."""

from __future__ import annotations

import random
import sqlite3

import pytest
from photoncloud.chainfire.core import (
    CompactRequest,
    DeleteRangeRequest,
    KeyValue,
    PutRequest,
    RangeRequest,
    WatchRequest,
)
from photoncloud.chainfire.store import SqliteKVStore
from photoncloud.common.errors import InvalidArgument, OutOfRange


async def snapshot(kv, revision: int) -> list[KeyValue]:
    return (await kv.range(RangeRequest(b"\0", range_end=b"\0", revision=revision))).kvs


async def test_reads_at_and_after_the_compact_revision_are_unchanged(kv):
    rng = random.Random(7)
    for _ in range(120):
        key = f"k{rng.randrange(6)}".encode()
        if rng.random() < 0.25:
            await kv.delete_range(DeleteRangeRequest(key))
        else:
            await kv.put(PutRequest(key, str(rng.random()).encode()))
    current = (await kv.range(RangeRequest(b"k0"))).revision
    at = current // 2
    before = {rev: await snapshot(kv, rev) for rev in range(at, current + 1)}
    rows_before = kv.machine.store.db.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    result = await kv.compact(CompactRequest(at))
    assert (result.revision, result.compact_revision) == (current, at)
    rows_after = kv.machine.store.db.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    assert rows_after < rows_before
    for rev, kvs in before.items():
        assert await snapshot(kv, rev) == kvs, rev
    for rev in (1, at - 1):
        with pytest.raises(OutOfRange) as caught:
            await snapshot(kv, rev)
        assert caught.value.message == "required revision has been compacted"
        assert caught.value.details["compact_revision"] == at


async def test_compaction_keeps_the_pairs_current_at_the_revision(kv):
    await kv.put(PutRequest(b"a", b"1"))        # 1
    await kv.put(PutRequest(b"b", b"1"))        # 2
    await kv.put(PutRequest(b"a", b"2"))        # 3
    await kv.delete_range(DeleteRangeRequest(b"b"))  # 4
    await kv.put(PutRequest(b"c", b"1"))        # 5
    await kv.compact(CompactRequest(4))
    rows = kv.machine.store.db.execute("SELECT key, revision FROM history ORDER BY revision").fetchall()
    # a@1 is superseded, b's row and its tombstone are gone (b does not exist at 4), a@3 and c@5 stay;
    # the tombstone at exactly 4 stays too, so a watch from 4 still sees the delete.
    assert rows == [(b"a", 3), (b"b", 4), (b"c", 5)]
    assert [kv.key for kv in await snapshot(kv, 4)] == [b"a"]
    watch = await kv.watch(WatchRequest(b"\0", range_end=b"\0", start_revision=4))
    batch = await watch.__aiter__().__anext__()
    watch.close()
    assert [(e.type.value, e.kv.key, e.kv.mod_revision) for e in batch.events] == [
        ("DELETE", b"b", 4), ("PUT", b"c", 5)]


async def test_compaction_errors_follow_etcd(kv):
    for value in (b"1", b"2", b"3"):
        await kv.put(PutRequest(b"a", value))
    with pytest.raises(OutOfRange) as caught:
        await kv.compact(CompactRequest(4))
    assert caught.value.message == "mvcc: required revision is a future revision"
    await kv.compact(CompactRequest(2))
    for revision in (1, 2):
        with pytest.raises(OutOfRange) as caught:
            await kv.compact(CompactRequest(revision))
        assert caught.value.message == "mvcc: required revision has been compacted"
        assert caught.value.details["compact_revision"] == 2
    with pytest.raises(InvalidArgument):
        await kv.compact(CompactRequest(0))
    # A page token pinned to a revision that got compacted cannot continue.
    await kv.put(PutRequest(b"b", b"1"))
    first = await kv.range(RangeRequest(b"\0", range_end=b"\0", limit=1))  # pinned at 4
    await kv.put(PutRequest(b"c", b"1"))
    await kv.compact(CompactRequest(5))
    with pytest.raises(OutOfRange):
        await kv.range(RangeRequest(b"\0", range_end=b"\0", limit=1, page_token=first.next_page_token))
    assert kv.machine.store.compact_revision() == 5


def test_a_store_made_before_leases_is_upgraded(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE history (key BLOB NOT NULL, revision INTEGER NOT NULL, sub INTEGER NOT NULL,
            create_revision INTEGER NOT NULL, version INTEGER NOT NULL, value BLOB,
            PRIMARY KEY (key, revision)) WITHOUT ROWID;
        CREATE TABLE live (key BLOB PRIMARY KEY, create_revision INTEGER NOT NULL,
            mod_revision INTEGER NOT NULL, version INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
        INSERT INTO meta VALUES ('revision', 1);
        INSERT INTO history VALUES (x'61', 1, 0, 1, 1, x'31');
        INSERT INTO live VALUES (x'61', 1, 1, 1, x'31');
    """)
    db.commit()
    db.close()
    store = SqliteKVStore(path)
    try:
        assert store.get(b"a") == KeyValue(b"a", b"1", 1, 1, 1, 0)
        assert store.range(b"a", b"b", 1, 0) == [KeyValue(b"a", b"1", 1, 1, 1, 0)]
    finally:
        store.close()
