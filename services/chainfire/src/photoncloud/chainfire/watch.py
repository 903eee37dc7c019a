"""ChainFire's watches: the events of a key span from a start revision, as etcd sends them.

KVCore.watch subscribes a watch to the state machine's events before it reads the first chunk of
the span's history, so that no change falls between the two; the watch then passes on the rest of
that history, then the live events after the last one it sent. Events are placed by (revision,
sub-revision), so deduplicating by that position closes the gap without sending anything twice. A
watch that falls too far behind replays from history what it missed; once that history is
compacted it fails with OUT_OF_RANGE. That mechanism is the shared one (photoncloud.common.fanout);
this module gives it ChainFire's events, span filter and batches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from photoncloud.common import fanout

from .commands import Event

Position = tuple[int, int]  # (revision, sub-revision): where an event sits in the store's history


@dataclass(frozen=True)
class WatchBatch:
    """Events in revision order, and the store's revision when they were sent."""

    revision: int
    events: list[Event]


def subscription(start: bytes, end: bytes | None, prev_kv: bool, queue_limit: int) -> fanout.Subscription[Event]:
    """A watch's place at the hub: the events of keys in [start, end) (end None: to the last key),
    with their previous pair only if prev_kv."""
    def select(events: list[Event]) -> list[Event]:
        return [e if prev_kv else Event(e.type, e.kv, e.sub) for e in events
                if start <= e.kv.key and (end is None or e.kv.key < end)]
    return fanout.Subscription(select, queue_limit)


def _position(event: Event) -> Position:
    return event.position


class Watch:
    """An open watch: iterate it for batches of events (history first, then live changes)."""

    def __init__(self, hub: fanout.Hub[Event], watcher: fanout.Subscription[Event],
                 replay: Callable[[Position], Awaitable[tuple[int, list[Event]]]], chunk: int,
                 revision: int, after: Position, events: list[Event]) -> None:
        """replay(after): the store's revision and up to chunk events of the span after a position;
        events: the first chunk, already read after position `after` at revision `revision`."""
        self.revision = revision  # the store's revision when the watch started (then: at its last replay)

        async def history(after: Position) -> list[Event]:
            self.revision, read = await replay(after)
            return read

        self._feed: fanout.Feed[Event, Position] = fanout.Feed(hub, watcher, after, _position, history, chunk, events)

    async def __aiter__(self) -> AsyncIterator[WatchBatch]:
        try:
            async for batch in self._feed:
                events = batch.changes
                yield WatchBatch(events[-1].kv.mod_revision if batch.live else self.revision, events)
        finally:
            self.close()

    def close(self) -> None:
        """Stop receiving events."""
        self._feed.close()
