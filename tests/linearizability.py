"""A linearizability checker: Wing & Gong's search with Lowe's memoization, as Knossos and porcupine do.

A history is a list of `Operation`s from concurrent clients. It is linearizable if every completed
operation can be put at one instant between its call and its return, in an order the sequential
model accepts with the outputs observed. An operation whose outcome is unknown (a write that timed
out) may take effect at any instant after its call, or never. The history is checked one key at a
time (P-compositionality: a history of independent objects is linearizable iff each object's is).
"""

from __future__ import annotations

import enum
import math
import time
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Operation:
    """One call by one client: on key, called and returned at these times (ret None: outcome unknown)."""

    process: Any
    key: str
    op: str
    input: Any
    call: float
    ret: float | None
    output: Any = None

    def __str__(self) -> str:
        returned = f"{self.ret:.4f}" if self.ret is not None else "?"
        result = f" -> {self.output!r}" if self.ret is not None else " -> unknown"
        return f"[{self.call:.4f}, {returned}] p{self.process} {self.op}({self.input!r}){result}"


class Model(Protocol):
    """A sequential object: its first state, and what an operation returns and leaves behind."""

    def init(self) -> Hashable:
        """The state before any operation."""

    def step(self, state: Hashable, op: str, input: Any) -> tuple[Any, Hashable]:
        """(output, next state) of op applied to state."""


class Register:
    """A register: put(v) -> None; get() -> v (None: never written); cas((old, new)) -> swapped."""

    def init(self) -> Hashable:
        """Unwritten."""
        return None

    def step(self, state: Hashable, op: str, input: Any) -> tuple[Any, Hashable]:
        """put sets, get reads, cas sets new if the value is old."""
        if op == "put":
            return None, input
        if op == "get":
            return state, state
        if op == "cas":
            old, new = input
            return (True, new) if state == old else (False, state)
        raise ValueError(f"a register has no operation {op!r}")


class VersionedRegister:
    """A register with a version (0: absent, +1 a write), compared-and-swapped by version:
    get() -> (value, version); cas((expected_version, new)) -> (swapped, version, value) afterwards."""

    def init(self) -> Hashable:
        """Absent."""
        return (None, 0)

    def step(self, state: Hashable, op: str, input: Any) -> tuple[Any, Hashable]:
        """get reads; cas writes new as the next version if the version is the expected one."""
        assert isinstance(state, tuple)
        value, version = state
        if op == "get":
            return state, state
        if op == "cas":
            expected, new = input
            if version == expected:
                return (True, version + 1, new), (new, version + 1)
            return (False, version, value), state
        raise ValueError(f"a versioned register has no operation {op!r}")


class Verdict(enum.Enum):
    """What a check found."""

    OK = "linearizable"
    VIOLATION = "not linearizable"
    UNKNOWN = "unknown: the search ran out of its budget"


@dataclass
class Result:
    """A check's verdict; for a violation, the smallest key's history that has none and the longest
    prefix of it that could be linearized."""

    verdict: Verdict
    key: str | None = None
    history: list[Operation] = field(default_factory=list)
    linearized: list[Operation] = field(default_factory=list)
    steps: int = 0

    @property
    def ok(self) -> bool:
        """Whether the history is linearizable (UNKNOWN is not)."""
        return self.verdict is Verdict.OK

    def explain(self) -> str:
        """The verdict with the key's history, one operation a line, for a failing test's message."""
        if self.ok:
            return f"{self.verdict.value} ({self.steps} search steps)"
        lines = [f"{self.verdict.value}: key {self.key!r}, {len(self.history)} operations"]
        lines += ["  " + str(op) for op in sorted(self.history, key=lambda op: op.call)]
        if self.linearized:
            lines.append("the longest linearizable prefix found ends with:")
            lines += ["  " + str(op) for op in self.linearized[-10:]]
        return "\n".join(lines)


class _Entry:
    """A call or return event in the doubly linked list the search walks."""

    __slots__ = ("index", "is_call", "match", "prev", "next")

    def __init__(self, index: int, is_call: bool):
        self.index, self.is_call = index, is_call
        self.match: _Entry | None = None  # a call's return
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _events(ops: list[Operation]) -> _Entry:
    """The list head: calls and returns by time (a call before a return at the same instant: the two
    overlap), unknown returns last."""
    events: list[tuple[float, int, _Entry]] = []
    for i, op in enumerate(ops):
        call, ret = _Entry(i, True), _Entry(i, False)
        call.match = ret
        events.append((op.call, 0, call))
        events.append((op.ret if op.ret is not None else math.inf, 1, ret))
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Entry(-1, False)
    last = head
    for _, _, entry in events:
        last.next, entry.prev = entry, last
        last = entry
    return head


def _lift(entry: _Entry) -> None:
    """Take a call and its return out of the list."""
    for e in (entry, entry.match):
        assert e is not None and e.prev is not None
        e.prev.next = e.next
        if e.next is not None:
            e.next.prev = e.prev


def _unlift(entry: _Entry) -> None:
    """Put them back (in the reverse order of _lift)."""
    for e in (entry.match, entry):
        assert e is not None and e.prev is not None
        e.prev.next = e
        if e.next is not None:
            e.next.prev = e


def check_one(model: Model, ops: list[Operation], budget: float = 30.0, max_steps: int = 5_000_000) -> Result:
    """Whether one object's history is linearizable, searching for at most budget seconds and max_steps."""
    head = _events(ops)
    required = sum(1 << i for i, op in enumerate(ops) if op.ret is not None)
    state = model.init()
    linearized = 0
    # Lowe's cache, with the operations of unknown outcome apart: reaching a state with the same
    # completed operations done and a superset of the unknown ones is no better than what was
    # reached before (an unknown operation may always be left out), so it is not searched again.
    cache: dict[tuple[int, Hashable], list[int]] = {(0, state): [0]}
    stack: list[tuple[_Entry, Hashable]] = []
    best: list[int] = []
    deadline = time.monotonic() + budget
    steps = 0
    entry = head.next
    while linearized & required != required:
        steps += 1
        if steps > max_steps or (steps & 0xFFF == 0 and time.monotonic() > deadline):
            return Result(Verdict.UNKNOWN, history=ops, steps=steps)
        assert entry is not None  # a return ends the list, and returns are handled before we get past it
        op = ops[entry.index]
        if entry.is_call:
            output, after = model.step(state, op.op, op.input)
            if op.ret is None or output == op.output:
                done = linearized | 1 << entry.index
                unknown = done & ~required
                seen = cache.setdefault((done & required, after), [])
                if not any(earlier & ~unknown == 0 for earlier in seen):
                    seen.append(unknown)
                    stack.append((entry, state))
                    state, linearized = after, done
                    _lift(entry)
                    if len(stack) > len(best):
                        best = [e.index for e, _ in stack]
                    entry = head.next
                    continue
            entry = entry.next
        else:  # the first pending operation returned before anything left could take effect: backtrack
            if not stack:
                return Result(Verdict.VIOLATION, history=ops, linearized=[ops[i] for i in best], steps=steps)
            entry, state = stack.pop()
            linearized &= ~(1 << entry.index)
            _unlift(entry)
            entry = entry.next
    return Result(Verdict.OK, steps=steps)


def check(model: Model, history: Iterable[Operation], budget: float = 60.0) -> Result:
    """Whether a history is linearizable, key by key; a failure names the smallest failing key's history.

    budget: seconds for the whole search (each key gets what the keys before it left)."""
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for op in history:
        by_key[op.key].append(op)
    deadline = time.monotonic() + budget
    failures, steps = [], 0
    for key in sorted(by_key, key=lambda k: len(by_key[k])):
        result = check_one(model, by_key[key], max(0.0, deadline - time.monotonic()))
        result.key = key
        steps += result.steps
        if not result.ok:
            failures.append(result)
    if not failures:
        return Result(Verdict.OK, steps=steps)
    # A violation is more telling than a search that ran out; the smallest history is the easiest to read.
    failures.sort(key=lambda r: (r.verdict is not Verdict.VIOLATION, len(r.history)))
    return failures[0]
