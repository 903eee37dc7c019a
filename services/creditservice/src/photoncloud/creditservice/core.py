"""CreditService's domain: wallets on a double-entry ledger, two-phase reservations, quotas, idempotency.

Anchors: TigerBeetle (every transaction is postings between accounts that sum to zero; a
reservation is a pending transfer that is posted, possibly for less, or voided, or times out) and
Stripe (an `Idempotency-Key` makes a retried request return the first one's result).

Every operation authorizes, validates, then proposes a command (commands.py) to the log, which
CreditStateMachine (machine.py) applies, or reads the store. The state machine never reads a clock:
the core puts `now` into each command, and proposes ExpireReservations(now) periodically (also right
after a restart) to release the reservations past their deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from photoncloud.common import auth, paging
from photoncloud.common.errors import InvalidArgument, NotFound
from photoncloud.common.projects import Projects
from photoncloud.common.replication import Log, Scan

# The log's journal and the idempotency records hold pickles that name the commands and the
# results as photoncloud.creditservice.core.<name> (they were defined here): importing them here
# keeps those pickles loadable.
from .commands import (Command, Commit, CreateWallet, ExpireReservations, FreeQuota, Idempotency, Release, Reserve,
                       SetQuota, SetWalletStatus, TopUp)
from .machine import MAX_AMOUNT, CreditStateMachine, ReservationResult, TopUpResult
from .records import (EXTERNAL, REVENUE, Admission, AuditReport, Posting, Quota, Reservation, ReservationStatus,
                      Transaction, TransactionType, Wallet, WalletStatus, available_account, reserved_account)

log = logging.getLogger("photoncloud.creditservice")
R = TypeVar("R")

MAX_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_TTL_SECONDS = 300
EXPIRY_CHECK_SECONDS = 0.5
MAX_TEXT = 1024
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

# Permissions. Tenants read their wallet and reserve against it; operators (admin) create wallets,
# top them up, change their status and set quotas.
WALLETS_READ, WALLETS_MANAGE = "creditservice:wallets:read", "creditservice:wallets:manage"
RESERVATIONS_READ, RESERVATIONS_WRITE = "creditservice:reservations:read", "creditservice:reservations:write"
QUOTAS_READ, QUOTAS_WRITE, QUOTAS_MANAGE = ("creditservice:quotas:read", "creditservice:quotas:write",
                                            "creditservice:quotas:manage")


@dataclass(frozen=True)
class TransactionPage:
    """A page of a wallet's ledger, newest first."""

    items: list[Transaction]
    next_page_token: str


@dataclass(frozen=True)
class ReservationPage:
    """A page of a project's reservations, oldest first."""

    items: list[Reservation]
    next_page_token: str


@dataclass(frozen=True)
class WalletPage:
    """A page of wallets, by project id."""

    items: list[Wallet]
    next_page_token: str


# -- the store the state machine needs -------------------------------------------------------------

class CreditStore(Protocol):
    """What CreditStateMachine needs from its store (SqliteCreditStore in store.py)."""

    def transaction(self) -> Any:
        """Commit everything inside at once, or nothing if it raises."""

    def savepoint(self) -> Any:
        """Inside a transaction: undo everything inside if it raises, keep it otherwise."""

    def applied_index(self) -> int:
        """The log index of the last applied command."""

    def set_meta(self, name: str, value: int) -> None:
        """Keep a number in the meta table."""

    def wallet(self, project_id: str) -> Wallet | None:
        """A project's wallet."""

    def save_wallet(self, wallet: Wallet) -> None:
        """Insert or replace a wallet."""

    def add_transaction(self, project_id: str, type: TransactionType, amount: int, description: str,
                        reservation_id: str, postings: tuple[Posting, ...], wallet: Wallet,
                        now: float) -> Transaction:
        """Append a transaction and its postings; the wallet is as it stands after it."""

    def reservation(self, id: str) -> Reservation | None:
        """A reservation by id."""

    def save_reservation(self, reservation: Reservation) -> None:
        """Insert or replace a reservation."""

    def due_reservations(self, now: float) -> list[Reservation]:
        """Pending reservations whose deadline has passed, by deadline."""

    def quota(self, project_id: str, resource_type: str) -> Quota | None:
        """A project's quota for a resource type."""

    def save_quota(self, quota: Quota) -> None:
        """Insert or replace a quota."""

    def remembered(self, subject: str, key: str) -> tuple[str, bytes] | None:
        """(fingerprint, result) of the request that first used this key."""

    def remember(self, subject: str, key: str, fingerprint: str, result: bytes, now: float) -> None:
        """Keep a request's result under its idempotency key."""

    def forget_before(self, moment: float) -> int:
        """Drop idempotency records made before moment; how many."""

    def snapshot(self, path: str) -> None:
        """Copy the whole database, as of the last commit, to a new SQLite file at path."""

    def restore(self, path: str) -> None:
        """Replace the whole database with the SQLite file at path."""


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
        self._expiry: asyncio.Task[None] | None = None
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

    async def _propose(self, command: Command, result: type[R]) -> R:
        """Apply command through the log; its result is a result (as the state machine returns for it)."""
        return cast(R, await self.log.propose(command))

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
        return await self._propose(CreateWallet(project_id, org_id, initial_balance, self.clock(), idem), Wallet)

    async def wallet(self, project_id: str) -> Wallet:
        """A project's wallet."""
        return await self._wallet_for(WALLETS_READ, project_id)

    async def wallets(self, page_size: int = 0, page_token: str = "", org_id: str = "") -> WalletPage:
        """The wallets the caller may see, by project id."""
        limit = paging.page_size(page_size)
        after = ""
        if page_token:
            token_after = paging.decode_token(page_token).get("after")
            if not isinstance(token_after, str):
                raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
            after = token_after
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
        return await self._propose(TopUp(project_id, amount, description, self.clock(), idem), TopUpResult)

    async def set_wallet_status(self, project_id: str, status: str, idempotency_key: str = "") -> Wallet:
        """Suspend, reactivate or close a wallet (operators only; closing is final)."""
        try:
            wanted = WalletStatus(status)
        except ValueError:
            raise InvalidArgument("status must be ACTIVE, SUSPENDED or CLOSED", {"field": "status"}) from None
        await self._wallet_for(WALLETS_MANAGE, project_id)
        idem = self._idempotency(idempotency_key, "set_wallet_status", project_id=project_id, status=status)
        return await self._propose(SetWalletStatus(project_id, wanted, self.clock(), idem), Wallet)

    async def transactions(self, project_id: str, page_size: int = 0, page_token: str = "", type: str = "",
                           reservation_id: str = "", since: float = 0.0, until: float = 0.0) -> TransactionPage:
        """A wallet's ledger, newest first, filtered by type, reservation or time."""
        await self._wallet_for(WALLETS_READ, project_id)
        if type and type not in TransactionType.__members__:
            raise InvalidArgument(f"type must be one of {', '.join(TransactionType.__members__)}", {"field": "type"})
        limit = paging.page_size(page_size)
        before = 0
        if page_token:
            token_before = paging.decode_token(page_token).get("before")
            if not isinstance(token_before, int):
                raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
            before = token_before
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
                                           quantity, ttl_seconds, self.clock(), idem), ReservationResult)

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
        return await self._propose(Commit(id, actual_amount, resource_id, self.clock(), idem), ReservationResult)

    async def release(self, id: str, reason: str = "", idempotency_key: str = "") -> ReservationResult:
        """Free a reservation's credits and quota units."""
        check_text(reason, "reason")
        await self._reservation_for(RESERVATIONS_WRITE, id)
        idem = self._idempotency(idempotency_key, "release", id=id, reason=reason)
        return await self._propose(Release(id, reason, self.clock(), idem), ReservationResult)

    async def expire_reservations(self) -> list[str]:
        """Propose the expiry of the reservations past their deadline (if any); the ids expired."""
        now = self.clock()
        deadline = await self.log.read(self.store.next_deadline)
        if deadline is None or deadline > now:
            return []
        return await self._propose(ExpireReservations(now), list)

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
        return await self._propose(SetQuota(project_id, resource_type, limit, self.clock(), idem), Quota)

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
        return await self._propose(FreeQuota(project_id, resource_type, quantity, self.clock(), idem), Quota)

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

        return await self.log.read(Scan(read))  # the whole ledger: not on the event loop

    async def close(self) -> None:
        """Stop expiring reservations and stop the log (the store is closed by whoever opened it)."""
        if self._expiry is not None:
            self._expiry.cancel()
            try:
                await self._expiry
            except asyncio.CancelledError:
                pass
        await self.log.close()
