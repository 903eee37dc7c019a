"""CreditService's gRPC adapter: protobuf in, `await core.x(...)`, protobuf out (built by convert.py).
REST is served by the same servicers, through the routes the contract binds.

Mutating calls take an `idempotency-key` metadata entry (over REST, the Idempotency-Key header).
"""

from __future__ import annotations

from typing import Any

from photoncloud.common.messages import optional
from photoncloud.common.server import GrpcService, grpc_services
from photoncloud.creditservice.v1 import credit_pb2 as pb
from photoncloud.creditservice.v1 import credit_pb2_grpc as pb_grpc

from . import convert, core

# A servicer's context: grpc.aio.ServicerContext, or the REST gateway's RestContext.
Context = Any


def _key(context: Context) -> str:
    return str(dict(context.invocation_metadata() or ()).get("idempotency-key", ""))


class WalletsServicer(pb_grpc.WalletsServicer):
    """photoncloud.creditservice.v1.Wallets over the core."""

    def __init__(self, credits: core.CreditCore):
        self.credits = credits

    async def CreateWallet(self, request: pb.CreateWalletRequest, context: Context) -> pb.Wallet:
        return convert.wallet(await self.credits.create_wallet(request.project_id, request.org_id,
                                                               request.initial_balance, _key(context)))

    async def GetWallet(self, request: pb.GetWalletRequest, context: Context) -> pb.Wallet:
        return convert.wallet(await self.credits.wallet(request.project_id))

    async def ListWallets(self, request: pb.ListWalletsRequest, context: Context) -> pb.ListWalletsResponse:
        found = await self.credits.wallets(request.page_size, request.page_token, request.org_id)
        return pb.ListWalletsResponse(items=[convert.wallet(w) for w in found.items],
                                      next_page_token=found.next_page_token)

    async def UpdateWallet(self, request: pb.UpdateWalletRequest, context: Context) -> pb.Wallet:
        return convert.wallet(await self.credits.set_wallet_status(request.project_id, request.status, _key(context)))

    async def TopUp(self, request: pb.TopUpRequest, context: Context) -> pb.TopUpResponse:
        result = await self.credits.top_up(request.project_id, request.amount, request.description, _key(context))
        return pb.TopUpResponse(wallet=convert.wallet(result.wallet),
                                transaction=convert.transaction(result.transaction))

    async def ListTransactions(self, request: pb.ListTransactionsRequest,
                               context: Context) -> pb.ListTransactionsResponse:
        found = await self.credits.transactions(request.project_id, request.page_size, request.page_token,
                                                request.type, request.reservation_id,
                                                convert.time(request.since, "since"),
                                                convert.time(request.until, "until"))
        return pb.ListTransactionsResponse(items=[convert.transaction(t) for t in found.items],
                                           next_page_token=found.next_page_token)

    async def Audit(self, request: pb.AuditRequest, context: Context) -> pb.AuditResponse:
        return convert.audit(await self.credits.audit())


class ReservationsServicer(pb_grpc.ReservationsServicer):
    """photoncloud.creditservice.v1.Reservations over the core."""

    def __init__(self, credits: core.CreditCore):
        self.credits = credits

    async def Reserve(self, request: pb.ReserveRequest, context: Context) -> pb.ReservationResponse:
        result = await self.credits.reserve(
            request.project_id, request.amount, request.description, request.resource_type,
            optional(request, "ttl_seconds", core.DEFAULT_TTL_SECONDS),
            optional(request, "quantity", 1), _key(context))
        return convert.reservation_result(result)

    async def GetReservation(self, request: pb.GetReservationRequest, context: Context) -> pb.Reservation:
        return convert.reservation(await self.credits.reservation(request.id))

    async def ListReservations(self, request: pb.ListReservationsRequest,
                               context: Context) -> pb.ListReservationsResponse:
        found = await self.credits.reservations(request.project_id, request.status, request.page_size,
                                                request.page_token)
        return pb.ListReservationsResponse(items=[convert.reservation(r) for r in found.items],
                                           next_page_token=found.next_page_token)

    async def Commit(self, request: pb.CommitRequest, context: Context) -> pb.ReservationResponse:
        return convert.reservation_result(await self.credits.commit(request.id, request.actual_amount,
                                                                    request.resource_id, _key(context)))

    async def Release(self, request: pb.ReleaseRequest, context: Context) -> pb.ReservationResponse:
        return convert.reservation_result(await self.credits.release(request.id, request.reason, _key(context)))


class QuotasServicer(pb_grpc.QuotasServicer):
    """photoncloud.creditservice.v1.Quotas over the core."""

    def __init__(self, credits: core.CreditCore):
        self.credits = credits

    async def SetQuota(self, request: pb.SetQuotaRequest, context: Context) -> pb.Quota:
        return convert.quota(await self.credits.set_quota(request.project_id, request.resource_type, request.limit,
                                                          _key(context)))

    async def GetQuota(self, request: pb.GetQuotaRequest, context: Context) -> pb.Quota:
        return convert.quota(await self.credits.quota(request.project_id, request.resource_type))

    async def ListQuotas(self, request: pb.ListQuotasRequest, context: Context) -> pb.ListQuotasResponse:
        return pb.ListQuotasResponse(items=[convert.quota(q) for q in await self.credits.quotas(request.project_id)])

    async def FreeQuota(self, request: pb.FreeQuotaRequest, context: Context) -> pb.Quota:
        return convert.quota(await self.credits.free_quota(request.project_id, request.resource_type,
                                                           optional(request, "quantity", 1), _key(context)))

    async def CheckAdmission(self, request: pb.CheckAdmissionRequest, context: Context) -> pb.Admission:
        return convert.admission(await self.credits.check_admission(
            request.project_id, request.amount, request.resource_type, optional(request, "quantity", 1)))


def services(credits: core.CreditCore) -> list[GrpcService]:
    """CreditService's gRPC services over credits."""
    return grpc_services(pb, pb_grpc, {"Wallets": WalletsServicer(credits),
                                       "Reservations": ReservationsServicer(credits),
                                       "Quotas": QuotasServicer(credits)})
