"""PrismNET's domain: VPCs carved into subnets, ports with addresses and MACs, security groups.

Anchors: OpenStack Neutron (subnets with allocation pools and a gateway, ports with fixed IPs
and MACs, security groups with ingress/egress rules) and AWS VPC (CIDR bounds, no overlapping
subnets). Every operation authorizes, validates, then proposes a command (commands.py) to the log,
which NetworkStateMachine (machine.py) applies one at a time, or reads the store. The rules that
depend on other resources are checked in the machine's step, not here, so that two concurrent
requests can never both pass them.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, cast

from photoncloud.common import auth, paging
from photoncloud.common.errors import Aborted, InvalidArgument
from photoncloud.common.projects import Projects
from photoncloud.common.replication import Log, Scan

from . import addressing
from .commands import (AddRule, AttachPort, Command, CreateGroup, CreatePort, CreateSubnet, CreateVpc, DeleteGroup,
                       DeletePort, DeleteRule, DeleteSubnet, DeleteVpc, UpdateGroup, UpdatePort, UpdateVpc)
from .machine import MAX_RULES, NetworkStateMachine, found
from .records import NetworkState, Port, Rule, SecurityGroup, Subnet, Vpc

R = TypeVar("R")

VPCS_READ, VPCS_WRITE = "prismnet:vpcs:read", "prismnet:vpcs:write"
SUBNETS_READ, SUBNETS_WRITE = "prismnet:subnets:read", "prismnet:subnets:write"
PORTS_READ, PORTS_WRITE = "prismnet:ports:read", "prismnet:ports:write"
GROUPS_READ, GROUPS_WRITE = "prismnet:securitygroups:read", "prismnet:securitygroups:write"
DATAPLANE_READ = "prismnet:dataplane:read"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,62}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_DEVICE_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")
MAX_TEXT = 1024
MAX_DNS_SERVERS = 5
MAC_PREFIX = "fa:16:3e"  # locally administered, unicast (the prefix Neutron uses)
MAC_ATTEMPTS = 8
PROTOCOLS = ("TCP", "UDP", "ICMP", "ANY")


@dataclass(frozen=True)
class Page:
    """A page of a listing."""

    items: list[Any]
    next_page_token: str


class NetworkReads(Protocol):
    """What the core reads from the store (SqliteNetworkStore in store.py), always through the log."""

    def vpc(self, id: str) -> Vpc | None:
        """A VPC by id."""

    def vpcs(self, org_id: str, project_id: str, after: str, limit: int) -> list[Vpc]:
        """VPCs by id after `after`, of one org and/or project when given."""

    def subnet(self, id: str) -> Subnet | None:
        """A subnet by id."""

    def subnets(self, vpc_id: str, after: str = "", limit: int = -1) -> list[Subnet]:
        """A VPC's subnets by id after `after`."""

    def port(self, id: str) -> Port | None:
        """A port by id."""

    def ports(self, subnet_id: str, vpc_id: str, device_id: str, after: str, limit: int) -> list[Port]:
        """Ports by id after `after`, filtered by subnet, VPC or device when given."""

    def count_ports(self, subnet_id: str) -> int:
        """How many ports a subnet has."""

    def group(self, id: str) -> SecurityGroup | None:
        """A security group by id."""

    def groups(self, org_id: str, project_id: str, after: str, limit: int) -> list[SecurityGroup]:
        """Security groups by id after `after`, of one org and/or project when given."""

    def network_state(self) -> NetworkState:
        """Every VPC, subnet, port and security group, and the applied index, read together."""


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
        self.store: NetworkReads = machine.store
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

    async def _read(self, query: Callable[[], R]) -> R:
        return await self.log.read(query)

    async def _propose(self, command: Command, result: type[R]) -> R:
        """Apply command through the log: what the state machine returns for it, of type result."""
        return cast(R, await self.log.propose(command))

    async def _vpc(self, id: str, permission: str) -> Vpc:
        vpc = found(await self._read(lambda: self.store.vpc(id)), "VPC", id)
        self._require(permission, vpc.org_id, vpc.project_id)
        return vpc

    async def _subnet(self, id: str, permission: str) -> tuple[Subnet, Vpc]:
        subnet = found(await self._read(lambda: self.store.subnet(id)), "subnet", id)
        return subnet, await self._vpc(subnet.vpc_id, permission)

    async def _port(self, id: str, permission: str) -> tuple[Port, Vpc]:
        port = found(await self._read(lambda: self.store.port(id)), "port", id)
        return port, await self._vpc(port.vpc_id, permission)

    async def _group(self, id: str, permission: str) -> SecurityGroup:
        group = found(await self._read(lambda: self.store.group(id)), "security group", id)
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
        rows = await self._read(lambda: query(after, limit + 1))
        token = paging.encode_token({"after": rows[limit - 1].id}) if len(rows) > limit else ""
        return Page(rows[:limit], token)

    # VPCs

    async def create_vpc(self, name: str, org_id: str, project_id: str, cidr_block: str,
                         description: str = "") -> Vpc:
        """Create a VPC over a CIDR block (IPv4 /8-/28, IPv6 /44-/64) in an existing project."""
        check_name(name)
        check_text(description)
        network = addressing.parse_cidr(cidr_block, "cidr_block", addressing.VPC_PREFIX)
        org_id = await self._owner(VPCS_WRITE, org_id, project_id)
        now = self.clock()
        return await self._propose(CreateVpc(Vpc(uuid.uuid4().hex, name, org_id, project_id, str(network),
                                                  description, now, now)), Vpc)

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
        return await self._propose(UpdateVpc(id, name, description, self.clock()), Vpc)

    async def delete_vpc(self, id: str) -> Vpc:
        """Delete a VPC that has no subnets (FAILED_PRECONDITION otherwise)."""
        await self._vpc(id, VPCS_WRITE)
        return await self._propose(DeleteVpc(id), Vpc)

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
        return await self._propose(CreateSubnet(subnet), Subnet)

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
        return await self._propose(DeleteSubnet(id), Subnet)

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
            network = ipaddress.ip_network(subnet.cidr_block)
            ip_address = str(ipaddress.ip_address(addressing.check_inside(network, ip_address, "ip_address")))
        groups = tuple(dict.fromkeys(security_group_ids or ()))
        for attempt in range(MAC_ATTEMPTS):
            now = self.clock()
            port = Port(uuid.uuid4().hex, subnet.id, vpc.id, name, ip_address, random_mac(), device_id, device_type,
                        groups, description, now, now)
            try:
                return await self._propose(CreatePort(port, vpc.org_id, vpc.project_id), Port)
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
        return await self._propose(UpdatePort(id, name, description, groups, vpc.org_id, vpc.project_id,
                                              self.clock()), Port)

    async def attach_port(self, id: str, device_id: str, device_type: str) -> Port:
        """Attach a port to a device (a VM, a pod, ...); FAILED_PRECONDITION if another device has it."""
        if not device_id:
            raise InvalidArgument("device_id is required", {"field": "device_id"})
        device_id, device_type = check_device(device_id, device_type)
        await self._port(id, PORTS_WRITE)
        return await self._propose(AttachPort(id, device_id, device_type, self.clock()), Port)

    async def detach_port(self, id: str) -> Port:
        """Detach a port from its device."""
        await self._port(id, PORTS_WRITE)
        return await self._propose(AttachPort(id, "", "", self.clock()), Port)

    async def delete_port(self, id: str) -> Port:
        """Delete a port, freeing its address."""
        await self._port(id, PORTS_WRITE)
        return await self._propose(DeletePort(id), Port)

    # Security groups

    async def create_group(self, name: str, org_id: str, project_id: str, description: str = "",
                           rules: list[dict[str, Any]] | None = None) -> SecurityGroup:
        """Create a security group in an existing project with the default egress rules (everything
        out, IPv4 and IPv6), then the rules given, as Neutron and AWS do: what a port receives is
        denied unless a rule allows it, what it sends allowed until those rules are deleted."""
        check_name(name)
        check_text(description)
        if len(rules or ()) > MAX_RULES:
            raise InvalidArgument(f"at most {MAX_RULES} rules", {"field": "rules"})
        org_id = await self._owner(GROUPS_WRITE, org_id, project_id)
        checked = tuple(replace(check_rule(**rule_fields(r)), id=uuid.uuid4().hex) for r in rules or ())
        checked = default_egress(checked) + checked
        if len(checked) > MAX_RULES:
            raise InvalidArgument(f"at most {MAX_RULES} rules, the {len(DEFAULT_EGRESS)} default egress rules "
                                  "included", {"field": "rules"})
        now = self.clock()
        return await self._propose(CreateGroup(SecurityGroup(uuid.uuid4().hex, name, org_id, project_id,
                                                             description, checked, now, now)), SecurityGroup)

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
        return await self._propose(UpdateGroup(id, name, description, self.clock()), SecurityGroup)

    async def delete_group(self, id: str) -> SecurityGroup:
        """Delete a security group no port uses and no rule names."""
        await self._group(id, GROUPS_WRITE)
        return await self._propose(DeleteGroup(id), SecurityGroup)

    async def add_rule(self, group_id: str, **fields: Any) -> tuple[SecurityGroup, Rule]:
        """Add a rule to a security group; the group and the new rule."""
        rule = replace(check_rule(**rule_fields(fields)), id=uuid.uuid4().hex)
        await self._group(group_id, GROUPS_WRITE)
        group = await self._propose(AddRule(group_id, rule, self.clock()), SecurityGroup)
        return group, rule

    async def delete_rule(self, group_id: str, rule_id: str) -> SecurityGroup:
        """Remove a rule from a security group."""
        await self._group(group_id, GROUPS_WRITE)
        return await self._propose(DeleteRule(group_id, rule_id, self.clock()), SecurityGroup)

    # The dataplane

    async def network_state(self) -> NetworkState:
        """Every VPC, subnet, port and security group of every project, read from one snapshot with
        the applied index; the operator's (a system-scoped token), for the agents that make the
        networks real on each host.

        One answer however large, built in memory: in the protobuf encoding about 300 bytes per
        port, 200 per subnet, VPC or security group and 70 per rule (JSON over REST about twice
        that), so some ten thousand ports fit a gRPC client's default 4 MiB limit; a client
        expecting more raises its `grpc.max_receive_message_length`. (Agents poll it for now; a
        watch from the applied index can replace polling.)"""
        principal = auth.current()
        if principal is not None:
            principal.require_operator(DATAPLANE_READ)
            principal.require(DATAPLANE_READ)
        return await self._read(Scan(self.store.network_state))  # every row: not on the event loop

    async def close(self) -> None:
        """Stop the log (the store is closed by whoever opened it)."""
        await self.log.close()


# The rules a new security group starts with: every protocol out, to anywhere, over either IP version.
DEFAULT_EGRESS = tuple(Rule("", "EGRESS", "ANY", 0, 0, "", "", ethertype, "") for ethertype in ("IPv4", "IPv6"))


def default_egress(given: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """The default egress rules, with fresh ids, but those the given rules already hold (the ids
    are made here, before the command is proposed, so that every replica stores the same ones)."""
    same = {replace(r, id="", description="") for r in given}
    return tuple(replace(r, id=uuid.uuid4().hex) for r in DEFAULT_EGRESS if r not in same)


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
