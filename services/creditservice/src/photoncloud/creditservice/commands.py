"""CreditService's commands: what the core proposes to the log and CreditStateMachine applies.

Every member applies the same commands in the same order, so a command carries everything its
outcome depends on: `now` from the proposer's clock, a reservation's id chosen by the proposer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .records import WalletStatus


@dataclass(frozen=True)
class Idempotency:
    """Who sent a request under which key, and a fingerprint of its body."""

    subject: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class CreateWallet:
    """Open a project's wallet, topped up with initial_balance if it is not 0."""

    project_id: str
    org_id: str
    initial_balance: int
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class TopUp:
    """Add credits to a wallet."""

    project_id: str
    amount: int
    description: str
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class SetWalletStatus:
    """Suspend, reactivate or close a wallet."""

    project_id: str
    status: WalletStatus
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class Reserve:
    """Hold credits (and quota units) for a resource until committed, released or expired."""

    id: str  # chosen by the proposer, so that every replica uses the same
    project_id: str
    amount: int
    description: str
    resource_type: str
    quantity: int
    ttl_seconds: int
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class Commit:
    """Charge a pending reservation's actual amount and free the rest."""

    id: str
    actual_amount: int
    resource_id: str
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class Release:
    """Free a pending reservation's credits and quota units."""

    id: str
    reason: str
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class ExpireReservations:
    """Release every pending reservation whose deadline is past now."""

    now: float


@dataclass(frozen=True)
class SetQuota:
    """Set how many units of a resource type a project may hold."""

    project_id: str
    resource_type: str
    limit: int
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class FreeQuota:
    """Give back quota units a committed resource held."""

    project_id: str
    resource_type: str
    quantity: int
    now: float
    idempotency: Idempotency | None = None


Command = Union[CreateWallet, TopUp, SetWalletStatus, Reserve, Commit, Release, ExpireReservations, SetQuota,
                FreeQuota]
