"""Watches: the changes of one kind after a resource version, as Kubernetes sends them.

A watch subscribes to the changes the state machine reports after each command, then replays
the kept history after its start (or lists the current objects as ADDED when it has none), then
passes on the live changes after the last revision it sent: deduplicating by revision closes the
gap between the two without sending anything twice. A watch that falls too far behind drops its
queue and replays from history. That mechanism is the shared one (photoncloud.common.fanout);
this module gives it k8shost's changes, filter and events. As in Kubernetes, a filtered watch
sees an object that starts matching as ADDED and one that stops matching as DELETED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from photoncloud.common import fanout
from photoncloud.common.auth import SYSTEM, Scope
from photoncloud.common.errors import OutOfRange

from .machine import ADDED, DELETED, MODIFIED
from .records import Object, Pod
from .selectors import Selector
from .store import Change

REPLAY_CHUNK = 500  # history events read per step of a replay
QUEUE_LIMIT = 1000  # batches queued for one watch before it is made to replay instead


@dataclass(frozen=True)
class Event:
    """What a watcher is sent: ADDED, MODIFIED or DELETED, and the object at that revision."""

    type: str
    kind: str
    revision: int
    object: Object
    previous: Object | None = None  # the object before a MODIFIED (a watch filtering on more than labels reads it)


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
            return Event(MODIFIED if before else ADDED, change.kind, change.revision, change.object, change.previous)
        return Event(DELETED, change.kind, change.revision, change.object, change.previous) if before else None


class Hub(fanout.Hub[Change]):
    """Hands the state machine's changes (reported on its thread) to the open watches on the loop;
    on_change holds loop-side listeners besides them (the scheduler)."""


class Watcher(fanout.Subscription[Change]):
    """One watch's subscription: its filter, and the queue the changes of its kind go to."""

    def __init__(self, filter: Filter) -> None:
        super().__init__(lambda changes: [c for c in changes if c.kind == filter.kind], QUEUE_LIMIT)
        self.filter = filter


def _revision(change: Change) -> int:
    return change.revision


class Watch:
    """An open watch: iterate it for batches of events (the start first, then live changes)."""

    def __init__(self, hub: Hub, watcher: Watcher, revision: int, first: list[Event],
                 history: Callable[[int], Awaitable[list[Change]]]) -> None:
        self._watcher = watcher
        self.revision = revision  # where the watch started: its first events come after it
        self._first = first
        # history(after): up to REPLAY_CHUNK changes of the kind after a revision (OUT_OF_RANGE if compacted)
        self._feed: fanout.Feed[Change, int] = fanout.Feed(hub, watcher, revision, _revision, history, REPLAY_CHUNK)

    async def __aiter__(self) -> AsyncIterator[list[Event]]:
        try:
            first, self._first = self._first, []
            if first:
                yield first
            async for batch in self._feed:
                events = [e for e in map(self._watcher.filter.event, batch.changes) if e is not None]
                if events:
                    yield events
        finally:
            self.close()

    def close(self) -> None:
        """Stop receiving changes."""
        self._feed.close()


def too_old(revision: int, compacted: int) -> OutOfRange:
    """The error of a watch (or a replay) that starts before the kept history."""
    return OutOfRange(f"too old resource version: {revision} (the history kept starts after {compacted}); "
                      "list again and watch from the listing's resource_version",
                      {"reason": "RESOURCE_VERSION_TOO_OLD", "compacted_resource_version": str(compacted)})
