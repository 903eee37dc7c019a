"""k8shost's deterministic state machine: it applies the commands (commands.py) to the store.

Every change to an object takes the next value of one global revision (as etcd's, which is what
Kubernetes' resource_version is) and is appended to the history watches replay. The rules that
depend on the current state (a stale resource_version, a namespace that must exist, a node that
must still have room for the pod bound to it) are checked here, in the step that applies the
command, so that two concurrent requests can never both pass them. No clock, no randomness: the
proposer puts `now` and generated uids into the commands.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from photoncloud.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceError,
)
from photoncloud.common.sqlite import SqliteStateMachine

from . import scheduling
from .commands import (
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
from .records import (
    CONTAINER_RUNNING,
    FAILED,
    FALSE,
    NODE_PORT,
    NORMAL,
    POD_SCHEDULED,
    READY,
    SANDBOXED,
    RUNNING,
    SUCCEEDED,
    TERMINATED,
    TRUE,
    UNKNOWN,
    WAITING,
    WARNING,
    Condition,
    ContainerStatus,
    EndpointAddress,
    EndpointPort,
    Endpoints,
    Event,
    Meta,
    Namespace,
    Node,
    NodeSpec,
    Object,
    ObjectReference,
    Pod,
    PodStatus,
    Service,
    ServiceSpec,
    condition,
    set_condition,
)
from .store import Change, SqliteObjectStore

log = logging.getLogger("photoncloud.k8shost")

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
HISTORY_KEPT = 10_000  # events kept for watches; older resource versions are OUT_OF_RANGE
NAMESPACED = ("pods", "services", "endpoints", "events")
UNKNOWN_PHASE = "Unknown"
EVENT_TTL = 3600.0  # seconds an event is kept after it last happened (Kubernetes' --event-ttl)
EVENTS_KEPT = 1000  # events kept per namespace, the oldest going first: a tenant cannot grow the store without bound
MAX_MESSAGE_BYTES = 1024  # an event's message, as Kubernetes' recorder truncates it
# The platform's events' source components, as Kubernetes names them.
SCHEDULER, KUBELET, NODE_CONTROLLER = "default-scheduler", "kubelet", "node-controller"
EVENT_UIDS = uuid.uuid5(uuid.NAMESPACE_DNS, "events.k8shost.photoncloud")  # uuid5 namespace of the platform's events
QUIET_WAITING = ("", "ContainerCreating", "PodInitializing")  # waiting reasons that are no warning


def key_of(kind: str, obj: Object) -> tuple[str, str]:
    """(namespace, name) of an object in the store."""
    return (obj.metadata.namespace if kind in NAMESPACED else ""), obj.metadata.name


def found(obj: Any, kind: str, namespace: str, name: str) -> Any:
    """obj, or NOT_FOUND naming what is missing."""
    if obj is None:
        what = kind[:-1]
        raise NotFound(f"{what} {namespace + '/' if namespace else ''}{name} not found",
                       {"kind": kind, "namespace": namespace, "name": name} if namespace
                       else {"kind": kind, "name": name})
    return obj


def check_version(obj: Object, expected: int) -> None:
    """ABORTED when the caller's resource_version is not the object's current one."""
    if expected and expected != obj.metadata.resource_version:
        raise Aborted(f"the object has been modified (resource_version {obj.metadata.resource_version}, "
                      f"not {expected}); read it again and retry",
                      {"reason": "CONFLICT", "resource_version": str(obj.metadata.resource_version)})


class ObjectStateMachine(SqliteStateMachine):
    """Applies k8shost's commands to the store and tells listeners what changed."""

    # Its state is the store's: `_changes` only gathers a batch's changes for the listeners (told
    # after the commit), and no query reads it. A watch that opens from a snapshot may be told a
    # change it has read already: watches drop what is not after their revision.
    snapshot_reads = True

    def __init__(self, store: SqliteObjectStore, history_kept: int = HISTORY_KEPT, events_kept: int = EVENTS_KEPT):
        super().__init__(store)
        self.store: SqliteObjectStore = store
        self.history_kept = history_kept
        self.events_kept = events_kept
        self.listeners: list[Callable[[list[Change] | None], None]] = []
        self._changes: list[Change] = []

    def apply_batch(self, entries: list[tuple[int, Any]]) -> list[Any]:
        """Apply commands, committed together; then tell the listeners every change, in order."""
        self._changes = []
        try:
            results = super().apply_batch(entries)
        finally:
            changes, self._changes = self._changes, []
        if changes:
            self._notify(changes)
        return results

    def execute(self, c: Command) -> object:
        """Apply one command, by its type's name (Create runs `_create`); a refused one's changes
        are not told."""
        first = len(self._changes)
        try:
            result = getattr(self, "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(c).__name__).lower())(c)
            self._keep_endpoints(self._changes[first:])
            self.store.compact(self.history_kept)
        except ServiceError:
            del self._changes[first:]
            raise
        return result

    def restore(self, path: str) -> None:
        """Replace the whole state with a snapshot (watches replay from history what they missed)."""
        self.store.restore(path)
        self._notify(None)

    def _notify(self, changes: list[Change] | None) -> None:
        for listener in list(self.listeners):
            try:
                listener(changes)
            except Exception:
                log.exception("change listener failed")

    # Changes

    def _tenancy(self, kind: str, obj: Object) -> tuple[str, str]:
        if isinstance(obj, Namespace):
            return obj.org_id, obj.project_id
        if kind in NAMESPACED:
            return self.store.tenancy("namespaces", "", obj.metadata.namespace)
        return "", ""

    def _write(self, kind: str, type: str, obj: Object, previous: Object | None = None) -> Any:
        """Give obj the next revision, store it (or remove it) and append the change to the history."""
        revision = self.store.revision() + 1
        obj = replace(obj, metadata=replace(obj.metadata, resource_version=revision))
        org_id, project_id = self._tenancy(kind, obj)
        namespace, name = key_of(kind, obj)
        if type == DELETED:
            self.store.remove(kind, namespace, name)
        else:
            self.store.save(kind, obj, org_id, project_id)
        change = Change(revision, kind, type, obj, previous, org_id, project_id)
        self.store.record(change)
        self._changes.append(change)
        return obj

    def _get(self, kind: str, namespace: str, name: str) -> Any:
        return found(self.store.get(kind, namespace, name), kind, namespace, name)

    # Generic create, update, delete

    def _create(self, c: Create) -> Object:
        namespace, name = key_of(c.kind, c.object)
        if c.kind in NAMESPACED:
            self._get("namespaces", "", namespace)  # the namespace must (still) exist
        if self.store.get(c.kind, namespace, name) is not None:
            raise AlreadyExists(f"{c.kind[:-1]} {namespace + '/' if namespace else ''}{name} already exists",
                                {"kind": c.kind, "namespace": namespace, "name": name})
        obj = c.object
        if isinstance(obj, Service):
            spec = self._node_ports(obj.spec, None, c.node_ports)
            obj = replace(obj, spec=replace(spec, cluster_ip=self._cluster_ip(c.cluster_ip_range)))
        return self._write(c.kind, ADDED, obj)

    # Services: cluster IPs and node ports, each given to one service at a time

    def _services(self) -> list[Service]:
        return list(self.store.scan("services"))

    def _cluster_ip(self, cidr: str) -> str:
        """The lowest free address of the range (its first host is kept back, as Kubernetes does)."""
        if not cidr:
            return ""
        network = ipaddress.ip_network(cidr)
        taken = {s.spec.cluster_ip for s in self._services()}
        for index, host in enumerate(network.hosts()):
            if index and str(host) not in taken:
                return str(host)
        raise ResourceExhausted(f"the service cluster IP range {cidr} is full", {"reason": "CLUSTER_IPS_EXHAUSTED"})

    def _node_ports(self, spec: ServiceSpec, old: Service | None, ports: tuple[int, int]) -> ServiceSpec:
        """spec with a node port on every port of a NodePort service: the one asked for if free, the one the
        service had for that port number, or the lowest free one."""
        if spec.type != NODE_PORT:
            return replace(spec, ports=tuple(replace(p, node_port=0) for p in spec.ports))
        taken = {p.node_port for s in self._services() if old is None or s.metadata.uid != old.metadata.uid
                 for p in s.spec.ports if p.node_port}
        had = {p.port: p.node_port for p in old.spec.ports} if old is not None else {}
        low, high = ports
        result = []
        for i, port in enumerate(spec.ports):
            wanted = port.node_port or had.get(port.port, 0)
            if port.node_port and not low <= port.node_port <= high:
                raise InvalidArgument(f"spec.ports[{i}].node_port {port.node_port} is outside the node port range "
                                      f"{low}-{high}", {"field": f"spec.ports[{i}].node_port"})
            if port.node_port and port.node_port in taken:
                raise InvalidArgument(f"spec.ports[{i}].node_port {port.node_port} is already allocated",
                                      {"field": f"spec.ports[{i}].node_port", "reason": "NODE_PORT_ALLOCATED"})
            if not wanted or wanted in taken:
                wanted = next((n for n in range(low, high + 1) if n not in taken), 0)
                if not wanted:
                    raise ResourceExhausted("no node port is free", {"reason": "NODE_PORTS_EXHAUSTED"})
            taken.add(wanted)
            result.append(replace(port, node_port=wanted))
        return replace(spec, ports=tuple(result))

    def _update(self, c: Update) -> Object:
        obj = self._get(c.kind, c.namespace, c.name)
        check_version(obj, c.expected)
        meta = replace(obj.metadata, labels=obj.metadata.labels if c.labels is None else c.labels,
                       annotations=obj.metadata.annotations if c.annotations is None else c.annotations)
        new = replace(obj, metadata=meta)
        if isinstance(c.spec, ServiceSpec):
            spec = self._node_ports(c.spec, obj, c.node_ports)
            new = replace(new, spec=replace(spec, cluster_ip=obj.spec.cluster_ip))
        elif isinstance(c.spec, NodeSpec):
            new = replace(new, spec=replace(c.spec, pod_cidr=obj.spec.pod_cidr))
        if isinstance(new, Namespace) and c.subnet_id is not None:
            new = replace(new, subnet_id=c.subnet_id)
        return self._write(c.kind, MODIFIED, new, obj)

    def _delete(self, c: Delete) -> Object:
        obj = self._get(c.kind, c.namespace, c.name)
        check_version(obj, c.expected)
        if c.kind == "namespaces":  # the namespace's pods and services go with it, as in Kubernetes
            for kind in NAMESPACED:
                for inner in list(self.store.scan(kind, namespace=c.name)):
                    self._write(kind, DELETED, inner)
        return self._write(c.kind, DELETED, obj)

    # Nodes

    def _register_node(self, c: RegisterNode) -> Node:
        old = self.store.get("nodes", "", c.node.metadata.name)
        conditions = old.status.conditions if old is not None else ()
        conditions = set_condition(conditions, Condition(READY, TRUE, "AgentReady",
                                                         "the node agent is posting ready status", c.now))
        sandbox = c.node.status.sandbox
        if sandbox:  # an agent says how it isolates pods; an unsandboxed node is flagged for every reader
            conditions = set_condition(conditions, Condition(
                SANDBOXED, FALSE, "InsecureUnsandboxedPods",
                "the agent runs pods as plain processes of its own user (--insecure-unsandboxed-pods): a pod can "
                "read and signal what the agent can", c.now) if sandbox == "none" else Condition(
                SANDBOXED, TRUE, "PodsSandboxed", f"pods run in a sandbox: {sandbox}", c.now))
        if old is None:
            node = replace(c.node, status=replace(c.node.status, conditions=conditions, last_heartbeat_time=c.now),
                           spec=replace(c.node.spec, pod_cidr=self._pod_cidr(c.cluster_cidr, c.node_prefix)))
            return self._write("nodes", ADDED, node)
        # A registering agent refreshes what it reports; labels set by administrators stay unless it sets them.
        meta = replace(old.metadata, labels={**old.metadata.labels, **c.node.metadata.labels})
        status = replace(c.node.status, conditions=conditions, last_heartbeat_time=c.now)
        return self._write("nodes", MODIFIED, replace(old, metadata=meta, status=status), old)

    def _pod_cidr(self, cidr: str, prefix: int) -> str:
        """The lowest block of the cluster CIDR no node has (as the node IPAM controller gives them)."""
        if not cidr:
            return ""
        taken = {n.spec.pod_cidr for n in self.store.scan("nodes")}
        for block in ipaddress.ip_network(cidr).subnets(new_prefix=prefix):
            if str(block) not in taken:
                return str(block)
        raise ResourceExhausted(f"the cluster CIDR {cidr} has no /{prefix} left for another node",
                                {"reason": "POD_CIDRS_EXHAUSTED"})

    def _heartbeat(self, c: Heartbeat) -> Node:
        node = self._get("nodes", "", c.name)
        ready = Condition(READY, TRUE, "AgentReady", "the node agent is posting ready status", c.now)
        status = replace(node.status, conditions=set_condition(node.status.conditions, ready),
                         last_heartbeat_time=c.now)
        return self._write("nodes", MODIFIED, replace(node, status=status), node)

    def _mark_stale(self, c: MarkStale) -> list[str]:
        stale = [n for n in self.store.scan("nodes") if scheduling.is_ready(n)
                 and n.status.last_heartbeat_time < c.cutoff]
        for node in stale:
            lost = Condition(READY, UNKNOWN, "NodeStatusUnknown", "the node agent stopped posting status", c.now)
            self._write("nodes", MODIFIED, replace(node, status=replace(
                node.status, conditions=set_condition(node.status.conditions, lost))), node)
            self._pods_lost(node.metadata.name, c.now)
        return [n.metadata.name for n in stale]

    def _pods_lost(self, node_name: str, now: float) -> None:
        """The pods of a node nobody hears from any more: not ready, phase Unknown (as the node lifecycle
        controller marks them)."""
        for pod in list(self.store.scan("pods", node_name=node_name)):
            assert isinstance(pod, Pod)
            if pod.status.phase in (SUCCEEDED, FAILED):
                continue
            ready = Condition(READY, FALSE, "NodeLost", f"node {node_name} is not ready", now)
            status = replace(pod.status, phase=UNKNOWN_PHASE, reason="NodeLost",
                             message=f"node {node_name} which was running the pod is unresponsive",
                             conditions=set_condition(pod.status.conditions, ready),
                             container_statuses=tuple(replace(s, ready=False) for s in pod.status.container_statuses))
            lost = self._write("pods", MODIFIED, replace(pod, status=status), pod)
            self._record(lost, WARNING, "NodeNotReady", "Node is not ready", NODE_CONTROLLER, "", now)

    # Pods

    def _pod(self, namespace: str, name: str, uid: str) -> Pod:
        pod = self._get("pods", namespace, name)
        if uid and pod.metadata.uid != uid:
            raise FailedPrecondition("the pod has been replaced by another of the same name",
                                     {"reason": "UID_MISMATCH", "uid": pod.metadata.uid})
        return pod

    def _bind(self, c: Bind) -> Pod:
        pod = self._pod(c.namespace, c.name, c.uid)
        if pod.spec.node_name:
            raise Aborted(f"the pod is already bound to {pod.spec.node_name}", {"reason": "ALREADY_BOUND"})
        node = self._get("nodes", "", c.node_name)
        used = scheduling.usage(self.store.scan("pods", node_name=c.node_name))
        why = scheduling.misfit(pod, node, used.get(c.node_name, scheduling.Amounts()))
        if why:
            raise Aborted(f"the pod no longer fits node {c.node_name}: {why}", {"reason": "NO_LONGER_FITS"})
        host_ip = next((a.address for a in node.status.addresses if a.type == "InternalIP"), "")
        scheduled = Condition(POD_SCHEDULED, TRUE, "", "", c.now)
        status = replace(pod.status, conditions=set_condition(pod.status.conditions, scheduled), reason="",
                         message="", host_ip=host_ip)
        bound = self._write("pods", MODIFIED, replace(pod, spec=replace(pod.spec, node_name=c.node_name),
                                                      status=status), pod)
        self._record(bound, NORMAL, "Scheduled",
                     f"Successfully assigned {c.namespace}/{c.name} to {c.node_name}", SCHEDULER, "", c.now)
        return bound

    def _unschedulable(self, c: Unschedulable) -> Pod:
        pod = self._pod(c.namespace, c.name, c.uid)
        if pod.spec.node_name:
            raise Aborted("the pod is bound already", {"reason": "ALREADY_BOUND"})
        old = condition(pod.status.conditions, POD_SCHEDULED)
        if old is not None and old.status == FALSE and old.message == c.message:
            return pod  # nothing new to say: no new revision
        unschedulable = Condition(POD_SCHEDULED, FALSE, "Unschedulable", c.message, c.now)
        status = replace(pod.status, conditions=set_condition(pod.status.conditions, unschedulable))
        written = self._write("pods", MODIFIED, replace(pod, status=status), pod)
        self._record(written, WARNING, "FailedScheduling", c.message, SCHEDULER, "", c.now)
        return written

    def _set_pod_status(self, c: SetPodStatus) -> Pod:
        pod = self._pod(c.namespace, c.name, c.uid)
        if not pod.spec.node_name:
            raise FailedPrecondition("the pod is not bound to a node", {"reason": "NOT_BOUND"})
        # The agent owns the containers and the phase; the scheduling condition stays the server's, and
        # a condition whose status did not move keeps its transition time (a new one's is now).
        merged = tuple(x for x in pod.status.conditions if x.type == POD_SCHEDULED)
        for x in c.status.conditions:
            if x.type == POD_SCHEDULED:
                continue
            old = condition(pod.status.conditions, x.type)
            merged += (replace(x, last_transition_time=(x.last_transition_time or c.now)
                               if old is None or old.status != x.status else old.last_transition_time),)
        status = replace(c.status, conditions=merged, start_time=pod.status.start_time or c.status.start_time
                         or (c.now if c.status.phase == RUNNING else 0.0))
        if pod.status.network is not None:  # the address is the API server's (a PrismNET port), not the agent's
            status = replace(status, pod_ip=pod.status.pod_ip, network=pod.status.network)
        if status == pod.status:
            return pod  # the same report again: no new revision
        written = self._write("pods", MODIFIED, replace(pod, status=status), pod)
        for type, reason, message, field_path in kubelet_events(pod, status):
            self._record(written, type, reason, message, KUBELET, pod.spec.node_name, c.now, field_path)
        return written

    # Events: the platform's own, recorded in the step that applies what they are about

    def _record(self, about: Pod, type: str, reason: str, message: str, component: str, host: str, now: float,
                field_path: str = "") -> None:
        """Record an event about a pod; a repeat of one it has (same source, type, reason and message) bumps
        that one's count and last_timestamp instead, as Kubernetes' event aggregation does."""
        meta = about.metadata
        message = truncate(message, MAX_MESSAGE_BYTES)
        involved = ObjectReference("Pod", meta.namespace, meta.name, meta.uid, field_path)
        for old in self.store.events_about(meta.namespace, meta.uid):
            if (old.involved_object, old.type, old.reason, old.message, old.source_component, old.source_host) == \
                    (involved, type, reason, message, component, host):
                self._write("events", MODIFIED, replace(old, count=old.count + 1, last_timestamp=now), old)
                self._retain(meta.namespace, now, old.metadata.name)
                return
        # Named and identified by the revision it is written at: the same on every replica applying the log.
        revision = self.store.revision() + 1
        name = f"{meta.name}.{revision:x}"
        event = Event(Meta(name, meta.namespace, str(uuid.uuid5(EVENT_UIDS, f"{meta.uid}/{revision}")), {}, {}, 0,
                           now), involved, reason, message, type, component, host, now, now, 1)
        taken = self.store.get("events", meta.namespace, name)  # a client may have chosen that name already
        self._write("events", ADDED if taken is None else MODIFIED, event, taken)
        self._retain(meta.namespace, now, name)

    def _create_event(self, c: CreateEvent) -> Event:
        event = c.event
        namespace, name = event.metadata.namespace, event.metadata.name
        self._get("namespaces", "", namespace)  # the namespace must (still) exist
        if self.store.get("events", namespace, name) is not None:
            raise AlreadyExists(f"event {namespace}/{name} already exists",
                                {"kind": "events", "namespace": namespace, "name": name})
        if event.last_timestamp < c.now - EVENT_TTL:
            raise InvalidArgument(f"last_timestamp is more than {EVENT_TTL:g} s ago: such events are no longer kept",
                                  {"field": "last_timestamp"})
        written = self._write("events", ADDED, event)
        self._retain(namespace, c.now, name)
        return written

    def _replace_event(self, c: ReplaceEvent) -> Event:
        namespace, name = c.event.metadata.namespace, c.event.metadata.name
        old = self._get("events", namespace, name)
        check_version(old, c.expected)
        meta = replace(c.event.metadata, uid=old.metadata.uid, creation_timestamp=old.metadata.creation_timestamp)
        written = self._write("events", MODIFIED, replace(c.event, metadata=meta), old)
        self._retain(namespace, c.now, name)
        return written

    def _retain(self, namespace: str, now: float, keep: str) -> None:
        """Delete the namespace's events older than the TTL, then its oldest beyond the cap (never `keep`, the one
        just written)."""
        for old in self.store.events_before(namespace, now - EVENT_TTL):
            if old.metadata.name != keep:
                self._write("events", DELETED, old)
        over = self.store.count("events", namespace) - self.events_kept
        if over > 0:
            for old in [e for e in self.store.oldest_events(namespace, over + 1) if e.metadata.name != keep][:over]:
                self._write("events", DELETED, old)

    # Endpoints: kept equal to the pods each service selects, in the same step as the change

    def _keep_endpoints(self, changes: list[Change]) -> None:
        """Bring the endpoints of the namespaces that changes touched up to date."""
        namespaces = sorted({c.object.metadata.namespace for c in changes if c.kind in ("pods", "services")})
        for namespace in namespaces:
            if self.store.get("namespaces", "", namespace) is None:
                continue  # deleted with everything in it
            services = {s.metadata.name: s for s in self.store.scan("services", namespace=namespace)}
            selecting = [s for s in services.values() if s.spec.selector]
            # Pods are read only for services that select them: most writes go to namespaces without.
            pods = list(self.store.scan("pods", namespace=namespace)) if selecting else []
            for service in selecting:
                self._endpoints(service, pods)
            for kept in list(self.store.scan("endpoints", namespace=namespace)):
                owner = services.get(kept.metadata.name)
                if owner is None or not owner.spec.selector:
                    self._write("endpoints", DELETED, kept)

    def _endpoints(self, service: Service, pods: list[Pod]) -> None:
        ready: list[EndpointAddress] = []
        waiting: list[EndpointAddress] = []
        for pod in pods:
            if not pod.status.pod_ip or pod.status.phase in (SUCCEEDED, FAILED):
                continue
            if any(pod.metadata.labels.get(k) != v for k, v in service.spec.selector.items()):
                continue
            address = EndpointAddress(pod.status.pod_ip, pod.spec.node_name, pod.metadata.name, pod.metadata.uid)
            is_ready = (condition(pod.status.conditions, READY) or Condition(READY, FALSE)).status == TRUE
            (ready if is_ready else waiting).append(address)
        ports = tuple(EndpointPort(p.target_port or p.port, p.name, p.protocol) for p in service.spec.ports)
        old = self.store.get("endpoints", service.metadata.namespace, service.metadata.name)
        meta = replace(service.metadata, labels=service.metadata.labels, annotations={}, resource_version=0)
        new = Endpoints(meta, tuple(ready), tuple(waiting), ports)
        if old is None:
            self._write("endpoints", ADDED, new)
        elif (old.addresses, old.not_ready_addresses, old.ports, old.metadata.labels) != \
                (new.addresses, new.not_ready_addresses, new.ports, new.metadata.labels):
            self._write("endpoints", MODIFIED, replace(new, metadata=replace(meta, uid=old.metadata.uid)), old)


def truncate(text: str, limit: int) -> str:
    """text cut to at most limit bytes of UTF-8, on a character boundary."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


def kubelet_events(pod: Pod, status: PodStatus) -> list[tuple[str, str, str, str]]:
    """The events a node agent's report says happened, as the kubelet records them: (type, reason, message,
    field_path) for each container newly running, newly waiting for a reason that is a warning, or newly
    terminated with an error."""
    before = {s.name: s for s in pod.status.container_statuses}
    images = {c.name: c.image for c in pod.spec.containers}
    found = []
    for new in status.container_statuses:
        was = before.get(new.name) or ContainerStatus(new.name, state="")
        path = f"spec.containers{{{new.name}}}"
        # Another run shows in its start or end time, or in the restart count (times are sent to the second, and
        # an agent may report only the last of several changes).
        another_run = was.restart_count != new.restart_count
        if new.state == CONTAINER_RUNNING and (was.state != CONTAINER_RUNNING or was.started_at != new.started_at
                                               or another_run):
            found.append((NORMAL, "Started", f"Started container {new.name}", path))
        elif new.state == WAITING and new.reason not in QUIET_WAITING and \
                (was.state != WAITING or was.reason != new.reason or another_run):
            found.append((WARNING, *_waiting(pod, new, images.get(new.name, "")), path))
        elif new.state == TERMINATED and new.exit_code != 0 and new.reason != "Killed" and \
                (was.state != TERMINATED or was.finished_at != new.finished_at or another_run):
            # "Killed": the agent stopped it on purpose (the pod is going), which is no failure.
            detail = f": {new.message}" if new.message else ""
            found.append((WARNING, "Failed", f"Container {new.name} exited with code {new.exit_code} "
                                             f"({new.reason or 'Error'}){detail}", path))
    return found


def _waiting(pod: Pod, status: ContainerStatus, image: str) -> tuple[str, str]:
    """(reason, message) of the warning a container waiting for this reason is, in the kubelet's words; the
    back-offs' messages do not change between restarts, so that their repeats aggregate."""
    meta = pod.metadata
    if status.reason == "CrashLoopBackOff":
        return "BackOff", (f"Back-off restarting failed container {status.name} in pod "
                           f"{meta.name}_{meta.namespace}({meta.uid})")
    if status.reason == "ImagePullBackOff":
        return "BackOff", f'Back-off pulling image "{image}"'
    if status.reason == "ErrImagePull":
        return "Failed", f'Failed to pull image "{image}": {status.message}' if status.message else \
            f'Failed to pull image "{image}"'
    return status.reason, status.message or f"container {status.name} is waiting: {status.reason}"
