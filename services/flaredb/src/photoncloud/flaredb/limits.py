"""What one request may cost FlareDB: its statements' time, the size of the values it writes and
of the result it gets back; the guards that enforce it on a SQLite connection; and the errors.

Writes are applied on every member, so their limit must give the same outcome everywhere: it is a
budget of SQLite virtual-machine steps (counted by a progress handler), which depends only on the
statement and the data, never on the machine's speed. The limits a write runs under travel with it
in the log (`StatementLimits`), so members started with different flags still agree. Reads run on
one member only and are cut off by the clock.

A step is not a fixed amount of time: a simple recursive query runs about 50 to 75 million steps a
second, while a step that calls a string function on a value near the length limit (replace(),
hex() of a 250 KB BLOB) can take a millisecond. The budget bounds ordinary runaway statements to a
fraction of a second; a statement built of such expensive steps can hold the state machine longer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from photoncloud.common.errors import DeadlineExceeded, ResourceExhausted, ServiceError

T = TypeVar("T")
MIB = 1024 * 1024
# SQLite's length limit is the value limit plus room for a row's other columns (a KV key is at most
# 4 KiB): a value at the limit still fits in a row beside them.
ROW_SLACK = 64 * 1024
# The progress handler runs every this many VM steps: often enough to stop within a fraction of a
# millisecond, rarely enough to cost nothing measurable.
STEP_GRANULARITY = 10_000
UNLIMITED_LENGTH = 1_000_000_000  # SQLite's default length limit: for log entries written before limits


@dataclass(frozen=True)
class StatementLimits:
    """The limits a command applied from the log runs under (the same on every member)."""

    steps: int  # SQLite VM steps for all of the request's statements together
    length: int  # SQLite's SQLITE_LIMIT_LENGTH: the largest string, BLOB or row
    rows: int  # rows of all results together
    result_bytes: int  # bytes of all results together


@dataclass(frozen=True)
class Limits:
    """FlareDB's limits per request, from its flags."""

    max_value_bytes: int = MIB
    max_result_rows: int = 10_000
    max_result_bytes: int = 8 * MIB
    statement_budget_steps: int = 20_000_000
    read_timeout_ms: int = 1000
    read_threads: int = 8

    @property
    def length(self) -> int:
        """SQLite's length limit on every connection."""
        return self.max_value_bytes + ROW_SLACK

    def for_writes(self) -> StatementLimits:
        """The limits a write is proposed with."""
        return StatementLimits(self.statement_budget_steps, self.length, self.max_result_rows, self.max_result_bytes)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Limits:
        """The limits the flags set (defaults for the ones missing)."""
        names = cls.__dataclass_fields__
        return cls(**{name: int(options[name]) for name in names if options.get(name) is not None})


def add_limit_options(group: Any, default: Callable[[str, object], object]) -> None:
    """The flags of FlareDB's limits (`--flag`, else `FLAREDB_FLAG`, else the default)."""
    d = Limits()
    group.add_argument("--max-value-bytes", type=int, default=default("max_value_bytes", d.max_value_bytes),
                       help="the largest KV value or SQL parameter; SQLite refuses strings, BLOBs and rows "
                            f"longer than this plus {ROW_SLACK // 1024} KiB")
    group.add_argument("--max-result-rows", type=int, default=default("max_result_rows", d.max_result_rows),
                       help="rows a request's results may hold in all")
    group.add_argument("--max-result-bytes", type=int, default=default("max_result_bytes", d.max_result_bytes),
                       help="bytes a request's results may hold in all (values as stored)")
    group.add_argument("--statement-budget-steps", type=int,
                       default=default("statement_budget_steps", d.statement_budget_steps),
                       help="SQLite VM steps a write request may take (the same on every member); keep it well "
                            "under the election timeout's worth of work")
    group.add_argument("--read-timeout-ms", type=int, default=default("read_timeout_ms", d.read_timeout_ms),
                       help="how long a read request's statements may run")
    group.add_argument("--read-threads", type=int, default=default("read_threads", d.read_threads),
                       help="threads serving reads (a project uses at most half of them at once)")


def check_limits(limits: Limits) -> Limits:
    """limits if every one is positive, else SystemExit naming the flag."""
    for name, value in vars(limits).items():
        if value < 1:
            raise SystemExit(f"flaredb: --{name.replace('_', '-')} must be at least 1")
    return limits


# -- the guards ---------------------------------------------------------------------------------------


class StepBudget:
    """A progress handler that stops the statement once the request has taken `limit` VM steps."""

    def __init__(self, limit: int):
        self.limit = limit
        self.calls = 0
        self.exhausted = False

    def __call__(self) -> int:
        self.calls += 1
        if self.calls * STEP_GRANULARITY > self.limit:
            self.exhausted = True
            return 1
        return 0

    def error(self, statement_index: int) -> ServiceError:
        """The statement's result once the budget ran out."""
        return ResourceExhausted(
            f"statement {statement_index}: the request ran out of its budget of {self.limit} SQLite steps; "
            "make it do less work (an index, a smaller batch, a bounded recursive query)",
            {"reason": "STATEMENT_BUDGET", "limit": self.limit, "statement_index": statement_index})


class Deadline:
    """A progress handler that stops the statement once `limit_ms` milliseconds have passed."""

    def __init__(self, limit_ms: int):
        self.limit_ms = limit_ms
        self.at = time.monotonic() + limit_ms / 1000
        self.expired = False

    def __call__(self) -> int:
        if time.monotonic() > self.at:
            self.expired = True
            return 1
        return 0

    def error(self, statement_index: int) -> ServiceError:
        """The read's result once its time ran out."""
        return DeadlineExceeded(
            f"statement {statement_index}: the read ran longer than {self.limit_ms} ms",
            {"reason": "READ_TIMEOUT", "limit": self.limit_ms, "unit": "ms", "statement_index": statement_index})


Guard = StepBudget | Deadline  # what a connection runs its statements under


def install(conn: sqlite3.Connection, guard: Guard | None, length: int) -> None:
    """Put the guard (None: none) and the length limit on the connection."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, length)
    conn.set_progress_handler(guard, STEP_GRANULARITY if guard is not None else 0)


def too_big(statement_index: int, limit: int) -> ServiceError:
    """A string, BLOB or row SQLite refused to build: longer than its length limit."""
    return ResourceExhausted(f"statement {statement_index}: a string, BLOB or row would be longer than {limit} bytes",
                             {"reason": "VALUE_TOO_LARGE", "limit": limit, "statement_index": statement_index})


def value_too_large(where: str, limit: int) -> ServiceError:
    """A value sent by the client is over the limit."""
    return ResourceExhausted(f"{where}: a value has at most {limit} bytes",
                             {"reason": "VALUE_TOO_LARGE", "limit": limit, "field": where})


# -- results ------------------------------------------------------------------------------------------


class ResultMeter:
    """Counts a request's result rows and bytes, refusing the request past either limit."""

    def __init__(self, max_rows: int, max_bytes: int):
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.rows = 0
        self.bytes = 0

    def add(self, row: tuple[Any, ...], statement_index: int) -> None:
        """Count one row (values as stored: numbers 8 bytes, text as UTF-8)."""
        self.rows += 1
        if self.rows > self.max_rows:
            raise ResourceExhausted(
                f"statement {statement_index}: the results hold more than {self.max_rows} rows; page through "
                "them (LIMIT, or WHERE on the last key seen)",
                {"reason": "RESULT_ROWS", "limit": self.max_rows, "statement_index": statement_index})
        size = 0
        for value in row:
            if isinstance(value, bytes):
                size += len(value)
            elif isinstance(value, str):
                size += len(value) if value.isascii() else len(value.encode())
            else:
                size += 8
        self.bytes += size
        if self.bytes > self.max_bytes:
            raise ResourceExhausted(
                f"statement {statement_index}: the results hold more than {self.max_bytes} bytes; select fewer "
                "rows or columns", {"reason": "RESULT_BYTES", "limit": self.max_bytes,
                                    "statement_index": statement_index})


# -- projects whose writes run out of their budget -------------------------------------------------


HEAVY_SECONDS = 10.0  # how long a project stays throttled after its last write ran out of budget


class HeavyWriters:
    """Projects whose writes recently ran out of their budget get one write in flight at a time on
    this member: their next endless writes wait here, not in the log in front of everyone's writes.
    A project whose writes stay within budget is never held back (its writes batch as before)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._gates: dict[str, tuple[float, asyncio.Semaphore]] = {}  # project -> (last exhausted, gate)

    async def write(self, project_id: str, propose: Callable[[], Awaitable[T]]) -> T:
        """await propose(), behind the project's gate if it is throttled."""
        found = self._gates.get(project_id)
        if found is not None and self.clock() - found[0] > HEAVY_SECONDS and not found[1].locked():
            del self._gates[project_id]  # it behaved for long enough
            found = None
        try:
            if found is None:
                return await propose()
            async with found[1]:
                return await propose()
        except ResourceExhausted as exc:
            if (exc.details or {}).get("reason") == "STATEMENT_BUDGET":
                gate = self._gates.get(project_id, (0.0, asyncio.Semaphore(1)))[1]
                self._gates[project_id] = (self.clock(), gate)
            raise
