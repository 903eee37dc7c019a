"""PrismNET's records as the messages of its contract, and the messages' parts the core takes."""

from __future__ import annotations

from typing import Any

from photoncloud.common.messages import from_record
from photoncloud.prismnet.v1 import prismnet_pb2 as pb

from .records import NetworkState, Port, Rule, SecurityGroup, Subnet, Vpc


def vpc(v: Vpc) -> pb.Vpc:
    """A VPC."""
    return from_record(pb.Vpc, v)


def subnet(s: Subnet, capacity: int, used: int) -> pb.Subnet:
    """A subnet, with how many addresses its pools hold and how many ports hold one."""
    return from_record(pb.Subnet, s, capacity=capacity, used=used)


def port(p: Port) -> pb.Port:
    """A port, with its status."""
    return from_record(pb.Port, p, status=p.status)


def rule(r: Rule) -> pb.Rule:
    """A security group rule."""
    return from_record(pb.Rule, r)


def group(g: SecurityGroup) -> pb.SecurityGroup:
    """A security group and its rules."""
    return from_record(pb.SecurityGroup, g)


def network_state(state: NetworkState) -> pb.NetworkState:
    """The whole network state, as the dataplane agents read it."""
    return pb.NetworkState(applied_index=state.applied_index, vpcs=[vpc(v) for v in state.vpcs],
                           subnets=[subnet(*s) for s in state.subnets], ports=[port(p) for p in state.ports],
                           security_groups=[group(g) for g in state.groups])


def rule_fields(r: pb.Rule) -> dict[str, Any]:
    """What the core takes of a rule to add (its id is PrismNET's to give), unset fields defaulted
    as Neutron does: INGRESS, any protocol, IPv4."""
    return {"direction": r.direction or "INGRESS", "protocol": r.protocol or "ANY",
            "port_range_min": r.port_range_min, "port_range_max": r.port_range_max, "remote_cidr": r.remote_cidr,
            "remote_group_id": r.remote_group_id, "ethertype": r.ethertype or "IPv4", "description": r.description}
