"""k8shost's domain: the API server's operations, its scheduler and its node monitor.

Anchors: Kubernetes core/v1 (objects with metadata and a resource_version for optimistic
concurrency, label selectors, list-then-watch, the scheduler's filters, the node lifecycle
controller), k3s (one small process) and Nomad. Every operation authorizes, validates, then
proposes a command (commands.py) to the log (machine.py applies it) or reads the store.

Namespaces belong to IAM projects; a pod or service is authorized against its namespace's
project. A namespace may name a PrismNET subnet of its project: each pod created there gets a
port on it (device_type POD, device_id the pod's uid) before it is proposed, made with the
caller's token, and its address becomes the pod's IP (status.pod_ip, kept when agents report);
deleting the pod, or its namespace, deletes the port first. Nodes are the platform's, not a
tenant's: changing them (registering, heartbeats, pod status reports: what node agents do) takes
`k8shost:nodes:write` on a system-scoped token.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, cast

from photoncloud.common import auth, paging
from photoncloud.common.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ServiceError,
    Unavailable,
)
from photoncloud.common.network import Network, PortInfo
from photoncloud.common.projects import Projects
from photoncloud.common.replication import Log, Scan
from photoncloud.common.times import parse_time

from . import scheduling, selectors, validation
from .commands import (
    NODE_PORTS,
    Bind,
    Command,
    Create,
    CreateEvent,
    Delete,
    Heartbeat,
    MarkStale,
    RegisterNode,
    ReplaceEvent,
    SetPodStatus,
    Unschedulable,
    Update,
)
from .machine import EVENT_TTL, MAX_MESSAGE_BYTES, NAMESPACED, ObjectStateMachine, check_version, found
from .records import (
    FAILED,
    FALSE,
    KINDS,
    NORMAL,
    POD_SCHEDULED,
    SUCCEEDED,
    WARNING,
    Condition,
    ContainerStatus,
    Meta,
    Namespace,
    Node,
    NodeAddress,
    NodeSpec,
    NodeStatus,
    Object,
    ObjectReference,
    Pod,
    PodNetwork,
    PodStatus,
    Service,
    condition,
)
from .records import Event as EventRecord  # watch.Event is what a watch sends
from .store import Change
from .watch import ADDED, REPLAY_CHUNK, Event, Filter, Hub, Watch, Watcher, too_old

log = logging.getLogger("photoncloud.k8shost")

R = TypeVar("R")

NAMESPACES_READ, NAMESPACES_WRITE = "k8shost:namespaces:read", "k8shost:namespaces:write"
PODS_READ, PODS_WRITE = "k8shost:pods:read", "k8shost:pods:write"
SERVICES_READ, SERVICES_WRITE = "k8shost:services:read", "k8shost:services:write"
NODES_READ, NODES_WRITE = "k8shost:nodes:read", "k8shost:nodes:write"
# Events are read and written as the pods they are mostly about are: IAM's roles grant per service and action,
# so a permission of their own would add nothing a role could tell apart.
READ_PERMISSION = {"namespaces": NAMESPACES_READ, "pods": PODS_READ, "services": SERVICES_READ,
                   "endpoints": SERVICES_READ, "nodes": NODES_READ, "events": PODS_READ}
# Loopback, so that node agents on Linux can serve cluster IPs without privileges or a network setup.
SERVICE_CLUSTER_IP_RANGE = "127.96.0.0/16"
CLUSTER_CIDR = "127.128.0.0/12"  # pods' addresses: a /24 of it per node (loopback too, for the same reason)
NODE_CIDR_PREFIX = 24

NODE_GRACE_SECONDS = 20.0  # a node silent this long is NotReady (Kubernetes: 40 s)
MONITOR_SECONDS = 1.0
SCHEDULE_SECONDS = 1.0  # the scheduler looks at pending pods at least this often (and on every change)
MAX_LOG_BYTES = 1024 * 1024
MAX_REASON = 128  # an event's reason (Kubernetes' limit), a short UpperCamelCase word
MAX_EVENT_TEXT = 253  # an event's other words: its source, its object's kind, uid and field path
EVENT_CLOCK_SKEW = 300.0  # how far ahead of k8shost's clock a client's event may be stamped


@dataclass(frozen=True)
class Page:
    """A page of a listing, and the revision it was read at (to watch from)."""

    items: list[Any]
    next_page_token: str
    resource_version: int


class Daemons(Protocol):
    """How the API server reaches node agents (daemon_client.AgentClient)."""

    async def logs(self, host: str, port: int, token: str, pod_uid: str, container: str, tail_lines: int) -> str:
        """A container's log from the agent at host:port."""


class KubeCore:
    """k8shost's operations: authorize, validate, then propose a command or read the store."""

    def __init__(self, machine: ObjectStateMachine, log: Log, clock: Callable[[], float] = time.time,
                 projects: Projects | None = None, daemons: Daemons | None = None,
                 node_grace_seconds: float = NODE_GRACE_SECONDS, monitor_seconds: float = MONITOR_SECONDS,
                 schedule_seconds: float = SCHEDULE_SECONDS, cluster_ip_range: str = SERVICE_CLUSTER_IP_RANGE,
                 node_ports: tuple[int, int] = NODE_PORTS, cluster_cidr: str = CLUSTER_CIDR,
                 node_cidr_prefix: int = NODE_CIDR_PREFIX, network: Network | None = None):
        self.machine = machine
        self.store = machine.store
        self.log = log
        self.clock = clock
        self.projects = projects  # IAM, to check that a project exists (None: trust the request)
        self.daemons = daemons
        self.network = network  # PrismNET, for namespaces with a subnet (None: they cannot have one)
        self.node_grace_seconds = node_grace_seconds
        self.monitor_seconds = monitor_seconds
        self.schedule_seconds = schedule_seconds
        self.cluster_ip_range = str(ipaddress.ip_network(cluster_ip_range))  # a bad flag fails at start
        if not 1 <= node_ports[0] <= node_ports[1] <= 65535:
            raise ValueError(f"the node port range {node_ports} is not a range of ports")
        self.node_ports = node_ports
        self.cluster_cidr = str(ipaddress.ip_network(cluster_cidr))
        if not ipaddress.ip_network(cluster_cidr).prefixlen <= node_cidr_prefix <= 30:
            raise ValueError(f"a node's pod CIDR (/{node_cidr_prefix}) must lie inside the cluster CIDR {cluster_cidr}")
        self.node_cidr_prefix = node_cidr_prefix
        self.hub = Hub()
        machine.listeners.append(self.hub.applied)
        self._wake = asyncio.Event()
        self._settled = -1  # the revision at which a scheduler round last found nothing to do
        self.hub.on_change.append(self._on_change)
        self._tasks: list[asyncio.Task[None]] = []

    # Background work

    def start(self, scheduler: bool = True) -> None:
        """Start the node monitor, and the scheduler unless another one binds pods, on the running loop."""
        self.hub.loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._every(self.monitor_seconds, self.check_nodes))]
        if scheduler:
            self._tasks.append(asyncio.create_task(self._every(self.schedule_seconds, self.schedule, self._wake)))

    def _on_change(self, changes: list[Change] | None) -> None:
        if changes is None or any(c.kind in ("pods", "nodes") for c in changes):
            self._wake.set()

    async def _every(self, seconds: float, step: Callable[[], Any], wake: asyncio.Event | None = None) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background step %s failed", getattr(step, "__name__", step))
            if wake is None:
                await asyncio.sleep(seconds)
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), seconds)
                wake.clear()

    async def schedule(self) -> int:
        """One round of the scheduler: bind each pending pod to the best feasible node, or say why
        none fits (PodScheduled False, reason Unschedulable). Returns how many pods it bound."""
        def read() -> tuple[int, list[Pod], list[Node], dict[str, scheduling.Amounts]] | None:
            revision = self.store.revision()
            if revision == self._settled:
                return None  # nothing changed since a round that had nothing to do: this one would not either
            pods: list[Pod] = list(self.store.scan("pods"))
            pending = [p for p in pods if not p.spec.node_name and p.status.phase not in (SUCCEEDED, FAILED)]
            nodes = list(self.store.scan("nodes"))
            return revision, pending, nodes, scheduling.usage(p for p in pods if p.spec.node_name)

        state = await self.log.read(Scan(read))  # every pod and node: not on the event loop
        if state is None:
            return 0
        revision, pending, nodes, used = state
        bound = proposed = 0
        for pod in sorted(pending, key=lambda p: p.metadata.creation_timestamp):  # first come, first served
            try:
                node_name, why = scheduling.choose(pod, nodes, used)
            except ServiceError as exc:  # e.g. a quantity the validation of an older version let through
                node_name, why = "", exc.message
            meta = pod.metadata
            said = condition(pod.status.conditions, POD_SCHEDULED)
            if not node_name and said is not None and said.status == FALSE and said.message == why:
                continue  # it says so already: proposing it again would change nothing (and cost a commit)
            proposed += 1
            try:
                if node_name:
                    await self.log.propose(Bind(meta.namespace, meta.name, meta.uid, node_name, self.clock()))
                    used[node_name] = used.get(node_name, scheduling.Amounts()) + scheduling.requested(pod)
                    bound += 1
                else:
                    await self.log.propose(Unschedulable(meta.namespace, meta.name, meta.uid, why, self.clock()))
            except (Aborted, NotFound, FailedPrecondition):
                continue  # the pod or the node changed meanwhile: the next round sees it as it is now
        if not proposed:
            self._settled = revision
        return bound

    async def check_nodes(self) -> list[str]:
        """Mark the Ready nodes whose agents went silent NotReady (and their pods); their names."""
        cutoff = self.clock() - self.node_grace_seconds

        def silent() -> bool:
            return any(scheduling.is_ready(n) and n.status.last_heartbeat_time < cutoff
                       for n in self.store.scan("nodes"))

        if not await self.log.read(Scan(silent)):
            return []
        stale: list[str] = await self._propose(MarkStale(cutoff, self.clock()), list)
        for name in stale:
            log.warning("node %s missed its heartbeats: NotReady", name)
        return stale

    async def _propose(self, command: Command, result: type[R]) -> R:
        """Apply command through the log: what the state machine returns for it, of type result."""
        return cast(R, await self.log.propose(command))

    # Authorization

    @staticmethod
    def _require(permission: str, org_id: str = "", project_id: str = "") -> None:
        principal = auth.current()
        if principal is not None:  # None: an in-process caller (tests), or a server without auth
            principal.require(permission, org_id, project_id)

    @staticmethod
    def _require_operator(permission: str) -> None:
        """PERMISSION_DENIED (OPERATOR_ONLY) unless a system-scoped token holds permission: checked here, not only at
        the platform API's gate, because the Kubernetes API reaches the same calls through gates of its own."""
        principal = auth.current()
        if principal is not None:
            principal.require_operator(permission)
            principal.require(permission)

    @staticmethod
    def _scope() -> auth.Scope | None:
        principal = auth.current()
        return None if principal is None else principal.scope

    async def _namespaced_list(self, kind: str, permission: str, namespace: str, label_selector: str,
                               page_size: int, page_token: str, node_name: str | None = None) -> Page:
        """Objects of one namespace, or of every namespace the caller's token reaches."""
        selector = selectors.parse(label_selector)
        org_id = project_id = ""
        if namespace:
            await self._namespace(namespace, permission)
        else:
            self._require(permission)
            org_id, project_id = auth.listing_scope("", "")
        return await self._list(kind, Filter(kind, namespace, selector, node_name), org_id, project_id, page_size,
                                page_token)

    async def _read(self, query: Callable[[], R]) -> R:
        return await self.log.read(query)

    async def _namespace(self, name: str, permission: str) -> Namespace:
        validation.dns_label(name, "namespace")
        ns = found(await self._read(lambda: self.store.get("namespaces", "", name)), "namespaces", "", name)
        self._require(permission, ns.org_id, ns.project_id)
        return ns

    async def _object(self, kind: str, namespace: str, name: str, permission: str) -> Any:
        await self._namespace(namespace, permission)
        validation.dns_label(name)
        return found(await self._read(lambda: self.store.get(kind, namespace, name)), kind, namespace, name)

    async def _list(self, kind: str, filter: Filter, org_id: str, project_id: str, page_size: int,
                    page_token: str) -> Page:
        limit = paging.page_size(page_size)
        after: tuple[str, str] = ("", "")
        if page_token:
            position = paging.decode_token(page_token).get("after")
            if not (isinstance(position, list) and len(position) == 2 and all(isinstance(p, str) for p in position)):
                raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
            after = (position[0], position[1])

        def query() -> tuple[int, list[Object]]:
            revision, items = self.store.revision(), []
            for obj in self.store.scan(kind, filter.namespace if kind != "namespaces" else "", org_id, project_id,
                                       filter.node_name, after):
                if filter.selector.matches(obj.metadata.labels):
                    items.append(obj)
                    if len(items) > limit:
                        break
            return revision, items

        revision, items = await self._read(query)
        token = ""
        if len(items) > limit:
            last = items[limit - 1].metadata
            token = paging.encode_token({"after": [last.namespace if kind in NAMESPACED else "", last.name]})
        return Page(items[:limit], token, revision)

    def _meta(self, name: str, namespace: str, labels: Any, annotations: Any) -> Meta:
        return Meta(name, namespace, str(uuid.uuid4()), validation.labels(labels), validation.annotations(annotations),
                    0, self.clock())

    # Namespaces

    async def _subnet(self, subnet_id: str, project_id: str) -> str:
        """subnet_id, checked through PrismNET (with the caller's token) to be a subnet of the project."""
        if not subnet_id:
            return ""
        validation.tenant(subnet_id, "subnet_id")
        if self.network is None:
            raise FailedPrecondition("this k8shost has no PrismNET (--prismnet-grpc is empty): a namespace cannot "
                                     "name a subnet", {"field": "subnet_id", "reason": "NO_PRISMNET"})
        try:
            owner = await self.network.subnet_project(subnet_id)
        except NotFound:
            raise NotFound(f"subnet {subnet_id} not found in PrismNET",
                           {"field": "subnet_id", "subnet_id": subnet_id}) from None
        if owner != project_id:
            raise InvalidArgument(f"subnet {subnet_id} belongs to another project than the namespace's ({project_id})",
                                  {"field": "subnet_id", "subnet_id": subnet_id})
        return subnet_id

    async def create_namespace(self, name: str, org_id: str, project_id: str, labels: Any = None,
                               annotations: Any = None, subnet_id: str = "") -> Namespace:
        """Create a namespace in an existing IAM project (its pods' addresses from a PrismNET subnet, if named)."""
        validation.dns_label(name)
        validation.tenant(project_id, "project_id")
        if org_id or self.projects is None:
            validation.tenant(org_id, "org_id")
        self._require(NAMESPACES_WRITE)
        if self.projects is not None:
            org_id = await self.projects.resolve(project_id, org_id)
        self._require(NAMESPACES_WRITE, org_id, project_id)
        subnet_id = await self._subnet(subnet_id, project_id)
        ns = Namespace(self._meta(name, "", labels, annotations), org_id, project_id, subnet_id=subnet_id)
        return await self._propose(Create("namespaces", ns), Namespace)

    async def namespace(self, name: str) -> Namespace:
        """A namespace."""
        return await self._namespace(name, NAMESPACES_READ)

    async def namespaces(self, org_id: str = "", project_id: str = "", label_selector: str = "", page_size: int = 0,
                         page_token: str = "") -> Page:
        """The namespaces the caller may see, filtered by project and labels."""
        self._require(NAMESPACES_READ)
        selector = selectors.parse(label_selector)
        org_id, project_id = auth.listing_scope(org_id, project_id)
        return await self._list("namespaces", Filter("namespaces", selector=selector), org_id, project_id, page_size,
                                page_token)

    async def update_namespace(self, name: str, labels: Any = None, annotations: Any = None,
                               resource_version: str = "", subnet_id: str = "") -> Namespace:
        """Replace a namespace's labels, annotations and subnet (ABORTED on a stale resource_version); pods
        created before keep their addresses."""
        expected = validation.resource_version(resource_version)
        checked = validation.labels(labels), validation.annotations(annotations)
        ns = await self._namespace(name, NAMESPACES_WRITE)
        if subnet_id != ns.subnet_id:
            subnet_id = await self._subnet(subnet_id, ns.project_id)
        return await self._propose(Update("namespaces", "", name, expected, *checked, None, subnet_id=subnet_id),
                                   Namespace)

    async def delete_namespace(self, name: str, resource_version: str = "") -> Namespace:
        """Delete a namespace with its pods (and their PrismNET ports) and services."""
        expected = validation.resource_version(resource_version)
        ns = await self._namespace(name, NAMESPACES_WRITE)
        check_version(ns, expected)
        pods = await self._read(lambda: list(self.store.scan("pods", namespace=name)))
        await self._delete_ports(pods)
        return await self._propose(Delete("namespaces", "", name, expected), Namespace)

    async def _delete_ports(self, pods: list[Pod]) -> None:
        """Delete the PrismNET ports of pods, before the pods: a PrismNET that cannot be reached refuses the
        deletion (UNAVAILABLE; retrying it is safe), rather than leaving ports nobody frees."""
        ports = [p.status.network.port_id for p in pods if p.status.network is not None]
        if not ports:
            return
        if self.network is None:
            raise FailedPrecondition("the pods have PrismNET ports and this k8shost has no PrismNET "
                                     "(--prismnet-grpc is empty)", {"reason": "NO_PRISMNET"})
        for port_id in ports:
            await self.network.delete_port(port_id)

    # Pods

    async def create_pod(self, namespace: str, name: str, labels: Any = None, annotations: Any = None,
                         spec: dict[str, Any] | None = None, image: str = "", command: Any = (),
                         args: Any = ()) -> Pod:
        """Create a pod (Pending until the scheduler binds it to a node)."""
        validation.dns_label(name)
        pod_spec = validation.pod_spec(spec, image, command, args)
        ns = await self._namespace(namespace, PODS_WRITE)
        pod = Pod(self._meta(name, namespace, labels, annotations), pod_spec)
        if not ns.subnet_id:
            return await self._propose(Create("pods", pod), Pod)
        port = await self._port(ns.subnet_id, pod)
        assert self.network is not None  # _port() refuses the pod without a PrismNET
        network = PodNetwork(port.subnet_id, port.id, port.cidr_block, port.gateway_ip, port.mac_address,
                             port.vpc_id)
        try:
            return await self._propose(Create("pods", replace(pod, status=replace(
                pod.status, pod_ip=port.ip_address, network=network))), Pod)
        except BaseException:
            # The refusal is what the caller must hear; a port that cannot be freed now is only logged.
            try:
                await asyncio.shield(self.network.delete_port(port.id))
            except Exception as exc:  # noqa: BLE001
                log.warning("cannot delete port %s of refused pod %s/%s: %s", port.id, namespace, name, exc)
            raise

    async def _port(self, subnet_id: str, pod: Pod) -> PortInfo:
        """A PrismNET port for the pod, made with the caller's token (its errors are the pod's refusal)."""
        if self.network is None:
            raise FailedPrecondition(f"the namespace's pods get addresses from subnet {subnet_id}, and this k8shost "
                                     "has no PrismNET (--prismnet-grpc is empty)", {"reason": "NO_PRISMNET"})
        meta = pod.metadata
        # PrismNET names are at most 63 letters, digits and . _ - (no slash).
        return await self.network.create_port(subnet_id, f"{meta.namespace}.{meta.name}"[:63], meta.uid)

    async def pod(self, namespace: str, name: str) -> Pod:
        """A pod."""
        return await self._object("pods", namespace, name, PODS_READ)

    async def pods(self, namespace: str = "", label_selector: str = "", node_name: str = "", page_size: int = 0,
                   page_token: str = "") -> Page:
        """Pods of a namespace, or of every namespace the caller may read; by labels and node."""
        if node_name:
            validation.dns_subdomain(node_name, "node_name")
        return await self._namespaced_list("pods", PODS_READ, namespace, label_selector, page_size, page_token,
                                           node_name or None)

    async def update_pod(self, namespace: str, name: str, labels: Any = None, annotations: Any = None,
                         resource_version: str = "") -> Pod:
        """Replace a pod's labels and annotations (its spec does not change once created)."""
        expected = validation.resource_version(resource_version)
        checked = validation.labels(labels), validation.annotations(annotations)
        await self._object("pods", namespace, name, PODS_WRITE)
        return await self._propose(Update("pods", namespace, name, expected, *checked, None), Pod)

    async def delete_pod(self, namespace: str, name: str, resource_version: str = "") -> Pod:
        """Delete a pod (and its PrismNET port); its node agent stops its containers."""
        expected = validation.resource_version(resource_version)
        pod = await self._object("pods", namespace, name, PODS_WRITE)
        check_version(pod, expected)
        await self._delete_ports([pod])
        return await self._propose(Delete("pods", namespace, name, expected), Pod)

    async def update_pod_status(self, namespace: str, name: str, uid: str, status: dict[str, Any]) -> Pod:
        """A node agent's report on a pod bound to its node."""
        self._require_operator(NODES_WRITE)  # the operator's (a node agent's)
        validation.dns_label(namespace, "namespace")
        validation.dns_label(name)
        return await self._propose(SetPodStatus(namespace, name, uid, pod_status(status), self.clock()), Pod)

    async def pod_logs(self, namespace: str, name: str, container: str = "", tail_lines: int = 0) -> tuple[str, str]:
        """(container, its log) read from the agent of the pod's node."""
        pod: Pod = await self._object("pods", namespace, name, PODS_READ)
        names = [c.name for c in pod.spec.containers]
        if not container:
            if len(names) > 1:
                raise InvalidArgument(f"the pod has {len(names)} containers; name one of {', '.join(names)}",
                                      {"field": "container", "containers": names})
            container = names[0]
        if container not in names:
            raise NotFound(f"the pod has no container {container!r}", {"field": "container", "containers": names})
        if tail_lines < 0:
            raise InvalidArgument("tail_lines must not be negative", {"field": "tail_lines"})
        if not pod.spec.node_name:
            raise FailedPrecondition("the pod is not scheduled to a node yet", {"reason": "NOT_SCHEDULED"})
        node = await self._read(lambda: self.store.get("nodes", "", pod.spec.node_name))
        if node is None or self.daemons is None or not node.status.daemon_port:
            raise Unavailable(f"the agent of node {pod.spec.node_name} cannot be reached", {"node": pod.spec.node_name})
        host = next((a.address for a in node.status.addresses if a.type == "InternalIP"), "127.0.0.1")
        text = await self.daemons.logs(host, node.status.daemon_port, node.status.daemon_token, pod.metadata.uid,
                                       container, tail_lines)
        return container, text

    # Events

    async def events(self, namespace: str = "", label_selector: str = "", page_size: int = 0,
                     page_token: str = "") -> Page:
        """Events of a namespace, or of every namespace the caller may read (readable as pods are)."""
        return await self._namespaced_list("events", PODS_READ, namespace, label_selector, page_size, page_token)

    async def event(self, namespace: str, name: str) -> EventRecord:
        """An event."""
        await self._namespace(namespace, PODS_READ)
        validation.dns_subdomain(name)
        return cast(EventRecord, found(await self._read(lambda: self.store.get("events", namespace, name)), "events",
                                       namespace, name))

    async def create_event(self, namespace: str, name: str, involved_object: dict[str, Any], reason: str,
                           message: str = "", type: str = NORMAL, source_component: str = "", source_host: str = "",
                           first_timestamp: float | str = 0.0, last_timestamp: float | str = 0.0, count: int = 1,
                           labels: Any = None, annotations: Any = None) -> EventRecord:
        """Record an event about an object of the namespace, as a client may in Kubernetes (timestamps: epoch
        seconds or RFC 3339, now when not given; it is deleted an hour after the last, or sooner when the
        namespace holds too many)."""
        now = self.clock()
        validation.dns_subdomain(name)
        event = event_record(namespace, name, involved_object, reason, message, type, source_component, source_host,
                             first_timestamp, last_timestamp, count, now)
        meta = self._meta(name, namespace, labels, annotations)
        await self._namespace(namespace, PODS_WRITE)
        return await self._propose(CreateEvent(replace(event, metadata=meta), now), EventRecord)

    async def update_event(self, namespace: str, name: str, involved_object: dict[str, Any], reason: str,
                           message: str = "", type: str = NORMAL, source_component: str = "", source_host: str = "",
                           first_timestamp: float | str = 0.0, last_timestamp: float | str = 0.0, count: int = 1,
                           labels: Any = None, annotations: Any = None, resource_version: str = "") -> EventRecord:
        """Replace an event with what is given, checked as create_event checks it (as a client's recorder counts
        a repeat: count and last_timestamp); its uid and creation time stay. ABORTED on a stale resource_version."""
        now = self.clock()
        expected = validation.resource_version(resource_version)
        validation.dns_subdomain(name)
        event = event_record(namespace, name, involved_object, reason, message, type, source_component, source_host,
                             first_timestamp, last_timestamp, count, now)
        meta = replace(self._meta(name, namespace, labels, annotations), uid="", creation_timestamp=0.0)
        await self._namespace(namespace, PODS_WRITE)
        return await self._propose(ReplaceEvent(replace(event, metadata=meta), expected, now), EventRecord)

    async def delete_event(self, namespace: str, name: str, resource_version: str = "") -> EventRecord:
        """Delete an event."""
        expected = validation.resource_version(resource_version)
        await self._namespace(namespace, PODS_WRITE)
        validation.dns_subdomain(name)
        return await self._propose(Delete("events", namespace, name, expected), EventRecord)

    # Services

    async def create_service(self, namespace: str, name: str, labels: Any = None, annotations: Any = None,
                             spec: dict[str, Any] | None = None, service_type: str = "", port: int = 0,
                             target_port: int = 0, selector: dict[str, str] | None = None) -> Service:
        """Create a service in front of the pods its selector matches."""
        validation.dns_label(name)
        service_spec = validation.service_spec(spec, service_type, port, target_port, selector)
        await self._namespace(namespace, SERVICES_WRITE)
        service = Service(self._meta(name, namespace, labels, annotations), service_spec)
        return await self._propose(Create("services", service, self.cluster_ip_range, self.node_ports), Service)

    async def service(self, namespace: str, name: str) -> Service:
        """A service."""
        return await self._object("services", namespace, name, SERVICES_READ)

    async def services(self, namespace: str = "", label_selector: str = "", page_size: int = 0,
                       page_token: str = "") -> Page:
        """Services of a namespace, or of every namespace the caller may read."""
        return await self._namespaced_list("services", SERVICES_READ, namespace, label_selector, page_size,
                                           page_token)

    async def update_service(self, namespace: str, name: str, labels: Any = None, annotations: Any = None,
                             spec: dict[str, Any] | None = None, resource_version: str = "") -> Service:
        """Replace a service's labels, annotations and (if given) spec; its cluster IP stays."""
        expected = validation.resource_version(resource_version)
        checked = validation.labels(labels), validation.annotations(annotations)
        new_spec = None if spec is None else validation.service_spec(spec)
        await self._object("services", namespace, name, SERVICES_WRITE)
        return await self._propose(Update("services", namespace, name, expected, *checked, new_spec,
                                             self.node_ports), Service)

    async def delete_service(self, namespace: str, name: str, resource_version: str = "") -> Service:
        """Delete a service."""
        expected = validation.resource_version(resource_version)
        await self._object("services", namespace, name, SERVICES_WRITE)
        return await self._propose(Delete("services", namespace, name, expected), Service)

    # Endpoints

    async def endpoints(self, namespace: str, name: str) -> Any:
        """The endpoints of a service: the pods its selector matches."""
        return await self._object("endpoints", namespace, name, SERVICES_READ)

    async def endpoints_list(self, namespace: str = "", label_selector: str = "", page_size: int = 0,
                             page_token: str = "") -> Page:
        """Endpoints of a namespace, or of every namespace the caller may read."""
        return await self._namespaced_list("endpoints", SERVICES_READ, namespace, label_selector, page_size,
                                           page_token)

    # Nodes

    async def register_node(self, name: str, labels: Any = None, capacity: dict[str, str] | None = None,
                            allocatable: dict[str, str] | None = None, addresses: list[dict[str, str]] | None = None,
                            daemon_port: int = 0, daemon_token: str = "", runtime: str = "",
                            agent_version: str = "", sandbox: str = "") -> Node:
        """Create a node or refresh what its agent reports; the node is Ready."""
        self._require_operator(NODES_WRITE)  # the operator's (a node agent's)
        validation.dns_subdomain(name)
        status = NodeStatus(dict(capacity or {}), dict(allocatable or capacity or {}), (),
                            tuple(NodeAddress(a.get("type") or "InternalIP", a.get("address") or "")
                                  for a in addresses or ()), 0.0, daemon_port, daemon_token, runtime, agent_version,
                            sandbox)
        probe = Node(Meta(name), NodeSpec(), status)
        try:
            scheduling.allocatable(probe)
        except ServiceError as exc:
            raise InvalidArgument(f"capacity: {exc.message}", {"field": "capacity"}) from None
        if not 0 <= daemon_port <= 65535:
            raise InvalidArgument("daemon_port must be a port number", {"field": "daemon_port"})
        node = Node(self._meta(name, "", labels, None), NodeSpec(), status)
        return await self._propose(RegisterNode(node, self.clock(), self.cluster_cidr, self.node_cidr_prefix), Node)

    async def heartbeat(self, name: str) -> Node:
        """A node agent's sign of life: the node stays (or becomes again) Ready."""
        self._require_operator(NODES_WRITE)  # the operator's (a node agent's)
        validation.dns_subdomain(name)
        return await self._propose(Heartbeat(name, self.clock()), Node)

    async def node(self, name: str) -> Node:
        """A node."""
        self._require(NODES_READ)
        validation.dns_subdomain(name)
        return found(await self._read(lambda: self.store.get("nodes", "", name)), "nodes", "", name)

    async def nodes(self, label_selector: str = "", page_size: int = 0, page_token: str = "") -> Page:
        """Nodes, filtered by labels."""
        self._require(NODES_READ)
        return await self._list("nodes", Filter("nodes", selector=selectors.parse(label_selector)), "", "",
                                page_size, page_token)

    async def update_node(self, name: str, labels: Any = None, annotations: Any = None, unschedulable: bool = False,
                          resource_version: str = "") -> Node:
        """Replace a node's labels and annotations, and cordon (unschedulable) or uncordon it."""
        self._require_operator(NODES_WRITE)  # the operator's (a node agent's)
        expected = validation.resource_version(resource_version)
        checked = validation.labels(labels), validation.annotations(annotations)
        validation.dns_subdomain(name)
        return await self._propose(Update("nodes", "", name, expected, *checked, NodeSpec(unschedulable)), Node)

    async def delete_node(self, name: str, resource_version: str = "") -> Node:
        """Delete a node (its agent registers it again if it is still running)."""
        self._require_operator(NODES_WRITE)  # the operator's (a node agent's)
        expected = validation.resource_version(resource_version)
        validation.dns_subdomain(name)
        return await self._propose(Delete("nodes", "", name, expected), Node)

    # Watch

    async def watch(self, kind: str, namespace: str = "", label_selector: str = "", node_name: str = "",
                    resource_version: str = "") -> Watch:
        """Open a watch of a kind after resource_version ("": the current objects as ADDED first);
        OUT_OF_RANGE when that history is no longer kept."""
        if kind not in KINDS:
            raise InvalidArgument(f"kind is one of {', '.join(KINDS)}", {"field": "kind"})
        selector = selectors.parse(label_selector)
        start = validation.resource_version(resource_version)
        if node_name and kind != "pods":
            raise InvalidArgument("node_name filters pods only", {"field": "node_name"})
        if kind in NAMESPACED and namespace:
            await self._namespace(namespace, READ_PERMISSION[kind])
        elif kind == "namespaces" and namespace:
            await self._namespace(namespace, NAMESPACES_READ)
        else:
            self._require(READ_PERMISSION[kind])
        if self.hub.closed:
            raise Unavailable("the service is stopping; watch again elsewhere or later")
        self.hub.loop = asyncio.get_running_loop()
        filter = Filter(kind, namespace, selector, node_name or None, self._scope())
        watcher = Watcher(filter)
        self.hub.watchers.add(watcher)  # before reading: no change can fall between the two

        def opening() -> tuple[int, list[Event]]:
            revision = self.store.revision()
            if resource_version:
                if start < self.store.compacted():
                    raise too_old(start, self.store.compacted())
                return start, []
            first = []
            for obj in self.store.scan(kind, namespace if kind in NAMESPACED else ""):
                org_id, project_id = (obj.org_id, obj.project_id) if isinstance(obj, Namespace) else \
                    self.store.tenancy("namespaces", "", obj.metadata.namespace) if kind != "nodes" else ("", "")
                if filter.admits(obj, org_id, project_id):
                    first.append(Event(ADDED, kind, obj.metadata.resource_version, obj))
            return revision, first

        async def history(after: int) -> list[Change]:
            def query() -> list[Change]:
                if after < self.store.compacted():
                    raise too_old(after, self.store.compacted())
                return self.store.changes(kind, after, REPLAY_CHUNK)
            return await self._read(query)

        try:
            revision, first = await self._read(opening if resource_version else Scan(opening))  # a listing
        except BaseException:
            self.hub.watchers.discard(watcher)
            raise
        return Watch(self.hub, watcher, revision, first, history)

    async def end_watches(self) -> None:
        """End every open watch and refuse new ones (the service is stopping)."""
        self.hub.close()

    async def close(self) -> None:
        """Stop the background tasks and the log (the store is closed by whoever opened it)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.hub.close()
        await self.log.close()


def _time(value: Any, field: str) -> float:
    return parse_time(value, field) if value else 0.0


def _text(value: Any, field: str, limit: int, required: bool = False) -> str:
    """A line of printable text of at most limit bytes."""
    if not isinstance(value, str) or len(value.encode()) > limit or not value.isprintable() or \
            (required and not value):
        raise InvalidArgument(f"{field} must be {'a' if required else 'at most a'} line of printable text of at most "
                              f"{limit} bytes", {"field": field})
    return value


def _timestamp(value: Any, field: str, now: float) -> float:
    """An event's time: epoch seconds or RFC 3339, not (much) ahead of now; 0 or "": not given."""
    if isinstance(value, str):
        value = _time(value, field)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= now + EVENT_CLOCK_SKEW:
        raise InvalidArgument(f"{field} must be a time (epoch seconds or RFC 3339) not ahead of the server's clock",
                              {"field": field})
    return float(value)


def event_record(namespace: str, name: str, involved_object: dict[str, Any], reason: str, message: str, type: str,
                 source_component: str, source_host: str, first_timestamp: Any, last_timestamp: Any, count: Any,
                 now: float) -> EventRecord:
    """An event a client reports, checked (its metadata still to be made)."""
    if not isinstance(involved_object, dict):
        raise InvalidArgument("involved_object must be an object reference (kind, namespace, name, uid, ...)",
                              {"field": "involved_object"})
    unknown = set(involved_object) - {"kind", "namespace", "name", "uid", "field_path", "api_version",
                                      "resource_version"}
    if unknown:
        raise InvalidArgument(f"involved_object: unknown field {min(unknown)}",
                              {"field": f"involved_object.{min(unknown)}"})
    kind = _text(involved_object.get("kind") or "", "involved_object.kind", MAX_EVENT_TEXT, required=True)
    if not kind.isalnum() or not kind[0].isupper():
        raise InvalidArgument("involved_object.kind is a kind's name, e.g. Pod", {"field": "involved_object.kind"})
    object_namespace = involved_object.get("namespace") or ""
    if object_namespace not in ("", namespace):  # as Kubernetes: an event lives in its object's namespace
        raise InvalidArgument(f"involved_object.namespace {object_namespace!r} is not the event's namespace "
                              f"{namespace!r}", {"field": "involved_object.namespace"})
    reference = ObjectReference(
        kind, object_namespace, validation.dns_subdomain(involved_object.get("name") or "", "involved_object.name"),
        _text(involved_object.get("uid") or "", "involved_object.uid", MAX_EVENT_TEXT),
        _text(involved_object.get("field_path") or "", "involved_object.field_path", MAX_EVENT_TEXT),
        _text(involved_object.get("api_version") or "", "involved_object.api_version", MAX_EVENT_TEXT),
        _text(involved_object.get("resource_version") or "", "involved_object.resource_version", MAX_EVENT_TEXT))
    if not isinstance(reason, str) or not 0 < len(reason) <= MAX_REASON or not reason.isascii() \
            or not reason[0].isalpha() or not all(c.isalnum() or c in "_.:-" for c in reason):
        raise InvalidArgument(f"reason is a word of at most {MAX_REASON} letters and digits (e.g. BackOff)",
                              {"field": "reason"})
    if not isinstance(message, str) or len(message.encode()) > MAX_MESSAGE_BYTES:
        raise InvalidArgument(f"message is text of at most {MAX_MESSAGE_BYTES} bytes", {"field": "message"})
    type = type or NORMAL
    if type not in (NORMAL, WARNING):
        raise InvalidArgument(f"type is {NORMAL} or {WARNING}", {"field": "type"})
    component = _text(source_component or "", "source_component", MAX_EVENT_TEXT)
    host = validation.dns_subdomain(source_host, "source_host") if source_host else ""
    last = _timestamp(last_timestamp or now, "last_timestamp", now)
    first = _timestamp(first_timestamp or last, "first_timestamp", now)
    if first > last:
        raise InvalidArgument("first_timestamp must not be after last_timestamp", {"field": "first_timestamp"})
    if last < now - EVENT_TTL:
        raise InvalidArgument(f"last_timestamp is more than {EVENT_TTL:g} s ago: such events are no longer kept",
                              {"field": "last_timestamp"})
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 2**31 - 1:
        raise InvalidArgument("count is a number of times, at least 1", {"field": "count"})
    return EventRecord(Meta(name, namespace), reference, reason, message, type, component, host, first, last, count)


def pod_status(data: dict[str, Any]) -> PodStatus:
    """A pod status as an agent sends it (times as RFC 3339)."""
    try:
        conditions = tuple(Condition(c["type"], c.get("status") or "Unknown", c.get("reason") or "",
                                     c.get("message") or "", _time(c.get("last_transition_time"), "conditions"))
                           for c in data.get("conditions") or ())
        containers = tuple(ContainerStatus(s["name"], s.get("state") or "WAITING", s.get("reason") or "",
                                           s.get("message") or "", int(s.get("exit_code") or 0),
                                           _time(s.get("started_at"), "started_at"),
                                           _time(s.get("finished_at"), "finished_at"),
                                           int(s.get("restart_count") or 0), bool(s.get("ready")))
                           for s in data.get("container_statuses") or ())
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgument(f"status is malformed: {exc}", {"field": "status"}) from None
    phase = data.get("phase") or "Pending"
    if phase not in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
        raise InvalidArgument("status.phase is Pending, Running, Succeeded, Failed or Unknown",
                              {"field": "status.phase"})
    return PodStatus(phase, conditions, data.get("reason") or "", data.get("message") or "", data.get("host_ip") or "",
                     data.get("pod_ip") or "", _time(data.get("start_time"), "start_time"), containers)

