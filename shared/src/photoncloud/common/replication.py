"""The boundary between a service's core and its log of commands (single member today; Raft later).

A core never changes its state directly: it proposes a command and awaits the result of applying
it to its state machine. On one member the log applies commands at once, in order; a replicated
log applies them on every member once a majority has stored them. The core is the same for both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class StateMachine(Protocol):
    """Deterministic state: the same commands in the same order give the same state everywhere."""

    def applied_index(self) -> int:
        """The index of the last command applied (kept durably with the state)."""

    def apply(self, index: int, command: Any) -> Any:
        """Apply command as log entry index; return its result (or the ServiceError it raised)."""


@dataclass(frozen=True)
class LogStatus:
    """Where this member stands in the log."""

    member_id: int
    leader: int
    role: str
    term: int
    index: int


class Log(Protocol):
    """What a core needs from its log."""

    async def propose(self, command: Any) -> Any:
        """Apply command through the log and return its result (raising the error it gave)."""

    async def read(self, query: Callable[[], T]) -> T:
        """Run query against the state machine, after every command applied so far."""

    def status(self) -> LogStatus:
        """This member's view of the log."""

    async def close(self) -> None:
        """Stop applying commands."""


class LocalLog:
    """The log of a single member: commands are applied at once, in order, on one thread.

    One worker thread owns the state machine, so commands and reads never interleave and the
    event loop never blocks on disk I/O.
    """

    def __init__(self, machine: StateMachine, member_id: int = 1):
        self.machine = machine
        self.member_id = member_id
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-machine")

    async def propose(self, command: Any) -> Any:
        """Apply command as the next entry."""
        result = await self._run(lambda: self.machine.apply(self.machine.applied_index() + 1, command))
        if isinstance(result, Exception):
            raise result
        return result

    async def read(self, query: Callable[[], T]) -> T:
        """Run query on the state machine's thread."""
        return await self._run(query)

    def status(self) -> LogStatus:
        """A single member always leads, in term 1."""
        return LogStatus(self.member_id, self.member_id, "LEADER", 1, self.machine.applied_index())

    async def close(self) -> None:
        """Wait for the commands in flight, then stop the worker."""
        await asyncio.get_running_loop().run_in_executor(None, self._worker.shutdown)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn)
