"""PlasmaVMC's records as the plain data both transports send (REST as JSON, gRPC via ParseDict)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from photoncloud.common.times import rfc3339

from .core import Console
from .records import Flavor, Image, Vm


def flavor(f: Flavor) -> dict[str, Any]:
    """A flavor."""
    return {**asdict(f), "created_at": rfc3339(f.created_at), "updated_at": rfc3339(f.updated_at)}


def image(i: Image) -> dict[str, Any]:
    """An image, with its files' sizes and digests (absent files are null)."""
    return {"id": i.id, "name": i.name, "kind": i.kind,
            **{role: asdict(f) if (f := getattr(i, role)) else None for role in ("kernel", "initrd", "disk")},
            "disk_format": i.disk_format, "cmdline": i.cmdline, "size_bytes": i.size_bytes,
            "description": i.description, "created_at": rfc3339(i.created_at)}


def vm(v: Vm) -> dict[str, Any]:
    """A VM, with its NICs."""
    return {"id": v.id, "name": v.name, "org_id": v.org_id, "project_id": v.project_id, "state": v.state.value,
            "flavor_id": v.flavor_id, "vcpus": v.vcpus, "memory_mib": v.memory_mib, "image_id": v.image_id,
            "nics": [{"port_id": n.port_id, "subnet_id": n.subnet_id, "ip_address": n.ip_address,
                      "mac_address": n.mac_address} for n in v.nics],
            "price_per_hour": v.price_per_hour, "reservation_id": v.reservation_id, "charged": v.charged,
            "last_error": v.last_error, "description": v.description, "created_at": rfc3339(v.created_at),
            "updated_at": rfc3339(v.updated_at), "started_at": rfc3339(v.started_at) if v.started_at else ""}


def console(c: Console) -> dict[str, Any]:
    """The end of a console log."""
    return asdict(c)


def page(items: list[dict[str, Any]], next_page_token: str) -> dict[str, Any]:
    """A page of a listing."""
    return {"items": items, "next_page_token": next_page_token}
