"""Watch fan-out: a state machine's committed changes handed to every open watch, and each watch's
stream of them (the history after its start first, then the live changes), in order, with no gap
and no duplicate. Transport-free: a service's core builds its watches on it, in its own event shape
and with its own filter; the adapters only iterate them.

How it works:

- A `Hub` is given each command's changes by the state machine, on the applying thread, once they
  have committed (`Hub.applied`), and passes them to the event loop (`Hub.dispatch`).
- A `Subscription` is one watch's place at the hub: its filter (`select`) picks the changes it
  wants into its queue. It is subscribed *before* the watch reads its history, so that no change
  can fall between the two.
- A `Feed` is what the watch iterates: the history after its start position, read chunk by chunk
  through the service's history reader, then the live changes from the queue. Every change has a
  position (a revision, or a (revision, sub-revision)); the feed passes on only changes after the
  last position it sent, which closes the gap between history and live changes without sending
  anything twice.
- A subscription that falls `queue_limit` batches behind (nobody reads its feed), or that is told
  the whole state was replaced (a snapshot was restored: `applied(None)`), drops its queue and is
  marked lagging; its feed then reads what it missed from history, and queues live changes again.
  When that history is gone (compacted), the history reader's error (the service's "too old"
  error, such as OUT_OF_RANGE) ends the feed: the watch fails with it and the client starts over.
- `Hub.close` ends every feed (they stop after what they have already sent) and refuses new
  subscriptions with UNAVAILABLE: the service is stopping.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, Self, TypeVar

from .errors import Unavailable

QUEUE_LIMIT = 1000  # batches queued for one subscription before it is made to replay from history instead

C = TypeVar("C")  # one committed change, in the service's own shape


class Position(Protocol):
    """A place in the history: a revision, or a (revision, sub-revision) tuple; later places compare greater."""

    def __gt__(self, other: Self, /) -> bool:
        """Whether this place comes after other."""
        ...


P = TypeVar("P", bound=Position)


class Signal(enum.Enum):
    """What a subscription's queue holds besides batches of changes."""

    LAGGING = "lagging"  # changes were dropped: the feed reads them from history
    CLOSED = "closed"  # the hub closed: the feed ends


class Subscription(Generic[C]):
    """One watch's place at the hub: the filter that picks its changes and the bounded queue they wait in."""

    def __init__(self, select: Callable[[list[C]], list[C]], queue_limit: int = QUEUE_LIMIT) -> None:
        self.select = select  # the changes of one command this watch wants (in their order)
        self.queue_limit = queue_limit
        self.queue: asyncio.Queue[list[C] | Signal] = asyncio.Queue()
        self.lagging = False  # changes dropped: the feed replays them from history

    def offer(self, changes: list[C] | None) -> None:
        """On the loop: queue what the filter picks of one command's changes (None: the state was replaced)."""
        if self.lagging:
            return  # the feed will read these from history anyway
        picked = None if changes is None else self.select(changes)
        if picked == []:
            return
        if picked is None or self.queue.qsize() >= self.queue_limit:
            # The state jumped, or the watch is too far behind: drop the queue, replay from history.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.lagging = True
            self.queue.put_nowait(Signal.LAGGING)
            return
        self.queue.put_nowait(picked)


class Hub(Generic[C]):
    """Hands the state machine's committed changes (reported on its thread) to the subscriptions on the loop."""

    def __init__(self) -> None:
        self.watchers: set[Subscription[C]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop the subscriptions' feeds run on
        self.closed = False
        self.on_change: list[Callable[[list[C] | None], None]] = []  # loop-side listeners besides watches

    def subscribe(self, subscription: Subscription[C]) -> None:
        """On the loop: start queueing changes for a subscription (UNAVAILABLE once the hub is closed)."""
        if self.closed:
            raise Unavailable("the service is stopping; watch again elsewhere or later")
        self.loop = asyncio.get_running_loop()
        self.watchers.add(subscription)

    def unsubscribe(self, subscription: Subscription[C]) -> None:
        """Stop queueing changes for a subscription (nothing if it is not subscribed)."""
        self.watchers.discard(subscription)

    def applied(self, changes: list[C] | None) -> None:
        """On the applying thread: pass one command's committed changes (None: a restored snapshot) to the loop."""
        loop = self.loop
        if loop is not None and (self.watchers or self.on_change):
            try:
                loop.call_soon_threadsafe(self.dispatch, changes)
            except RuntimeError:  # the loop is closed: nobody is watching any more
                pass

    def dispatch(self, changes: list[C] | None) -> None:
        """On the loop: give one command's changes to the listeners, then to every subscription."""
        for listener in list(self.on_change):
            listener(changes)
        for subscription in list(self.watchers):
            subscription.offer(changes)

    def close(self) -> None:
        """End every subscription's feed and refuse new subscriptions."""
        self.closed = True
        for subscription in list(self.watchers):
            subscription.queue.put_nowait(Signal.CLOSED)
        self.watchers.clear()


@dataclass(frozen=True)
class Batch(Generic[C]):
    """Changes a feed passes on, in order: read from history (live False) or from the queue (live True)."""

    changes: list[C]
    live: bool


class Feed(Generic[C, P]):
    """What a watch iterates: the history after a position, chunk by chunk, then the live changes."""

    def __init__(self, hub: Hub[C], subscription: Subscription[C], after: P, position: Callable[[C], P],
                 history: Callable[[P], Awaitable[Sequence[C]]], chunk: int,
                 read: Sequence[C] | None = None) -> None:
        """Feed a subscription's changes after position `after`, reading history through history(p)."""
        # history(p): up to chunk changes after position p (fewer: the history ends there), or the
        # service's error once that history is compacted; read: a first chunk the caller already read.
        self._hub, self._subscription = hub, subscription
        self.after = after  # the position of the last change passed on (or where the feed starts)
        self._position, self._history, self._chunk = position, history, chunk
        self._read: Sequence[C] | None = read

    async def _replay(self, read: Sequence[C] | None) -> AsyncIterator[Batch[C]]:
        while True:
            changes = await self._history(self.after) if read is None else read
            read = None
            fresh = [c for c in changes if self._position(c) > self.after]
            if fresh:
                self.after = self._position(fresh[-1])
                yield Batch(fresh, False)
            if len(changes) < self._chunk:
                return

    async def __aiter__(self) -> AsyncIterator[Batch[C]]:
        """The batches: the history after the start, then the live ones; ends when the hub closes."""
        try:
            read, self._read = self._read, None
            async for batch in self._replay(read):
                yield batch
            while True:
                item = await self._subscription.queue.get()
                if item is Signal.CLOSED:
                    return
                if item is Signal.LAGGING:
                    self._subscription.lagging = False  # new changes queue again; replay the dropped ones
                    async for batch in self._replay(None):
                        yield batch
                    continue
                fresh = [c for c in item if self._position(c) > self.after]
                if fresh:
                    self.after = self._position(fresh[-1])
                    yield Batch(fresh, True)
        finally:
            self.close()

    def close(self) -> None:
        """Stop receiving changes."""
        self._hub.unsubscribe(self._subscription)
