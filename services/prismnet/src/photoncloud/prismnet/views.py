"""PrismNET's records as the plain data both transports send (REST as JSON, gRPC via ParseDict)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from photoncloud.common.times import rfc3339

from .records import Port, Rule, SecurityGroup, Subnet, Vpc


def _times(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "created_at": rfc3339(data["created_at"]), "updated_at": rfc3339(data["updated_at"])}


def vpc(v: Vpc) -> dict[str, Any]:
    """A VPC."""
    return _times(asdict(v))


def subnet(s: Subnet, capacity: int, used: int) -> dict[str, Any]:
    """A subnet, with how many addresses its pools hold and how many ports hold one."""
    data = _times(asdict(s))
    return {**data, "allocation_pools": [asdict(p) for p in s.allocation_pools], "dns_servers": list(s.dns_servers),
            "capacity": capacity, "used": used}


def port(p: Port) -> dict[str, Any]:
    """A port, with its status."""
    return {**_times(asdict(p)), "security_group_ids": list(p.security_group_ids), "status": p.status}


def rule(r: Rule) -> dict[str, Any]:
    """A security group rule."""
    return asdict(r)


def group(g: SecurityGroup) -> dict[str, Any]:
    """A security group and its rules."""
    return {**_times(asdict(g)), "rules": [rule(r) for r in g.rules]}


def page(items: list[dict[str, Any]], next_page_token: str) -> dict[str, Any]:
    """A page of a listing."""
    return {"items": items, "next_page_token": next_page_token}
