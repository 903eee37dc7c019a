"""CreditService's domain: wallets on a double-entry ledger, two-phase reservations, quotas, idempotency.

Anchors: TigerBeetle (every transaction is postings between accounts that sum to zero; a
reservation is a pending transfer that is posted, possibly for less, or voided, or times out) and
Stripe (an `Idempotency-Key` makes a retried request return the first one's result).

Every change is a command applied by CreditStateMachine, one at a time, each in one fsynced SQLite
transaction: the check that a wallet can afford a reservation and the reservation itself are one
atomic step, so no interleaving of requests can take `available` below zero, and a command is
either wholly applied (and acknowledged) or not at all. The state machine never reads a clock:
the proposer puts `now` into each command, and reservations past their deadline are released by an
ExpireReservations(now) command that the core proposes periodically (also right after a restart).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import pickle
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, Union

from photoncloud.common import auth, paging
from photoncloud.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from photoncloud.common.projects import Projects
from photoncloud.common.replication import Log
from photoncloud.common.sqlite import SqliteStateMachine

from .records import (EXTERNAL, REVENUE, Admission, AuditReport, Posting, Quota, Reservation, ReservationStatus,
                      Transaction, TransactionType, Wallet, WalletStatus, available_account, reserved_account)

log = logging.getLogger("photoncloud.creditservice")

MAX_AMOUNT = 2**53 - 1  # amounts stay exact in JSON (and in every language's doubles)
MAX_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_TTL_SECONDS = 300
IDEMPOTENCY_KEEP_SECONDS = 24 * 3600  # as Stripe: a key may be reused a day later
EXPIRY_CHECK_SECONDS = 0.5
MAX_TEXT = 1024
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

# Permissions. Tenants read their wallet and reserve against it; operators (admin) create wallets,
# top them up, change their status and set quotas.
WALLETS_READ, WALLETS_MANAGE = "creditservice:wallets:read", "creditservice:wallets:manage"
RESERVATIONS_READ, RESERVATIONS_WRITE = "creditservice:reservations:read", "creditservice:reservations:write"
QUOTAS_READ, QUOTAS_WRITE, QUOTAS_MANAGE = ("creditservice:quotas:read", "creditservice:quotas:write",
                                            "creditservice:quotas:manage")


# -- commands ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Idempotency:
    """Who sent a request under which key, and a fingerprint of its body."""

    subject: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class CreateWallet:
    project_id: str
    org_id: str
    initial_balance: int
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class TopUp:
    project_id: str
    amount: int
    description: str
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class SetWalletStatus:
    project_id: str
    status: WalletStatus
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class Reserve:
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
    id: str
    actual_amount: int
    resource_id: str
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class Release:
    id: str
    reason: str
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class ExpireReservations:
    now: float


@dataclass(frozen=True)
class SetQuota:
    project_id: str
    resource_type: str
    limit: int
    now: float
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class FreeQuota:
    project_id: str
    resource_type: str
    quantity: int
    now: float
    idempotency: Idempotency | None = None


Command = Union[CreateWallet, TopUp, SetWalletStatus, Reserve, Commit, Release, ExpireReservations, SetQuota,
                FreeQuota]


@dataclass(frozen=True)
class ReservationResult:
    """A reservation and the wallet right after the operation on it."""

    reservation: Reservation
    wallet: Wallet


@dataclass(frozen=True)
class TransactionPage:
    items: list[Transaction]
    next_page_token: str


@dataclass(frozen=True)
class ReservationPage:
    items: list[Reservation]
    next_page_token: str


@dataclass(frozen=True)
class WalletPage:
    items: list[Wallet]
    next_page_token: str


# -- the store the state machine needs -------------------------------------------------------------

class CreditStore(Protocol):
    """What CreditStateMachine needs from its store (SqliteCreditStore in store.py)."""

    def transaction(self) -> Any: ...
    def savepoint(self) -> Any: ...
    def applied_index(self) -> int: ...
    def set_meta(self, name: str, value: int) -> None: ...
    def wallet(self, project_id: str) -> Wallet | None: ...
    def save_wallet(self, wallet: Wallet) -> None: ...
    def add_transaction(self, project_id: str, type: TransactionType, amount: int, description: str,
                        reservation_id: str, postings: tuple[Posting, ...], wallet: Wallet,
                        now: float) -> Transaction: ...
    def reservation(self, id: str) -> Reservation | None: ...
    def save_reservation(self, reservation: Reservation) -> None: ...
    def due_reservations(self, now: float) -> list[Reservation]: ...
    def quota(self, project_id: str, resource_type: str) -> Quota | None: ...
    def save_quota(self, quota: Quota) -> None: ...
    def remembered(self, subject: str, key: str) -> tuple[str, bytes] | None: ...
    def remember(self, subject: str, key: str, fingerprint: str, result: bytes, now: float) -> None: ...
    def forget_before(self, moment: float) -> int: ...
    def snapshot(self, path: str) -> None: ...
    def restore(self, path: str) -> None: ...


def _insufficient(wallet: Wallet, amount: int) -> FailedPrecondition:
    return FailedPrecondition("insufficient credits", {"reason": "INSUFFICIENT_CREDITS",
                                                       "project_id": wallet.project_id,
                                                       "available": wallet.available, "requested": amount})


def _usable(wallet: Wallet | None, project_id: str, for_new_charges: bool) -> Wallet:
    if wallet is None:
        raise NotFound("no wallet for this project", {"reason": "NO_WALLET", "project_id": project_id})
    if wallet.status is WalletStatus.CLOSED or (for_new_charges and wallet.status is WalletStatus.SUSPENDED):
        raise FailedPrecondition(f"the wallet is {wallet.status.value.lower()}",
                                 {"reason": f"WALLET_{wallet.status.value}", "project_id": project_id})
    return wallet


class CreditStateMachine(SqliteStateMachine):
    """Applies CreditService's commands to the store. Deterministic: no clocks, no randomness."""

    def execute(self, command: Command) -> object:
        """Apply one command; one carrying a used idempotency key returns the first one's result."""
        key = getattr(command, "idempotency", None)
        if key is None:
            return self._execute(command)
        seen = self.store.remembered(key.subject, key.key)
        if seen is not None:
            fingerprint, result = seen
            if fingerprint != key.fingerprint:
                raise FailedPrecondition("this Idempotency-Key was used with a different request",
                                         {"reason": "IDEMPOTENCY_KEY_REUSED", "idempotency_key": key.key})
            return pickle.loads(result)  # noqa: S301 - our own record, written below
        result = self._execute(command)
        self.store.remember(key.subject, key.key, key.fingerprint, pickle.dumps(result), command.now)
        return result

    def _execute(self, command: Command) -> object:
        if isinstance(command, CreateWallet):
            return self._create_wallet(command)
        if isinstance(command, TopUp):
            return self._top_up(command)
        if isinstance(command, SetWalletStatus):
            wallet = _usable(self.store.wallet(command.project_id), command.project_id, False)
            wallet = replace(wallet, status=command.status, updated_at=command.now)
            self.store.save_wallet(wallet)
            return wallet
        if isinstance(command, Reserve):
            return self._reserve(command)
        if isinstance(command, Commit):
            return self._commit(command)
        if isinstance(command, Release):
            return self._release(command)
        if isinstance(command, ExpireReservations):
            return self._expire(command)
        if isinstance(command, SetQuota):
            return self._set_quota(command)
        if isinstance(command, FreeQuota):
            return self._free_quota(command)
        raise InvalidArgument(f"unknown command {type(command).__name__}")

    def _post(self, wallet: Wallet, type: TransactionType, amount: int, description: str, reservation_id: str,
              postings: tuple[Posting, ...], now: float) -> Transaction:
        """Record a transaction whose postings move the wallet from its stored state to `wallet`."""
        self.store.save_wallet(wallet)
        return self.store.add_transaction(wallet.project_id, type, amount, description, reservation_id,
                                          tuple(p for p in postings if p.amount), wallet, now)

    def _create_wallet(self, c: CreateWallet) -> Wallet:
        if self.store.wallet(c.project_id) is not None:
            raise AlreadyExists("the project has a wallet already", {"project_id": c.project_id})
        wallet = Wallet(c.project_id, c.org_id, WalletStatus.ACTIVE, 0, 0, c.now, c.now)
        self.store.save_wallet(wallet)
        if c.initial_balance:
            wallet = self._top_up(TopUp(c.project_id, c.initial_balance, "initial balance", c.now)).wallet
        return wallet

    def _top_up(self, c: TopUp) -> TopUpResult:
        wallet = _usable(self.store.wallet(c.project_id), c.project_id, False)
        if wallet.balance + c.amount > MAX_AMOUNT:
            raise FailedPrecondition("the balance would exceed the largest amount", {"maximum": MAX_AMOUNT})
        wallet = replace(wallet, balance=wallet.balance + c.amount, updated_at=c.now)
        transaction = self._post(wallet, TransactionType.TOPUP, c.amount, c.description, "",
                                 (Posting(EXTERNAL, -c.amount), Posting(available_account(c.project_id), c.amount)),
                                 c.now)
        return TopUpResult(wallet, transaction)

    def _reserve(self, c: Reserve) -> ReservationResult:
        wallet = _usable(self.store.wallet(c.project_id), c.project_id, True)
        if self.store.reservation(c.id) is not None:
            raise AlreadyExists("a reservation with this id exists", {"id": c.id})
        if c.amount > wallet.available:
            raise _insufficient(wallet, c.amount)
        quota = self.store.quota(c.project_id, c.resource_type) if c.resource_type else None
        if quota is not None:
            if quota.usage + c.quantity > quota.limit:
                raise FailedPrecondition("the quota of this resource type is used up",
                                         {"reason": "QUOTA_EXCEEDED", "resource_type": c.resource_type,
                                          "limit": quota.limit, "usage": quota.usage, "requested": c.quantity})
            self.store.save_quota(replace(quota, usage=quota.usage + c.quantity, updated_at=c.now))
        reservation = Reservation(c.id, c.project_id, c.amount, c.description, c.resource_type, c.quantity,
                                  ReservationStatus.PENDING, c.now, c.now + c.ttl_seconds)
        self.store.save_reservation(reservation)
        wallet = replace(wallet, reserved=wallet.reserved + c.amount, updated_at=c.now)
        self._post(wallet, TransactionType.RESERVE, c.amount, c.description, c.id,
                   (Posting(available_account(c.project_id), -c.amount),
                    Posting(reserved_account(c.project_id), c.amount)), c.now)
        return ReservationResult(reservation, wallet)

    def _pending(self, id: str) -> Reservation:
        reservation = self.store.reservation(id)
        if reservation is None:
            raise NotFound("reservation not found", {"id": id})
        if reservation.status is not ReservationStatus.PENDING:
            raise FailedPrecondition(f"the reservation is {reservation.status.value.lower()} already",
                                     {"reason": "ALREADY_RESOLVED", "id": id, "status": reservation.status.value})
        return reservation

    def _commit(self, c: Commit) -> ReservationResult:
        reservation = self._pending(c.id)
        if c.actual_amount > reservation.amount:
            raise InvalidArgument("actual_amount exceeds the reserved amount",
                                  {"field": "actual_amount", "reserved": reservation.amount})
        wallet = _usable(self.store.wallet(reservation.project_id), reservation.project_id, False)
        refund = reservation.amount - c.actual_amount
        wallet = replace(wallet, balance=wallet.balance - c.actual_amount,
                         reserved=wallet.reserved - reservation.amount, updated_at=c.now)
        reservation = replace(reservation, status=ReservationStatus.COMMITTED, resolved_at=c.now,
                              actual_amount=c.actual_amount, resource_id=c.resource_id)
        self.store.save_reservation(reservation)
        project = reservation.project_id
        self._post(wallet, TransactionType.COMMIT, c.actual_amount, reservation.description, reservation.id,
                   (Posting(reserved_account(project), -reservation.amount),
                    Posting(available_account(project), refund), Posting(REVENUE, c.actual_amount)), c.now)
        return ReservationResult(reservation, wallet)

    def _release(self, c: Release, status: ReservationStatus = ReservationStatus.RELEASED,
                 type: TransactionType = TransactionType.RELEASE) -> ReservationResult:
        reservation = self._pending(c.id)
        wallet = self.store.wallet(reservation.project_id)
        assert wallet is not None, "a reservation's wallet is never deleted"
        wallet = replace(wallet, reserved=wallet.reserved - reservation.amount, updated_at=c.now)
        reservation = replace(reservation, status=status, resolved_at=c.now, reason=c.reason)
        self.store.save_reservation(reservation)
        if reservation.resource_type:
            quota = self.store.quota(reservation.project_id, reservation.resource_type)
            if quota is not None:  # the units it held are free again
                usage = max(0, quota.usage - reservation.quantity)
                self.store.save_quota(replace(quota, usage=usage, updated_at=c.now))
        project = reservation.project_id
        self._post(wallet, type, reservation.amount, c.reason or reservation.description, reservation.id,
                   (Posting(reserved_account(project), -reservation.amount),
                    Posting(available_account(project), reservation.amount)), c.now)
        return ReservationResult(reservation, wallet)

    def _expire(self, c: ExpireReservations) -> list[str]:
        expired = []
        for reservation in self.store.due_reservations(c.now):
            self._release(Release(reservation.id, "expired", c.now), ReservationStatus.EXPIRED, TransactionType.EXPIRE)
            expired.append(reservation.id)
        self.store.forget_before(c.now - IDEMPOTENCY_KEEP_SECONDS)
        return expired

    def _set_quota(self, c: SetQuota) -> Quota:
        quota = self.store.quota(c.project_id, c.resource_type)
        quota = Quota(c.project_id, c.resource_type, c.limit, quota.usage if quota else 0, c.now)
        self.store.save_quota(quota)
        return quota

    def _free_quota(self, c: FreeQuota) -> Quota:
        quota = self.store.quota(c.project_id, c.resource_type)
        if quota is None:
            raise NotFound("no quota for this resource type", {"project_id": c.project_id,
                                                               "resource_type": c.resource_type})
        if c.quantity > quota.usage:
            raise FailedPrecondition("more units freed than are in use",
                                     {"usage": quota.usage, "requested": c.quantity})
        quota = replace(quota, usage=quota.usage - c.quantity, updated_at=c.now)
        self.store.save_quota(quota)
        return quota


@dataclass(frozen=True)
class TopUpResult:
    """The wallet after a top-up, and the transaction that recorded it."""

    wallet: Wallet
    transaction: Transaction


# -- validation -----------------------------------------------------------------------------------

def check_id(value: str, field: str) -> str:
    """value if it is a plausible project/org/resource id, else INVALID_ARGUMENT."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidArgument(f"{field} must be 1-128 letters, digits or . _ : - (starting with a letter or digit)",
                              {"field": field})
    return value


def check_amount(value: int, field: str, allow_zero: bool = False) -> int:
    """value if it is a whole amount in range, else INVALID_ARGUMENT."""
    if isinstance(value, bool) or not isinstance(value, int) or value > MAX_AMOUNT or value < (0 if allow_zero else 1):
        low = 0 if allow_zero else 1
        raise InvalidArgument(f"{field} must be a whole number between {low} and {MAX_AMOUNT}", {"field": field})
    return value


def check_text(value: str, field: str) -> str:
    """value if it is short enough, else INVALID_ARGUMENT."""
    if len(value) > MAX_TEXT:
        raise InvalidArgument(f"{field} must be at most {MAX_TEXT} characters", {"field": field})
    return value


def fingerprint(operation: str, **fields: Any) -> str:
    """A stable digest of an operation and its request fields (what an idempotency key is bound to)."""
    canonical = json.dumps({"op": operation, **fields}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- the core -------------------------------------------------------------------------------------

class CreditCore:
    """CreditService's operations: authorize, validate, then propose a command or read the store."""

    def __init__(self, machine: CreditStateMachine, log: Log, clock: Callable[[], float] = time.time,
                 expiry_check_seconds: float | None = EXPIRY_CHECK_SECONDS, projects: Projects | None = None):
        self.machine = machine
        self.projects = projects  # IAM, to check that a wallet's project exists (None: trust the request)
        self.store = machine.store
        self.log = log
        self.clock = clock  # wall-clock seconds: deadlines survive restarts
        self._expiry: asyncio.Task | None = None
        if expiry_check_seconds:
            self._expiry = asyncio.get_running_loop().create_task(self._expire_periodically(expiry_check_seconds))

    # -- authorization ----------------------------------------------------------------------------

    @staticmethod
    def _require(permission: str, org_id: str = "", project_id: str = "") -> None:
        principal = auth.current()
        if principal is not None:  # None: an in-process caller (tests), or a server without auth
            principal.require(permission, org_id, project_id)

    async def _wallet_for(self, permission: str, project_id: str) -> Wallet:
        """The project's wallet, once the caller may act on it with permission."""
        check_id(project_id, "project_id")
        wallet = await self.log.read(lambda: self.store.wallet(project_id))
        if wallet is None:
            self._require(permission, "", project_id)
            raise NotFound("no wallet for this project", {"reason": "NO_WALLET", "project_id": project_id})
        self._require(permission, wallet.org_id, project_id)
        return wallet

    @staticmethod
    def _idempotency(key: str, operation: str, **fields: Any) -> Idempotency | None:
        if not key:
            return None
        if len(key) > 255 or not key.isprintable():
            raise InvalidArgument("Idempotency-Key must be 1-255 printable characters", {"field": "idempotency_key"})
        principal = auth.current()
        return Idempotency(principal.subject if principal else "", key, fingerprint(operation, **fields))

    async def _propose(self, command: Command) -> Any:
        return await self.log.propose(command)

    # -- wallets ------------------------------------------------------------------------------------

    async def create_wallet(self, project_id: str, org_id: str = "", initial_balance: int = 0,
                            idempotency_key: str = "") -> Wallet:
        """Open a project's wallet (operators only), optionally with a first top-up; the project must
        exist in IAM, and org_id (if given) be its org."""
        check_id(project_id, "project_id")
        if org_id or self.projects is None:
            check_id(org_id, "org_id")
        check_amount(initial_balance, "initial_balance", allow_zero=True)
        self._require(WALLETS_MANAGE)
        if self.projects is not None:
            org_id = await self.projects.resolve(project_id, org_id)
        self._require(WALLETS_MANAGE, org_id, project_id)
        idem = self._idempotency(idempotency_key, "create_wallet", project_id=project_id, org_id=org_id,
                                 initial_balance=initial_balance)
        return await self._propose(CreateWallet(project_id, org_id, initial_balance, self.clock(), idem))

    async def wallet(self, project_id: str) -> Wallet:
        """A project's wallet."""
        return await self._wallet_for(WALLETS_READ, project_id)

    async def wallets(self, page_size: int = 0, page_token: str = "", org_id: str = "") -> WalletPage:
        """The wallets the caller may see, by project id."""
        limit = paging.page_size(page_size)
        after = ""
        if page_token:
            after = paging.decode_token(page_token).get("after")
            if not isinstance(after, str):
                raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
        principal = auth.current()
        project = ""
        if principal is not None:
            principal.require(WALLETS_READ)
            if principal.scope.kind == auth.ORG:
                org_id = org_id or principal.scope.org_id
                principal.require(WALLETS_READ, org_id)
            elif principal.scope.kind == auth.PROJECT:
                project = principal.scope.project_id
        found = await self.log.read(lambda: self.store.wallets(after, limit + 1, org_id, project))
        token = paging.encode_token({"after": found[limit - 1].project_id}) if len(found) > limit else ""
        return WalletPage(found[:limit], token)

    async def top_up(self, project_id: str, amount: int, description: str = "",
                     idempotency_key: str = "") -> TopUpResult:
        """Add credits to a wallet (operators only)."""
        check_amount(amount, "amount")
        check_text(description, "description")
        await self._wallet_for(WALLETS_MANAGE, project_id)
        idem = self._idempotency(idempotency_key, "top_up", project_id=project_id, amount=amount,
                                 description=description)
        return await self._propose(TopUp(project_id, amount, description, self.clock(), idem))

    async def set_wallet_status(self, project_id: str, status: str, idempotency_key: str = "") -> Wallet:
        """Suspend, reactivate or close a wallet (operators only; closing is final)."""
        try:
            wanted = WalletStatus(status)
        except ValueError:
            raise InvalidArgument("status must be ACTIVE, SUSPENDED or CLOSED", {"field": "status"}) from None
        await self._wallet_for(WALLETS_MANAGE, project_id)
        idem = self._idempotency(idempotency_key, "set_wallet_status", project_id=project_id, status=status)
        return await self._propose(SetWalletStatus(project_id, wanted, self.clock(), idem))

    async def transactions(self, project_id: str, page_size: int = 0, page_token: str = "", type: str = "",
                           reservation_id: str = "", since: float = 0.0, until: float = 0.0) -> TransactionPage:
        """A wallet's ledger, newest first, filtered by type, reservation or time."""
        await self._wallet_for(WALLETS_READ, project_id)
        if type and type not in TransactionType.__members__:
            raise InvalidArgument(f"type must be one of {', '.join(TransactionType.__members__)}", {"field": "type"})
        limit = paging.page_size(page_size)
        before = 0
        if page_token:
            before = paging.decode_token(page_token).get("before")
            if not isinstance(before, int):
                raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
        found = await self.log.read(lambda: self.store.transactions(project_id, before, limit + 1, type,
                                                                    reservation_id, since, until))
        token = paging.encode_token({"before": found[limit - 1].id}) if len(found) > limit else ""
        return TransactionPage(found[:limit], token)

    # -- reservations -----------------------------------------------------------------------------

    async def reserve(self, project_id: str, amount: int, description: str = "", resource_type: str = "",
                      ttl_seconds: int = DEFAULT_TTL_SECONDS, quantity: int = 1,
                      idempotency_key: str = "") -> ReservationResult:
        """Hold credits (and a unit of quota) for a resource; FAILED_PRECONDITION INSUFFICIENT_CREDITS if short."""
        check_amount(amount, "amount")
        check_text(description, "description")
        if resource_type:
            check_id(resource_type, "resource_type")
        if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise InvalidArgument(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}", {"field": "ttl_seconds"})
        if not 1 <= quantity <= 1_000_000:
            raise InvalidArgument("quantity must be between 1 and 1000000", {"field": "quantity"})
        await self._wallet_for(RESERVATIONS_WRITE, project_id)
        idem = self._idempotency(idempotency_key, "reserve", project_id=project_id, amount=amount,
                                 description=description, resource_type=resource_type, ttl_seconds=ttl_seconds,
                                 quantity=quantity)
        return await self._propose(Reserve(uuid.uuid4().hex, project_id, amount, description, resource_type,
                                           quantity, ttl_seconds, self.clock(), idem))

    async def _reservation_for(self, permission: str, id: str) -> Reservation:
        reservation = await self.log.read(lambda: self.store.reservation(id))
        if reservation is None:
            raise NotFound("reservation not found", {"id": id})
        await self._wallet_for(permission, reservation.project_id)
        return reservation

    async def reservation(self, id: str) -> Reservation:
        """A reservation."""
        return await self._reservation_for(RESERVATIONS_READ, id)

    async def reservations(self, project_id: str, status: str = "", page_size: int = 0,
                           page_token: str = "") -> ReservationPage:
        """A project's reservations, oldest first, optionally of one status."""
        await self._wallet_for(RESERVATIONS_READ, project_id)
        if status and status not in ReservationStatus.__members__:
            raise InvalidArgument(f"status must be one of {', '.join(ReservationStatus.__members__)}",
                                  {"field": "status"})
        limit = paging.page_size(page_size)
        after = None
        if page_token:
            position = paging.decode_token(page_token)
            if not isinstance(position.get("created"), (int, float)) or not isinstance(position.get("id"), str):
                raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
            after = (float(position["created"]), position["id"])
        found = await self.log.read(lambda: self.store.reservations(project_id, status, after, limit + 1))
        token = ""
        if len(found) > limit:
            last = found[limit - 1]
            token = paging.encode_token({"created": last.created_at, "id": last.id})
        return ReservationPage(found[:limit], token)

    async def commit(self, id: str, actual_amount: int, resource_id: str = "",
                     idempotency_key: str = "") -> ReservationResult:
        """Charge actual_amount (at most the reserved amount) and free the rest."""
        check_amount(actual_amount, "actual_amount", allow_zero=True)
        check_text(resource_id, "resource_id")
        await self._reservation_for(RESERVATIONS_WRITE, id)
        idem = self._idempotency(idempotency_key, "commit", id=id, actual_amount=actual_amount,
                                 resource_id=resource_id)
        return await self._propose(Commit(id, actual_amount, resource_id, self.clock(), idem))

    async def release(self, id: str, reason: str = "", idempotency_key: str = "") -> ReservationResult:
        """Free a reservation's credits and quota units."""
        check_text(reason, "reason")
        await self._reservation_for(RESERVATIONS_WRITE, id)
        idem = self._idempotency(idempotency_key, "release", id=id, reason=reason)
        return await self._propose(Release(id, reason, self.clock(), idem))

    async def expire_reservations(self) -> list[str]:
        """Propose the expiry of the reservations past their deadline (if any); the ids expired."""
        now = self.clock()
        deadline = await self.log.read(self.store.next_deadline)
        if deadline is None or deadline > now:
            return []
        return await self._propose(ExpireReservations(now))

    async def _expire_periodically(self, period: float) -> None:
        while True:
            try:
                await self.expire_reservations()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep expiring; the next round retries
                log.exception("reservation expiry failed")
            await asyncio.sleep(period)

    # -- quotas and admission ---------------------------------------------------------------------

    async def set_quota(self, project_id: str, resource_type: str, limit: int, idempotency_key: str = "") -> Quota:
        """Set how many units of a resource type a project may hold (operators only)."""
        check_id(resource_type, "resource_type")
        check_amount(limit, "limit", allow_zero=True)
        await self._wallet_for(QUOTAS_MANAGE, project_id)
        idem = self._idempotency(idempotency_key, "set_quota", project_id=project_id, resource_type=resource_type,
                                 limit=limit)
        return await self._propose(SetQuota(project_id, resource_type, limit, self.clock(), idem))

    async def quota(self, project_id: str, resource_type: str) -> Quota:
        """A project's quota of a resource type."""
        check_id(resource_type, "resource_type")
        await self._wallet_for(QUOTAS_READ, project_id)
        quota = await self.log.read(lambda: self.store.quota(project_id, resource_type))
        if quota is None:
            raise NotFound("no quota for this resource type", {"project_id": project_id,
                                                               "resource_type": resource_type})
        return quota

    async def quotas(self, project_id: str) -> list[Quota]:
        """A project's quotas."""
        await self._wallet_for(QUOTAS_READ, project_id)
        return await self.log.read(lambda: self.store.quotas(project_id))

    async def free_quota(self, project_id: str, resource_type: str, quantity: int = 1,
                         idempotency_key: str = "") -> Quota:
        """Give back quota units a committed resource held (its owner calls this when it is gone)."""
        check_id(resource_type, "resource_type")
        check_amount(quantity, "quantity")
        await self._wallet_for(QUOTAS_WRITE, project_id)
        idem = self._idempotency(idempotency_key, "free_quota", project_id=project_id, resource_type=resource_type,
                                 quantity=quantity)
        return await self._propose(FreeQuota(project_id, resource_type, quantity, self.clock(), idem))

    async def check_admission(self, project_id: str, amount: int, resource_type: str = "",
                              quantity: int = 1) -> Admission:
        """Whether a reservation of amount (and quantity units of resource_type) would be admitted now."""
        check_amount(amount, "amount", allow_zero=True)
        if resource_type:
            check_id(resource_type, "resource_type")
        check_id(project_id, "project_id")

        def read() -> tuple[Wallet | None, Quota | None]:
            return (self.store.wallet(project_id),
                    self.store.quota(project_id, resource_type) if resource_type else None)

        wallet, quota = await self.log.read(read)
        self._require(RESERVATIONS_READ, wallet.org_id if wallet else "", project_id)
        limit, usage = (quota.limit, quota.usage) if quota else (-1, 0)
        if wallet is None:
            return Admission(False, "NO_WALLET", 0, limit, usage)
        if wallet.status is not WalletStatus.ACTIVE:
            return Admission(False, f"WALLET_{wallet.status.value}", wallet.available, limit, usage)
        if amount > wallet.available:
            return Admission(False, "INSUFFICIENT_CREDITS", wallet.available, limit, usage)
        if quota is not None and usage + quantity > limit:
            return Admission(False, "QUOTA_EXCEEDED", wallet.available, limit, usage)
        return Admission(True, "", wallet.available, limit, usage)

    # -- audit ----------------------------------------------------------------------------------------

    async def audit(self) -> AuditReport:
        """Replay the whole ledger: every posting balanced, every wallet equal to its accounts (operators only)."""
        self._require(WALLETS_MANAGE)

        def read() -> AuditReport:
            sums = self.store.account_sums()
            unbalanced = self.store.unbalanced_transactions()
            wallets = self.store.all_wallets()
            mismatches = []
            for w in wallets:
                available = sums.get(available_account(w.project_id), 0)
                reserved = sums.get(reserved_account(w.project_id), 0)
                if (w.balance, w.reserved) != (available + reserved, reserved) or w.available < 0:
                    mismatches.append({"project_id": w.project_id, "balance": w.balance, "reserved": w.reserved,
                                       "ledger_balance": available + reserved, "ledger_reserved": reserved})
            ok = not unbalanced and not mismatches and sum(sums.values()) == 0
            return AuditReport(ok, self.store.count_transactions(), len(wallets), unbalanced, mismatches,
                               sums.get(REVENUE, 0), -sums.get(EXTERNAL, 0))

        return await self.log.read(read)

    async def close(self) -> None:
        """Stop expiring reservations and stop the log (the store is closed by whoever opened it)."""
        if self._expiry is not None:
            self._expiry.cancel()
            try:
                await self._expiry
            except asyncio.CancelledError:
                pass
        await self.log.close()

