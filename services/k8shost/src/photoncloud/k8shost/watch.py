"""Watches: the changes of one kind after a resource version, as Kubernetes sends them.

A watch subscribes to the changes the state machine reports after each command, then replays
the kept history after its start (or lists the current objects as ADDED when it has none), then
passes on the live changes after the last revision it sent: deduplicating by revision closes the
gap between the two without sending anything twice. A watch that falls too far behind drops its
queue and replays from history. As in Kubernetes, a filtered watch sees an object that starts
matching as ADDED and one that stops matching as DELETED.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from photoncloud.common.auth import SYSTEM, Scope
from photoncloud.common.errors import OutOfRange

from .machine import ADDED, DELETED, MODIFIED
from .records import Object, Pod
from .selectors import Selector
from .store import Change

REPLAY_CHUNK = 500  # history events read per step of a replay
QUEUE_LIMIT = 1000  # batches queued for one watch before it is made to replay instead
_LAGGING, _CLOSED = "lagging", "closed"


@dataclass(frozen=True)
class Event:
    """What a watcher is sent: ADDED, MODIFIED or DELETED, and the object at that revision."""

    type: str
    kind: str
    revision: int
    object: Object


@dataclass(frozen=True)
class Filter:
    """Which objects of a kind a watch (or a listing) wants, within the caller's scope."""

    kind: str
    namespace: str = ""
    selector: Selector = field(default_factory=Selector)
    node_name: str | None = None
    scope: Scope | None = None  # None or system: every project

    def admits(self, obj: Object, org_id: str, project_id: str) -> bool:
        """Whether the object is one the watcher wants and may see."""
        if self.namespace and obj.metadata.namespace != self.namespace and self.kind != "namespaces":
            return False
        if self.kind == "namespaces" and self.namespace and obj.metadata.name != self.namespace:
            return False
        if self.node_name is not None and isinstance(obj, Pod) and obj.spec.node_name != self.node_name:
            return False
        if self.scope is not None and self.scope.kind != SYSTEM and self.kind != "nodes" \
                and not self.scope.covers(org_id, project_id):
            return False
        return self.selector.matches(obj.metadata.labels)

    def event(self, change: Change) -> Event | None:
        """The event a change is for this watcher, if any."""
        now = self.admits(change.object, change.org_id, change.project_id)
        if change.type != MODIFIED:
            return Event(change.type, change.kind, change.revision, change.object) if now else None
        before = change.previous is not None and self.admits(change.previous, change.org_id, change.project_id)
        if now:
            return Event(MODIFIED if before else ADDED, change.kind, change.revision, change.object)
        return Event(DELETED, change.kind, change.revision, change.object) if before else None


class Watcher:
    """One watch's subscription: its filter and the queue live changes go to."""

    def __init__(self, filter: Filter):
        self.filter = filter
        self.queue: asyncio.Queue[list[Change] | str] = asyncio.Queue()
        self.lagging = False  # changes dropped: the watch replays them from history


class Watch:
    """An open watch: iterate it for batches of events (the start first, then live changes)."""

    def __init__(self, hub: Hub, watcher: Watcher, revision: int, first: list[Event],
                 history: Callable[[int], Any]):
        self._hub, self._watcher, self._history = hub, watcher, history
        self.revision = revision  # where the watch started: its first events come after it
        self._after, self._first = revision, first

    async def _replay(self) -> AsyncIterator[list[Event]]:
        while True:
            changes = await self._history(self._after)  # OUT_OF_RANGE if compacted meanwhile
            events = [e for e in map(self._watcher.filter.event, changes) if e is not None]
            if changes:
                self._after = changes[-1].revision
            if events:
                yield events
            if len(changes) < REPLAY_CHUNK:
                return

    async def __aiter__(self) -> AsyncIterator[list[Event]]:
        try:
            first, self._first = self._first, []
            if first:
                yield first
            async for batch in self._replay():
                yield batch
            while True:
                item = await self._watcher.queue.get()
                if item == _CLOSED:
                    return
                if item == _LAGGING:
                    self._watcher.lagging = False  # new changes queue again; replay the dropped ones
                    async for batch in self._replay():
                        yield batch
                    continue
                fresh = [c for c in item if c.revision > self._after]  # type: ignore[union-attr]
                if fresh:
                    self._after = fresh[-1].revision
                events = [e for e in map(self._watcher.filter.event, fresh) if e is not None]
                if events:
                    yield events
        finally:
            self.close()

    def close(self) -> None:
        """Stop receiving changes."""
        self._hub.watchers.discard(self._watcher)


class Hub:
    """Hands the state machine's changes (reported on its thread) to the open watches on the loop."""

    def __init__(self) -> None:
        self.watchers: set[Watcher] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self.on_change: list[Callable[[list[Change] | None], None]] = []  # loop-side listeners (the scheduler)

    def applied(self, changes: list[Change] | None) -> None:
        """On the applying thread: pass changes (None: a restored snapshot) to the event loop."""
        loop = self.loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._dispatch, changes)
            except RuntimeError:  # the loop is closed: nobody is watching any more
                pass

    def _dispatch(self, changes: list[Change] | None) -> None:
        for listener in self.on_change:
            listener(changes)
        for watcher in list(self.watchers):
            if watcher.lagging:
                continue
            mine = None if changes is None else [c for c in changes if c.kind == watcher.filter.kind]
            if mine == []:
                continue
            if mine is None or watcher.queue.qsize() >= QUEUE_LIMIT:
                # The state jumped (a snapshot) or the watcher is too far behind: replay from history.
                while not watcher.queue.empty():
                    watcher.queue.get_nowait()
                watcher.lagging = True
                watcher.queue.put_nowait(_LAGGING)
                continue
            watcher.queue.put_nowait(mine)

    def close(self) -> None:
        """End every open watch and refuse new ones."""
        self.closed = True
        for watcher in list(self.watchers):
            watcher.queue.put_nowait(_CLOSED)
        self.watchers.clear()


def too_old(revision: int, compacted: int) -> OutOfRange:
    """The error of a watch (or a replay) that starts before the kept history."""
    return OutOfRange(f"too old resource version: {revision} (the history kept starts after {compacted}); "
                      "list again and watch from the listing's resource_version",
                      {"reason": "RESOURCE_VERSION_TOO_OLD", "compacted_resource_version": str(compacted)})
