"""ChainFire's service: validates requests, proposes the writes to the log, reads the state machine.

The model (requests, commands, results, events) is in commands, the state machine that applies the
commands is in machine, and both are imported here too, so that `core.X` names the whole domain for
the adapters. Rules for keys, ranges, revisions, comparisons, watches, leases and compaction live in
these three modules; the core checks a request before proposing it, the state machine checks what
depends on the state when it applies it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from photoncloud.common import fanout, paging
from photoncloud.common.errors import InvalidArgument, NotFound
from photoncloud.common.replication import Log, LogStatus, Member

from .commands import (
    ALL_KEYS,
    DUPLICATE_KEY,
    KEY_REQUIRED,
    MAX_KEY_BYTES,
    MAX_LEASE_TTL,
    MAX_TXN_OPS,
    MAX_VALUE_BYTES,
    OPERAND_FIELD,
    Command,
    CompactRequest,
    CompactResult,
    Compare,
    CompareResult,
    CompareTarget,
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
    LeaseTimeToLive,
    Op,
    OpResult,
    PutRequest,
    PutResult,
    RangeRequest,
    RangeResult,
    TOO_LARGE,
    TOO_MANY_OPERATIONS,
    TxnRequest,
    TxnResult,
    WatchRequest,
    check_key,
    key_span,
    prefix_end,
)
from . import watch as watches
from .machine import KVStateMachine, KVStore
from .watch import Watch, WatchBatch

# The domain's names, as the adapters, the store and the tests reach them: core.X.
__all__ = [
    "ALL_KEYS", "DUPLICATE_KEY", "KEY_REQUIRED", "TOO_LARGE", "TOO_MANY_OPERATIONS",
    "MAX_KEY_BYTES", "MAX_LEASE_TTL", "MAX_TXN_OPS", "MAX_VALUE_BYTES", "OPERAND_FIELD",
    "Command", "CompactRequest", "CompactResult", "Compare", "CompareResult", "CompareTarget",
    "DeleteRangeRequest", "DeleteResult", "Event", "EventType", "ExpireLeases", "KeyValue", "Lease", "LeaseGrant",
    "LeaseKeepAlive", "LeaseList", "LeaseResult", "LeaseRevoke", "LeaseTimeToLive", "Op", "OpResult",
    "PutRequest", "PutResult", "RangeRequest", "RangeResult", "TxnRequest", "TxnResult", "WatchBatch",
    "WatchRequest", "key_span", "prefix_end", "KVStateMachine", "KVStore", "LogStatus", "Member",
    "LEASE_CHECK_SECONDS", "WATCH_QUEUE_LIMIT", "WATCH_REPLAY_CHUNK", "Status", "Watch", "KVCore",
]

LEASE_CHECK_SECONDS = 0.5  # how often the core looks for expired leases
WATCH_QUEUE_LIMIT = 100_000  # live batches queued for a watch before it is made to replay from history instead
WATCH_REPLAY_CHUNK = 1000  # history events read per step of a watch's replay

log = logging.getLogger("photoncloud.chainfire")


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


def _check_write(op: Op) -> None:
    if isinstance(op, PutRequest):
        check_key(op.key)
        if len(op.value) > MAX_VALUE_BYTES:
            raise InvalidArgument(f"value is longer than {MAX_VALUE_BYTES} bytes",
                                  {"field": "value", "reason": TOO_LARGE})
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
        check_key(compare.key)
        field = OPERAND_FIELD[compare.target]
        wants_bytes = compare.target is CompareTarget.VALUE
        if compare.operand is None or wants_bytes != isinstance(compare.operand, bytes):
            raise InvalidArgument(f"a {compare.target.value} comparison needs `{field}`", {"field": field})
    for name, branch in (("success", txn.success), ("failure", txn.failure)):
        if len(branch) > MAX_TXN_OPS:
            raise InvalidArgument(f"a transaction branch holds at most {MAX_TXN_OPS} operations",
                                  {"field": name, "reason": TOO_MANY_OPERATIONS})
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
                raise InvalidArgument("duplicate key given in txn request", {"field": name, "reason": DUPLICATE_KEY})
            puts.add(op.key)
        elif isinstance(op, DeleteRangeRequest):
            deletes.append(key_span(op.key, op.range_end, op.prefix))
    for key in puts:
        if any(start <= key and (end is None or key < end) for start, end in deletes):
            raise InvalidArgument("duplicate key given in txn request", {"field": name, "reason": DUPLICATE_KEY})


class KVCore:
    """ChainFire's operations: validate, then propose writes to the log or read the state machine."""

    def __init__(self, machine: KVStateMachine, log: Log, version: str,
                 clock: Callable[[], float] = time.time, lease_check_seconds: float | None = LEASE_CHECK_SECONDS):
        self.machine = machine
        self.log = log
        self.version = version
        self.clock = clock  # wall-clock seconds: lease deadlines survive restarts
        self.hub: fanout.Hub[Event] = fanout.Hub()  # the open watches; closed: the service is stopping
        self._expiry: asyncio.Task | None = None
        machine.listeners.append(self.hub.applied)
        try:
            self.hub.loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        if self.hub.loop is not None and lease_check_seconds:
            self._expiry = self.hub.loop.create_task(self._expire_periodically(lease_check_seconds))

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
        chunk = WATCH_REPLAY_CHUNK
        watcher = watches.subscription(start, end, request.prev_kv, WATCH_QUEUE_LIMIT)
        self.hub.subscribe(watcher)  # before reading history: no change can fall between the two
        try:
            revision, after, events = await self.log.read(lambda: self.machine.replay(request, None, chunk))
        except BaseException:
            self.hub.unsubscribe(watcher)
            raise

        async def replay(after: tuple[int, int]) -> tuple[int, list[Event]]:
            revision, _, events = await self.log.read(lambda: self.machine.replay(request, after, chunk))
            return revision, events

        return Watch(self.hub, watcher, replay, chunk, revision, after, events)

    async def end_watches(self) -> None:
        """End every open watch and refuse new ones (the service is stopping)."""
        self.hub.close()

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
