"""The boundary between a service's core and its log of commands: one member (LocalLog) or Raft.

A core never changes its state directly: it proposes a command and awaits the result of applying
it to its state machine. On one member the log applies commands at once, in order; a replicated
log applies them on every member once a majority has stored them. The core is the same for both.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from photoncloud.common.errors import FailedPrecondition, Unavailable

T = TypeVar("T")


class StateMachine(Protocol):
    """Deterministic state: the same commands in the same order give the same state everywhere."""

    def applied_index(self) -> int:
        """The index of the last command applied (kept durably with the state)."""

    def apply(self, index: int, command: Any) -> Any:
        """Apply command as log entry index; return its result (or the ServiceError it raised)."""

    def snapshot(self, path: str) -> None:
        """Write the whole state (applied index included) to a new file at path."""

    def restore(self, path: str) -> None:
        """Replace the whole state with the snapshot at path."""


@dataclass(frozen=True)
class LogStatus:
    """Where this member stands in the log."""

    member_id: int
    leader: int
    role: str
    term: int
    index: int


def member_id(peer_address: str) -> int:
    """A member's id, derived from its peer address so that every member computes the same one.

    As in etcd, ids are hashes; they stay below 2**53 so JSON clients read them exactly.
    """
    return int.from_bytes(hashlib.sha256(peer_address.encode()).digest()[:8], "big") >> 11


@dataclass(frozen=True)
class Member:
    """A member of the cluster: its id, its peer address, where clients reach it, and its role."""

    member_id: int
    peer_address: str
    client_urls: Mapping[str, str] = field(default_factory=dict)  # e.g. {"rest": ..., "grpc": ...}
    is_self: bool = False
    is_leader: bool = False


class Log(Protocol):
    """What a core needs from its log."""

    async def propose(self, command: Any) -> Any:
        """Apply command through the log and return its result (raising the error it gave)."""

    async def read(self, query: Callable[[], T], *, linearizable: bool = False) -> T:
        """Run query against the state machine: after every command this member applied, or
        (linearizable) after every command acknowledged anywhere before the read began."""

    def status(self) -> LogStatus:
        """This member's view of the log."""

    def members(self) -> list[Member]:
        """Every member of the cluster as this member knows it."""

    async def add_member(self, address: str) -> Member:
        """Add the member at this peer address."""

    async def remove_member(self, id: int) -> Member:
        """Remove the member with this id."""

    async def close(self) -> None:
        """Stop applying commands."""


_ALONE = "this member runs alone; start every member with the cluster's peers to change membership"


class BatchingStateMachine(StateMachine, Protocol):
    """A state machine that can apply several commands and make them durable together."""

    def apply_batch(self, entries: list[tuple[int, Any]]) -> list[Any]:
        """Apply (index, command) entries in order, committing once; each one's result or error."""


class SnapshotReads(Protocol):
    """A state machine that can be read on another thread than the one applying commands."""

    def reading(self) -> AbstractContextManager[None] | None:
        """A context in which queries on the calling thread read one snapshot of the last commit,
        while commands go on applying elsewhere (None: not now, or not this machine)."""


class Scan(Generic[T]):
    """A query that may read without bound (a whole table, every object of a kind): a log runs it
    where it applies commands, never on the event loop, even when the machine offers reading()."""

    __slots__ = ("query",)

    def __init__(self, query: Callable[[], T]) -> None:
        self.query = query

    def __call__(self) -> T:
        """Run the query."""
        return self.query()


MAX_BATCH = 256  # commands applied (and made durable) together at most


class LocalLog:
    """The log of a single member: commands are applied in order, on one thread.

    One worker thread applies the commands, so the event loop never blocks on disk I/O. Commands
    proposed while others are being applied wait and are then applied together: a state machine
    with `apply_batch` commits (and fsyncs) them in one transaction (group commit), so a burst of
    writes costs one disk flush, not one each. Reads run on the worker too, after the commands
    before them, unless the machine offers `reading()` (SnapshotReads): then they run at once on
    the event loop, from the last commit, neither waiting behind the commands being applied nor
    paying a hop to another thread (a Scan still runs on the worker: it would hold up the loop).
    Either way a read sees every command whose result was returned before the read began, so
    reads are linearizable.
    """

    def __init__(self, machine: StateMachine, peer_address: str = "", client_urls: Mapping[str, str] | None = None):
        self.machine = machine
        self.peer_address = peer_address
        self.client_urls = dict(client_urls or {})
        self.member_id = member_id(peer_address)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-machine")
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._in_flight: asyncio.Future[list[Any]] | None = None  # the batch the worker is applying
        self._applied = machine.applied_index()  # kept here: status() is on every reply's path

    async def propose(self, command: Any) -> Any:
        """Apply command as the next entry (with whatever else is waiting)."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((command, future))
        if self._in_flight is None:
            self._next_batch()
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    def _next_batch(self) -> None:
        """Hand the waiting commands to the worker (now, so that a later read runs after them)."""
        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        commands = [command for command, _ in batch]
        self._in_flight = asyncio.get_running_loop().run_in_executor(self._worker, self._apply, commands)
        self._in_flight.add_done_callback(lambda done: self._settle(batch, done))

    def _settle(self, batch: list[tuple[Any, asyncio.Future[Any]]], done: asyncio.Future[list[Any]]) -> None:
        if done.cancelled():
            results: list[Any] = [Unavailable("the log stopped")] * len(batch)
        elif done.exception() is not None:  # the machine itself failed: every waiter learns it
            results = [done.exception()] * len(batch)
        else:
            results = done.result()
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)
        self._in_flight = None
        if self._queue:
            self._next_batch()

    def _apply(self, commands: list[Any]) -> list[Any]:
        """On the worker thread: the commands as the next entries, together when the machine can."""
        entries = list(enumerate(commands, self.machine.applied_index() + 1))
        apply_batch: Callable[[list[tuple[int, Any]]], list[Any]] | None = getattr(self.machine, "apply_batch", None)
        if apply_batch is not None:
            results = apply_batch(entries)
        else:
            results = [self.machine.apply(index, command) for index, command in entries]
        self._applied = entries[-1][0]
        return results

    async def read(self, query: Callable[[], T], *, linearizable: bool = False) -> T:
        """Run query after every command acknowledged before it (linearizable either way): on the
        loop from the last commit if the machine offers a snapshot and query is no Scan, else on
        the applying thread."""
        reading: Callable[[], AbstractContextManager[None] | None] | None = getattr(self.machine, "reading", None)
        view = reading() if reading is not None and not isinstance(query, Scan) else None
        if view is None:
            return await self._run(query)
        with view:
            return query()

    def status(self) -> LogStatus:
        """A single member always leads, in term 1."""
        return LogStatus(self.member_id, self.member_id, "LEADER", 1, self._applied)

    def members(self) -> list[Member]:
        """This member, alone."""
        return [Member(self.member_id, self.peer_address, self.client_urls, True, True)]

    async def add_member(self, address: str) -> Member:
        """A single member has no peers to add: it must be started as a cluster."""
        raise FailedPrecondition(_ALONE)

    async def remove_member(self, id: int) -> Member:
        """A single member cannot remove itself."""
        raise FailedPrecondition(_ALONE)

    async def close(self) -> None:
        """Wait for the commands in flight, then stop the worker."""
        while self._in_flight is not None:
            await asyncio.wait([self._in_flight])
            await asyncio.sleep(0)  # let its callback settle the waiters and start what is queued
        await asyncio.get_running_loop().run_in_executor(None, self._worker.shutdown)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn)
