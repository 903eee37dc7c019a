"""ChainFire's domain: etcd v3's MVCC key-value model, as commands applied to a state machine.

Every write is a command (Put, DeleteRange, Txn) that the core proposes to its log; the log
applies it to KVStateMachine, the only code that changes the store. Reads run against the state
machine after the writes before them. Rules for keys, ranges, revisions and comparisons live here.
"""

from __future__ import annotations

import enum
import hashlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, Union

from photoncloud.common import paging
from photoncloud.common.errors import InvalidArgument, OutOfRange, ServiceError
from photoncloud.common.replication import Log, LogStatus

MAX_KEY_BYTES = 8 * 1024
MAX_VALUE_BYTES = 1024 * 1024
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops

ALL_KEYS = b"\0"  # as range_end: every key from `key` on (and as key too: from the first key)


@dataclass(frozen=True)
class KeyValue:
    """A key as of some revision."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int


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


class KVStore(Protocol):
    """The MVCC persistence the state machine writes through; sorted by key, bytewise."""

    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside commit durably together or not at all."""

    def revision(self) -> int:
        """The latest revision."""

    def compact_revision(self) -> int:
        """The oldest revision still readable."""

    def applied_index(self) -> int:
        """The log index of the last applied command."""

    def set_applied(self, index: int, revision: int) -> None:
        """Record the last applied log index and the revision it left."""

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

    def applied_index(self) -> int:
        """The index of the last applied log entry."""
        return self.store.applied_index()

    def apply(self, index: int, command: PutRequest | DeleteRangeRequest | TxnRequest) -> object:
        """Apply one command atomically; a rejected command changes nothing but the applied index."""
        try:
            with self.store.transaction():
                result = self._execute(command)
                self.store.set_applied(index, self.store.revision() if result is None else result.revision)
                return result
        except ServiceError as exc:
            with self.store.transaction():
                self.store.set_applied(index, self.store.revision())
            return exc

    def _execute(self, command: object) -> PutResult | DeleteResult | TxnResult:
        revision = self.store.revision() + 1
        if isinstance(command, TxnRequest):
            return self._txn(command, revision)
        writes = _Writes(self.store, revision)
        result = writes.run(command)
        return result if writes.sub else _at(result, revision - 1)

    def _txn(self, txn: TxnRequest, revision: int) -> TxnResult:
        succeeded = all(self._holds(compare) for compare in txn.compare)
        writes = _Writes(self.store, revision)
        responses = [writes.run(op) for op in (txn.success if succeeded else txn.failure)]
        final = revision if writes.sub else revision - 1
        return TxnResult(final, succeeded, [_at(r, final) for r in responses])

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

    def range(self, request: RangeRequest) -> RangeResult:
        """Read a range (a page of it with a limit) at the requested or the latest revision."""
        start, end = key_span(request.key, request.range_end, request.prefix)
        current = self.store.revision()
        revision = request.revision or current
        if request.page_token:
            position = paging.decode_token(request.page_token)
            if position.get("span") != _span_fingerprint(request) or not isinstance(position.get("rev"), int):
                raise InvalidArgument("page_token does not belong to this range", {"field": "page_token"})
            start, revision = bytes.fromhex(position["after"]) + b"\0", position["rev"]
        if revision > current:
            raise OutOfRange("required revision is a future revision",
                             {"field": "revision", "revision": revision, "current_revision": current})
        if revision < self.store.compact_revision():
            raise OutOfRange("required revision has been compacted",
                             {"field": "revision", "compact_revision": self.store.compact_revision()})
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
            kvs = [KeyValue(kv.key, b"", kv.create_revision, kv.mod_revision, kv.version) for kv in kvs]
        return RangeResult(current, kvs, count, more, token)


def _at(result: OpResult, revision: int) -> OpResult:
    """result as reported at revision (the revision a command or transaction ended at)."""
    return type(result)(**{**result.__dict__, "revision": revision})


class _Writes:
    """The operations of one command, all at one new revision, each change with its own sub-revision."""

    def __init__(self, store: KVStore, revision: int):
        self.store = store
        self.revision = revision
        self.sub = 0

    def run(self, op: Op) -> OpResult:
        if isinstance(op, PutRequest):
            return self._put(op)
        if isinstance(op, DeleteRangeRequest):
            return self._delete(op)
        return KVStateMachine(self.store).range(op)

    def _put(self, op: PutRequest) -> PutResult:
        prev = self.store.get(op.key)
        kv = KeyValue(
            key=op.key,
            value=op.value,
            create_revision=prev.create_revision if prev else self.revision,
            mod_revision=self.revision,
            version=prev.version + 1 if prev else 1,
        )
        self.store.put(self.revision, self.sub, kv)
        self.sub += 1
        return PutResult(self.revision, prev if op.prev_kv else None)

    def _delete(self, op: DeleteRangeRequest) -> DeleteResult:
        start, end = key_span(op.key, op.range_end, op.prefix)
        doomed = self.store.range(start, end, self.store.revision(), 0)
        for kv in doomed:
            self.store.delete(self.revision, self.sub, kv.key)
            self.sub += 1
        return DeleteResult(self.revision, len(doomed), doomed if op.prev_kv else [])


class KVCore:
    """ChainFire's operations: validate, then propose writes to the log or read the state machine."""

    def __init__(self, machine: KVStateMachine, log: Log, version: str):
        self.machine = machine
        self.log = log
        self.version = version

    async def range(self, request: RangeRequest) -> RangeResult:
        """Read keys (linearizable unless serializable is asked for; the same on one member)."""
        _check_range(request)
        return await self.log.read(lambda: self.machine.range(request))

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

    def log_status(self) -> LogStatus:
        """This member's place in the log."""
        return self.log.status()

    async def status(self) -> Status:
        """This member, its log and its store."""
        log = self.log.status()
        revision, size = await self.log.read(lambda: (self.machine.store.revision(), self.machine.store.size_bytes()))
        return Status(log.member_id, log.leader, log.role, log.term, log.index, revision, self.version, size)

    async def close(self) -> None:
        """Stop the log (the store is closed by whoever opened it)."""
        await self.log.close()

