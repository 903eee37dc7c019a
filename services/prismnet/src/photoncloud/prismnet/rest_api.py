"""PrismNET's REST adapter: JSON in, `await core.x(...)`, JSON out (shaped by views.py)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from photoncloud.common.auth import TENANT
from photoncloud.common.models import Body, Query, Result
from photoncloud.common.rest import RouteTable

from . import core, views
from .core import (GROUPS_READ, GROUPS_WRITE, PORTS_READ, PORTS_WRITE, SUBNETS_READ, SUBNETS_WRITE, VPCS_READ,
                   VPCS_WRITE)

PACKAGE = "photoncloud.prismnet.v1."
VPCS, SUBNETS, PORTS, GROUPS = (PACKAGE + s + "/" for s in ("Vpcs", "Subnets", "Ports", "SecurityGroups"))


class VpcOut(Result):
    """A VPC."""

    id: str
    name: str
    org_id: str
    project_id: str
    cidr_block: str
    description: str
    created_at: str
    updated_at: str


class VpcList(Result):
    """A page of VPCs."""

    items: list[VpcOut]
    next_page_token: str


class PoolModel(Body):
    """An inclusive range of addresses."""

    start: str
    end: str


class SubnetOut(Result):
    """A subnet and how full it is."""

    id: str
    vpc_id: str
    name: str
    cidr_block: str
    gateway_ip: str
    description: str
    allocation_pools: list[PoolModel]
    dns_servers: list[str]
    ip_version: int
    capacity: int = Field(description="addresses the allocation pools hold")
    used: int = Field(description="addresses held by ports")
    created_at: str
    updated_at: str


class SubnetList(Result):
    """A page of subnets."""

    items: list[SubnetOut]
    next_page_token: str


class PortOut(Result):
    """A network interface."""

    id: str
    subnet_id: str
    vpc_id: str
    name: str
    ip_address: str
    mac_address: str
    device_id: str
    device_type: str
    status: str = Field(description="ACTIVE when attached to a device, DOWN otherwise")
    security_group_ids: list[str]
    description: str
    created_at: str
    updated_at: str


class PortList(Result):
    """A page of ports."""

    items: list[PortOut]
    next_page_token: str


class RuleModel(Body):
    """A security group rule (the defaults: INGRESS, ANY protocol, every port, anywhere, IPv4)."""

    id: str = Field("", description="set by PrismNET")
    direction: str = "INGRESS"
    protocol: str = Field("ANY", description="TCP, UDP, ICMP or ANY")
    port_range_min: int = 0
    port_range_max: int = 0
    remote_cidr: str = ""
    remote_group_id: str = ""
    ethertype: str = "IPv4"
    description: str = ""


class GroupOut(Result):
    """A security group."""

    id: str
    name: str
    org_id: str
    project_id: str
    description: str
    rules: list[RuleModel]
    created_at: str
    updated_at: str


class GroupList(Result):
    """A page of security groups."""

    items: list[GroupOut]
    next_page_token: str


class RuleAdded(Result):
    """The group after a rule was added, and the new rule."""

    security_group: GroupOut
    rule: RuleModel


class VpcBody(Body):
    """A VPC to create."""

    name: str
    org_id: str = Field("", description="the project's org (default: as IAM knows it)")
    project_id: str = Field(description="an IAM project")
    cidr_block: str = Field(description="IPv4 /8 to /28, or IPv6 /44 to /64, e.g. 10.0.0.0/16")
    description: str = ""


class RenameBody(Body):
    """Fields to change (absent ones keep their value)."""

    name: str | None = None
    description: str | None = None


class TenancyQuery(Query):
    """A page of a listing, filtered by org and project."""

    org_id: str = ""
    project_id: str = ""
    page_size: int = 0
    page_token: str = ""


class SubnetBody(Body):
    """A subnet to create."""

    vpc_id: str
    name: str
    cidr_block: str
    gateway_ip: str = Field("", description="default: the first usable address")
    description: str = ""
    allocation_pools: list[PoolModel] = Field(default_factory=list,
                                              description="default: every usable address but the gateway")
    dns_servers: list[str] = Field(default_factory=list)


class SubnetQuery(Query):
    """A VPC's subnets, a page at a time."""

    vpc_id: str
    page_size: int = 0
    page_token: str = ""


class PortBody(Body):
    """A port to create."""

    subnet_id: str
    name: str = ""
    ip_address: str = Field("", description="default: the subnet's next free address")
    description: str = ""
    security_group_ids: list[str] = Field(default_factory=list)
    device_id: str = ""
    device_type: str = Field("", description="VM, POD, ... (with device_id)")


class PortQuery(Query):
    """Ports of a subnet or a VPC, optionally of one device."""

    subnet_id: str = ""
    vpc_id: str = ""
    device_id: str = ""
    page_size: int = 0
    page_token: str = ""


class PortUpdate(RenameBody):
    """Fields of a port to change."""

    security_group_ids: list[str] | None = Field(None, description="the port's groups from now on")


class AttachBody(Body):
    """The device a port is attached to."""

    device_id: str
    device_type: str = Field(description="VM, POD, ...")


class GroupBody(Body):
    """A security group to create."""

    name: str
    org_id: str = Field("", description="the project's org (default: as IAM knows it)")
    project_id: str = Field(description="an IAM project")
    description: str = ""
    rules: list[RuleModel] = Field(default_factory=list)


def _rule_fields(rule: RuleModel) -> dict:
    return rule.model_dump(exclude={"id"})


def routes(net: core.NetworkCore) -> RouteTable:
    """PrismNET's REST routes over net."""
    table = RouteTable()

    async def subnet_out(subnet) -> SubnetOut:
        return SubnetOut(**views.subnet(subnet, *await net.capacity(subnet)))

    @table.post("/api/v1/vpcs", "Create a VPC", body=VpcBody, response=VpcOut, status=201,
                rpc=VPCS + "CreateVpc", permission=VPCS_WRITE, who=TENANT)
    async def create_vpc(request: web.Request, body: VpcBody) -> VpcOut:
        return VpcOut(**views.vpc(await net.create_vpc(body.name, body.org_id, body.project_id, body.cidr_block,
                                                       body.description)))

    @table.get("/api/v1/vpcs", "The VPCs the caller may see", query=TenancyQuery, response=VpcList,
               rpc=VPCS + "ListVpcs", permission=VPCS_READ, who=TENANT)
    async def list_vpcs(request: web.Request, query: TenancyQuery) -> VpcList:
        found = await net.vpcs(query.org_id, query.project_id, query.page_size, query.page_token)
        return VpcList(**views.page([views.vpc(v) for v in found.items], found.next_page_token))

    @table.get("/api/v1/vpcs/{id}", "A VPC", response=VpcOut, rpc=VPCS + "GetVpc", permission=VPCS_READ, who=TENANT)
    async def get_vpc(request: web.Request, id: str) -> VpcOut:
        return VpcOut(**views.vpc(await net.vpc(id)))

    @table.patch("/api/v1/vpcs/{id}", "Rename a VPC or change its description", body=RenameBody, response=VpcOut,
                 rpc=VPCS + "UpdateVpc", permission=VPCS_WRITE, who=TENANT)
    async def update_vpc(request: web.Request, id: str, body: RenameBody) -> VpcOut:
        return VpcOut(**views.vpc(await net.update_vpc(id, body.name, body.description)))

    @table.delete("/api/v1/vpcs/{id}", "Delete a VPC without subnets", response=VpcOut, rpc=VPCS + "DeleteVpc",
                  permission=VPCS_WRITE, who=TENANT)
    async def delete_vpc(request: web.Request, id: str) -> VpcOut:
        return VpcOut(**views.vpc(await net.delete_vpc(id)))

    @table.post("/api/v1/subnets", "Create a subnet inside a VPC", body=SubnetBody, response=SubnetOut, status=201,
                rpc=SUBNETS + "CreateSubnet", permission=SUBNETS_WRITE, who=TENANT)
    async def create_subnet(request: web.Request, body: SubnetBody) -> SubnetOut:
        subnet = await net.create_subnet(body.vpc_id, body.name, body.cidr_block, body.gateway_ip, body.description,
                                         [p.model_dump() for p in body.allocation_pools], body.dns_servers)
        return await subnet_out(subnet)

    @table.get("/api/v1/subnets", "A VPC's subnets", query=SubnetQuery, response=SubnetList,
               rpc=SUBNETS + "ListSubnets", permission=SUBNETS_READ, who=TENANT)
    async def list_subnets(request: web.Request, query: SubnetQuery) -> SubnetList:
        found = await net.subnets(query.vpc_id, query.page_size, query.page_token)
        return SubnetList(items=[await subnet_out(s) for s in found.items], next_page_token=found.next_page_token)

    @table.get("/api/v1/subnets/{id}", "A subnet", response=SubnetOut, rpc=SUBNETS + "GetSubnet",
               permission=SUBNETS_READ, who=TENANT)
    async def get_subnet(request: web.Request, id: str) -> SubnetOut:
        return await subnet_out(await net.subnet(id))

    @table.delete("/api/v1/subnets/{id}", "Delete a subnet without ports", response=SubnetOut,
                  rpc=SUBNETS + "DeleteSubnet", permission=SUBNETS_WRITE, who=TENANT)
    async def delete_subnet(request: web.Request, id: str) -> SubnetOut:
        return SubnetOut(**views.subnet(await net.delete_subnet(id), 0, 0))

    @table.post("/api/v1/ports", "Create a port with the next free address or a chosen one", body=PortBody,
                response=PortOut, status=201, rpc=PORTS + "CreatePort", permission=PORTS_WRITE, who=TENANT)
    async def create_port(request: web.Request, body: PortBody) -> PortOut:
        port = await net.create_port(body.subnet_id, body.name, body.ip_address, body.description,
                                     body.security_group_ids, body.device_id, body.device_type)
        return PortOut(**views.port(port))

    @table.get("/api/v1/ports", "Ports of a subnet or a VPC", query=PortQuery, response=PortList,
               rpc=PORTS + "ListPorts", permission=PORTS_READ, who=TENANT)
    async def list_ports(request: web.Request, query: PortQuery) -> PortList:
        found = await net.ports(query.subnet_id, query.vpc_id, query.device_id, query.page_size, query.page_token)
        return PortList(**views.page([views.port(p) for p in found.items], found.next_page_token))

    @table.get("/api/v1/ports/{id}", "A port", response=PortOut, rpc=PORTS + "GetPort", permission=PORTS_READ,
               who=TENANT)
    async def get_port(request: web.Request, id: str) -> PortOut:
        return PortOut(**views.port(await net.port(id)))

    @table.patch("/api/v1/ports/{id}", "Change a port's name, description or security groups", body=PortUpdate,
                 response=PortOut, rpc=PORTS + "UpdatePort", permission=PORTS_WRITE, who=TENANT)
    async def update_port(request: web.Request, id: str, body: PortUpdate) -> PortOut:
        return PortOut(**views.port(await net.update_port(id, body.name, body.description, body.security_group_ids)))

    @table.post("/api/v1/ports/{id}/attach", "Attach a port to a device", body=AttachBody, response=PortOut,
                rpc=PORTS + "AttachPort", permission=PORTS_WRITE, who=TENANT)
    async def attach_port(request: web.Request, id: str, body: AttachBody) -> PortOut:
        return PortOut(**views.port(await net.attach_port(id, body.device_id, body.device_type)))

    @table.post("/api/v1/ports/{id}/detach", "Detach a port from its device", response=PortOut,
                rpc=PORTS + "DetachPort", permission=PORTS_WRITE, who=TENANT)
    async def detach_port(request: web.Request, id: str) -> PortOut:
        return PortOut(**views.port(await net.detach_port(id)))

    @table.delete("/api/v1/ports/{id}", "Delete a port, freeing its address", response=PortOut,
                  rpc=PORTS + "DeletePort", permission=PORTS_WRITE, who=TENANT)
    async def delete_port(request: web.Request, id: str) -> PortOut:
        return PortOut(**views.port(await net.delete_port(id)))

    @table.post("/api/v1/security-groups", "Create a security group", body=GroupBody, response=GroupOut, status=201,
                rpc=GROUPS + "CreateSecurityGroup", permission=GROUPS_WRITE, who=TENANT)
    async def create_group(request: web.Request, body: GroupBody) -> GroupOut:
        group = await net.create_group(body.name, body.org_id, body.project_id, body.description,
                                       [_rule_fields(r) for r in body.rules])
        return GroupOut(**views.group(group))

    @table.get("/api/v1/security-groups", "The security groups the caller may see", query=TenancyQuery,
               response=GroupList, rpc=GROUPS + "ListSecurityGroups", permission=GROUPS_READ, who=TENANT)
    async def list_groups(request: web.Request, query: TenancyQuery) -> GroupList:
        found = await net.groups(query.org_id, query.project_id, query.page_size, query.page_token)
        return GroupList(**views.page([views.group(g) for g in found.items], found.next_page_token))

    @table.get("/api/v1/security-groups/{id}", "A security group", response=GroupOut,
               rpc=GROUPS + "GetSecurityGroup", permission=GROUPS_READ, who=TENANT)
    async def get_group(request: web.Request, id: str) -> GroupOut:
        return GroupOut(**views.group(await net.group(id)))

    @table.patch("/api/v1/security-groups/{id}", "Rename a security group or change its description",
                 body=RenameBody, response=GroupOut, rpc=GROUPS + "UpdateSecurityGroup", permission=GROUPS_WRITE,
                 who=TENANT)
    async def update_group(request: web.Request, id: str, body: RenameBody) -> GroupOut:
        return GroupOut(**views.group(await net.update_group(id, body.name, body.description)))

    @table.delete("/api/v1/security-groups/{id}", "Delete a security group nothing uses", response=GroupOut,
                  rpc=GROUPS + "DeleteSecurityGroup", permission=GROUPS_WRITE, who=TENANT)
    async def delete_group(request: web.Request, id: str) -> GroupOut:
        return GroupOut(**views.group(await net.delete_group(id)))

    @table.post("/api/v1/security-groups/{id}/rules", "Add a rule to a security group", body=RuleModel,
                response=RuleAdded, status=201, rpc=GROUPS + "AddRule", permission=GROUPS_WRITE, who=TENANT)
    async def add_rule(request: web.Request, id: str, body: RuleModel) -> RuleAdded:
        group, rule = await net.add_rule(id, **_rule_fields(body))
        return RuleAdded(security_group=views.group(group), rule=views.rule(rule))

    @table.delete("/api/v1/security-groups/{id}/rules/{rule_id}", "Remove a rule from a security group",
                  response=GroupOut, rpc=GROUPS + "DeleteRule", permission=GROUPS_WRITE, who=TENANT)
    async def delete_rule(request: web.Request, id: str, rule_id: str) -> GroupOut:
        return GroupOut(**views.group(await net.delete_rule(id, rule_id)))

    return table
