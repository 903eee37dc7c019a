"""The Network of network.py on PrismNET: a subnet's project, and ports made and deleted over gRPC
with the caller's token (PlasmaVMC's VM NICs, k8shost's pods)."""

from __future__ import annotations

from photoncloud.prismnet.v1 import prismnet_pb2, prismnet_pb2_grpc

from .dependencies import Channel, call
from .errors import Code, ServiceError
from .network import PortInfo


class PrismNetNetwork:
    """Network on PrismNET's Subnets, Vpcs and Ports services, for devices of one type (VM, POD)."""

    name = "prismnet"

    def __init__(self, target: str, device_type: str):
        self.target = target
        self.device_type = device_type
        self._channel = Channel(target)

    async def subnet_project(self, subnet_id: str) -> str:
        """Subnets/GetSubnet, then Vpcs/GetVpc."""
        channel = self._channel.get()
        subnet: prismnet_pb2.Subnet = await call(self.name, prismnet_pb2_grpc.SubnetsStub(channel).GetSubnet,
                                                 prismnet_pb2.GetSubnetRequest(id=subnet_id))
        vpc: prismnet_pb2.Vpc = await call(self.name, prismnet_pb2_grpc.VpcsStub(channel).GetVpc,
                         prismnet_pb2.GetVpcRequest(id=subnet.vpc_id))
        return vpc.project_id

    async def create_port(self, subnet_id: str, name: str, device_id: str) -> PortInfo:
        """Ports/CreatePort with the device (created attached), and its subnet's range."""
        channel = self._channel.get()
        port: prismnet_pb2.Port = await call(
            self.name, prismnet_pb2_grpc.PortsStub(channel).CreatePort,
            prismnet_pb2.CreatePortRequest(subnet_id=subnet_id, name=name, device_id=device_id,
                                           device_type=self.device_type))
        try:
            subnet: prismnet_pb2.Subnet = await call(self.name, prismnet_pb2_grpc.SubnetsStub(channel).GetSubnet,
                                                     prismnet_pb2.GetSubnetRequest(id=subnet_id))
        except BaseException:
            await self.delete_port(port.id)
            raise
        return PortInfo(port.id, port.subnet_id, port.ip_address, port.mac_address, subnet.gateway_ip,
                        subnet.cidr_block, port.vpc_id)

    async def delete_port(self, port_id: str) -> None:
        """Ports/DeletePort; a port already gone counts as deleted."""
        try:
            await call(self.name, prismnet_pb2_grpc.PortsStub(self._channel.get()).DeletePort,
                       prismnet_pb2.DeletePortRequest(id=port_id))
        except ServiceError as exc:
            if exc.code is not Code.NOT_FOUND:
                raise

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()
