"""Field selectors (`fieldSelector=spec.nodeName=n1,status.phase!=Failed`), over objects as Kubernetes
shows them, on the fields Kubernetes allows for each kind; any other field is refused as it refuses it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from photoncloud.common.errors import InvalidArgument

COMMON = ("metadata.name", "metadata.namespace")
# What Kubernetes' own field selectors offer for these kinds (pkg/registry/core/*/strategy.go).
ALLOWED = {
    "pods": (*COMMON, "spec.nodeName", "spec.restartPolicy", "status.phase", "status.podIP"),
    "services": (*COMMON, "spec.clusterIP", "spec.type"),
    "endpoints": COMMON,
    "endpointslices": (*COMMON, "addressType"),
    "namespaces": (*COMMON, "status.phase"),
    "nodes": (*COMMON, "spec.unschedulable"),
    "events": (*COMMON, "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
}
MAX_LENGTH = 4096


@dataclass(frozen=True)
class Requirement:
    """One term: a field, = or !=, and a value."""

    field: str
    equal: bool
    value: str


def parse(text: str, kind: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate over objects as Kubernetes shows them; INVALID_ARGUMENT for a bad selector or field."""
    if len(text) > MAX_LENGTH:
        raise InvalidArgument(f"fieldSelector is longer than {MAX_LENGTH} characters", {"field": "fieldSelector"})
    terms: list[Requirement] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        op = next((o for o in ("!=", "==", "=") if o in part), None)
        if op is None:
            raise InvalidArgument(f"invalid field selector term {part!r}: expected field=value or field!=value",
                                  {"field": "fieldSelector"})
        name, _, value = part.partition(op)
        name = name.strip()
        if name not in ALLOWED[kind]:
            raise InvalidArgument(f'field label not supported: {name} (for {kind}: {", ".join(ALLOWED[kind])})',
                                  {"field": "fieldSelector"})
        terms.append(Requirement(name, op != "!=", value.strip()))

    def matches(obj: dict[str, Any]) -> bool:
        return all((value_of(obj, t.field) == t.value) == t.equal for t in terms)

    return matches


def value_of(obj: dict[str, Any], path: str) -> str:
    """The field at a dotted path as a selector compares it (a string; false and absent as Kubernetes writes
    them)."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if path == "source" and isinstance(value, dict):
        value = value.get("component")
    if isinstance(value, bool) or (value is None and path == "spec.unschedulable"):
        return "true" if value else "false"
    return "" if value is None else str(value)
