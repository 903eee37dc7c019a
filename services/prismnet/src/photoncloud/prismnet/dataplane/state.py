"""The network state a host carries, as the dataplane agent reads it from PrismNET (GetNetworkState)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NetRule:
    """One allowed flow of a security group (records.Rule's fields that decide a packet)."""

    direction: str  # INGRESS or EGRESS
    protocol: str  # TCP, UDP, ICMP or ANY
    port_range_min: int
    port_range_max: int
    remote_cidr: str
    remote_group_id: str
    ethertype: str  # IPv4 or IPv6


@dataclass(frozen=True)
class NetPort:
    """A port: the device named for it on its VPC's bridge, its address and MAC, its groups."""

    id: str
    vpc_id: str
    subnet_id: str
    ip_address: str
    mac_address: str
    security_group_ids: tuple[str, ...]


@dataclass(frozen=True)
class NetSubnet:
    """A subnet: its range, gateway (in the VPC's router namespace) and DNS servers for DHCP."""

    id: str
    vpc_id: str
    cidr_block: str
    gateway_ip: str
    dns_servers: tuple[str, ...]

    @property
    def gateway_interface(self) -> str:
        """The gateway address with the subnet's prefix length (10.0.1.1/24)."""
        return f"{self.gateway_ip}/{ipaddress.ip_network(self.cidr_block).prefixlen}"


@dataclass(frozen=True)
class NetVpc:
    """A VPC: a bridge, a router namespace and a VXLAN network identifier."""

    id: str
    cidr_block: str
    vni: int


@dataclass(frozen=True)
class NetworkState:
    """Every VPC, subnet, port and security group, by id."""

    vpcs: dict[str, NetVpc] = field(default_factory=dict)
    subnets: dict[str, NetSubnet] = field(default_factory=dict)
    ports: dict[str, NetPort] = field(default_factory=dict)
    groups: dict[str, tuple[NetRule, ...]] = field(default_factory=dict)

    def subnets_of(self, vpc_id: str) -> list[NetSubnet]:
        """A VPC's subnets, by id."""
        return sorted((s for s in self.subnets.values() if s.vpc_id == vpc_id), key=lambda s: s.id)

    def ports_of(self, vpc_id: str) -> list[NetPort]:
        """A VPC's ports, by id."""
        return sorted((p for p in self.ports.values() if p.vpc_id == vpc_id), key=lambda p: p.id)

    def members(self, group_id: str) -> list[str]:
        """The addresses of the ports in a security group (what a rule's remote group stands for)."""
        return sorted(p.ip_address for p in self.ports.values() if group_id in p.security_group_ids)


def parse(data: dict[str, Any]) -> NetworkState:
    """The state from GetNetworkState's answer (its REST body's `data`, proto field names)."""
    vpcs = {v["id"]: NetVpc(v["id"], v["cidr_block"], int(v.get("vni") or 0)) for v in data.get("vpcs", [])}
    subnets = {s["id"]: NetSubnet(s["id"], s["vpc_id"], s["cidr_block"], s.get("gateway_ip", ""),
                                  tuple(s.get("dns_servers", ()))) for s in data.get("subnets", [])}
    ports = {p["id"]: NetPort(p["id"], p["vpc_id"], p["subnet_id"], p["ip_address"], p["mac_address"],
                              tuple(p.get("security_group_ids", ()))) for p in data.get("ports", [])}
    groups = {g["id"]: tuple(NetRule(r["direction"], r.get("protocol", "ANY"), int(r.get("port_range_min") or 0),
                                     int(r.get("port_range_max") or 0), r.get("remote_cidr", ""),
                                     r.get("remote_group_id", ""), r.get("ethertype", "IPv4"))
                             for r in g.get("rules", ())) for g in data.get("security_groups", [])}
    return NetworkState(vpcs, subnets, ports, groups)
