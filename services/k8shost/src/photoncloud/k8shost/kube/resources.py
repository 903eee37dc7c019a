"""The core/v1 resources k8shost serves through the Kubernetes API: their kinds, scopes and verbs, as
discovery (GET /api/v1) lists them and the handlers serve them."""

from __future__ import annotations

from dataclasses import dataclass

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete")


@dataclass(frozen=True)
class Resource:
    """One resource: its plural name (the URL's), kind, scope, verbs and short names."""

    name: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # "all": what `kubectl get all` lists

    @property
    def singular(self) -> str:
        """The singular name (kubectl get pod)."""
        return self.kind.lower()

    def can(self, verb: str) -> bool:
        """Whether the resource serves verb."""
        return verb in self.verbs


RESOURCES = {r.name: r for r in (
    Resource("namespaces", "Namespace", False, (*READ, *WRITE), ("ns",)),
    Resource("pods", "Pod", True, (*READ, *WRITE), ("po",), ("all",)),
    Resource("services", "Service", True, (*READ, *WRITE), ("svc",), ("all",)),
    # Kept by k8shost from the services' selectors: read-only.
    Resource("endpoints", "Endpoints", True, READ, ("ep",)),
    # Registered by node agents; an operator may label, cordon or delete them.
    Resource("nodes", "Node", False, (*READ, "update", "patch", "delete"), ("no",)),
    Resource("events", "Event", True, (*READ, *WRITE), ("ev",)),
)}
# A pod's status is its node agent's to write (a system-scoped token); its log is read from that agent.
SUBRESOURCES = {("pods", "status"): ("Pod", ("get", "update", "patch")), ("pods", "log"): ("Pod", ("get",))}
