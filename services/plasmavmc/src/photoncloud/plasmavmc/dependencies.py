"""The services PlasmaVMC calls, over gRPC with the caller's token: CreditService and PrismNET.

The core sees them as two small protocols (Billing here, Network in photoncloud.common.network,
whose PrismNET client k8shost shares), so tests can stand in for them. A dependency that cannot
be reached is UNAVAILABLE (with `details.dependency`); any other error comes back as the
dependency gave it (the ledger's INSUFFICIENT_CREDITS reaches the user as FAILED_PRECONDITION
with its details).
"""

from __future__ import annotations

from typing import Protocol

from photoncloud.common.dependencies import Channel, call
from photoncloud.creditservice.v1 import credit_pb2, credit_pb2_grpc


class Billing(Protocol):
    """Two-phase charging: reserve credits, then commit or release them."""

    async def reserve(self, project_id: str, amount: int, description: str, ttl_seconds: int) -> str:
        """Hold amount credits; the reservation's id."""

    async def commit(self, reservation_id: str, amount: int, resource_id: str) -> None:
        """Charge amount of the reservation."""

    async def release(self, reservation_id: str, reason: str) -> None:
        """Free the reservation."""


class CreditServiceBilling:
    """Billing on CreditService's Reservations service."""

    name = "creditservice"

    def __init__(self, target: str):
        self.target = target
        self._channel = Channel(target)

    def _stub(self) -> credit_pb2_grpc.ReservationsStub:
        return credit_pb2_grpc.ReservationsStub(self._channel.get())

    async def reserve(self, project_id: str, amount: int, description: str, ttl_seconds: int) -> str:
        """Reservations/Reserve."""
        request = credit_pb2.ReserveRequest(project_id=project_id, amount=amount, description=description,
                                            resource_type="", ttl_seconds=ttl_seconds)
        response = await call(self.name, self._stub().Reserve, request)
        return str(response.reservation.id)

    async def commit(self, reservation_id: str, amount: int, resource_id: str) -> None:
        """Reservations/Commit."""
        await call(self.name, self._stub().Commit,
                    credit_pb2.CommitRequest(id=reservation_id, actual_amount=amount, resource_id=resource_id))

    async def release(self, reservation_id: str, reason: str) -> None:
        """Reservations/Release."""
        await call(self.name, self._stub().Release, credit_pb2.ReleaseRequest(id=reservation_id, reason=reason))

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()
