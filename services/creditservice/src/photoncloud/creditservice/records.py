"""CreditService's records: wallets, ledger transactions and their postings, reservations, quotas."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class WalletStatus(enum.Enum):
    """An active wallet takes every operation; a suspended one only top-ups and resolutions; a closed one none."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CLOSED = "CLOSED"


class TransactionType(enum.Enum):
    """What a ledger transaction records."""

    TOPUP = "TOPUP"  # credits enter the wallet from outside
    RESERVE = "RESERVE"  # available -> reserved
    COMMIT = "COMMIT"  # reserved -> charged (revenue), the rest back to available
    RELEASE = "RELEASE"  # reserved -> available, on request
    EXPIRE = "EXPIRE"  # reserved -> available, at the reservation's deadline


class ReservationStatus(enum.Enum):
    """A reservation is PENDING until it resolves, exactly once, into one of the others."""

    PENDING = "PENDING"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"


# The ledger's accounts. Every transaction's postings sum to zero (double entry): credits come
# from EXTERNAL (top-ups) and leave to REVENUE (charges); each project has two accounts of its own.
EXTERNAL, REVENUE = "external", "revenue"


def available_account(project_id: str) -> str:
    """The account of a project's credits free to reserve."""
    return f"project:{project_id}:available"


def reserved_account(project_id: str) -> str:
    """The account of a project's credits held by pending reservations."""
    return f"project:{project_id}:reserved"


@dataclass(frozen=True)
class Wallet:
    """A project's credits: balance = available + reserved, all in the smallest unit."""

    project_id: str
    org_id: str
    status: WalletStatus
    balance: int
    reserved: int
    created_at: float
    updated_at: float

    @property
    def available(self) -> int:
        """What new reservations may still take."""
        return self.balance - self.reserved


@dataclass(frozen=True)
class Posting:
    """One leg of a transaction: an amount into (positive) or out of (negative) an account."""

    account: str
    amount: int


@dataclass(frozen=True)
class Transaction:
    """An immutable ledger entry, with the wallet as it stood right after it."""

    id: int
    project_id: str
    type: TransactionType
    amount: int
    description: str
    reservation_id: str
    postings: tuple[Posting, ...]
    balance_after: int
    reserved_after: int
    created_at: float


@dataclass(frozen=True)
class Reservation:
    """Credits (and quota units) held for a resource until commit, release or expiry."""

    id: str
    project_id: str
    amount: int
    description: str
    resource_type: str
    quantity: int
    status: ReservationStatus
    created_at: float
    expires_at: float
    resolved_at: float = 0.0
    actual_amount: int = 0
    resource_id: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Quota:
    """How many units of a resource type a project may hold, and how many it holds."""

    project_id: str
    resource_type: str
    limit: int
    usage: int
    updated_at: float


@dataclass(frozen=True)
class Admission:
    """Whether a resource would be admitted now, and why not."""

    allowed: bool
    reason: str  # "" when allowed; INSUFFICIENT_CREDITS, QUOTA_EXCEEDED, NO_WALLET, WALLET_SUSPENDED, ...
    available: int
    quota_limit: int  # -1: no quota for this resource type
    quota_usage: int


@dataclass(frozen=True)
class AuditReport:
    """The ledger replayed: every account's balance derived from the postings, against the wallets."""

    ok: bool
    transactions: int
    wallets: int
    unbalanced_transactions: list[int]  # transactions whose postings do not sum to zero
    mismatches: list[dict[str, Any]]  # wallets whose stored balance or reserved differs from the ledger
    revenue: int  # credits charged in total
    issued: int  # credits topped up in total
