"""Ports on subnets, as the cores of services that put devices on PrismNET subnets see them
(PlasmaVMC's VM NICs, k8shost's pods): a small protocol that tests can stand in for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PortInfo:
    """A port made for a device, with what the host needs of its subnet."""

    id: str
    subnet_id: str
    ip_address: str
    mac_address: str
    gateway_ip: str
    cidr_block: str
    vpc_id: str = ""  # the VPC whose bridge the device plugs into (netdev.DeviceNames.bridge)


class Network(Protocol):
    """Ports on subnets."""

    async def subnet_project(self, subnet_id: str) -> str:
        """The project owning the subnet's VPC."""

    async def create_port(self, subnet_id: str, name: str, device_id: str) -> PortInfo:
        """A port on the subnet, attached to the device."""

    async def delete_port(self, port_id: str) -> None:
        """Delete a port (done already when it is not found)."""
