"""CreditService's state machine: applies the commands, one at a time, to the store.

Each command is applied in one fsynced SQLite transaction: the check that a wallet can afford a
reservation and the reservation itself are one atomic step, so no interleaving of requests can take
`available` below zero, and a command is either wholly applied (and acknowledged) or not at all. The
state machine never reads a clock: the proposer puts `now` into each command, and reservations past
their deadline are released by an ExpireReservations(now) command the core proposes.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from photoncloud.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from photoncloud.common.sqlite import SqliteStateMachine

from .commands import (Command, Commit, CreateWallet, ExpireReservations, FreeQuota, Release, Reserve, SetQuota,
                       SetWalletStatus, TopUp)
from .records import (EXTERNAL, REVENUE, Posting, Quota, Reservation, ReservationStatus, Transaction,
                      TransactionType, Wallet, WalletStatus, available_account, reserved_account)

if TYPE_CHECKING:
    from .store import SqliteCreditStore

MAX_AMOUNT = 2**53 - 1  # amounts stay exact in JSON (and in every language's doubles)
IDEMPOTENCY_KEEP_SECONDS = 24 * 3600  # as Stripe: a key may be reused a day later


@dataclass(frozen=True)
class ReservationResult:
    """A reservation and the wallet right after the operation on it."""

    reservation: Reservation
    wallet: Wallet


@dataclass(frozen=True)
class TopUpResult:
    """The wallet after a top-up, and the transaction that recorded it."""

    wallet: Wallet
    transaction: Transaction


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

    store: SqliteCreditStore
    snapshot_reads = True  # its whole state is the store's: nothing kept in Python while applying

    def execute(self, command: Command) -> object:
        """Apply one command; one carrying a used idempotency key returns the first one's result."""
        key = getattr(command, "idempotency", None)
        if key is None:
            return self._execute(command)
        seen = self.store.remembered(key.subject, key.key)
        if seen is not None:
            fingerprint, first = seen
            if fingerprint != key.fingerprint:
                raise FailedPrecondition("this Idempotency-Key was used with a different request",
                                         {"reason": "IDEMPOTENCY_KEY_REUSED", "idempotency_key": key.key})
            return pickle.loads(first)  # noqa: S301 - our own record, written below
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
