"""Watches: history replayed, then live events, in order, with no gap and no duplicate."""

from __future__ import annotations

import asyncio

import pytest
from photoncloud.chainfire import core
from photoncloud.chainfire.core import (
    CompactRequest,
    DeleteRangeRequest,
    EventType,
    PutRequest,
    TxnRequest,
    WatchRequest,
)
from photoncloud.common import fanout
from photoncloud.common.errors import InvalidArgument, OutOfRange

SECONDS = 10  # every wait below is bounded by this


async def collect(watch, until_revision: int) -> list[core.Event]:
    """The events of watch up to (and including) until_revision, within SECONDS."""
    events: list[core.Event] = []

    async def run():
        async for batch in watch:
            events.extend(batch.events)
            if events and events[-1].kv.mod_revision >= until_revision:
                return

    await asyncio.wait_for(run(), SECONDS)
    return events


async def test_replay_then_live_without_gaps_under_concurrent_writes(kv):
    for i in range(50):
        await kv.put(PutRequest(f"w/{i % 7}".encode(), str(i).encode()))
    total = 300

    async def writer():
        for i in range(50, total):
            if i % 10 == 0:
                await kv.delete_range(DeleteRangeRequest(f"w/{i % 7}".encode()))
            else:
                await kv.put(PutRequest(f"w/{i % 7}".encode(), str(i).encode()))

    writing = asyncio.create_task(writer())
    await asyncio.sleep(0)  # let some writes race the watch's history read
    watch = await kv.watch(WatchRequest(b"w/", prefix=True, start_revision=1))
    await writing
    final = (await kv.range(core.RangeRequest(b"w/", prefix=True))).revision
    events = await collect(watch, final)
    watch.close()
    revisions = [e.kv.mod_revision for e in events]
    # One change per revision here (a delete of one key, or a put): every revision exactly once, in order.
    assert revisions == list(range(1, final + 1))
    deletes = [e for e in events if e.type is EventType.DELETE]
    assert deletes and all(e.kv.value == b"" and e.kv.version == 0 for e in deletes)


async def test_a_transaction_is_one_revision_in_sub_revision_order(kv):
    await kv.put(PutRequest(b"t/a", b"0"))
    watch = await kv.watch(WatchRequest(b"t/", prefix=True))  # from now: no history
    await kv.txn(TxnRequest(success=(PutRequest(b"t/c", b"1"), PutRequest(b"t/b", b"2"),
                                     DeleteRangeRequest(b"t/a"))))
    events = await collect(watch, 2)
    assert [(e.type, e.kv.key, e.kv.mod_revision, e.sub) for e in events] == [
        (EventType.PUT, b"t/c", 2, 0), (EventType.PUT, b"t/b", 2, 1), (EventType.DELETE, b"t/a", 2, 2)]
    # The same from history.
    replayed = await collect(await kv.watch(WatchRequest(b"t/", prefix=True, start_revision=2)), 2)
    assert [(e.type, e.kv.key, e.sub) for e in replayed] == [(e.type, e.kv.key, e.sub) for e in events]


async def test_filters_key_prefix_and_range(kv):
    spans = {
        "key": WatchRequest(b"app/b", start_revision=1),
        "prefix": WatchRequest(b"app/", prefix=True, start_revision=1),
        "range": WatchRequest(b"app/b", range_end=b"app/d", start_revision=1),
        "all": WatchRequest(b"\0", range_end=b"\0", start_revision=1),
    }
    for key in (b"app/a", b"app/b", b"app/c", b"app/d", b"apq", b"z"):
        await kv.put(PutRequest(key, b"v"))
    for name, request in spans.items():
        watch = await kv.watch(request)
        await kv.put(PutRequest(b"app/c", b"again"))  # live, inside "prefix", "range" and "all"
        await kv.put(PutRequest(b"app/b", b"last"))  # live, in every span
        final = (await kv.range(core.RangeRequest(b"z"))).revision
        events = await collect(watch, final)
        watch.close()
        keys = [e.kv.key for e in events]
        expected = {
            "key": [b"app/b"],
            "prefix": [b"app/a", b"app/b", b"app/c", b"app/d"],
            "range": [b"app/b", b"app/c"],
            "all": [b"app/a", b"app/b", b"app/c", b"app/d", b"apq", b"z"],
        }[name]
        assert sorted(set(keys)) == expected, name
        assert keys[-1] == b"app/b"


async def test_prev_kv_in_history_and_live(kv):
    await kv.put(PutRequest(b"p", b"1"))
    await kv.put(PutRequest(b"p", b"2"))
    watch = await kv.watch(WatchRequest(b"p", start_revision=1, prev_kv=True))
    await kv.delete_range(DeleteRangeRequest(b"p"))
    events = await collect(watch, 3)
    assert [(e.type, e.kv.value, e.prev_kv and e.prev_kv.value) for e in events] == [
        (EventType.PUT, b"1", None), (EventType.PUT, b"2", b"1"), (EventType.DELETE, b"", b"2")]
    plain = await collect(await kv.watch(WatchRequest(b"p", start_revision=1)), 3)
    assert all(e.prev_kv is None for e in plain)


async def test_start_from_now_and_from_the_future(kv):
    await kv.put(PutRequest(b"k", b"old"))
    now = await kv.watch(WatchRequest(b"k"))
    future = await kv.watch(WatchRequest(b"k", start_revision=3))
    await kv.put(PutRequest(b"k", b"2"))
    await kv.put(PutRequest(b"k", b"3"))
    assert [e.kv.value for e in await collect(now, 3)] == [b"2", b"3"]
    assert [e.kv.value for e in await collect(future, 3)] == [b"3"]


async def test_a_compacted_start_revision_is_out_of_range(kv):
    for value in (b"1", b"2", b"3"):
        await kv.put(PutRequest(b"c", value))
    await kv.compact(CompactRequest(2))
    with pytest.raises(OutOfRange) as caught:
        await kv.watch(WatchRequest(b"c", start_revision=1))
    assert caught.value.details["compact_revision"] == 2
    assert "compacted" in caught.value.message
    assert not kv.hub.watchers  # the refused watch left no subscription behind
    events = await collect(await kv.watch(WatchRequest(b"c", start_revision=2)), 3)
    assert [e.kv.value for e in events] == [b"2", b"3"]


async def test_invalid_watches_are_refused(kv):
    with pytest.raises(InvalidArgument):
        await kv.watch(WatchRequest(b""))
    with pytest.raises(InvalidArgument):
        await kv.watch(WatchRequest(b"a", start_revision=-1))
    with pytest.raises(InvalidArgument):
        await kv.watch(WatchRequest(b"a", range_end=b"b", prefix=True))
    assert not kv.hub.watchers


async def test_a_watcher_that_falls_behind_catches_up_from_history(kv, monkeypatch):
    monkeypatch.setattr(core, "WATCH_QUEUE_LIMIT", 3)
    monkeypatch.setattr(core, "WATCH_REPLAY_CHUNK", 4)
    watch = await kv.watch(WatchRequest(b"s/", prefix=True))
    for i in range(40):  # nobody reads the watch meanwhile: its queue overflows
        await kv.put(PutRequest(f"s/{i % 3}".encode(), b"x"))
    events = await collect(watch, 40)
    watch.close()
    assert [e.kv.mod_revision for e in events] == list(range(1, 41))


async def test_closing_the_core_ends_watches(kv):
    watch = await kv.watch(WatchRequest(b"k"))
    reader = asyncio.create_task(collect(watch, 10**9))
    await asyncio.sleep(0.01)
    for watcher in list(kv.hub.watchers):
        watcher.queue.put_nowait(fanout.Signal.CLOSED)
    assert await asyncio.wait_for(reader, SECONDS) == []
    assert not kv.hub.watchers


async def test_compaction_during_a_replay_fails_the_watch(kv, monkeypatch):
    monkeypatch.setattr(core, "WATCH_REPLAY_CHUNK", 2)
    for i in range(6):
        await kv.put(PutRequest(b"r", str(i).encode()))
    watch = await kv.watch(WatchRequest(b"r", start_revision=1))
    batches = watch.__aiter__()
    first = await batches.__anext__()
    assert [e.kv.mod_revision for e in first.events] == [1, 2]
    await kv.compact(CompactRequest(5))  # the next chunk (from revision 3) is gone
    with pytest.raises(OutOfRange) as caught:
        await batches.__anext__()
    assert caught.value.details["compact_revision"] == 5
    assert not kv.hub.watchers
