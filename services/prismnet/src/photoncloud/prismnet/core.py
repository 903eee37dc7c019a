"""PrismNET's domain: VPCs carved into subnets, ports with addresses and MACs, security groups.

Anchors: OpenStack Neutron (subnets with allocation pools and a gateway, ports with fixed IPs
and MACs, security groups with ingress/egress rules) and AWS VPC (CIDR bounds, no overlapping
subnets). Every change is a command applied by NetworkStateMachine, one at a time, each in one
fsynced SQLite transaction: the rules that depend on other resources (a subnet overlapping a
sibling, an address already held, a VPC that still has subnets) are checked inside that step,
so two concurrent requests can never both pass them.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import ip_address
from typing import Any, Protocol, Union

from photoncloud.common import auth, paging
from photoncloud.common.errors import (Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound,
                                      ResourceExhausted)
from photoncloud.common.projects import Projects
from photoncloud.common.replication import Log
from photoncloud.common.sqlite import SqliteStateMachine

from . import addressing
from .records import Port, Rule, SecurityGroup, Subnet, Vpc

VPCS_READ, VPCS_WRITE = "prismnet:vpcs:read", "prismnet:vpcs:write"
SUBNETS_READ, SUBNETS_WRITE = "prismnet:subnets:read", "prismnet:subnets:write"
PORTS_READ, PORTS_WRITE = "prismnet:ports:read", "prismnet:ports:write"
GROUPS_READ, GROUPS_WRITE = "prismnet:securitygroups:read", "prismnet:securitygroups:write"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,62}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_DEVICE_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")
MAX_TEXT = 1024
MAX_DNS_SERVERS = 5
MAX_RULES = 100
MAC_PREFIX = "fa:16:3e"  # locally administered, unicast (the prefix Neutron uses)
MAC_ATTEMPTS = 8
PROTOCOLS = ("TCP", "UDP", "ICMP", "ANY")


# -- commands ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CreateVpc:
    vpc: Vpc


@dataclass(frozen=True)
class UpdateVpc:
    id: str
    name: str | None
    description: str | None
    now: float


@dataclass(frozen=True)
class DeleteVpc:
    id: str


@dataclass(frozen=True)
class CreateSubnet:
    subnet: Subnet


@dataclass(frozen=True)
class DeleteSubnet:
    id: str


@dataclass(frozen=True)
class CreatePort:
    port: Port  # ip_address "" asks for the next free address
    org_id: str
    project_id: str


@dataclass(frozen=True)
class UpdatePort:
    id: str
    name: str | None
    description: str | None
    security_group_ids: tuple[str, ...] | None
    org_id: str
    project_id: str
    now: float


@dataclass(frozen=True)
class AttachPort:
    id: str
    device_id: str  # "": detach
    device_type: str
    now: float


@dataclass(frozen=True)
class DeletePort:
    id: str


@dataclass(frozen=True)
class CreateGroup:
    group: SecurityGroup


@dataclass(frozen=True)
class UpdateGroup:
    id: str
    name: str | None
    description: str | None
    now: float


@dataclass(frozen=True)
class DeleteGroup:
    id: str


@dataclass(frozen=True)
class AddRule:
    group_id: str
    rule: Rule
    now: float


@dataclass(frozen=True)
class DeleteRule:
    group_id: str
    rule_id: str
    now: float


Command = Union[CreateVpc, UpdateVpc, DeleteVpc, CreateSubnet, DeleteSubnet, CreatePort, UpdatePort, AttachPort,
                DeletePort, CreateGroup, UpdateGroup, DeleteGroup, AddRule, DeleteRule]


@dataclass(frozen=True)
class Page:
    """A page of a listing."""

    items: list[Any]
    next_page_token: str


class NetworkStore(Protocol):
    """What the state machine needs from its store (SqliteNetworkStore in store.py)."""

    def transaction(self) -> Any: ...
    def savepoint(self) -> Any: ...
    def applied_index(self) -> int: ...
    def set_meta(self, name: str, value: int) -> None: ...
    def vpc(self, id: str) -> Vpc | None: ...
    def save_vpc(self, vpc: Vpc) -> None: ...
    def delete_vpc(self, id: str) -> None: ...
    def subnet(self, id: str) -> Subnet | None: ...
    def subnets(self, vpc_id: str, after: str = "", limit: int = -1) -> list[Subnet]: ...
    def save_subnet(self, subnet: Subnet) -> None: ...
    def delete_subnet(self, id: str) -> None: ...
    def allocated(self, subnet_id: str, low: int, high: int) -> list[int]: ...
    def holder(self, subnet_id: str, address: int) -> str | None: ...
    def allocate(self, subnet_id: str, address: int, port_id: str) -> None: ...
    def free(self, subnet_id: str, address: int) -> None: ...
    def port(self, id: str) -> Port | None: ...
    def count_ports(self, subnet_id: str) -> int: ...
    def mac_taken(self, mac: str) -> bool: ...
    def save_port(self, port: Port) -> None: ...
    def delete_port(self, id: str) -> None: ...
    def group(self, id: str) -> SecurityGroup | None: ...
    def save_group(self, group: SecurityGroup) -> None: ...
    def delete_group(self, id: str) -> None: ...
    def group_ports(self, group_id: str) -> list[str]: ...
    def groups_referencing(self, group_id: str) -> list[str]: ...
    def snapshot(self, path: str) -> None: ...
    def restore(self, path: str) -> None: ...


def _found(record: Any, what: str, id: str) -> Any:
    if record is None:
        raise NotFound(f"{what} not found", {"id": id})
    return record


class NetworkStateMachine(SqliteStateMachine):
    """Applies PrismNET's commands to the store. Deterministic: ids and MACs come in the commands."""

    def execute(self, c: Command) -> object:
        """Apply one command with the method named after it (CreateVpc: _create_vpc)."""
        handler = getattr(self, "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(c).__name__).lower())
        return handler(c)

    # VPCs

    def _create_vpc(self, c: CreateVpc) -> Vpc:
        if self.store.vpc(c.vpc.id) is not None:
            raise AlreadyExists("a VPC with this id exists", {"id": c.vpc.id})
        self.store.save_vpc(c.vpc)
        return c.vpc

    def _update_vpc(self, c: UpdateVpc) -> Vpc:
        vpc = _found(self.store.vpc(c.id), "VPC", c.id)
        vpc = replace(vpc, name=vpc.name if c.name is None else c.name,
                      description=vpc.description if c.description is None else c.description, updated_at=c.now)
        self.store.save_vpc(vpc)
        return vpc

    def _delete_vpc(self, c: DeleteVpc) -> Vpc:
        vpc = _found(self.store.vpc(c.id), "VPC", c.id)
        subnets = self.store.subnets(c.id)
        if subnets:
            raise FailedPrecondition(f"the VPC still has {len(subnets)} subnet(s); delete them first",
                                     {"reason": "VPC_HAS_SUBNETS", "subnet_ids": [s.id for s in subnets]})
        self.store.delete_vpc(c.id)
        return vpc

    # Subnets

    def _create_subnet(self, c: CreateSubnet) -> Subnet:
        subnet = c.subnet
        vpc = _found(self.store.vpc(subnet.vpc_id), "VPC", subnet.vpc_id)
        network, vpc_network = addressing.ip_network(subnet.cidr_block), addressing.ip_network(vpc.cidr_block)
        if network.version != vpc_network.version or not network.subnet_of(vpc_network):
            raise InvalidArgument(f"cidr_block {network} lies outside the VPC's {vpc_network}",
                                  {"field": "cidr_block", "vpc_cidr_block": str(vpc_network)})
        # In address order, so that the sibling named is the same whatever the ids.
        for sibling in sorted(self.store.subnets(vpc.id), key=lambda s: addressing.ip_network(s.cidr_block)):
            if network.overlaps(addressing.ip_network(sibling.cidr_block)):
                raise FailedPrecondition(f"cidr_block {network} overlaps subnet {sibling.name!r} "
                                         f"({sibling.cidr_block})",
                                         {"reason": "SUBNET_OVERLAPS", "field": "cidr_block",
                                          "subnet_id": sibling.id, "cidr_block": sibling.cidr_block})
        self.store.save_subnet(subnet)
        self.store.allocate(subnet.id, int(ip_address(subnet.gateway_ip)), "")  # never given to a port
        return subnet

    def _delete_subnet(self, c: DeleteSubnet) -> Subnet:
        subnet = _found(self.store.subnet(c.id), "subnet", c.id)
        ports = self.store.count_ports(c.id)
        if ports:
            raise FailedPrecondition(f"the subnet still has {ports} port(s); delete them first",
                                     {"reason": "SUBNET_HAS_PORTS", "ports": ports})
        self.store.delete_subnet(c.id)
        return subnet

    # Ports

    def _check_groups(self, ids: tuple[str, ...], org_id: str, project_id: str) -> None:
        for id in ids:
            group = self.store.group(id)
            if group is None:
                raise NotFound("security group not found", {"id": id, "field": "security_group_ids"})
            if (group.org_id, group.project_id) != (org_id, project_id):
                raise InvalidArgument("a security group must belong to the port's project",
                                      {"field": "security_group_ids", "id": id})

    def _create_port(self, c: CreatePort) -> Port:
        port = c.port
        subnet = _found(self.store.subnet(port.subnet_id), "subnet", port.subnet_id)
        if self.store.port(port.id) is not None:
            raise AlreadyExists("a port with this id exists", {"id": port.id})
        if self.store.mac_taken(port.mac_address):
            raise Aborted("the MAC address is taken", {"reason": "MAC_TAKEN", "mac_address": port.mac_address})
        self._check_groups(port.security_group_ids, c.org_id, c.project_id)
        if port.ip_address:
            address = int(ip_address(port.ip_address))
            holder = self.store.holder(subnet.id, address)
            if holder == "":
                raise InvalidArgument(f"{port.ip_address} is the subnet's gateway", {"field": "ip_address"})
            if holder is not None:
                raise AlreadyExists(f"{port.ip_address} is in use", {"field": "ip_address", "port_id": holder})
        else:
            found = addressing.first_free(subnet.allocation_pools,
                                          lambda low, high: self.store.allocated(subnet.id, low, high))
            if found is None:
                raise ResourceExhausted("the subnet has no free address left",
                                        {"reason": "SUBNET_FULL", "subnet_id": subnet.id})
            address = found
            port = replace(port, ip_address=str(ip_address(found)))
        self.store.allocate(subnet.id, address, port.id)
        self.store.save_port(port)
        return port

    def _update_port(self, c: UpdatePort) -> Port:
        port = _found(self.store.port(c.id), "port", c.id)
        if c.security_group_ids is not None:
            self._check_groups(c.security_group_ids, c.org_id, c.project_id)
        port = replace(port, name=port.name if c.name is None else c.name,
                       description=port.description if c.description is None else c.description,
                       security_group_ids=port.security_group_ids if c.security_group_ids is None
                       else c.security_group_ids, updated_at=c.now)
        self.store.save_port(port)
        return port

    def _attach_port(self, c: AttachPort) -> Port:
        port = _found(self.store.port(c.id), "port", c.id)
        if c.device_id and port.device_id and (port.device_id, port.device_type) != (c.device_id, c.device_type):
            raise FailedPrecondition(f"the port is attached to {port.device_type} {port.device_id}; detach it first",
                                     {"reason": "PORT_IN_USE", "device_id": port.device_id})
        port = replace(port, device_id=c.device_id, device_type=c.device_type, updated_at=c.now)
        self.store.save_port(port)
        return port

    def _delete_port(self, c: DeletePort) -> Port:
        port = _found(self.store.port(c.id), "port", c.id)
        self.store.free(port.subnet_id, int(ip_address(port.ip_address)))
        self.store.delete_port(c.id)
        return port

    # Security groups

    def _create_group(self, c: CreateGroup) -> SecurityGroup:
        if self.store.group(c.group.id) is not None:
            raise AlreadyExists("a security group with this id exists", {"id": c.group.id})
        for rule in c.group.rules:
            self._check_remote(rule, c.group)
        self.store.save_group(c.group)
        return c.group

    def _check_remote(self, rule: Rule, group: SecurityGroup) -> None:
        if rule.remote_group_id and rule.remote_group_id != group.id:
            remote = self.store.group(rule.remote_group_id)
            if remote is None or (remote.org_id, remote.project_id) != (group.org_id, group.project_id):
                raise InvalidArgument("remote_group_id must name a security group of the same project",
                                      {"field": "remote_group_id"})

    def _update_group(self, c: UpdateGroup) -> SecurityGroup:
        group = _found(self.store.group(c.id), "security group", c.id)
        group = replace(group, name=group.name if c.name is None else c.name,
                        description=group.description if c.description is None else c.description, updated_at=c.now)
        self.store.save_group(group)
        return group

    def _delete_group(self, c: DeleteGroup) -> SecurityGroup:
        group = _found(self.store.group(c.id), "security group", c.id)
        ports = self.store.group_ports(c.id)
        if ports:
            raise FailedPrecondition(f"the security group is attached to {len(ports)} port(s)",
                                     {"reason": "GROUP_IN_USE", "port_ids": ports})
        referencing = self.store.groups_referencing(c.id)
        if referencing:
            raise FailedPrecondition("rules of other security groups name this one",
                                     {"reason": "GROUP_REFERENCED", "group_ids": referencing})
        self.store.delete_group(c.id)
        return group

    def _add_rule(self, c: AddRule) -> SecurityGroup:
        group = _found(self.store.group(c.group_id), "security group", c.group_id)
        if len(group.rules) >= MAX_RULES:
            raise ResourceExhausted(f"a security group holds at most {MAX_RULES} rules", {"limit": MAX_RULES})
        same = [r for r in group.rules if replace(r, id="", description="") == replace(c.rule, id="", description="")]
        if same:
            raise AlreadyExists("the group has this rule already", {"rule_id": same[0].id})
        self._check_remote(c.rule, group)
        group = replace(group, rules=group.rules + (c.rule,), updated_at=c.now)
        self.store.save_group(group)
        return group

    def _delete_rule(self, c: DeleteRule) -> SecurityGroup:
        group = _found(self.store.group(c.group_id), "security group", c.group_id)
        rules = tuple(r for r in group.rules if r.id != c.rule_id)
        if len(rules) == len(group.rules):
            raise NotFound("rule not found", {"id": c.rule_id})
        group = replace(group, rules=rules, updated_at=c.now)
        self.store.save_group(group)
        return group


# -- validation -----------------------------------------------------------------------------------

def check_name(value: str, field: str = "name") -> str:
    """A resource name: 1-63 letters, digits, spaces or . _ - (starting with a letter or digit)."""
    if not _NAME.match(value or ""):
        raise InvalidArgument(f"{field} must be 1-63 letters, digits, spaces or . _ - starting with a letter or digit",
                              {"field": field})
    return value


def check_tenant(value: str, field: str) -> str:
    """An org or project id."""
    if not _TENANT.match(value or ""):
        raise InvalidArgument(f"{field} must be 1-128 letters, digits or . _ : -", {"field": field})
    return value


def check_text(value: str, field: str = "description") -> str:
    """Free text of bounded length."""
    if len(value) > MAX_TEXT:
        raise InvalidArgument(f"{field} must be at most {MAX_TEXT} characters", {"field": field})
    return value


def check_rule(direction: str, protocol: str, port_range_min: int, port_range_max: int, remote_cidr: str,
               remote_group_id: str, ethertype: str, description: str) -> Rule:
    """A validated rule (without its id)."""
    direction, protocol = direction.upper(), protocol.upper()
    if direction not in ("INGRESS", "EGRESS"):
        raise InvalidArgument("direction must be INGRESS or EGRESS", {"field": "direction"})
    if protocol not in PROTOCOLS:
        raise InvalidArgument(f"protocol must be one of {', '.join(PROTOCOLS)}", {"field": "protocol"})
    if ethertype not in ("IPv4", "IPv6"):
        raise InvalidArgument("ethertype must be IPv4 or IPv6", {"field": "ethertype"})
    if protocol in ("TCP", "UDP"):
        if not (0 <= port_range_min <= port_range_max <= 65535) or (port_range_min == 0) != (port_range_max == 0):
            raise InvalidArgument("port_range_min and port_range_max must be 1-65535 with min <= max "
                                  "(both 0: every port)", {"field": "port_range_min"})
    elif port_range_min or port_range_max:
        raise InvalidArgument(f"{protocol} has no ports: leave port_range_min and port_range_max at 0",
                              {"field": "port_range_min"})
    if remote_cidr and remote_group_id:
        raise InvalidArgument("give remote_cidr or remote_group_id, not both", {"field": "remote_cidr"})
    if remote_cidr:
        network = addressing.parse_cidr(remote_cidr, "remote_cidr", {4: (0, 32), 6: (0, 128)})
        if f"IPv{network.version}" != ethertype:
            raise InvalidArgument(f"remote_cidr is IPv{network.version} but ethertype is {ethertype}",
                                  {"field": "remote_cidr"})
        remote_cidr = str(network)
    return Rule("", direction, protocol, port_range_min, port_range_max, remote_cidr, remote_group_id, ethertype,
                check_text(description))


def random_mac() -> str:
    """A locally administered unicast MAC under Neutron's prefix."""
    return MAC_PREFIX + "".join(f":{b:02x}" for b in secrets.token_bytes(3))


# -- the core -------------------------------------------------------------------------------------

class NetworkCore:
    """PrismNET's operations: authorize, validate, then propose a command or read the store."""

    def __init__(self, machine: NetworkStateMachine, log: Log, clock: Callable[[], float] = time.time,
                 projects: Projects | None = None):
        self.machine = machine
        self.projects = projects  # IAM, to check that a project exists (None: trust the request)
        self.store = machine.store
        self.log = log
        self.clock = clock

    @staticmethod
    def _require(permission: str, org_id: str = "", project_id: str = "") -> None:
        principal = auth.current()
        if principal is not None:  # None: an in-process caller (tests), or a server without auth
            principal.require(permission, org_id, project_id)

    async def _owner(self, permission: str, org_id: str, project_id: str) -> str:
        """The org of the project a new resource goes to, once the caller may create it there."""
        check_tenant(project_id, "project_id")
        if org_id or self.projects is None:
            check_tenant(org_id, "org_id")
        self._require(permission)
        if self.projects is not None:
            org_id = await self.projects.resolve(project_id, org_id)
        self._require(permission, org_id, project_id)
        return org_id

    async def _read(self, query: Callable[[], Any]) -> Any:
        return await self.log.read(query)

    async def _vpc(self, id: str, permission: str) -> Vpc:
        vpc = _found(await self._read(lambda: self.store.vpc(id)), "VPC", id)
        self._require(permission, vpc.org_id, vpc.project_id)
        return vpc

    async def _subnet(self, id: str, permission: str) -> tuple[Subnet, Vpc]:
        subnet = _found(await self._read(lambda: self.store.subnet(id)), "subnet", id)
        return subnet, await self._vpc(subnet.vpc_id, permission)

    async def _port(self, id: str, permission: str) -> tuple[Port, Vpc]:
        port = _found(await self._read(lambda: self.store.port(id)), "port", id)
        return port, await self._vpc(port.vpc_id, permission)

    async def _group(self, id: str, permission: str) -> SecurityGroup:
        group = _found(await self._read(lambda: self.store.group(id)), "security group", id)
        self._require(permission, group.org_id, group.project_id)
        return group

    @staticmethod
    def _after(page_token: str) -> str:
        if not page_token:
            return ""
        after = paging.decode_token(page_token).get("after")
        if not isinstance(after, str):
            raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
        return after

    async def _page(self, query: Callable[[str, int], list[Any]], page_size: int, page_token: str) -> Page:
        limit, after = paging.page_size(page_size), self._after(page_token)
        found = await self._read(lambda: query(after, limit + 1))
        token = paging.encode_token({"after": found[limit - 1].id}) if len(found) > limit else ""
        return Page(found[:limit], token)

    # VPCs

    async def create_vpc(self, name: str, org_id: str, project_id: str, cidr_block: str,
                         description: str = "") -> Vpc:
        """Create a VPC over a CIDR block (IPv4 /8-/28, IPv6 /44-/64) in an existing project."""
        check_name(name)
        check_text(description)
        network = addressing.parse_cidr(cidr_block, "cidr_block", addressing.VPC_PREFIX)
        org_id = await self._owner(VPCS_WRITE, org_id, project_id)
        now = self.clock()
        return await self.log.propose(CreateVpc(Vpc(uuid.uuid4().hex, name, org_id, project_id, str(network),
                                                     description, now, now)))

    async def vpc(self, id: str) -> Vpc:
        """A VPC."""
        return await self._vpc(id, VPCS_READ)

    async def vpcs(self, org_id: str = "", project_id: str = "", page_size: int = 0, page_token: str = "") -> Page:
        """The VPCs the caller may see, filtered by org and project."""
        self._require(VPCS_READ)
        org_id, project_id = auth.listing_scope(org_id, project_id)
        return await self._page(lambda after, limit: self.store.vpcs(org_id, project_id, after, limit),
                                page_size, page_token)

    async def update_vpc(self, id: str, name: str | None = None, description: str | None = None) -> Vpc:
        """Rename a VPC or change its description."""
        if name is not None:
            check_name(name)
        if description is not None:
            check_text(description)
        await self._vpc(id, VPCS_WRITE)
        return await self.log.propose(UpdateVpc(id, name, description, self.clock()))

    async def delete_vpc(self, id: str) -> Vpc:
        """Delete a VPC that has no subnets (FAILED_PRECONDITION otherwise)."""
        await self._vpc(id, VPCS_WRITE)
        return await self.log.propose(DeleteVpc(id))

    # Subnets

    async def create_subnet(self, vpc_id: str, name: str, cidr_block: str, gateway_ip: str = "",
                            description: str = "", allocation_pools: list[dict[str, str]] | None = None,
                            dns_servers: list[str] | None = None) -> Subnet:
        """Create a subnet inside its VPC, overlapping no sibling; the gateway defaults to the first address."""
        check_name(name)
        check_text(description)
        network = addressing.parse_cidr(cidr_block, "cidr_block", addressing.SUBNET_PREFIX)
        first, _ = addressing.usable(network)
        gateway = addressing.check_inside(network, gateway_ip, "gateway_ip") if gateway_ip else first
        pools = (addressing.check_pools(network, allocation_pools) if allocation_pools
                 else addressing.default_pools(network, gateway))
        dns = tuple(str(addressing.parse_address(d, f"dns_servers[{i}]")) for i, d in enumerate(dns_servers or ()))
        if len(dns) > MAX_DNS_SERVERS:
            raise InvalidArgument(f"at most {MAX_DNS_SERVERS} DNS servers", {"field": "dns_servers"})
        await self._vpc(vpc_id, SUBNETS_WRITE)
        now = self.clock()
        make = type(network.network_address)
        subnet = Subnet(uuid.uuid4().hex, vpc_id, name, str(network), str(make(gateway)), description, pools, dns,
                        network.version, now, now)
        return await self.log.propose(CreateSubnet(subnet))

    async def subnet(self, id: str) -> Subnet:
        """A subnet."""
        return (await self._subnet(id, SUBNETS_READ))[0]

    async def subnets(self, vpc_id: str, page_size: int = 0, page_token: str = "") -> Page:
        """A VPC's subnets."""
        if not vpc_id:
            raise InvalidArgument("vpc_id is required", {"field": "vpc_id"})
        await self._vpc(vpc_id, SUBNETS_READ)
        return await self._page(lambda after, limit: self.store.subnets(vpc_id, after, limit), page_size, page_token)

    async def delete_subnet(self, id: str) -> Subnet:
        """Delete a subnet that has no ports (FAILED_PRECONDITION otherwise)."""
        await self._subnet(id, SUBNETS_WRITE)
        return await self.log.propose(DeleteSubnet(id))

    async def capacity(self, subnet: Subnet) -> tuple[int, int]:
        """(addresses the pools hold, addresses in use by ports) of a subnet."""
        used = await self._read(lambda: self.store.count_ports(subnet.id))
        return addressing.capacity(subnet.allocation_pools, subnet.gateway_ip), used

    # Ports

    async def create_port(self, subnet_id: str, name: str = "", ip_address: str = "", description: str = "",
                          security_group_ids: list[str] | None = None, device_id: str = "",
                          device_type: str = "") -> Port:
        """A port with the next free address of the subnet, or the one asked for, and a unique MAC."""
        if name:
            check_name(name)
        check_text(description)
        device_id, device_type = check_device(device_id, device_type)
        subnet, vpc = await self._subnet(subnet_id, PORTS_WRITE)
        if ip_address:
            network = addressing.ip_network(subnet.cidr_block)
            ip_address = str(addressing.ip_address(addressing.check_inside(network, ip_address, "ip_address")))
        groups = tuple(dict.fromkeys(security_group_ids or ()))
        for attempt in range(MAC_ATTEMPTS):
            now = self.clock()
            port = Port(uuid.uuid4().hex, subnet.id, vpc.id, name, ip_address, random_mac(), device_id, device_type,
                        groups, description, now, now)
            try:
                return await self.log.propose(CreatePort(port, vpc.org_id, vpc.project_id))
            except Aborted:  # the random MAC was taken: draw another
                if attempt == MAC_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def port(self, id: str) -> Port:
        """A port."""
        return (await self._port(id, PORTS_READ))[0]

    async def ports(self, subnet_id: str = "", vpc_id: str = "", device_id: str = "", page_size: int = 0,
                    page_token: str = "") -> Page:
        """Ports of a subnet or a VPC (one of them is required), optionally of one device."""
        if subnet_id:
            subnet, vpc = await self._subnet(subnet_id, PORTS_READ)
            if vpc_id and vpc_id != vpc.id:
                raise InvalidArgument("the subnet is not in this VPC", {"field": "vpc_id"})
        elif vpc_id:
            await self._vpc(vpc_id, PORTS_READ)
        else:
            raise InvalidArgument("subnet_id or vpc_id is required", {"field": "subnet_id"})
        return await self._page(lambda after, limit: self.store.ports(subnet_id, vpc_id, device_id, after, limit),
                                page_size, page_token)

    async def update_port(self, id: str, name: str | None = None, description: str | None = None,
                          security_group_ids: list[str] | None = None) -> Port:
        """Rename a port, change its description or its security groups."""
        if name is not None and name:
            check_name(name)
        if description is not None:
            check_text(description)
        _, vpc = await self._port(id, PORTS_WRITE)
        groups = None if security_group_ids is None else tuple(dict.fromkeys(security_group_ids))
        return await self.log.propose(UpdatePort(id, name, description, groups, vpc.org_id, vpc.project_id,
                                                 self.clock()))

    async def attach_port(self, id: str, device_id: str, device_type: str) -> Port:
        """Attach a port to a device (a VM, a pod, ...); FAILED_PRECONDITION if another device has it."""
        if not device_id:
            raise InvalidArgument("device_id is required", {"field": "device_id"})
        device_id, device_type = check_device(device_id, device_type)
        await self._port(id, PORTS_WRITE)
        return await self.log.propose(AttachPort(id, device_id, device_type, self.clock()))

    async def detach_port(self, id: str) -> Port:
        """Detach a port from its device."""
        await self._port(id, PORTS_WRITE)
        return await self.log.propose(AttachPort(id, "", "", self.clock()))

    async def delete_port(self, id: str) -> Port:
        """Delete a port, freeing its address."""
        await self._port(id, PORTS_WRITE)
        return await self.log.propose(DeletePort(id))

    # Security groups

    async def create_group(self, name: str, org_id: str, project_id: str, description: str = "",
                           rules: list[dict[str, Any]] | None = None) -> SecurityGroup:
        """Create a security group in an existing project, optionally with rules."""
        check_name(name)
        check_text(description)
        if len(rules or ()) > MAX_RULES:
            raise InvalidArgument(f"at most {MAX_RULES} rules", {"field": "rules"})
        org_id = await self._owner(GROUPS_WRITE, org_id, project_id)
        checked = tuple(replace(check_rule(**rule_fields(r)), id=uuid.uuid4().hex) for r in rules or ())
        now = self.clock()
        return await self.log.propose(CreateGroup(SecurityGroup(uuid.uuid4().hex, name, org_id, project_id,
                                                                description, checked, now, now)))

    async def group(self, id: str) -> SecurityGroup:
        """A security group."""
        return await self._group(id, GROUPS_READ)

    async def groups(self, org_id: str = "", project_id: str = "", page_size: int = 0, page_token: str = "") -> Page:
        """The security groups the caller may see."""
        self._require(GROUPS_READ)
        org_id, project_id = auth.listing_scope(org_id, project_id)
        return await self._page(lambda after, limit: self.store.groups(org_id, project_id, after, limit),
                                page_size, page_token)

    async def update_group(self, id: str, name: str | None = None, description: str | None = None) -> SecurityGroup:
        """Rename a security group or change its description."""
        if name is not None:
            check_name(name)
        if description is not None:
            check_text(description)
        await self._group(id, GROUPS_WRITE)
        return await self.log.propose(UpdateGroup(id, name, description, self.clock()))

    async def delete_group(self, id: str) -> SecurityGroup:
        """Delete a security group no port uses and no rule names."""
        await self._group(id, GROUPS_WRITE)
        return await self.log.propose(DeleteGroup(id))

    async def add_rule(self, group_id: str, **fields: Any) -> tuple[SecurityGroup, Rule]:
        """Add a rule to a security group; the group and the new rule."""
        rule = replace(check_rule(**rule_fields(fields)), id=uuid.uuid4().hex)
        await self._group(group_id, GROUPS_WRITE)
        group = await self.log.propose(AddRule(group_id, rule, self.clock()))
        return group, rule

    async def delete_rule(self, group_id: str, rule_id: str) -> SecurityGroup:
        """Remove a rule from a security group."""
        await self._group(group_id, GROUPS_WRITE)
        return await self.log.propose(DeleteRule(group_id, rule_id, self.clock()))

    async def close(self) -> None:
        """Stop the log (the store is closed by whoever opened it)."""
        await self.log.close()


def rule_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A rule's fields with their defaults (INGRESS, ANY, every port, anywhere, IPv4)."""
    known = {"direction": "INGRESS", "protocol": "ANY", "port_range_min": 0, "port_range_max": 0, "remote_cidr": "",
             "remote_group_id": "", "ethertype": "IPv4", "description": ""}
    unknown = set(fields) - set(known)
    if unknown:
        raise InvalidArgument(f"unknown rule field {sorted(unknown)[0]}", {"field": sorted(unknown)[0]})
    return {**known, **{k: v for k, v in fields.items() if v is not None}}


def check_device(device_id: str, device_type: str) -> tuple[str, str]:
    """A device id and its type (upper-case, e.g. VM or POD), both or neither."""
    if bool(device_id) != bool(device_type):
        raise InvalidArgument("device_id and device_type go together", {"field": "device_type"})
    if device_id:
        check_tenant(device_id, "device_id")
        device_type = device_type.upper()
        if not _DEVICE_TYPE.match(device_type):
            raise InvalidArgument("device_type must be a word such as VM or POD", {"field": "device_type"})
    return device_id, device_type

