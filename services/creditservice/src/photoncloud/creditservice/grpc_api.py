"""CreditService's gRPC adapter: protobuf in, `await core.x(...)`, protobuf out (shaped by views.py).

Mutating calls take an `idempotency-key` metadata entry, as the REST routes take the header.
"""

from __future__ import annotations

import grpc

from photoncloud.common.messages import to_message
from photoncloud.common.server import GrpcService
from photoncloud.common.times import parse_time
from photoncloud.creditservice.v1 import credit_pb2 as pb
from photoncloud.creditservice.v1 import credit_pb2_grpc as pb_grpc

from . import core, views


def _key(context: grpc.aio.ServicerContext) -> str:
    return dict(context.invocation_metadata() or ()).get("idempotency-key", "")


def _time(value: str, field: str) -> float:
    return parse_time(value, field) if value else 0.0


class WalletsServicer(pb_grpc.WalletsServicer):
    """photoncloud.creditservice.v1.Wallets over the core."""

    def __init__(self, credits: core.CreditCore):
        self.credits = credits

    async def CreateWallet(self, request: pb.CreateWalletRequest, context: grpc.aio.ServicerContext) -> pb.Wallet:
        wallet = await self.credits.create_wallet(request.project_id, request.org_id, request.initial_balance,
                                                  _key(context))
        return to_message(views.wallet(wallet), pb.Wallet)

    async def GetWallet(self, request: pb.GetWalletRequest, context: grpc.aio.ServicerContext) -> pb.Wallet:
        return to_message(views.wallet(await self.credits.wallet(request.project_id)), pb.Wallet)

    async def ListWallets(self, request: pb.ListWalletsRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListWalletsResponse:
        found = await self.credits.wallets(request.page_size, request.page_token, request.org_id)
        page = views.page([views.wallet(w) for w in found.items], found.next_page_token)
        return to_message(page, pb.ListWalletsResponse)

    async def UpdateWallet(self, request: pb.UpdateWalletRequest, context: grpc.aio.ServicerContext) -> pb.Wallet:
        wallet = await self.credits.set_wallet_status(request.project_id, request.status, _key(context))
        return to_message(views.wallet(wallet), pb.Wallet)

    async def TopUp(self, request: pb.TopUpRequest, context: grpc.aio.ServicerContext) -> pb.TopUpResponse:
        result = await self.credits.top_up(request.project_id, request.amount, request.description, _key(context))
        return to_message({"wallet": views.wallet(result.wallet), "transaction": views.transaction(result.transaction)},
                          pb.TopUpResponse)

    async def ListTransactions(self, request: pb.ListTransactionsRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListTransactionsResponse:
        found = await self.credits.transactions(request.project_id, request.page_size, request.page_token,
                                                request.type, request.reservation_id,
                                                _time(request.since, "since"), _time(request.until, "until"))
        return to_message(views.page([views.transaction(t) for t in found.items], found.next_page_token),
                          pb.ListTransactionsResponse)

    async def Audit(self, request: pb.AuditRequest, context: grpc.aio.ServicerContext) -> pb.AuditResponse:
        return to_message(views.audit(await self.credits.audit()), pb.AuditResponse)


class ReservationsServicer(pb_grpc.ReservationsServicer):
    """photoncloud.creditservice.v1.Reservations over the core."""

    def __init__(self, credits: core.CreditCore):
        self.credits = credits

    async def Reserve(self, request: pb.ReserveRequest, context: grpc.aio.ServicerContext) -> pb.ReservationResponse:
        result = await self.credits.reserve(request.project_id, request.amount, request.description,
                                            request.resource_type, request.ttl_seconds or core.DEFAULT_TTL_SECONDS,
                                            request.quantity or 1, _key(context))
        return to_message(views.reservation_result(result), pb.ReservationResponse)

    async def GetReservation(self, request: pb.GetReservationRequest,
                             context: grpc.aio.ServicerContext) -> pb.Reservation:
        return to_message(views.reservation(await self.credits.reservation(request.id)), pb.Reservation)

    async def ListReservations(self, request: pb.ListReservationsRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListReservationsResponse:
        found = await self.credits.reservations(request.project_id, request.status, request.page_size,
                                                request.page_token)
        return to_message(views.page([views.reservation(r) for r in found.items], found.next_page_token),
                          pb.ListReservationsResponse)

    async def Commit(self, request: pb.CommitRequest, context: grpc.aio.ServicerContext) -> pb.ReservationResponse:
        result = await self.credits.commit(request.id, request.actual_amount, request.resource_id, _key(context))
        return to_message(views.reservation_result(result), pb.ReservationResponse)

    async def Release(self, request: pb.ReleaseRequest, context: grpc.aio.ServicerContext) -> pb.ReservationResponse:
        result = await self.credits.release(request.id, request.reason, _key(context))
        return to_message(views.reservation_result(result), pb.ReservationResponse)


class QuotasServicer(pb_grpc.QuotasServicer):
    """photoncloud.creditservice.v1.Quotas over the core."""

    def __init__(self, credits: core.CreditCore):
        self.credits = credits

    async def SetQuota(self, request: pb.SetQuotaRequest, context: grpc.aio.ServicerContext) -> pb.Quota:
        quota = await self.credits.set_quota(request.project_id, request.resource_type, request.limit, _key(context))
        return to_message(views.quota(quota), pb.Quota)

    async def GetQuota(self, request: pb.GetQuotaRequest, context: grpc.aio.ServicerContext) -> pb.Quota:
        return to_message(views.quota(await self.credits.quota(request.project_id, request.resource_type)), pb.Quota)

    async def ListQuotas(self, request: pb.ListQuotasRequest,
                         context: grpc.aio.ServicerContext) -> pb.ListQuotasResponse:
        quotas = await self.credits.quotas(request.project_id)
        return to_message({"items": [views.quota(q) for q in quotas]}, pb.ListQuotasResponse)

    async def FreeQuota(self, request: pb.FreeQuotaRequest, context: grpc.aio.ServicerContext) -> pb.Quota:
        quota = await self.credits.free_quota(request.project_id, request.resource_type, request.quantity or 1,
                                              _key(context))
        return to_message(views.quota(quota), pb.Quota)

    async def CheckAdmission(self, request: pb.CheckAdmissionRequest,
                             context: grpc.aio.ServicerContext) -> pb.Admission:
        answer = await self.credits.check_admission(request.project_id, request.amount, request.resource_type,
                                                    request.quantity or 1)
        return to_message(views.admission(answer), pb.Admission)


def services(credits: core.CreditCore) -> list[GrpcService]:
    """CreditService's gRPC services over credits."""
    descriptor = pb.DESCRIPTOR.services_by_name
    return [
        GrpcService(descriptor["Wallets"].full_name,
                    lambda server: pb_grpc.add_WalletsServicer_to_server(WalletsServicer(credits), server)),
        GrpcService(descriptor["Reservations"].full_name,
                    lambda server: pb_grpc.add_ReservationsServicer_to_server(ReservationsServicer(credits), server)),
        GrpcService(descriptor["Quotas"].full_name,
                    lambda server: pb_grpc.add_QuotasServicer_to_server(QuotasServicer(credits), server)),
    ]
