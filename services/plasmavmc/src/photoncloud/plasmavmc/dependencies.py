"""The services PlasmaVMC calls, over gRPC with the caller's token: CreditService and PrismNET.

The core sees them as two small protocols (Billing, Network), so tests can stand in for them.
A dependency that cannot be reached is UNAVAILABLE (with `details.dependency`); any other error
comes back as the dependency gave it (the ledger's INSUFFICIENT_CREDITS reaches the user as
FAILED_PRECONDITION with its details).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from photoncloud.common.errors import Unavailable
from photoncloud.common.rpc import client_interceptors, error_from_rpc
from photoncloud.creditservice.v1 import credit_pb2, credit_pb2_grpc
from photoncloud.prismnet.v1 import prismnet_pb2, prismnet_pb2_grpc

CALL_TIMEOUT = 5.0  # seconds; a dependency that does not answer within this counts as down
DOWN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# A dependency that restarts is used again within a second (gRPC's default backoff grows to 120 s).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


@dataclass(frozen=True)
class PortInfo:
    """A port made for a VM, with what the hypervisor needs of its subnet."""

    id: str
    subnet_id: str
    ip_address: str
    mac_address: str
    gateway_ip: str
    cidr_block: str


class Billing(Protocol):
    """Two-phase charging: reserve credits, then commit or release them."""

    async def reserve(self, project_id: str, amount: int, description: str, ttl_seconds: int) -> str:
        """Hold amount credits; the reservation's id."""

    async def commit(self, reservation_id: str, amount: int, resource_id: str) -> None:
        """Charge amount of the reservation."""

    async def release(self, reservation_id: str, reason: str) -> None:
        """Free the reservation."""


class Network(Protocol):
    """Ports on subnets."""

    async def subnet_project(self, subnet_id: str) -> str:
        """The project owning the subnet's VPC."""

    async def create_port(self, subnet_id: str, name: str, device_id: str) -> PortInfo:
        """A port on the subnet, attached to the device (a VM)."""

    async def delete_port(self, port_id: str) -> None:
        """Delete a port (done already when it is not found)."""


async def _call(dependency: str, method: Any, request: Any) -> Any:
    try:
        # wait_for_ready: a call made while the channel reconnects waits for it (up to the timeout)
        # instead of failing at once.
        return await method(request, timeout=CALL_TIMEOUT, wait_for_ready=True)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in DOWN:
            raise Unavailable(f"{dependency} cannot be reached: {exc.details() or exc.code().name}",
                              {"dependency": dependency}) from None
        raise error_from_rpc(exc) from None


class _Channel:
    """A channel opened on first use (in the serving loop), closed by close()."""

    def __init__(self, target: str):
        self.target = target
        self._channel: grpc.aio.Channel | None = None

    def get(self) -> grpc.aio.Channel:
        if self._channel is None:
            # The shared interceptors forward the caller's token and the request ID.
            self._channel = grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS,
                                                      interceptors=client_interceptors())
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


class CreditServiceBilling:
    """Billing on CreditService's Reservations service."""

    name = "creditservice"

    def __init__(self, target: str):
        self.target = target
        self._channel = _Channel(target)

    def _stub(self) -> credit_pb2_grpc.ReservationsStub:
        return credit_pb2_grpc.ReservationsStub(self._channel.get())

    async def reserve(self, project_id: str, amount: int, description: str, ttl_seconds: int) -> str:
        """Reservations/Reserve."""
        request = credit_pb2.ReserveRequest(project_id=project_id, amount=amount, description=description,
                                            resource_type="", ttl_seconds=ttl_seconds)
        response = await _call(self.name, self._stub().Reserve, request)
        return response.reservation.id

    async def commit(self, reservation_id: str, amount: int, resource_id: str) -> None:
        """Reservations/Commit."""
        await _call(self.name, self._stub().Commit,
                    credit_pb2.CommitRequest(id=reservation_id, actual_amount=amount, resource_id=resource_id))

    async def release(self, reservation_id: str, reason: str) -> None:
        """Reservations/Release."""
        await _call(self.name, self._stub().Release, credit_pb2.ReleaseRequest(id=reservation_id, reason=reason))

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()


class PrismNetNetwork:
    """Network on PrismNET's Subnets, Vpcs and Ports services."""

    name = "prismnet"

    def __init__(self, target: str):
        self.target = target
        self._channel = _Channel(target)

    async def subnet_project(self, subnet_id: str) -> str:
        """Subnets/GetSubnet, then Vpcs/GetVpc."""
        channel = self._channel.get()
        subnet = await _call(self.name, prismnet_pb2_grpc.SubnetsStub(channel).GetSubnet,
                             prismnet_pb2.GetSubnetRequest(id=subnet_id))
        vpc = await _call(self.name, prismnet_pb2_grpc.VpcsStub(channel).GetVpc,
                          prismnet_pb2.GetVpcRequest(id=subnet.vpc_id))
        return vpc.project_id

    async def create_port(self, subnet_id: str, name: str, device_id: str) -> PortInfo:
        """Ports/CreatePort with the VM as its device (created attached), and its subnet's range."""
        channel = self._channel.get()
        port = await _call(self.name, prismnet_pb2_grpc.PortsStub(channel).CreatePort,
                           prismnet_pb2.CreatePortRequest(subnet_id=subnet_id, name=name, device_id=device_id,
                                                          device_type="VM"))
        try:
            subnet = await _call(self.name, prismnet_pb2_grpc.SubnetsStub(channel).GetSubnet,
                                 prismnet_pb2.GetSubnetRequest(id=subnet_id))
        except BaseException:
            await self.delete_port(port.id)
            raise
        return PortInfo(port.id, port.subnet_id, port.ip_address, port.mac_address, subnet.gateway_ip,
                        subnet.cidr_block)

    async def delete_port(self, port_id: str) -> None:
        """Ports/DeletePort; a port already gone counts as deleted."""
        try:
            await _call(self.name, prismnet_pb2_grpc.PortsStub(self._channel.get()).DeletePort,
                        prismnet_pb2.DeletePortRequest(id=port_id))
        except Exception as exc:  # noqa: BLE001 - only NOT_FOUND is swallowed
            if getattr(getattr(exc, "code", None), "name", "") != "NOT_FOUND":
                raise

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()
