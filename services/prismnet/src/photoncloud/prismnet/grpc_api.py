"""PrismNET's gRPC adapter: protobuf in, `await core.x(...)`, protobuf out (shaped by views.py)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from photoncloud.common.messages import to_message
from photoncloud.common.server import GrpcService
from photoncloud.prismnet.v1 import prismnet_pb2 as pb
from photoncloud.prismnet.v1 import prismnet_pb2_grpc as pb_grpc

from . import core, views

Context = grpc.aio.ServicerContext


def _optional(request: Message, field: str) -> Any:
    return getattr(request, field) if request.HasField(field) else None


def _rule_fields(rule: pb.Rule) -> dict[str, Any]:
    data = json_format.MessageToDict(rule, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    data.pop("id", None)
    return {**data, "direction": data["direction"] or "INGRESS", "protocol": data["protocol"] or "ANY",
            "ethertype": data["ethertype"] or "IPv4"}


class VpcsServicer(pb_grpc.VpcsServicer):
    """photoncloud.prismnet.v1.Vpcs over the core."""

    def __init__(self, net: core.NetworkCore):
        self.net = net

    async def CreateVpc(self, request: pb.CreateVpcRequest, context: Context) -> pb.Vpc:
        vpc = await self.net.create_vpc(request.name, request.org_id, request.project_id, request.cidr_block,
                                        request.description)
        return to_message(views.vpc(vpc), pb.Vpc)

    async def GetVpc(self, request: pb.GetVpcRequest, context: Context) -> pb.Vpc:
        return to_message(views.vpc(await self.net.vpc(request.id)), pb.Vpc)

    async def ListVpcs(self, request: pb.ListVpcsRequest, context: Context) -> pb.ListVpcsResponse:
        found = await self.net.vpcs(request.org_id, request.project_id, request.page_size, request.page_token)
        return to_message(views.page([views.vpc(v) for v in found.items], found.next_page_token), pb.ListVpcsResponse)

    async def UpdateVpc(self, request: pb.UpdateVpcRequest, context: Context) -> pb.Vpc:
        vpc = await self.net.update_vpc(request.id, _optional(request, "name"), _optional(request, "description"))
        return to_message(views.vpc(vpc), pb.Vpc)

    async def DeleteVpc(self, request: pb.DeleteVpcRequest, context: Context) -> pb.Vpc:
        return to_message(views.vpc(await self.net.delete_vpc(request.id)), pb.Vpc)


class SubnetsServicer(pb_grpc.SubnetsServicer):
    """photoncloud.prismnet.v1.Subnets over the core."""

    def __init__(self, net: core.NetworkCore):
        self.net = net

    async def _out(self, subnet: Any) -> pb.Subnet:
        return to_message(views.subnet(subnet, *await self.net.capacity(subnet)), pb.Subnet)

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
        return to_message(views.subnet(await self.net.delete_subnet(request.id), 0, 0), pb.Subnet)


class PortsServicer(pb_grpc.PortsServicer):
    """photoncloud.prismnet.v1.Ports over the core."""

    def __init__(self, net: core.NetworkCore):
        self.net = net

    async def CreatePort(self, request: pb.CreatePortRequest, context: Context) -> pb.Port:
        port = await self.net.create_port(request.subnet_id, request.name, request.ip_address, request.description,
                                          list(request.security_group_ids), request.device_id, request.device_type)
        return to_message(views.port(port), pb.Port)

    async def GetPort(self, request: pb.GetPortRequest, context: Context) -> pb.Port:
        return to_message(views.port(await self.net.port(request.id)), pb.Port)

    async def ListPorts(self, request: pb.ListPortsRequest, context: Context) -> pb.ListPortsResponse:
        found = await self.net.ports(request.subnet_id, request.vpc_id, request.device_id, request.page_size,
                                     request.page_token)
        return to_message(views.page([views.port(p) for p in found.items], found.next_page_token), pb.ListPortsResponse)

    async def UpdatePort(self, request: pb.UpdatePortRequest, context: Context) -> pb.Port:
        groups = list(request.security_group_ids.ids) if request.HasField("security_group_ids") else None
        port = await self.net.update_port(request.id, _optional(request, "name"), _optional(request, "description"),
                                          groups)
        return to_message(views.port(port), pb.Port)

    async def AttachPort(self, request: pb.AttachPortRequest, context: Context) -> pb.Port:
        port = await self.net.attach_port(request.id, request.device_id, request.device_type)
        return to_message(views.port(port), pb.Port)

    async def DetachPort(self, request: pb.DetachPortRequest, context: Context) -> pb.Port:
        return to_message(views.port(await self.net.detach_port(request.id)), pb.Port)

    async def DeletePort(self, request: pb.DeletePortRequest, context: Context) -> pb.Port:
        return to_message(views.port(await self.net.delete_port(request.id)), pb.Port)


class SecurityGroupsServicer(pb_grpc.SecurityGroupsServicer):
    """photoncloud.prismnet.v1.SecurityGroups over the core."""

    def __init__(self, net: core.NetworkCore):
        self.net = net

    async def CreateSecurityGroup(self, request: pb.CreateSecurityGroupRequest, context: Context) -> pb.SecurityGroup:
        group = await self.net.create_group(request.name, request.org_id, request.project_id, request.description,
                                            [_rule_fields(r) for r in request.rules])
        return to_message(views.group(group), pb.SecurityGroup)

    async def GetSecurityGroup(self, request: pb.GetSecurityGroupRequest, context: Context) -> pb.SecurityGroup:
        return to_message(views.group(await self.net.group(request.id)), pb.SecurityGroup)

    async def ListSecurityGroups(self, request: pb.ListSecurityGroupsRequest,
                                 context: Context) -> pb.ListSecurityGroupsResponse:
        found = await self.net.groups(request.org_id, request.project_id, request.page_size, request.page_token)
        return to_message(views.page([views.group(g) for g in found.items], found.next_page_token),
                          pb.ListSecurityGroupsResponse)

    async def UpdateSecurityGroup(self, request: pb.UpdateSecurityGroupRequest, context: Context) -> pb.SecurityGroup:
        group = await self.net.update_group(request.id, _optional(request, "name"), _optional(request, "description"))
        return to_message(views.group(group), pb.SecurityGroup)

    async def DeleteSecurityGroup(self, request: pb.DeleteSecurityGroupRequest, context: Context) -> pb.SecurityGroup:
        return to_message(views.group(await self.net.delete_group(request.id)), pb.SecurityGroup)

    async def AddRule(self, request: pb.AddRuleRequest, context: Context) -> pb.AddRuleResponse:
        group, rule = await self.net.add_rule(request.security_group_id, **_rule_fields(request.rule))
        return to_message({"security_group": views.group(group), "rule": views.rule(rule)}, pb.AddRuleResponse)

    async def DeleteRule(self, request: pb.DeleteRuleRequest, context: Context) -> pb.SecurityGroup:
        return to_message(views.group(await self.net.delete_rule(request.security_group_id, request.rule_id)),
                          pb.SecurityGroup)


def services(net: core.NetworkCore) -> list[GrpcService]:
    """PrismNET's gRPC services over net."""
    servicers = {"Vpcs": (VpcsServicer, pb_grpc.add_VpcsServicer_to_server),
                 "Subnets": (SubnetsServicer, pb_grpc.add_SubnetsServicer_to_server),
                 "Ports": (PortsServicer, pb_grpc.add_PortsServicer_to_server),
                 "SecurityGroups": (SecurityGroupsServicer, pb_grpc.add_SecurityGroupsServicer_to_server)}
    descriptor = pb.DESCRIPTOR.services_by_name
    return [GrpcService(descriptor[name].full_name, lambda server, s=servicer, add=add: add(s(net), server))
            for name, (servicer, add) in servicers.items()]
