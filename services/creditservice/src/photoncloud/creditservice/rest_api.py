"""CreditService's REST adapter: JSON in, `await core.x(...)`, JSON out (shaped by views.py).

Mutating routes take an `Idempotency-Key` header: a retry with the same key returns the first
request's result; the same key with another body is FAILED_PRECONDITION (IDEMPOTENCY_KEY_REUSED).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from photoncloud.common.auth import OPERATOR, TENANT
from photoncloud.common.models import Body, Query, Result
from photoncloud.common.rest import RouteTable
from photoncloud.common.times import parse_time

from . import core, views
from .core import (DEFAULT_TTL_SECONDS, QUOTAS_MANAGE, QUOTAS_READ, QUOTAS_WRITE, RESERVATIONS_READ,
                   RESERVATIONS_WRITE, WALLETS_MANAGE, WALLETS_READ)

PACKAGE = "photoncloud.creditservice.v1."
WALLETS, RESERVATIONS, QUOTAS = PACKAGE + "Wallets/", PACKAGE + "Reservations/", PACKAGE + "Quotas/"


class WalletOut(Result):
    """A project's wallet: balance = available + reserved, in the smallest unit."""

    project_id: str
    org_id: str
    status: str = Field(description="ACTIVE, SUSPENDED or CLOSED")
    balance: int
    reserved: int
    available: int
    created_at: str
    updated_at: str


class WalletList(Result):
    """A page of wallets."""

    items: list[WalletOut]
    next_page_token: str


class PostingOut(Result):
    """One leg of a transaction."""

    account: str
    amount: int


class TransactionOut(Result):
    """An immutable ledger entry and the wallet right after it."""

    id: int
    project_id: str
    type: str = Field(description="TOPUP, RESERVE, COMMIT, RELEASE or EXPIRE")
    amount: int
    description: str
    reservation_id: str
    postings: list[PostingOut]
    balance_after: int
    reserved_after: int
    created_at: str


class TransactionList(Result):
    """A page of a wallet's ledger, newest first."""

    items: list[TransactionOut]
    next_page_token: str


class TopUpOut(Result):
    """The wallet after a top-up and the transaction recording it."""

    wallet: WalletOut
    transaction: TransactionOut


class ReservationOut(Result):
    """Credits (and quota units) held for a resource."""

    id: str
    project_id: str
    amount: int
    description: str
    resource_type: str
    quantity: int
    status: str = Field(description="PENDING, COMMITTED, RELEASED or EXPIRED")
    created_at: str
    expires_at: str
    resolved_at: str
    actual_amount: int
    resource_id: str
    reason: str


class ReservationResultOut(Result):
    """A reservation and the wallet right after the operation on it."""

    reservation: ReservationOut
    wallet: WalletOut


class ReservationList(Result):
    """A page of a project's reservations, oldest first."""

    items: list[ReservationOut]
    next_page_token: str


class QuotaOut(Result):
    """How many units of a resource type a project may hold, and holds."""

    project_id: str
    resource_type: str
    limit: int
    usage: int
    updated_at: str


class QuotaList(Result):
    """A project's quotas."""

    items: list[QuotaOut]


class AdmissionOut(Result):
    """Whether a reservation would be admitted now, and why not."""

    allowed: bool
    reason: str = Field(description="empty when allowed; INSUFFICIENT_CREDITS, QUOTA_EXCEEDED, NO_WALLET, "
                                    "WALLET_SUSPENDED or WALLET_CLOSED")
    available: int
    quota_limit: int = Field(description="-1: no quota for this resource type")
    quota_usage: int


class MismatchOut(Result):
    """A wallet whose stored figures differ from its ledger."""

    project_id: str
    balance: int
    reserved: int
    ledger_balance: int
    ledger_reserved: int


class AuditOut(Result):
    """The ledger replayed against every wallet."""

    ok: bool
    transactions: int
    wallets: int
    unbalanced_transactions: list[int]
    mismatches: list[MismatchOut]
    revenue: int = Field(description="credits charged in total")
    issued: int = Field(description="credits topped up in total")


class WalletBody(Body):
    """A wallet to open."""

    project_id: str = Field(description="an IAM project")
    org_id: str = Field("", description="the project's org (default: as IAM knows it)")
    initial_balance: int = 0


class WalletUpdate(Body):
    """A wallet's new status."""

    status: str = Field(description="ACTIVE, SUSPENDED or CLOSED (final)")


class TopUpBody(Body):
    """Credits to add."""

    amount: int
    description: str = ""


class PageQuery(Query):
    """A page of a listing."""

    page_size: int = 0
    page_token: str = ""


class WalletQuery(PageQuery):
    """Which wallets to list."""

    org_id: str = ""


class TransactionQuery(PageQuery):
    """Which transactions to list."""

    type: str = Field("", description="TOPUP, RESERVE, COMMIT, RELEASE or EXPIRE")
    reservation_id: str = ""
    since: str = Field("", description="RFC 3339: from this time on")
    until: str = Field("", description="RFC 3339: before this time")


class ReserveBody(Body):
    """Credits to hold for a resource."""

    project_id: str
    amount: int
    description: str = ""
    resource_type: str = ""
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    quantity: int = Field(1, description="quota units of resource_type the resource takes")


class ReservationQuery(PageQuery):
    """Which reservations to list."""

    project_id: str
    status: str = Field("", description="PENDING, COMMITTED, RELEASED or EXPIRED")


class CommitBody(Body):
    """What the resource actually cost."""

    actual_amount: int
    resource_id: str = ""


class ReleaseBody(Body):
    """Why the reservation is released."""

    reason: str = ""


class QuotaBody(Body):
    """A quota's new limit."""

    limit: int


class FreeBody(Body):
    """Quota units to give back."""

    quantity: int = 1


class AdmissionBody(Body):
    """A reservation to check."""

    project_id: str
    amount: int
    resource_type: str = ""
    quantity: int = 1


def _key(request: web.Request) -> str:
    return request.headers.get("Idempotency-Key", "")


def _time(value: str, field: str) -> float:
    return parse_time(value, field) if value else 0.0


def routes(credits: core.CreditCore) -> RouteTable:
    """CreditService's REST routes over credits."""
    table = RouteTable()

    @table.post("/api/v1/wallets", "Open a project's wallet (operators)", body=WalletBody, response=WalletOut,
                status=201, rpc=WALLETS + "CreateWallet", permission=WALLETS_MANAGE, who=OPERATOR)
    async def create_wallet(request: web.Request, body: WalletBody) -> WalletOut:
        wallet = await credits.create_wallet(body.project_id, body.org_id, body.initial_balance, _key(request))
        return WalletOut(**views.wallet(wallet))

    @table.get("/api/v1/wallets", "The wallets the caller may see", query=WalletQuery, response=WalletList,
               rpc=WALLETS + "ListWallets", permission=WALLETS_READ, who=TENANT)
    async def list_wallets(request: web.Request, query: WalletQuery) -> WalletList:
        found = await credits.wallets(query.page_size, query.page_token, query.org_id)
        return WalletList(**views.page([views.wallet(w) for w in found.items], found.next_page_token))

    @table.get("/api/v1/wallets/{project_id}", "A project's wallet", response=WalletOut,
               rpc=WALLETS + "GetWallet", permission=WALLETS_READ, who=TENANT)
    async def get_wallet(request: web.Request, project_id: str) -> WalletOut:
        return WalletOut(**views.wallet(await credits.wallet(project_id)))

    @table.patch("/api/v1/wallets/{project_id}", "Suspend, reactivate or close a wallet (operators)",
                 body=WalletUpdate, response=WalletOut, rpc=WALLETS + "UpdateWallet", permission=WALLETS_MANAGE,
                 who=OPERATOR)
    async def update_wallet(request: web.Request, project_id: str, body: WalletUpdate) -> WalletOut:
        return WalletOut(**views.wallet(await credits.set_wallet_status(project_id, body.status, _key(request))))

    @table.post("/api/v1/wallets/{project_id}/topup", "Add credits (operators)", body=TopUpBody, response=TopUpOut,
                rpc=WALLETS + "TopUp", permission=WALLETS_MANAGE, who=OPERATOR)
    async def top_up(request: web.Request, project_id: str, body: TopUpBody) -> TopUpOut:
        result = await credits.top_up(project_id, body.amount, body.description, _key(request))
        return TopUpOut(wallet=views.wallet(result.wallet), transaction=views.transaction(result.transaction))

    @table.get("/api/v1/wallets/{project_id}/transactions", "A wallet's ledger, newest first",
               query=TransactionQuery, response=TransactionList, rpc=WALLETS + "ListTransactions",
               permission=WALLETS_READ, who=TENANT)
    async def transactions(request: web.Request, project_id: str, query: TransactionQuery) -> TransactionList:
        found = await credits.transactions(project_id, query.page_size, query.page_token, query.type,
                                           query.reservation_id, _time(query.since, "since"),
                                           _time(query.until, "until"))
        return TransactionList(**views.page([views.transaction(t) for t in found.items], found.next_page_token))

    @table.get("/api/v1/audit", "Replay the ledger against every wallet (operators)", response=AuditOut,
               rpc=WALLETS + "Audit", permission=WALLETS_MANAGE, who=OPERATOR)
    async def audit(request: web.Request) -> AuditOut:
        return AuditOut(**views.audit(await credits.audit()))

    @table.post("/api/v1/reservations", "Hold credits for a resource (INSUFFICIENT_CREDITS when short)",
                body=ReserveBody, response=ReservationResultOut, status=201, rpc=RESERVATIONS + "Reserve",
                permission=RESERVATIONS_WRITE, who=TENANT)
    async def reserve(request: web.Request, body: ReserveBody) -> ReservationResultOut:
        result = await credits.reserve(body.project_id, body.amount, body.description, body.resource_type,
                                       body.ttl_seconds, body.quantity, _key(request))
        return ReservationResultOut(**views.reservation_result(result))

    @table.get("/api/v1/reservations", "A project's reservations, oldest first", query=ReservationQuery,
               response=ReservationList, rpc=RESERVATIONS + "ListReservations", permission=RESERVATIONS_READ,
               who=TENANT)
    async def list_reservations(request: web.Request, query: ReservationQuery) -> ReservationList:
        found = await credits.reservations(query.project_id, query.status, query.page_size, query.page_token)
        return ReservationList(**views.page([views.reservation(r) for r in found.items], found.next_page_token))

    @table.get("/api/v1/reservations/{id}", "A reservation", response=ReservationOut,
               rpc=RESERVATIONS + "GetReservation", permission=RESERVATIONS_READ, who=TENANT)
    async def get_reservation(request: web.Request, id: str) -> ReservationOut:
        return ReservationOut(**views.reservation(await credits.reservation(id)))

    @table.post("/api/v1/reservations/{id}/commit", "Charge the actual amount and free the rest", body=CommitBody,
                response=ReservationResultOut, rpc=RESERVATIONS + "Commit", permission=RESERVATIONS_WRITE, who=TENANT)
    async def commit(request: web.Request, id: str, body: CommitBody) -> ReservationResultOut:
        result = await credits.commit(id, body.actual_amount, body.resource_id, _key(request))
        return ReservationResultOut(**views.reservation_result(result))

    @table.post("/api/v1/reservations/{id}/release", "Free the whole reservation", body=ReleaseBody,
                response=ReservationResultOut, rpc=RESERVATIONS + "Release", permission=RESERVATIONS_WRITE, who=TENANT)
    async def release(request: web.Request, id: str, body: ReleaseBody) -> ReservationResultOut:
        return ReservationResultOut(**views.reservation_result(await credits.release(id, body.reason, _key(request))))

    @table.get("/api/v1/quotas/{project_id}", "A project's quotas", response=QuotaList,
               rpc=QUOTAS + "ListQuotas", permission=QUOTAS_READ, who=TENANT)
    async def list_quotas(request: web.Request, project_id: str) -> QuotaList:
        return QuotaList(items=[views.quota(q) for q in await credits.quotas(project_id)])

    @table.get("/api/v1/quotas/{project_id}/{resource_type}", "A project's quota of a resource type",
               response=QuotaOut, rpc=QUOTAS + "GetQuota", permission=QUOTAS_READ, who=TENANT)
    async def get_quota(request: web.Request, project_id: str, resource_type: str) -> QuotaOut:
        return QuotaOut(**views.quota(await credits.quota(project_id, resource_type)))

    @table.put("/api/v1/quotas/{project_id}/{resource_type}", "Set a quota's limit (operators)", body=QuotaBody,
               response=QuotaOut, rpc=QUOTAS + "SetQuota", permission=QUOTAS_MANAGE, who=OPERATOR)
    async def set_quota(request: web.Request, project_id: str, resource_type: str, body: QuotaBody) -> QuotaOut:
        return QuotaOut(**views.quota(await credits.set_quota(project_id, resource_type, body.limit, _key(request))))

    @table.post("/api/v1/quotas/{project_id}/{resource_type}/free", "Give back units of a resource that is gone",
                body=FreeBody, response=QuotaOut, rpc=QUOTAS + "FreeQuota", permission=QUOTAS_WRITE, who=TENANT)
    async def free_quota(request: web.Request, project_id: str, resource_type: str, body: FreeBody) -> QuotaOut:
        quota = await credits.free_quota(project_id, resource_type, body.quantity, _key(request))
        return QuotaOut(**views.quota(quota))

    @table.post("/api/v1/admission/check", "Whether a reservation would be admitted now, and why not",
                body=AdmissionBody, response=AdmissionOut, rpc=QUOTAS + "CheckAdmission",
                permission=RESERVATIONS_READ, who=TENANT)
    async def check_admission(request: web.Request, body: AdmissionBody) -> AdmissionOut:
        answer = await credits.check_admission(body.project_id, body.amount, body.resource_type, body.quantity)
        return AdmissionOut(**views.admission(answer))

    return table
