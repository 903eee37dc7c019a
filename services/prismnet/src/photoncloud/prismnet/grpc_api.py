"""PrismNET's servicers: a request message in, `await core.x(...)`, a message out (convert.py).
gRPC serves them, and REST through the routes the contract binds to HTTP (shared gateway)."""

from __future__ import annotations

from typing import Any

from photoncloud.common.messages import optional
from photoncloud.common.server import GrpcService, grpc_services
from photoncloud.prismnet.v1 import prismnet_pb2 as pb
from photoncloud.prismnet.v1 import prismnet_pb2_grpc as pb_grpc

from . import convert, core

Context = Any  # grpc.aio.ServicerContext, or the gateway's RestContext


class VpcsServicer(pb_grpc.VpcsServicer):
    """photoncloud.prismnet.v1.Vpcs over the core."""

    def __init__(self, net: core.NetworkCore):
        self.net = net

    async def CreateVpc(self, request: pb.CreateVpcRequest, context: Context) -> pb.Vpc:
        vpc = await self.net.create_vpc(request.name, request.org_id, request.project_id, request.cidr_block,
                                        request.description)
        return convert.vpc(vpc)

    async def GetVpc(self, request: pb.GetVpcRequest, context: Context) -> pb.Vpc:
        return convert.vpc(await self.net.vpc(request.id))

    async def ListVpcs(self, request: pb.ListVpcsRequest, context: Context) -> pb.ListVpcsResponse:
        found = await self.net.vpcs(request.org_id, request.project_id, request.page_size, request.page_token)
        return pb.ListVpcsResponse(items=[convert.vpc(v) for v in found.items], next_page_token=found.next_page_token)

    async def UpdateVpc(self, request: pb.UpdateVpcRequest, context: Context) -> pb.Vpc:
        vpc = await self.net.update_vpc(request.id, optional(request, "name"), optional(request, "description"))
        return convert.vpc(vpc)

    async def DeleteVpc(self, request: pb.DeleteVpcRequest, context: Context) -> pb.Vpc:
        return convert.vpc(await self.net.delete_vpc(request.id))


class SubnetsServicer(pb_grpc.SubnetsServicer):
    """photoncloud.prismnet.v1.Subnets over the core."""

    def __init__(self, net: core.NetworkCore):
        self.net = net

    async def _out(self, subnet: Any) -> pb.Subnet:
        return convert.subnet(subnet, *await self.net.capacity(subnet))

    async def CreateSubnet(self, request: pb.CreateSubnetRequest, context: Context) -> pb.Subnet:
        pools = [{"start": p.start, "end": p.end} for p in request.allocation_pools]
        subnet = await self.net.create_subnet(request.vpc_id, request.name, request.cidr_block, request.gateway_ip,
                                              request.description, pools, list(request.dns_servers))
        return await self._out(subnet)

    async def GetSubnet(self, request: pb.GetSubnetRequest, context: Context) -> pb.Subnet:
        return await self._out(await self.net.subnet(request.id))

    async def ListSubnets(self, request: pb.ListSubnetsRequest, context: Context) -> pb.ListSubnetsResponse:
        found = await self.net.subnets(request.vpc_id, request.page_size, request.page_token)
        return pb.ListSubnetsResponse(items=[await self._out(s) for s in found.items],
                                      next_page_token=found.next_page_token)

    async def DeleteSubnet(self, request: pb.DeleteSubnetRequest, context: Context) -> pb.Subnet:
        return convert.subnet(await self.net.delete_subnet(request.id), 0, 0)


class PortsServicer(pb_grpc.PortsServicer):
    """photoncloud.prismnet.v1.Ports over the core."""

    def __init__(self, net: core.NetworkCore):
        self.net = net

    async def CreatePort(self, request: pb.CreatePortRequest, context: Context) -> pb.Port:
        port = await self.net.create_port(request.subnet_id, request.name, request.ip_address, request.description,
                                          list(request.security_group_ids), request.device_id, request.device_type)
        return convert.port(port)

    async def GetPort(self, request: pb.GetPortRequest, context: Context) -> pb.Port:
        return convert.port(await self.net.port(request.id))

    async def ListPorts(self, request: pb.ListPortsRequest, context: Context) -> pb.ListPortsResponse:
        found = await self.net.ports(request.subnet_id, request.vpc_id, request.device_id, request.page_size,
                                     request.page_token)
        return pb.ListPortsResponse(items=[convert.port(p) for p in found.items], next_page_token=found.next_page_token)

    async def UpdatePort(self, request: pb.UpdatePortRequest, context: Context) -> pb.Port:
        groups = list(request.security_group_ids) if "security_group_ids" in request.update_mask.paths else None
        port = await self.net.update_port(request.id, optional(request, "name"), optional(request, "description"),
                                          groups)
        return convert.port(port)

    async def AttachPort(self, request: pb.AttachPortRequest, context: Context) -> pb.Port:
        return convert.port(await self.net.attach_port(request.id, request.device_id, request.device_type))

    async def DetachPort(self, request: pb.DetachPortRequest, context: Context) -> pb.Port:
        return convert.port(await self.net.detach_port(request.id))

    async def DeletePort(self, request: pb.DeletePortRequest, context: Context) -> pb.Port:
        return convert.port(await self.net.delete_port(request.id))


class SecurityGroupsServicer(pb_grpc.SecurityGroupsServicer):
    """photoncloud.prismnet.v1.SecurityGroups over the core."""

    def __init__(self, net: core.NetworkCore):
        self.net = net

    async def CreateSecurityGroup(self, request: pb.CreateSecurityGroupRequest, context: Context) -> pb.SecurityGroup:
        group = await self.net.create_group(request.name, request.org_id, request.project_id, request.description,
                                            [convert.rule_fields(r) for r in request.rules])
        return convert.group(group)

    async def GetSecurityGroup(self, request: pb.GetSecurityGroupRequest, context: Context) -> pb.SecurityGroup:
        return convert.group(await self.net.group(request.id))

    async def ListSecurityGroups(self, request: pb.ListSecurityGroupsRequest,
                                 context: Context) -> pb.ListSecurityGroupsResponse:
        found = await self.net.groups(request.org_id, request.project_id, request.page_size, request.page_token)
        return pb.ListSecurityGroupsResponse(items=[convert.group(g) for g in found.items],
                                             next_page_token=found.next_page_token)

    async def UpdateSecurityGroup(self, request: pb.UpdateSecurityGroupRequest, context: Context) -> pb.SecurityGroup:
        group = await self.net.update_group(request.id, optional(request, "name"), optional(request, "description"))
        return convert.group(group)

    async def DeleteSecurityGroup(self, request: pb.DeleteSecurityGroupRequest, context: Context) -> pb.SecurityGroup:
        return convert.group(await self.net.delete_group(request.id))

    async def AddRule(self, request: pb.AddRuleRequest, context: Context) -> pb.AddRuleResponse:
        group, rule = await self.net.add_rule(request.security_group_id, **convert.rule_fields(request.rule))
        return pb.AddRuleResponse(security_group=convert.group(group), rule=convert.rule(rule))

    async def DeleteRule(self, request: pb.DeleteRuleRequest, context: Context) -> pb.SecurityGroup:
        return convert.group(await self.net.delete_rule(request.security_group_id, request.rule_id))


class DataplaneServicer(pb_grpc.DataplaneServicer):
    """photoncloud.prismnet.v1.Dataplane over the core."""

    def __init__(self, net: core.NetworkCore):
        self.net = net

    async def GetNetworkState(self, request: pb.GetNetworkStateRequest, context: Context) -> pb.NetworkState:
        return convert.network_state(await self.net.network_state())


def services(net: core.NetworkCore) -> list[GrpcService]:
    """PrismNET's gRPC services over net."""
    return grpc_services(pb, pb_grpc, {"Vpcs": VpcsServicer(net), "Subnets": SubnetsServicer(net),
                                       "Ports": PortsServicer(net), "SecurityGroups": SecurityGroupsServicer(net),
                                       "Dataplane": DataplaneServicer(net)})
