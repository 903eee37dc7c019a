"""The table form kubectl get asks for (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): the
columns Kubernetes' own printers show for each kind (priority 1: only with -o wide), one row per object."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from typing import Any

Row = Callable[[dict[str, Any], float], list[Any]]
TABLE_MEDIA = "as=table"


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for the table form first (kubectl get does; -o json does not)."""
    first = accept.split(",")[0].replace(" ", "").lower()
    return TABLE_MEDIA in first and "g=meta.k8s.io" in first


def age(created: str | None, now: float) -> str:
    """How long ago an RFC 3339 time was, as kubectl writes it (apimachinery's duration.HumanDuration)."""
    if not created:
        return "<unknown>"
    seconds = int(now - calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")))
    if seconds < -1:  # clocks may differ by a second; more is an error
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours = seconds // 60, seconds // 3600
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def _meta(obj: dict[str, Any], key: str) -> Any:
    return (obj.get("metadata") or {}).get(key)


def _pod(obj: dict[str, Any], now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    shown = status.get("reason") or status.get("phase") or "Pending"
    for s in statuses:  # a waiting or failed container's reason says more than the phase (as kubectl shows it)
        state = s.get("state") or {}
        why = (state.get("waiting") or {}).get("reason") or (state.get("terminated") or {}).get("reason")
        if why and not s.get("ready") and shown != "Succeeded":
            shown = why
            break
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    return [_meta(obj, "name"), f"{ready}/{len(spec.get('containers') or [])}", shown, restarts,
            age(_meta(obj, "creationTimestamp"), now), status.get("podIP") or "<none>",
            spec.get("nodeName") or "<none>", "<none>", "<none>"]


def _ports(spec: dict[str, Any]) -> str:
    shown = []
    for p in spec.get("ports") or []:
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        shown.append(f"{p.get('port')}{node}/{p.get('protocol', 'TCP')}")
    return ",".join(shown) or "<none>"


def _service(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [_meta(obj, "name"), spec.get("type", ""), spec.get("clusterIP") or "<none>", "<none>", _ports(spec),
            age(_meta(obj, "creationTimestamp"), now), selector]


def _endpoints(obj: dict[str, Any], now: float) -> list[Any]:
    shown = []
    for subset in obj.get("subsets") or []:
        for a in subset.get("addresses") or []:
            for p in subset.get("ports") or [{}]:
                shown.append(f"{a['ip']}:{p['port']}" if p else a["ip"])
    text = ",".join(shown[:3]) + (f" + {len(shown) - 3} more..." if len(shown) > 3 else "")
    return [_meta(obj, "name"), text or "<none>", age(_meta(obj, "creationTimestamp"), now)]


def _endpoint_slice(obj: dict[str, Any], now: float) -> list[Any]:
    ports = ",".join(str(p.get("port")) for p in obj.get("ports") or []) or "<unset>"
    shown = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    text = ",".join(shown[:3]) + (f" + {len(shown) - 3} more..." if len(shown) > 3 else "")
    return [_meta(obj, "name"), obj.get("addressType", ""), ports, text or "<unset>",
            age(_meta(obj, "creationTimestamp"), now)]


def _namespace(obj: dict[str, Any], now: float) -> list[Any]:
    return [_meta(obj, "name"), (obj.get("status") or {}).get("phase", ""), age(_meta(obj, "creationTimestamp"), now)]


def _node(obj: dict[str, Any], now: float) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    shown = "Unknown" if ready is None or ready.get("status") == "Unknown" else \
        "Ready" if ready.get("status") == "True" else "NotReady"
    if spec.get("unschedulable"):
        shown += ",SchedulingDisabled"
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [_meta(obj, "name"), shown, "<none>", age(_meta(obj, "creationTimestamp"), now),
            info.get("kubeletVersion", ""), addresses.get("InternalIP") or "<none>",
            addresses.get("ExternalIP") or "<none>", info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion", "")]


def _event(obj: dict[str, Any], now: float) -> list[Any]:
    involved = obj.get("involvedObject") or {}
    source = obj.get("source") or {}
    return [age(obj.get("lastTimestamp"), now), obj.get("type", ""), obj.get("reason", ""),
            f"{involved.get('kind', '').lower()}/{involved.get('name', '')}", obj.get("message", ""),
            involved.get("fieldPath", ""), ", ".join(v for v in (source.get("component"), source.get("host")) if v),
            age(obj.get("firstTimestamp"), now), obj.get("count", 1), _meta(obj, "name")]


def _column(name: str, kind: str = "string", priority: int = 0, format: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": format, "description": name, "priority": priority}


NAME = _column("Name", format="name")
AGE = _column("Age")
COLUMNS: dict[str, tuple[list[dict[str, Any]], Row]] = {
    "pods": ([NAME, _column("Ready"), _column("Status"), _column("Restarts", "integer"), AGE,
              _column("IP", priority=1), _column("Node", priority=1), _column("Nominated Node", priority=1),
              _column("Readiness Gates", priority=1)], _pod),
    "services": ([NAME, _column("Type"), _column("Cluster-IP"), _column("External-IP"), _column("Port(s)"), AGE,
                  _column("Selector", priority=1)], _service),
    "endpoints": ([NAME, _column("Endpoints"), AGE], _endpoints),
    "endpointslices": ([NAME, _column("AddressType"), _column("Ports"), _column("Endpoints"), AGE], _endpoint_slice),
    "namespaces": ([NAME, _column("Status"), AGE], _namespace),
    "nodes": ([NAME, _column("Status"), _column("Roles"), AGE, _column("Version"),
               _column("Internal-IP", priority=1), _column("External-IP", priority=1),
               _column("OS-Image", priority=1), _column("Kernel-Version", priority=1),
               _column("Container-Runtime", priority=1)], _node),
    "events": ([_column("Last Seen"), _column("Type"), _column("Reason"), _column("Object"), _column("Message"),
                _column("Subobject", priority=1), _column("Source", priority=1), _column("First Seen", priority=1),
                _column("Count", "integer", priority=1), _column("Name", priority=1)], _event),
}


def table(resource: str, objects: list[dict[str, Any]], list_meta: dict[str, Any],
          include: str = "Metadata") -> dict[str, Any]:
    """objects of a resource as a meta.k8s.io/v1 Table (each row carries the object, or its metadata: include)."""
    columns, row = COLUMNS[resource]
    now = time.time()
    rows = []
    for obj in objects:
        carried: Any = None
        if include == "Object":
            carried = obj
        elif include != "None":
            carried = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        rows.append({"cells": row(obj, now), "object": carried})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns,
            "rows": rows}
