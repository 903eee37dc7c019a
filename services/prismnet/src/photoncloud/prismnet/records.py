"""PrismNET's records: VPCs, subnets, ports, security groups and their rules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vpc:
    """A tenant's private address space."""

    id: str
    name: str
    org_id: str
    project_id: str
    cidr_block: str
    description: str
    created_at: float
    updated_at: float
    # The VXLAN network identifier that carries the VPC between hosts: the state machine gives it
    # when it creates the VPC (0 until then), unique among the VPCs that exist.
    vni: int = 0


@dataclass(frozen=True)
class Pool:
    """An inclusive range of addresses ports may get."""

    start: str
    end: str


@dataclass(frozen=True)
class Subnet:
    """A range of a VPC's addresses that ports are given addresses from."""

    id: str
    vpc_id: str
    name: str
    cidr_block: str
    gateway_ip: str
    description: str
    allocation_pools: tuple[Pool, ...]
    dns_servers: tuple[str, ...]
    ip_version: int
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Port:
    """A network interface in a subnet: an address, a MAC, security groups, maybe a device."""

    id: str
    subnet_id: str
    vpc_id: str
    name: str
    ip_address: str
    mac_address: str
    device_id: str  # "" when detached
    device_type: str  # VM, POD, ... ("" when detached)
    security_group_ids: tuple[str, ...]
    description: str
    created_at: float
    updated_at: float

    @property
    def status(self) -> str:
        """ACTIVE when attached to a device, DOWN otherwise."""
        return "ACTIVE" if self.device_id else "DOWN"


@dataclass(frozen=True)
class Rule:
    """One allowed flow of a security group."""

    id: str
    direction: str  # INGRESS or EGRESS
    protocol: str  # TCP, UDP, ICMP or ANY
    port_range_min: int  # 0 with port_range_max 0: every port (TCP/UDP only)
    port_range_max: int
    remote_cidr: str  # "" when remote_group_id is set; both "": anywhere
    remote_group_id: str
    ethertype: str  # IPv4 or IPv6
    description: str


@dataclass(frozen=True)
class SecurityGroup:
    """Rules of allowed traffic, attached to ports."""

    id: str
    name: str
    org_id: str
    project_id: str
    description: str
    rules: tuple[Rule, ...]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class NetworkState:
    """Everything a host's dataplane needs, read from one snapshot of the store."""

    applied_index: int  # the store's applied log index when read: it grows with every command
    vpcs: list[Vpc]
    subnets: list[tuple[Subnet, int, int]]  # each with its capacity and how many ports hold an address
    ports: list[Port]
    groups: list[SecurityGroup]
