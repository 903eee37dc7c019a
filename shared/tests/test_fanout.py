"""fanout.py on its own: changes reach each subscription in order through its filter, a feed replays
history then passes on live changes with no gap and no duplicate, a subscription that falls behind
catches up from history or, when that history is gone, ends with the history's error, and closing
the hub ends every feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from photoncloud.common.errors import OutOfRange, Unavailable
from photoncloud.common.fanout import Batch, Feed, Hub, Subscription

SECONDS = 5  # every wait is bounded by this
CHUNK = 4  # history changes read per step of a replay


@dataclass(frozen=True)
class Change:
    """A change in the shape of a made-up service: one key at one revision."""

    revision: int
    key: str


class Machine:
    """A state machine's history of changes, reported to a hub after each command, and compactable."""

    def __init__(self, hub: Hub[Change]) -> None:
        self.hub = hub
        self.changes: list[Change] = []
        self.compacted = 0  # history at or before this revision is gone
        self.reads = 0

    def commit(self, *keys: str) -> list[Change]:
        """One command changing keys, each at its own revision; reported to the hub as applied."""
        revision = self.changes[-1].revision if self.changes else 0
        batch = [Change(revision + i + 1, key) for i, key in enumerate(keys)]
        self.changes.extend(batch)
        self.hub.applied(batch)
        return batch

    async def history(self, after: int) -> list[Change]:
        """Up to CHUNK changes after revision `after` (OUT_OF_RANGE once compacted)."""
        self.reads += 1
        if after < self.compacted:
            raise OutOfRange(f"revision {after} is compacted", {"compacted": self.compacted})
        return [c for c in self.changes if c.revision > after][:CHUNK]


def prefix(start: str):
    """A filter: the changes of keys starting with start."""
    def select(changes: list[Change]) -> list[Change]:
        return [c for c in changes if c.key.startswith(start)]
    return select


async def open_feed(hub: Hub[Change], machine: Machine, after: int, select=prefix(""),
                    queue_limit: int = 1000, read_first: bool = True) -> Feed[Change, int]:
    """Subscribe, then read the first chunk of history (as a service's watch() does), and feed."""
    subscription = Subscription(select, queue_limit)
    hub.subscribe(subscription)
    first = await machine.history(after) if read_first else None
    return Feed(hub, subscription, after, lambda c: c.revision, machine.history, CHUNK, first)


async def settle() -> None:
    """Let the loop run what applied() scheduled."""
    for _ in range(3):
        await asyncio.sleep(0)


async def take(feed: Feed[Change, int] | AsyncIterator[Batch[Change]], until: int) -> list[Batch[Change]]:
    """The batches of a feed (or of one iteration of it, to go on with) until one reaches revision
    until, or the feed ends."""
    batches: list[Batch[Change]] = []
    iteration = feed.__aiter__()

    async def run() -> None:
        while True:
            try:
                batch = await iteration.__anext__()
            except StopAsyncIteration:
                return
            batches.append(batch)
            if batch.changes[-1].revision >= until:
                return

    await asyncio.wait_for(run(), SECONDS)
    return batches


def revisions(batches: list[Batch[Change]]) -> list[int]:
    return [c.revision for b in batches for c in b.changes]


async def test_each_subscription_gets_what_its_filter_picks_in_commit_order():
    hub: Hub[Change] = Hub()
    machine = Machine(hub)
    every = await open_feed(hub, machine, 0)
    only_a = await open_feed(hub, machine, 0, prefix("a"))
    machine.commit("a1", "b1")
    machine.commit("b2")
    machine.commit("a2", "a3", "b3")
    await settle()
    assert only_a._subscription.queue.qsize() == 2  # the command changing only b queued nothing
    got_every, got_a = await take(every, 6), await take(only_a, 5)
    assert [[c.key for c in b.changes] for b in got_every] == [["a1", "b1"], ["b2"], ["a2", "a3", "b3"]]
    assert [[c.key for c in b.changes] for b in got_a] == [["a1"], ["a2", "a3"]]
    assert all(b.live for b in got_every + got_a)


async def test_replay_then_live_without_gap_or_duplicate():
    hub: Hub[Change] = Hub()
    machine = Machine(hub)
    for i in range(10):
        machine.commit(f"k{i}")
    feed = await open_feed(hub, machine, 3)
    # Committed after the subscription but before the replay reaches them: in history and in the queue.
    for i in range(10, 20):
        machine.commit(f"k{i}")
    await settle()
    iteration = feed.__aiter__()
    batches = await take(iteration, 20)
    assert revisions(batches) == list(range(4, 21))
    assert [b.live for b in batches] == [False] * len(batches)  # history had them all: the queue's were dropped
    machine.commit("k20", "k21")
    live = await take(iteration, 22)
    assert revisions(live) == [21, 22] and live[0].live
    assert feed.after == 22


async def test_a_feed_may_read_its_whole_history_itself():
    hub: Hub[Change] = Hub()
    machine = Machine(hub)
    for i in range(6):
        machine.commit(f"k{i}")
    feed = await open_feed(hub, machine, 0, read_first=False)
    assert machine.reads == 0
    assert revisions(await take(feed, 6)) == list(range(1, 7))


async def test_changes_applied_on_another_thread_reach_the_loop():
    hub: Hub[Change] = Hub()
    machine = Machine(hub)
    feed = await open_feed(hub, machine, 0)
    await asyncio.to_thread(machine.commit, "t1", "t2")
    assert revisions(await take(feed, 2)) == [1, 2]


async def test_a_subscription_that_falls_behind_catches_up_from_history():
    hub: Hub[Change] = Hub()
    machine = Machine(hub)
    feed = await open_feed(hub, machine, 0, queue_limit=3)
    subscription = feed._subscription
    for i in range(30):  # nobody reads the feed meanwhile
        machine.commit(f"k{i}")
    await settle()
    assert subscription.lagging and subscription.queue.qsize() == 1  # its queue dropped for one LAGGING mark
    iteration = feed.__aiter__()
    batches = await take(iteration, 30)
    assert revisions(batches) == list(range(1, 31))
    assert not subscription.lagging
    machine.commit("after")
    after = await take(iteration, 31)
    assert revisions(after) == [31] and after[0].live


async def test_a_slow_subscription_whose_history_is_gone_ends_with_the_history_error():
    hub: Hub[Change] = Hub()
    machine = Machine(hub)
    feed = await open_feed(hub, machine, 0, queue_limit=2)
    for i in range(10):
        machine.commit(f"k{i}")
    await settle()
    machine.compacted = 8  # what the subscription missed is no longer kept
    with pytest.raises(OutOfRange):
        await take(feed, 10)
    assert not hub.watchers


async def test_a_restored_snapshot_makes_every_subscription_replay():
    hub: Hub[Change] = Hub()
    machine = Machine(hub)
    feed = await open_feed(hub, machine, 0)
    machine.commit("a")
    await settle()
    # The snapshot brings revisions 2 and 3 without a command's report.
    machine.changes += [Change(2, "b"), Change(3, "c")]
    hub.applied(None)
    await settle()
    assert feed._subscription.lagging
    assert revisions(await take(feed, 3)) == [1, 2, 3]


async def test_listeners_hear_every_command_before_the_subscriptions():
    hub: Hub[Change] = Hub()
    machine = Machine(hub)
    heard: list[list[Change] | None] = []
    hub.on_change.append(heard.append)
    hub.loop = asyncio.get_running_loop()
    machine.commit("x")
    hub.applied(None)
    await settle()
    assert heard == [[Change(1, "x")], None]


async def test_closing_the_hub_ends_every_feed_and_refuses_new_ones():
    hub: Hub[Change] = Hub()
    machine = Machine(hub)
    feeds = [await open_feed(hub, machine, 0) for _ in range(3)]
    machine.commit("sent")
    await settle()
    readers = [asyncio.create_task(take(feed, 10**9)) for feed in feeds]
    await asyncio.sleep(0.01)
    hub.close()
    for reader in readers:
        assert revisions(await asyncio.wait_for(reader, SECONDS)) == [1]  # what was queued, then the end
    assert not hub.watchers and hub.closed
    with pytest.raises(Unavailable):
        hub.subscribe(Subscription(prefix("")))
    assert not hub.watchers


async def test_leaving_a_feed_unsubscribes_it():
    hub: Hub[Change] = Hub()
    machine = Machine(hub)
    feed = await open_feed(hub, machine, 0)
    machine.commit("one")
    batches = feed.__aiter__()
    assert revisions([await asyncio.wait_for(batches.__anext__(), SECONDS)]) == [1]
    await batches.aclose()
    assert not hub.watchers
    other = await open_feed(hub, machine, 0)
    other.close()
    assert not hub.watchers
