"""PrismNET's commands: what NetworkStateMachine (machine.py) applies, one at a time.

Frozen dataclasses of plain values, complete in themselves: the proposer (core.py) puts in the ids,
MACs and times, so that applying a command needs no clock and no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .records import Port, Rule, SecurityGroup, Subnet, Vpc


@dataclass(frozen=True)
class CreateVpc:
    """Create a VPC."""

    vpc: Vpc


@dataclass(frozen=True)
class UpdateVpc:
    """Rename a VPC or change its description (None: unchanged)."""

    id: str
    name: str | None
    description: str | None
    now: float


@dataclass(frozen=True)
class DeleteVpc:
    """Delete a VPC that has no subnets."""

    id: str


@dataclass(frozen=True)
class CreateSubnet:
    """Create a subnet inside its VPC, overlapping no sibling, and reserve its gateway address."""

    subnet: Subnet


@dataclass(frozen=True)
class DeleteSubnet:
    """Delete a subnet that has no ports."""

    id: str


@dataclass(frozen=True)
class CreatePort:
    """Create a port holding an address of its subnet, with security groups of the port's project."""

    port: Port  # ip_address "" asks for the next free address
    org_id: str
    project_id: str


@dataclass(frozen=True)
class UpdatePort:
    """Rename a port, change its description or its security groups (None: unchanged)."""

    id: str
    name: str | None
    description: str | None
    security_group_ids: tuple[str, ...] | None
    org_id: str
    project_id: str
    now: float


@dataclass(frozen=True)
class AttachPort:
    """Attach a port to a device no other device holds it for, or detach it."""

    id: str
    device_id: str  # "": detach
    device_type: str
    now: float


@dataclass(frozen=True)
class DeletePort:
    """Delete a port, freeing its address."""

    id: str


@dataclass(frozen=True)
class CreateGroup:
    """Create a security group with its rules."""

    group: SecurityGroup


@dataclass(frozen=True)
class UpdateGroup:
    """Rename a security group or change its description (None: unchanged)."""

    id: str
    name: str | None
    description: str | None
    now: float


@dataclass(frozen=True)
class DeleteGroup:
    """Delete a security group no port uses and no other group's rule names."""

    id: str


@dataclass(frozen=True)
class AddRule:
    """Add a rule to a security group."""

    group_id: str
    rule: Rule
    now: float


@dataclass(frozen=True)
class DeleteRule:
    """Remove a rule from a security group."""

    group_id: str
    rule_id: str
    now: float


Command = Union[CreateVpc, UpdateVpc, DeleteVpc, CreateSubnet, DeleteSubnet, CreatePort, UpdatePort, AttachPort,
                DeletePort, CreateGroup, UpdateGroup, DeleteGroup, AddRule, DeleteRule]
