"""ChainFire's state machine: applies the commands to a KVStore, the only code that changes the store.

Reads see every command whose result was returned before they began: on the applying thread after
the commands before them, or on another thread, inside `reading()`, from the last commit (a whole
batch of commands or none of it). It never reads a clock: a lease's
deadline is computed by the proposer, which puts `now` in the Grant and KeepAlive commands, and
leases expire through an ExpireLeases(now) command that the core proposes periodically, so every
replica expires the same leases at the same revision.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, Union

from photoncloud.common import paging
from photoncloud.common.errors import AlreadyExists, InvalidArgument, NotFound, OutOfRange
from photoncloud.common.sqlite import apply_in_one_transaction

from .commands import (
    Command,
    Compare,
    CompareResult,
    CompareTarget,
    CompactRequest,
    CompactResult,
    DeleteRangeRequest,
    DeleteResult,
    Event,
    EventType,
    ExpireLeases,
    KeyValue,
    Lease,
    LeaseGrant,
    LeaseKeepAlive,
    LeaseList,
    LeaseResult,
    LeaseRevoke,
    Op,
    OpResult,
    PutRequest,
    PutResult,
    RangeRequest,
    RangeResult,
    TxnRequest,
    TxnResult,
    WatchRequest,
    key_span,
)

log = logging.getLogger("photoncloud.chainfire")
# What applying a command returns.
Applied = Union[OpResult, TxnResult, CompactResult, LeaseResult, LeaseList]


class KVStore(Protocol):
    """The MVCC persistence the state machine writes through; sorted by key, bytewise."""

    def savepoint(self) -> AbstractContextManager[None]:
        """Inside a transaction: undo everything inside if it raises, keep it otherwise."""

    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside commit durably together or not at all."""

    @property
    def concurrent_reads(self) -> bool:
        """Whether reading() is available."""

    def reading(self) -> AbstractContextManager[None]:
        """Reads inside, on the calling thread, from one snapshot of the last commit, while the
        applying thread goes on writing."""

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

    def history(self, start: bytes, end: bytes | None, after: tuple[int, int], limit: int) -> list[Event]:
        """Changes in [start, end) after position (revision, sub), by position, at most limit of them
        (0: all); a DELETE's pair holds the key and the revision (no previous pair: replay adds it)."""

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

    def reading(self) -> AbstractContextManager[None] | None:
        """A view of the last commit for queries on the calling thread while commands apply on
        another (None: the store has none; queries then belong on the applying thread)."""
        return self.store.reading() if self.store.concurrent_reads else None

    def apply(self, index: int, command: Command) -> object:
        """Apply one command atomically; a rejected command changes nothing but the applied index."""
        return self.apply_batch([(index, command)])[0]

    def apply_batch(self, entries: list[tuple[int, Command]]) -> list[object]:
        """Apply commands in order in one transaction (one fsync), each atomic on its own: a
        rejected one changes nothing but the applied index. Watchers hear of them after the commit."""
        batch_events: list[list[Event]] = []

        def execute(command: Command) -> Applied:
            events: list[Event] = []
            result = self._execute(command, events)
            self.store.set_revision(result.revision)
            batch_events.append(events)
            return result

        # The store is a SqliteState; KVStore declares the transaction and savepoint this uses.
        results = apply_in_one_transaction(self.store, entries, execute)  # type: ignore[arg-type]
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

    def _execute(self, command: Command, events: list[Event]) -> Applied:
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
        targets: dict[CompareTarget, int | bytes] = {
            CompareTarget.VERSION: kv.version if kv else 0,
            CompareTarget.CREATE: kv.create_revision if kv else 0,
            CompareTarget.MOD: kv.mod_revision if kv else 0,
            CompareTarget.VALUE: kv.value if kv else b"",
        }
        actual = targets[compare.target]
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
        if end == start + b"\0" and revision == current:  # one key as it is now: nothing to count
            found = self.store.get(start)
            kvs, count = ([found], 1) if found is not None else ([], 0)
        else:
            count = self.store.count(start, end, revision)
            kvs = [] if request.count_only else self.store.range(start, end, revision, request.limit)
        if request.count_only:
            return RangeResult(current, [], count, False)
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

