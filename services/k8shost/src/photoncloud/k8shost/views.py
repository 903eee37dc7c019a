"""k8shost's records as the plain data both transports send (REST as JSON, gRPC via ParseDict).

Times become RFC 3339 strings and resource versions strings (opaque to clients, as in
Kubernetes); a node's daemon token, which only the API server uses, is never shown.
"""

from __future__ import annotations

from typing import Any

from photoncloud.common.times import rfc3339

from .records import KIND_NAMES, Object, encode

TIMES = {"creation_timestamp", "last_transition_time", "started_at", "finished_at", "start_time",
         "last_heartbeat_time"}
HIDDEN = {"daemon_token"}


def _wire(data: Any) -> Any:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key in HIDDEN:
                continue
            if key in TIMES:
                out[key] = rfc3339(value)
            elif key == "resource_version":
                out[key] = str(value)
            else:
                out[key] = _wire(value)
        return out
    if isinstance(data, list):
        return [_wire(v) for v in data]
    return data


def obj(record: Object) -> dict[str, Any]:
    """A namespace, pod, service or node."""
    return _wire(encode(record))


def page(items: list[Object], next_page_token: str, resource_version: int) -> dict[str, Any]:
    """A page of a listing, with the revision it was read at (watch from there)."""
    return {"items": [obj(i) for i in items], "next_page_token": next_page_token,
            "resource_version": str(resource_version)}


def event(event_type: str, revision: int, record: Object) -> dict[str, Any]:
    """A watch event: the object under the field named for its kind (pod, service, node, namespace)."""
    name = KIND_NAMES[type(record)]
    return {"type": event_type, "kind": name, "resource_version": str(revision), name.lower(): obj(record)}


def logs(namespace: str, name: str, container: str, text: str) -> dict[str, Any]:
    """A container's log."""
    return {"namespace": namespace, "name": name, "container": container, "text": text}
