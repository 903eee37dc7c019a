"""The core/v1 resources k8shost serves through the Kubernetes API: their kinds, scopes and verbs, as
discovery (GET /api/v1) lists them and the handlers serve them."""

from __future__ import annotations

from dataclasses import dataclass

READ = ("get", "list", "watch")
DISCOVERY_GROUP = "discovery.k8s.io"
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
    group: str = ""  # its API group ("": the core group, served under /api/v1; others under /apis/<group>/v1)
    source: str = ""  # the core's kind it is a view of ("": its own name)

    @property
    def kind_of_core(self) -> str:
        """The kind the core keeps its objects as."""
        return self.source or self.name

    @property
    def api_version(self) -> str:
        """Its apiVersion: v1, or <group>/v1."""
        return f"{self.group}/v1" if self.group else "v1"

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
    # The endpoints again, as discovery.k8s.io's slices: what kubectl describe service reads since Kubernetes 1.33.
    Resource("endpointslices", "EndpointSlice", True, READ, (), group=DISCOVERY_GROUP, source="endpoints"),
)}
GROUPS = sorted({r.group for r in RESOURCES.values()} - {""})
# A pod's status is its node agent's to write (a system-scoped token); its log is read from that agent.
SUBRESOURCES = {("pods", "status"): ("Pod", ("get", "update", "patch")), ("pods", "log"): ("Pod", ("get",))}
