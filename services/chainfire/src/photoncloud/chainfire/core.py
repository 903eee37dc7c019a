"""ChainFire's domain: etcd v3's MVCC key-value model, as commands applied to a state machine.

Every write is a command (Put, DeleteRange, Txn, Compact, and the lease commands) that the core
proposes to its log; the log applies it to KVStateMachine, the only code that changes the store.
Reads run against the state machine after the writes before them. Rules for keys, ranges,
revisions, comparisons, watches, leases and compaction live here.

The state machine never reads a clock: a lease's deadline is computed by the proposer, which puts
`now` in the Grant and KeepAlive commands, and leases expire through an ExpireLeases(now) command
that the core proposes periodically, so every replica expires the same leases at the same revision.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, Union

from photoncloud.common import paging
from photoncloud.common.errors import (AlreadyExists, InvalidArgument, NotFound, OutOfRange, Unavailable)
from photoncloud.common.replication import Log, LogStatus, Member
from photoncloud.common.sqlite import apply_in_one_transaction

MAX_KEY_BYTES = 8 * 1024
MAX_VALUE_BYTES = 1024 * 1024
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops

ALL_KEYS = b"\0"  # as range_end: every key from `key` on (and as key too: from the first key)
MAX_LEASE_TTL = 9_000_000_000  # etcd's MaxLeaseTTL, in seconds
LEASE_CHECK_SECONDS = 0.5  # how often the core looks for expired leases
WATCH_QUEUE_LIMIT = 100_000  # live events a watcher may fall behind by before it is cancelled

log = logging.getLogger("photoncloud.chainfire")


@dataclass(frozen=True)
class KeyValue:
    """A key as of some revision."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@dataclass(frozen=True)
class RangeRequest:
    """Read one key, a prefix, or [key, range_end)."""

    key: bytes
    range_end: bytes = b""
    prefix: bool = False
    limit: int = 0
    revision: int = 0
    keys_only: bool = False
    count_only: bool = False
    serializable: bool = False
    page_token: str = ""


@dataclass(frozen=True)
class PutRequest:
    """Write key = value."""

    key: bytes
    value: bytes
    prev_kv: bool = False
    lease: int = 0  # attach the key to this lease (0: none)


@dataclass(frozen=True)
class DeleteRangeRequest:
    """Delete one key, a prefix, or [key, range_end)."""

    key: bytes
    range_end: bytes = b""
    prefix: bool = False
    prev_kv: bool = False


class CompareTarget(enum.Enum):
    """What a comparison looks at."""

    VERSION = "VERSION"
    CREATE = "CREATE"
    MOD = "MOD"
    VALUE = "VALUE"


class CompareResult(enum.Enum):
    """How a comparison relates the key's target to the operand."""

    EQUAL = "EQUAL"
    GREATER = "GREATER"
    LESS = "LESS"
    NOT_EQUAL = "NOT_EQUAL"


@dataclass(frozen=True)
class Compare:
    """A condition of a transaction: key's target <result> operand (an absent key has 0 / b"")."""

    key: bytes
    target: CompareTarget
    result: CompareResult
    operand: int | bytes | None  # None: the request gave no operand for the target


# The request field that carries the operand of each target.
OPERAND_FIELD = {
    CompareTarget.VERSION: "version",
    CompareTarget.CREATE: "create_revision",
    CompareTarget.MOD: "mod_revision",
    CompareTarget.VALUE: "value",
}


Op = Union[RangeRequest, PutRequest, DeleteRangeRequest]


@dataclass(frozen=True)
class TxnRequest:
    """If every comparison holds, run success; otherwise run failure. Atomically."""

    compare: tuple[Compare, ...] = ()
    success: tuple[Op, ...] = ()
    failure: tuple[Op, ...] = ()


@dataclass(frozen=True)
class RangeResult:
    """Keys read at a revision."""

    revision: int
    kvs: list[KeyValue]
    count: int
    more: bool
    next_page_token: str = ""


@dataclass(frozen=True)
class PutResult:
    """The revision a put created, and the previous pair if asked for."""

    revision: int
    prev_kv: KeyValue | None = None


@dataclass(frozen=True)
class DeleteResult:
    """How many keys a delete removed, and which if asked for."""

    revision: int
    deleted: int
    prev_kvs: list[KeyValue] = field(default_factory=list)


OpResult = Union[RangeResult, PutResult, DeleteResult]


@dataclass(frozen=True)
class TxnResult:
    """Which branch ran and the result of each of its operations."""

    revision: int
    succeeded: bool
    responses: list[OpResult]


@dataclass(frozen=True)
class Status:
    """This member, its log and its store."""

    member_id: int
    leader: int
    role: str
    raft_term: int
    raft_index: int
    revision: int
    version: str
    db_size_bytes: int

@dataclass(frozen=True)
class CompactRequest:
    """Forget the history before revision (reads and watches below it become OUT_OF_RANGE)."""

    revision: int


@dataclass(frozen=True)
class CompactResult:
    """The store's revision and its new compact revision."""

    revision: int
    compact_revision: int


class EventType(enum.Enum):
    """What happened to a key."""

    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True)
class Event:
    """One change of one key: at (kv.mod_revision, sub); a DELETE's kv holds the key and revision."""

    type: EventType
    kv: KeyValue
    sub: int
    prev_kv: KeyValue | None = None

    @property
    def position(self) -> tuple[int, int]:
        """Where the change sits in the store's history: (revision, sub-revision)."""
        return self.kv.mod_revision, self.sub


@dataclass(frozen=True)
class WatchRequest:
    """Watch one key, a prefix or [key, range_end) from start_revision (0: from the next change)."""

    key: bytes
    range_end: bytes = b""
    prefix: bool = False
    start_revision: int = 0
    prev_kv: bool = False


@dataclass(frozen=True)
class WatchBatch:
    """Events in revision order, and the store's revision when they were sent."""

    revision: int
    events: list[Event]


# Leases belong to a keyspace, the raw key prefix of the caller that granted them (b"": the whole
# store's, the operator's). A caller reaches a lease only when its own keyspace contains the lease's,
# and a key is attached to a lease only when the key lies inside the lease's keyspace, so revoking
# a lease never deletes a key outside the keyspace of whoever may revoke it.


@dataclass(frozen=True)
class LeaseGrant:
    """Grant a lease of ttl seconds (id 0: the store picks one) in a keyspace; now is the proposer's clock."""

    ttl: int
    id: int = 0
    now: float = 0.0
    keyspace: bytes = b""


@dataclass(frozen=True)
class LeaseRevoke:
    """Revoke a lease of the keyspace, deleting its keys."""

    id: int
    keyspace: bytes = b""


@dataclass(frozen=True)
class LeaseKeepAlive:
    """Restart the ttl of a lease of the keyspace at the proposer's clock, now."""

    id: int
    now: float = 0.0
    keyspace: bytes = b""


@dataclass(frozen=True)
class ExpireLeases:
    """Delete every lease whose deadline is at or before now, and their keys, at one revision."""

    now: float


@dataclass(frozen=True)
class Lease:
    """A lease: its ttl, the wall-clock time (seconds since the epoch) it expires at, its keyspace."""

    id: int
    ttl: int
    deadline: float
    keyspace: bytes = b""

    def within(self, keyspace: bytes) -> bool:
        """Whether a caller of keyspace reaches this lease."""
        return self.keyspace.startswith(keyspace)


@dataclass(frozen=True)
class LeaseResult:
    """A lease granted or kept alive (ttl: its granted ttl), or revoked (ttl 0)."""

    revision: int
    id: int
    ttl: int


@dataclass(frozen=True)
class LeaseTimeToLive:
    """A lease's remaining ttl, its granted ttl, and the keys attached to it (when asked for)."""

    revision: int
    id: int
    ttl: int
    granted_ttl: int
    keys: list[bytes]


@dataclass(frozen=True)
class LeaseList:
    """A page of lease ids."""

    revision: int
    ids: list[int]
    next_page_token: str = ""


Command = Union[PutRequest, DeleteRangeRequest, TxnRequest, CompactRequest, LeaseGrant, LeaseRevoke,
                LeaseKeepAlive, ExpireLeases]


class KVStore(Protocol):
    """The MVCC persistence the state machine writes through; sorted by key, bytewise."""

    def savepoint(self) -> AbstractContextManager[None]:
        """Inside a transaction: undo everything inside if it raises, keep it otherwise."""

    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside commit durably together or not at all."""

    def revision(self) -> int:
        """The latest revision."""

    def compact_revision(self) -> int:
        """The oldest revision still readable."""

    def applied_index(self) -> int:
        """The log index of the last applied command."""

    def set_revision(self, revision: int) -> None:
        """Record the revision the last command left."""

    def set_meta(self, name: str, value: int) -> None:
        """Keep a number (such as the applied index) with the state."""

    def get(self, key: bytes) -> KeyValue | None:
        """The key's latest pair, or None if it does not exist."""

    def range(self, start: bytes, end: bytes | None, revision: int, limit: int) -> list[KeyValue]:
        """Pairs with start <= key < end (no end: to the last key) as of revision; limit 0: all."""

    def count(self, start: bytes, end: bytes | None, revision: int) -> int:
        """How many keys range() would return without a limit."""

    def put(self, revision: int, sub: int, kv: KeyValue) -> None:
        """Record kv as changed at (revision, sub)."""

    def delete(self, revision: int, sub: int, key: bytes) -> None:
        """Record key as deleted at (revision, sub)."""

    def history(self, start: bytes, end: bytes | None, from_revision: int, limit: int) -> list[tuple[KeyValue, int]]:
        """Changes in [start, end) at from_revision or later, as (pair, sub), by (revision, sub),
        at most limit of them; a deletion is a pair with an empty value and version 0."""

    def previous(self, key: bytes, revision: int) -> KeyValue | None:
        """The key's pair just before revision (None: it did not exist, or history is compacted)."""

    def compact(self, revision: int) -> None:
        """Drop the history rows reads at revision or later do not need; record the compact revision."""

    def lease(self, id: int) -> Lease | None:
        """One lease."""

    def leases(self, after: int, limit: int, keyspace: bytes = b"") -> list[Lease]:
        """Leases with id > after whose keyspace starts with keyspace, by id; limit 0: all."""

    def expired_leases(self, now: float) -> list[Lease]:
        """Leases whose deadline is at or before now."""

    def next_deadline(self) -> float | None:
        """The earliest lease deadline (None: no leases)."""

    def save_lease(self, lease: Lease) -> None:
        """Insert or replace a lease."""

    def drop_lease(self, id: int) -> None:
        """Delete a lease."""

    def lease_keys(self, id: int) -> list[bytes]:
        """The live keys attached to a lease, by key."""

    def next_lease_id(self) -> int:
        """An unused lease id, the same on every replica."""

    def snapshot(self, path: str) -> None:
        """Copy the whole store (as of the last commit) to a new file at path."""

    def restore(self, path: str) -> None:
        """Replace the whole store with the copy at path."""

    def size_bytes(self) -> int:
        """The size of the store on disk."""


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with prefix (ALL_KEYS if there is none)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return ALL_KEYS
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def key_span(key: bytes, range_end: bytes, prefix: bool) -> tuple[bytes, bytes | None]:
    """The [start, end) a request names; end None means "to the last key"."""
    if prefix:
        if range_end:
            raise InvalidArgument("give either prefix or range_end, not both", {"field": "range_end"})
        range_end = prefix_end(key) if key else ALL_KEYS
        key = key or ALL_KEYS
    _check_key(key)
    if not range_end:
        return key, key + b"\0"  # exactly key: nothing sorts between key and key + NUL
    start = b"" if key == ALL_KEYS and range_end == ALL_KEYS else key
    return start, None if range_end == ALL_KEYS else range_end


def _check_key(key: bytes) -> None:
    if not key:
        raise InvalidArgument("key is required", {"field": "key"})
    if len(key) > MAX_KEY_BYTES:
        raise InvalidArgument(f"key is longer than {MAX_KEY_BYTES} bytes", {"field": "key"})


def _check_write(op: Op) -> None:
    if isinstance(op, PutRequest):
        _check_key(op.key)
        if len(op.value) > MAX_VALUE_BYTES:
            raise InvalidArgument(f"value is longer than {MAX_VALUE_BYTES} bytes", {"field": "value"})
        if op.lease < 0:
            raise InvalidArgument("lease must not be negative", {"field": "lease"})
    elif isinstance(op, DeleteRangeRequest):
        key_span(op.key, op.range_end, op.prefix)
    else:
        _check_range(op)


def _check_range(request: RangeRequest) -> None:
    key_span(request.key, request.range_end, request.prefix)
    if request.limit < 0:
        raise InvalidArgument("limit must not be negative", {"field": "limit"})
    if request.revision < 0:
        raise InvalidArgument("revision must not be negative", {"field": "revision"})


def _check_txn(txn: TxnRequest) -> None:
    for compare in txn.compare:
        _check_key(compare.key)
        field = OPERAND_FIELD[compare.target]
        wants_bytes = compare.target is CompareTarget.VALUE
        if compare.operand is None or wants_bytes != isinstance(compare.operand, bytes):
            raise InvalidArgument(f"a {compare.target.value} comparison needs `{field}`", {"field": field})
    for name, branch in (("success", txn.success), ("failure", txn.failure)):
        if len(branch) > MAX_TXN_OPS:
            raise InvalidArgument(f"a transaction branch holds at most {MAX_TXN_OPS} operations",
                                  {"field": name})
        for op in branch:
            _check_write(op)
        _check_no_duplicate_writes(name, branch)


def _check_no_duplicate_writes(name: str, branch: tuple[Op, ...]) -> None:
    """etcd's rule: one key is written at most once per transaction (a revision has one change per key)."""
    puts: set[bytes] = set()
    deletes: list[tuple[bytes, bytes | None]] = []
    for op in branch:
        if isinstance(op, PutRequest):
            if op.key in puts:
                raise InvalidArgument("duplicate key given in txn request", {"field": name})
            puts.add(op.key)
        elif isinstance(op, DeleteRangeRequest):
            deletes.append(key_span(op.key, op.range_end, op.prefix))
    for key in puts:
        if any(start <= key and (end is None or key < end) for start, end in deletes):
            raise InvalidArgument("duplicate key given in txn request", {"field": name})


def _span_fingerprint(request: RangeRequest) -> str:
    """Ties a page token to the range it continues."""
    digest = hashlib.sha256(request.key + b"\x00|" + request.range_end + bytes([request.prefix]))
    return digest.hexdigest()[:16]


class KVStateMachine:
    """Applies ChainFire's commands to a KVStore. Deterministic: no clocks, no randomness."""

    def __init__(self, store: KVStore):
        self.store = store
        # Called (on the applying thread) with the events of each command once it has committed,
        # and with None when a snapshot replaced the whole state (watchers must replay history).
        self.listeners: list[Callable[[list[Event] | None], None]] = []

    def applied_index(self) -> int:
        """The index of the last applied log entry."""
        return self.store.applied_index()

    def apply(self, index: int, command: Command) -> object:
        """Apply one command atomically; a rejected command changes nothing but the applied index."""
        return self.apply_batch([(index, command)])[0]

    def apply_batch(self, entries: list[tuple[int, Command]]) -> list[object]:
        """Apply commands in order in one transaction (one fsync), each atomic on its own: a
        rejected one changes nothing but the applied index. Watchers hear of them after the commit."""
        batch_events: list[list[Event]] = []

        def execute(command: Command) -> object:
            events: list[Event] = []
            result = self._execute(command, events)
            self.store.set_revision(result.revision)
            batch_events.append(events)
            return result

        results = apply_in_one_transaction(self.store, entries, execute)
        for events in batch_events:
            if events:
                self._notify(events)
        return results

    def snapshot(self, path: str) -> None:
        """Write the whole state (history, leases, applied index) to path."""
        self.store.snapshot(path)

    def restore(self, path: str) -> None:
        """Replace the whole state with a snapshot; open watches replay what it brought."""
        self.store.restore(path)
        self._notify(None)

    def _notify(self, events: list[Event] | None) -> None:
        for listener in list(self.listeners):
            try:
                listener(events)
            except Exception:  # noqa: BLE001 - a watcher must not fail a write
                log.exception("watch listener failed")

    def _execute(self, command: Command, events: list[Event]) -> object:
        revision = self.store.revision() + 1
        if isinstance(command, TxnRequest):
            return self._txn(command, revision, events)
        if isinstance(command, CompactRequest):
            return self._compact(command)
        if isinstance(command, LeaseGrant):
            return self._grant(command)
        if isinstance(command, LeaseKeepAlive):
            return self._keep_alive(command)
        writes = _Writes(self.store, revision, events)
        if isinstance(command, LeaseRevoke):
            lease = self.store.lease(command.id)
            if lease is None or not lease.within(command.keyspace):
                raise NotFound("lease not found", {"lease": command.id})
            writes.drop_lease(lease)
            return LeaseResult(revision if writes.sub else revision - 1, command.id, 0)
        if isinstance(command, ExpireLeases):
            expired = self.store.expired_leases(command.now)
            for lease in expired:
                writes.drop_lease(lease)
            return LeaseList(revision if writes.sub else revision - 1, [lease.id for lease in expired])
        result = writes.run(command)
        return result if writes.sub else _at(result, revision - 1)

    def _txn(self, txn: TxnRequest, revision: int, events: list[Event]) -> TxnResult:
        succeeded = all(self._holds(compare) for compare in txn.compare)
        writes = _Writes(self.store, revision, events)
        responses = [writes.run(op) for op in (txn.success if succeeded else txn.failure)]
        final = revision if writes.sub else revision - 1
        return TxnResult(final, succeeded, [_at(r, final) for r in responses])

    def _compact(self, request: CompactRequest) -> CompactResult:
        current, compacted = self.store.revision(), self.store.compact_revision()
        if request.revision <= compacted:
            raise OutOfRange("mvcc: required revision has been compacted",
                             {"field": "revision", "compact_revision": compacted})
        if request.revision > current:
            raise OutOfRange("mvcc: required revision is a future revision",
                             {"field": "revision", "revision": request.revision, "current_revision": current})
        self.store.compact(request.revision)
        return CompactResult(current, request.revision)

    def _grant(self, request: LeaseGrant) -> LeaseResult:
        lease_id = request.id or self.store.next_lease_id()
        if self.store.lease(lease_id) is not None:
            raise AlreadyExists("lease already exists", {"lease": lease_id})
        self.store.save_lease(Lease(lease_id, request.ttl, request.now + request.ttl, request.keyspace))
        return LeaseResult(self.store.revision(), lease_id, request.ttl)

    def _keep_alive(self, request: LeaseKeepAlive) -> LeaseResult:
        lease = self.store.lease(request.id)
        # expired: only its ExpireLeases is pending; another keyspace's: as if it did not exist
        if lease is None or lease.deadline <= request.now or not lease.within(request.keyspace):
            raise NotFound("lease not found", {"lease": request.id})
        self.store.save_lease(Lease(lease.id, lease.ttl, request.now + lease.ttl, lease.keyspace))
        return LeaseResult(self.store.revision(), lease.id, lease.ttl)

    def _holds(self, compare: Compare) -> bool:
        kv = self.store.get(compare.key)
        actual: int | bytes = {
            CompareTarget.VERSION: kv.version if kv else 0,
            CompareTarget.CREATE: kv.create_revision if kv else 0,
            CompareTarget.MOD: kv.mod_revision if kv else 0,
            CompareTarget.VALUE: kv.value if kv else b"",
        }[compare.target]
        operand = compare.operand
        return {
            CompareResult.EQUAL: actual == operand,
            CompareResult.NOT_EQUAL: actual != operand,
            CompareResult.GREATER: actual > operand,  # type: ignore[operator]
            CompareResult.LESS: actual < operand,  # type: ignore[operator]
        }[compare.result]

    def _check_not_compacted(self, revision: int, field: str) -> None:
        compacted = self.store.compact_revision()
        if revision < compacted:
            raise OutOfRange("required revision has been compacted",
                             {"field": field, "revision": revision, "compact_revision": compacted})

    def range(self, request: RangeRequest) -> RangeResult:
        """Read a range (a page of it with a limit) at the requested or the latest revision."""
        start, end = key_span(request.key, request.range_end, request.prefix)
        current = self.store.revision()
        revision = request.revision or current
        if request.page_token:
            position = paging.decode_token(request.page_token)
            try:
                if position.get("span") != _span_fingerprint(request) or not isinstance(position.get("rev"), int):
                    raise ValueError
                after = bytes.fromhex(position["after"])
            except (ValueError, TypeError, KeyError):
                raise InvalidArgument("page_token does not belong to this range", {"field": "page_token"}) from None
            # Never before the span's start: a forged token must not reach keys the span leaves out.
            start, revision = max(start, after + b"\0"), position["rev"]
        if revision > current:
            raise OutOfRange("required revision is a future revision",
                             {"field": "revision", "revision": revision, "current_revision": current})
        self._check_not_compacted(revision, "revision")
        count = self.store.count(start, end, revision)
        if request.count_only:
            return RangeResult(current, [], count, False)
        kvs = self.store.range(start, end, revision, request.limit)
        more = count > len(kvs)
        token = ""
        if more and request.limit:
            token = paging.encode_token(
                {"after": kvs[-1].key.hex(), "rev": revision, "span": _span_fingerprint(request)}
            )
        if request.keys_only:
            kvs = [KeyValue(kv.key, b"", kv.create_revision, kv.mod_revision, kv.version, kv.lease) for kv in kvs]
        return RangeResult(current, kvs, count, more, token)

    def replay(self, request: WatchRequest, after: tuple[int, int] | None, limit: int
               ) -> tuple[int, tuple[int, int], list[Event]]:
        """The store's revision, and up to limit events of the watched span after position `after`
        (None: where the request starts); with the position replay starts after."""
        start, end = key_span(request.key, request.range_end, request.prefix)
        current = self.store.revision()
        if after is None:
            after = (request.start_revision, -1) if request.start_revision else (current, _LAST_SUB)
        # The first revision still to send must not be compacted away.
        self._check_not_compacted(after[0] + (after[1] == _LAST_SUB), "start_revision")
        events = self.store.history(start, end, after, limit)
        if request.prev_kv:
            events = [Event(e.type, e.kv, e.sub, self.store.previous(e.kv.key, e.kv.mod_revision))
                      for e in events]
        return current, after, events

    def lease_info(self, lease_id: int, keys: bool, keyspace: bytes = b"") -> tuple[int, Lease, list[bytes]]:
        """The store's revision, a lease of the keyspace, and its keys (if asked for)."""
        lease = self.store.lease(lease_id)
        if lease is None or not lease.within(keyspace):
            raise NotFound("lease not found", {"lease": lease_id})
        return self.store.revision(), lease, self.store.lease_keys(lease_id) if keys else []


_LAST_SUB = 2**62  # a sub-revision after every real one: "after the whole revision"


def _at(result: OpResult, revision: int) -> OpResult:
    """result as reported at revision (the revision a command or transaction ended at)."""
    return type(result)(**{**result.__dict__, "revision": revision})


class _Writes:
    """The operations of one command, all at one new revision, each change with its own sub-revision."""

    def __init__(self, store: KVStore, revision: int, events: list[Event]):
        self.store = store
        self.revision = revision
        self.events = events
        self.sub = 0

    def run(self, op: Op) -> OpResult:
        if isinstance(op, PutRequest):
            return self._put(op)
        if isinstance(op, DeleteRangeRequest):
            return self._delete(op)
        return KVStateMachine(self.store).range(op)

    def _put(self, op: PutRequest) -> PutResult:
        if op.lease:
            lease = self.store.lease(op.lease)
            if lease is None or not op.key.startswith(lease.keyspace):  # see Lease's keyspace rule
                raise NotFound("lease not found", {"lease": op.lease})
        prev = self.store.get(op.key)
        kv = KeyValue(
            key=op.key,
            value=op.value,
            create_revision=prev.create_revision if prev else self.revision,
            mod_revision=self.revision,
            version=prev.version + 1 if prev else 1,
            lease=op.lease,
        )
        self.store.put(self.revision, self.sub, kv)
        self.events.append(Event(EventType.PUT, kv, self.sub, prev))
        self.sub += 1
        return PutResult(self.revision, prev if op.prev_kv else None)

    def _remove(self, kv: KeyValue) -> None:
        self.store.delete(self.revision, self.sub, kv.key)
        self.events.append(Event(EventType.DELETE, KeyValue(kv.key, b"", 0, self.revision, 0), self.sub, kv))
        self.sub += 1

    def _delete(self, op: DeleteRangeRequest) -> DeleteResult:
        start, end = key_span(op.key, op.range_end, op.prefix)
        doomed = self.store.range(start, end, self.store.revision(), 0)
        for kv in doomed:
            self._remove(kv)
        return DeleteResult(self.revision, len(doomed), doomed if op.prev_kv else [])

    def drop_lease(self, lease: Lease) -> None:
        """Delete a lease and the keys attached to it."""
        for key in self.store.lease_keys(lease.id):
            kv = self.store.get(key)
            if kv is not None:
                self._remove(kv)
        self.store.drop_lease(lease.id)


WATCH_REPLAY_CHUNK = 1000  # history events read per step of a watch's replay


class _Watcher:
    """One watch's subscription: the span it filters on and the queue live events go to."""

    def __init__(self, start: bytes, end: bytes | None, prev_kv: bool):
        self.start, self.end, self.prev_kv = start, end, prev_kv
        self.queue: asyncio.Queue[list[Event] | str] = asyncio.Queue()
        self.lagging = False  # events dropped: the watch replays them from history

    def wants(self, event: Event) -> bool:
        key = event.kv.key
        return key >= self.start and (self.end is None or key < self.end)


_LAGGING, _CLOSED = "lagging", "closed"


class Watch:
    """An open watch: iterate it for batches of events (history first, then live changes)."""

    def __init__(self, core: KVCore, request: WatchRequest, watcher: _Watcher,
                 revision: int, after: tuple[int, int], events: list[Event]):
        self._core, self._request, self._watcher = core, request, watcher
        self.revision = revision  # the store's revision when the watch started
        self._after, self._first = after, events

    async def _replay(self, events: list[Event] | None) -> AsyncIterator[WatchBatch]:
        while True:
            if events is None:
                after = self._after
                # read() runs the lambda before this pass ends, so it sees this pass's `after`.
                revision, _, events = await self._core.log.read(
                    lambda: self._core.machine.replay(self._request, after, WATCH_REPLAY_CHUNK))  # noqa: B023
                self.revision = revision
            if events:
                self._after = events[-1].position
                yield WatchBatch(self.revision, events)
            if len(events) < WATCH_REPLAY_CHUNK:
                return
            events = None

    async def __aiter__(self) -> AsyncIterator[WatchBatch]:
        try:
            first, self._first = self._first, []
            async for batch in self._replay(first):
                yield batch
            while True:
                item = await self._watcher.queue.get()
                if item == _CLOSED:
                    return
                if item == _LAGGING:
                    self._watcher.lagging = False  # new events queue again; replay the dropped ones
                    async for batch in self._replay(None):
                        yield batch
                    continue
                events = [e for e in item if e.position > self._after]
                if events:
                    self._after = events[-1].position
                    yield WatchBatch(events[-1].kv.mod_revision, events)
        finally:
            self.close()

    def close(self) -> None:
        """Stop receiving events."""
        self._core._watchers.discard(self._watcher)


class KVCore:
    """ChainFire's operations: validate, then propose writes to the log or read the state machine."""

    def __init__(self, machine: KVStateMachine, log: Log, version: str,
                 clock: Callable[[], float] = time.time, lease_check_seconds: float | None = LEASE_CHECK_SECONDS):
        self.machine = machine
        self.log = log
        self.version = version
        self.clock = clock  # wall-clock seconds: lease deadlines survive restarts
        self._watchers: set[_Watcher] = set()
        self._draining = False  # stopping: open watches ended, new ones refused
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expiry: asyncio.Task | None = None
        machine.listeners.append(self._on_applied)
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        if self._loop is not None and lease_check_seconds:
            self._expiry = self._loop.create_task(self._expire_periodically(lease_check_seconds))

    async def range(self, request: RangeRequest) -> RangeResult:
        """Read keys: linearizable, or from this member's state as it stands if serializable."""
        _check_range(request)
        return await self.log.read(lambda: self.machine.range(request), linearizable=not request.serializable)

    async def put(self, request: PutRequest) -> PutResult:
        """Write a key."""
        _check_write(request)
        return await self.log.propose(request)

    async def delete_range(self, request: DeleteRangeRequest) -> DeleteResult:
        """Delete keys."""
        _check_write(request)
        return await self.log.propose(request)

    async def txn(self, request: TxnRequest) -> TxnResult:
        """Run a transaction."""
        _check_txn(request)
        return await self.log.propose(request)

    async def compact(self, request: CompactRequest) -> CompactResult:
        """Forget the history before a revision."""
        if request.revision <= 0:
            raise InvalidArgument("revision must be positive", {"field": "revision"})
        return await self.log.propose(request)

    # Watches

    async def watch(self, request: WatchRequest) -> Watch:
        """Open a watch: its history is checked (OUT_OF_RANGE if compacted) before this returns."""
        start, end = key_span(request.key, request.range_end, request.prefix)
        if request.start_revision < 0:
            raise InvalidArgument("start_revision must not be negative", {"field": "start_revision"})
        if self._draining:
            raise Unavailable("the service is stopping; watch again elsewhere or later")
        self._loop = asyncio.get_running_loop()
        watcher = _Watcher(start, end, request.prev_kv)
        self._watchers.add(watcher)  # before reading history: no change can fall between the two
        try:
            revision, after, events = await self.log.read(
                lambda: self.machine.replay(request, None, WATCH_REPLAY_CHUNK))
        except BaseException:
            self._watchers.discard(watcher)
            raise
        return Watch(self, request, watcher, revision, after, events)

    async def end_watches(self) -> None:
        """End every open watch and refuse new ones (the service is stopping)."""
        self._draining = True
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(_CLOSED)
        self._watchers.clear()

    def _on_applied(self, events: list[Event] | None) -> None:
        """On the applying thread: hand a command's events (None: a restored snapshot) to the event loop."""
        loop = self._loop
        if loop is not None and self._watchers:
            try:
                loop.call_soon_threadsafe(self._dispatch, events)
            except RuntimeError:  # the loop is closed: nobody is watching any more
                pass

    def _dispatch(self, events: list[Event] | None) -> None:
        for watcher in list(self._watchers):
            if watcher.lagging:
                continue
            if events is None:  # the state jumped ahead: replay from history what the watch missed
                watcher.lagging = True
                watcher.queue.put_nowait(_LAGGING)
                continue
            wanted = [e if watcher.prev_kv else Event(e.type, e.kv, e.sub) for e in events if watcher.wants(e)]
            if not wanted:
                continue
            if watcher.queue.qsize() >= WATCH_QUEUE_LIMIT:
                # Too far behind: drop what is queued and let the watch replay it from history.
                while not watcher.queue.empty():
                    watcher.queue.get_nowait()
                watcher.lagging = True
                watcher.queue.put_nowait(_LAGGING)
                continue
            watcher.queue.put_nowait(wanted)

    # Leases

    # Each lease call takes the caller's keyspace (b"": the whole store's): see Lease's keyspace rule.

    async def grant_lease(self, ttl: int, lease_id: int = 0, keyspace: bytes = b"") -> LeaseResult:
        """Grant a lease of ttl seconds in keyspace."""
        if not 1 <= ttl <= MAX_LEASE_TTL:
            raise InvalidArgument(f"ttl must be between 1 and {MAX_LEASE_TTL} seconds", {"field": "ttl"})
        _check_lease_id(lease_id, allow_zero=True)
        return await self.log.propose(LeaseGrant(ttl, lease_id, self.clock(), keyspace))

    async def revoke_lease(self, lease_id: int, keyspace: bytes = b"") -> LeaseResult:
        """Revoke a lease and delete its keys."""
        _check_lease_id(lease_id)
        return await self.log.propose(LeaseRevoke(lease_id, keyspace))

    async def keep_alive(self, lease_id: int, keyspace: bytes = b"") -> LeaseResult:
        """Restart a lease's ttl."""
        _check_lease_id(lease_id)
        return await self.log.propose(LeaseKeepAlive(lease_id, self.clock(), keyspace))

    async def time_to_live(self, lease_id: int, keys: bool = False, keyspace: bytes = b"") -> LeaseTimeToLive:
        """A lease's remaining ttl (NOT_FOUND once it expired) and, if asked for, its keys."""
        _check_lease_id(lease_id)
        revision, lease, attached = await self.log.read(lambda: self.machine.lease_info(lease_id, keys, keyspace))
        remaining = math.ceil(lease.deadline - self.clock())
        if remaining <= 0:
            raise NotFound("lease not found", {"lease": lease_id})
        return LeaseTimeToLive(revision, lease.id, remaining, lease.ttl, attached)

    async def leases(self, limit: int = 0, page_token: str = "", keyspace: bytes = b"") -> LeaseList:
        """The ids of keyspace's leases, by id; a page of them with a limit."""
        after = 0
        if page_token:
            position = paging.decode_token(page_token)
            if not isinstance(position.get("lease"), int):
                raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
            after = position["lease"]

        def read() -> tuple[int, list[Lease]]:
            return self.machine.store.revision(), self.machine.store.leases(after, limit + 1 if limit else 0,
                                                                            keyspace)

        revision, found = await self.log.read(read)
        token = ""
        if limit and len(found) > limit:
            found = found[:limit]
            token = paging.encode_token({"lease": found[-1].id})
        return LeaseList(revision, [lease.id for lease in found], token)

    async def expire_leases(self) -> list[int]:
        """Propose the expiry of the leases past their deadline (if any); the ids expired."""
        now = self.clock()
        deadline = await self.log.read(self.machine.store.next_deadline)
        if deadline is None or deadline > now:
            return []
        return (await self.log.propose(ExpireLeases(now))).ids

    async def _expire_periodically(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            if self.log.status().role != "LEADER":  # one member proposes expiries: the leader
                continue
            try:
                await self.expire_leases()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep expiring; the next round retries
                log.exception("lease expiry failed")

    def log_status(self) -> LogStatus:
        """This member's place in the log."""
        return self.log.status()

    async def status(self) -> Status:
        """This member, its log and its store."""
        log_status = self.log.status()
        revision, size = await self.log.read(lambda: (self.machine.store.revision(), self.machine.store.size_bytes()))
        return Status(log_status.member_id, log_status.leader, log_status.role, log_status.term, log_status.index,
                      revision, self.version, size)

    # Membership

    def members(self) -> list[Member]:
        """Every member of the cluster, by id."""
        return self.log.members()

    async def add_member(self, peer_address: str) -> list[Member]:
        """Add a member by peer address; the members afterwards."""
        await self.log.add_member(peer_address)
        return self.log.members()

    async def remove_member(self, member_id: int) -> list[Member]:
        """Remove a member by id; the members afterwards."""
        await self.log.remove_member(member_id)
        return self.log.members()

    async def close(self) -> None:
        """Stop expiring leases, end the watches, stop the log (the store is closed by whoever opened it)."""
        if self._expiry is not None:
            self._expiry.cancel()
            try:
                await self._expiry
            except asyncio.CancelledError:
                pass
        await self.end_watches()
        await self.log.close()


def _check_lease_id(lease_id: int, allow_zero: bool = False) -> None:
    if lease_id < 0 or (lease_id == 0 and not allow_zero) or lease_id >= 2**63:
        raise InvalidArgument("lease id must be a positive 64-bit integer", {"field": "id"})
