"""ChainFire's model: etcd v3's MVCC key-value pairs, the requests and commands on them, their results,
and the events the state machine reports.

The commands (Put, DeleteRange, Txn, Compact and the lease commands) are what the core proposes to
its log and machine.KVStateMachine applies; key_span is the one reading of the keys a request names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union

from photoncloud.common.errors import InvalidArgument

MAX_KEY_BYTES = 8 * 1024
MAX_VALUE_BYTES = 1024 * 1024
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops

ALL_KEYS = b"\0"  # as range_end: every key from `key` on (and as key too: from the first key)
MAX_LEASE_TTL = 9_000_000_000  # etcd's MaxLeaseTTL, in seconds
# The reasons (details.reason) of the invalid requests etcd has an error of its own for.
KEY_REQUIRED, TOO_LARGE = "KEY_REQUIRED", "TOO_LARGE"
DUPLICATE_KEY, TOO_MANY_OPERATIONS = "DUPLICATE_KEY", "TOO_MANY_OPERATIONS"


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
    check_key(key)
    if not range_end:
        return key, key + b"\0"  # exactly key: nothing sorts between key and key + NUL
    start = b"" if key == ALL_KEYS and range_end == ALL_KEYS else key
    return start, None if range_end == ALL_KEYS else range_end


def check_key(key: bytes) -> None:
    """A key a request may name: not empty, not longer than MAX_KEY_BYTES."""
    if not key:
        raise InvalidArgument("key is required", {"field": "key", "reason": KEY_REQUIRED})
    if len(key) > MAX_KEY_BYTES:
        raise InvalidArgument(f"key is longer than {MAX_KEY_BYTES} bytes", {"field": "key", "reason": TOO_LARGE})

