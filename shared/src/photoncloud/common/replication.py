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
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from photoncloud.common.errors import FailedPrecondition

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


class LocalLog:
    """The log of a single member: commands are applied at once, in order, on one thread.

    One worker thread owns the state machine, so commands and reads never interleave and the
    event loop never blocks on disk I/O.
    """

    def __init__(self, machine: StateMachine, peer_address: str = "", client_urls: Mapping[str, str] | None = None):
        self.machine = machine
        self.peer_address = peer_address
        self.client_urls = dict(client_urls or {})
        self.member_id = member_id(peer_address)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-machine")

    async def propose(self, command: Any) -> Any:
        """Apply command as the next entry."""
        result = await self._run(lambda: self.machine.apply(self.machine.applied_index() + 1, command))
        if isinstance(result, Exception):
            raise result
        return result

    async def read(self, query: Callable[[], T], *, linearizable: bool = False) -> T:
        """Run query on the state machine's thread (after every write: linearizable either way)."""
        return await self._run(query)

    def status(self) -> LogStatus:
        """A single member always leads, in term 1."""
        return LogStatus(self.member_id, self.member_id, "LEADER", 1, self.machine.applied_index())

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
        await asyncio.get_running_loop().run_in_executor(None, self._worker.shutdown)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn)
