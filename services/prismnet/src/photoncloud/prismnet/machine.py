"""PrismNET's deterministic state machine: it applies the commands (commands.py) to the store.

One command at a time, each in one fsynced SQLite transaction: the rules that depend on other
resources (a subnet overlapping a sibling, an address already held, a VPC that still has subnets)
are checked here, inside that step, so two concurrent requests can never both pass them. No clock,
no randomness: the proposer (core.py) puts ids, MACs and times into the commands.
"""

from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import ip_address, ip_network
from typing import TypeVar

from photoncloud.common.errors import (Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound,
                                      ResourceExhausted)
from photoncloud.common.sqlite import SqliteStateMachine

from . import addressing
from .commands import (AddRule, AttachPort, Command, CreateGroup, CreatePort, CreateSubnet, CreateVpc, DeleteGroup,
                       DeletePort, DeleteRule, DeleteSubnet, DeleteVpc, UpdateGroup, UpdatePort, UpdateVpc)
from .records import Port, Rule, SecurityGroup, Subnet, Vpc
from .store import VNI_MAX, VNI_MIN, SqliteNetworkStore

R = TypeVar("R")

MAX_RULES = 100  # rules per security group
NEXT_VNI = "next_vni"  # the meta entry naming where the search for a VPC's VNI starts


def found(record: R | None, what: str, id: str) -> R:
    """record, or NOT_FOUND naming what is missing."""
    if record is None:
        raise NotFound(f"{what} not found", {"id": id})
    return record


class NetworkStateMachine(SqliteStateMachine):
    """Applies PrismNET's commands to the store. Deterministic: ids and MACs come in the commands."""

    store: SqliteNetworkStore
    snapshot_reads = True  # its whole state is the store's: nothing kept in Python while applying

    def __init__(self, store: SqliteNetworkStore, vnis: tuple[int, int] | None = None):
        super().__init__(store)
        self.vnis = vnis or (VNI_MIN, VNI_MAX)  # the VNIs VPCs may get, inclusive (a test narrows them)

    def execute(self, c: Command) -> object:
        """Apply one command with the method named after it (CreateVpc: _create_vpc)."""
        handler = getattr(self, "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(c).__name__).lower())
        return handler(c)

    # VPCs

    def _create_vpc(self, c: CreateVpc) -> Vpc:
        if self.store.vpc(c.vpc.id) is not None:
            raise AlreadyExists("a VPC with this id exists", {"id": c.vpc.id})
        vpc = replace(c.vpc, vni=self._next_vni())
        self.store.save_vpc(vpc)
        return vpc

    def _next_vni(self) -> int:
        """The first free VNI from the one after the last given, wrapping around once: a deleted
        VPC's VNI goes to a new VPC only after every other one has been used, so that a host still
        carrying the old VPC's tunnel cannot join the new one's traffic to it."""
        low, high = self.vnis
        start = min(max(self.store.meta(NEXT_VNI), low), high)
        vni = self.store.free_vni(start, high)
        if vni is None:
            vni = self.store.free_vni(low, start - 1)
        if vni is None:
            raise ResourceExhausted(f"every VXLAN network identifier ({high - low + 1}) is taken: no VPC can be "
                                    "created until one is deleted", {"reason": "VNI_EXHAUSTED"})
        self.store.set_meta(NEXT_VNI, vni + 1)
        return vni

    def _update_vpc(self, c: UpdateVpc) -> Vpc:
        vpc = found(self.store.vpc(c.id), "VPC", c.id)
        vpc = replace(vpc, name=vpc.name if c.name is None else c.name,
                      description=vpc.description if c.description is None else c.description, updated_at=c.now)
        self.store.save_vpc(vpc)
        return vpc

    def _delete_vpc(self, c: DeleteVpc) -> Vpc:
        vpc = found(self.store.vpc(c.id), "VPC", c.id)
        subnets = self.store.subnets(c.id)
        if subnets:
            raise FailedPrecondition(f"the VPC still has {len(subnets)} subnet(s); delete them first",
                                     {"reason": "VPC_HAS_SUBNETS", "subnet_ids": [s.id for s in subnets]})
        self.store.delete_vpc(c.id)
        return vpc

    # Subnets

    def _create_subnet(self, c: CreateSubnet) -> Subnet:
        subnet = c.subnet
        vpc = found(self.store.vpc(subnet.vpc_id), "VPC", subnet.vpc_id)
        network, vpc_network = ip_network(subnet.cidr_block), ip_network(vpc.cidr_block)
        if not addressing.inside(network, vpc_network):
            raise InvalidArgument(f"cidr_block {network} lies outside the VPC's {vpc_network}",
                                  {"field": "cidr_block", "vpc_cidr_block": str(vpc_network)})
        # In address order, so that the sibling named is the same whatever the ids.
        for sibling in sorted(self.store.subnets(vpc.id), key=lambda s: ip_network(s.cidr_block)):
            if network.overlaps(ip_network(sibling.cidr_block)):
                raise FailedPrecondition(f"cidr_block {network} overlaps subnet {sibling.name!r} "
                                         f"({sibling.cidr_block})",
                                         {"reason": "SUBNET_OVERLAPS", "field": "cidr_block",
                                          "subnet_id": sibling.id, "cidr_block": sibling.cidr_block})
        self.store.save_subnet(subnet)
        self.store.allocate(subnet.id, int(ip_address(subnet.gateway_ip)), "")  # never given to a port
        return subnet

    def _delete_subnet(self, c: DeleteSubnet) -> Subnet:
        subnet = found(self.store.subnet(c.id), "subnet", c.id)
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
        subnet = found(self.store.subnet(port.subnet_id), "subnet", port.subnet_id)
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
            free = addressing.first_free(subnet.allocation_pools,
                                         lambda low, high: self.store.allocated(subnet.id, low, high))
            if free is None:
                raise ResourceExhausted("the subnet has no free address left",
                                        {"reason": "SUBNET_FULL", "subnet_id": subnet.id})
            address = free
            port = replace(port, ip_address=str(ip_address(free)))
        self.store.allocate(subnet.id, address, port.id)
        self.store.save_port(port)
        return port

    def _update_port(self, c: UpdatePort) -> Port:
        port = found(self.store.port(c.id), "port", c.id)
        if c.security_group_ids is not None:
            self._check_groups(c.security_group_ids, c.org_id, c.project_id)
        port = replace(port, name=port.name if c.name is None else c.name,
                       description=port.description if c.description is None else c.description,
                       security_group_ids=port.security_group_ids if c.security_group_ids is None
                       else c.security_group_ids, updated_at=c.now)
        self.store.save_port(port)
        return port

    def _attach_port(self, c: AttachPort) -> Port:
        port = found(self.store.port(c.id), "port", c.id)
        if c.device_id and port.device_id and (port.device_id, port.device_type) != (c.device_id, c.device_type):
            raise FailedPrecondition(f"the port is attached to {port.device_type} {port.device_id}; detach it first",
                                     {"reason": "PORT_IN_USE", "device_id": port.device_id})
        port = replace(port, device_id=c.device_id, device_type=c.device_type, updated_at=c.now)
        self.store.save_port(port)
        return port

    def _delete_port(self, c: DeletePort) -> Port:
        port = found(self.store.port(c.id), "port", c.id)
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
        group = found(self.store.group(c.id), "security group", c.id)
        group = replace(group, name=group.name if c.name is None else c.name,
                        description=group.description if c.description is None else c.description, updated_at=c.now)
        self.store.save_group(group)
        return group

    def _delete_group(self, c: DeleteGroup) -> SecurityGroup:
        group = found(self.store.group(c.id), "security group", c.id)
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
        group = found(self.store.group(c.group_id), "security group", c.group_id)
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
        group = found(self.store.group(c.group_id), "security group", c.group_id)
        rules = tuple(r for r in group.rules if r.id != c.rule_id)
        if len(rules) == len(group.rules):
            raise NotFound("rule not found", {"id": c.rule_id})
        group = replace(group, rules=rules, updated_at=c.now)
        self.store.save_group(group)
        return group

