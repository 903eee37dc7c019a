"""k8shost's records: namespaces, pods, services, nodes and events with Kubernetes-style metadata.

Records are frozen dataclasses; `encode`/`decode` turn any of them into plain JSON-ready data and
back (the store keeps them as JSON, commands carry them). Times are epoch seconds inside (0: never).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # a record: a dataclass

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
WAITING, CONTAINER_RUNNING, TERMINATED = "WAITING", "RUNNING", "TERMINATED"
CLUSTER_IP, NODE_PORT = "ClusterIP", "NodePort"
ALWAYS, ON_FAILURE, NEVER = "Always", "OnFailure", "Never"
READY, POD_SCHEDULED, SANDBOXED = "Ready", "PodScheduled", "PodsSandboxed"
NORMAL, WARNING = "Normal", "Warning"  # the types of events


@dataclass(frozen=True)
class Meta:
    """What every object carries: its name, namespace, uid, labels, annotations and version."""

    name: str
    namespace: str = ""  # "" for cluster-wide kinds (namespaces, nodes)
    uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    resource_version: int = 0  # the global revision of the object's last change
    creation_timestamp: float = 0.0


@dataclass(frozen=True)
class Condition:
    """One aspect of an object's state (Ready, PodScheduled, ...): True, False or Unknown, and why."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: float = 0.0


@dataclass(frozen=True)
class Namespace:
    """A namespace of pods and services, belonging to an IAM project."""

    metadata: Meta
    org_id: str
    project_id: str
    phase: str = "Active"
    subnet_id: str = ""  # a PrismNET subnet of the project: its pods get their addresses there ("": their nodes')


@dataclass(frozen=True)
class EnvVar:
    """An environment variable of a container."""

    name: str
    value: str = ""


@dataclass(frozen=True)
class ContainerPort:
    """A port a container listens on."""

    container_port: int
    name: str = ""
    protocol: str = "TCP"


@dataclass(frozen=True)
class Resources:
    """What a container asks of its node (requests, which scheduling counts) and the most it may take (limits,
    which the node's agent enforces), as Kubernetes quantities (cpu: "250m", memory: "64Mi", pids: "100")."""

    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Container:
    """One process (or image) of a pod."""

    name: str
    image: str = ""
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    resources: Resources = field(default_factory=Resources)
    working_dir: str = ""


@dataclass(frozen=True)
class PodSpec:
    """What a pod runs and where it may run."""

    containers: tuple[Container, ...]
    restart_policy: str = ALWAYS
    node_selector: dict[str, str] = field(default_factory=dict)
    node_name: str = ""
    termination_grace_period_seconds: int = 10


@dataclass(frozen=True)
class ContainerStatus:
    """A container's state as its node agent last reported it."""

    name: str
    state: str = WAITING
    reason: str = ""
    message: str = ""
    exit_code: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    restart_count: int = 0
    ready: bool = False


@dataclass(frozen=True)
class PodNetwork:
    """The PrismNET port that holds a pod's address (pod_ip), and its subnet's range, for the node agent."""

    subnet_id: str
    port_id: str
    cidr_block: str
    gateway_ip: str
    mac_address: str = ""
    vpc_id: str = ""  # the subnet's VPC: with a PrismNET dataplane, the pod's veth plugs into its bridge


@dataclass(frozen=True)
class PodStatus:
    """Where a pod stands: its phase, conditions and containers."""

    phase: str = PENDING
    conditions: tuple[Condition, ...] = ()
    reason: str = ""
    message: str = ""
    host_ip: str = ""
    pod_ip: str = ""
    start_time: float = 0.0
    container_statuses: tuple[ContainerStatus, ...] = ()
    network: PodNetwork | None = None  # set at creation in a namespace with a subnet; pod_ip is then its port's


@dataclass(frozen=True)
class Pod:
    """A group of containers scheduled together onto one node."""

    metadata: Meta
    spec: PodSpec
    status: PodStatus = field(default_factory=PodStatus)


@dataclass(frozen=True)
class ServicePort:
    """A port a service exposes and the pods' port it leads to."""

    port: int
    target_port: int = 0  # 0: the same as port
    name: str = ""
    protocol: str = "TCP"
    node_port: int = 0


@dataclass(frozen=True)
class ServiceSpec:
    """Which pods a service selects and how it is reached."""

    type: str = CLUSTER_IP
    selector: dict[str, str] = field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()
    cluster_ip: str = ""


@dataclass(frozen=True)
class Service:
    """A stable address in front of the pods its selector matches."""

    metadata: Meta
    spec: ServiceSpec


@dataclass(frozen=True)
class NodeAddress:
    """An address a node is reached at."""

    type: str
    address: str


@dataclass(frozen=True)
class NodeSpec:
    """What an administrator decides about a node."""

    unschedulable: bool = False
    pod_cidr: str = ""  # given at registration from the cluster CIDR; the agent gives its pods addresses from it


@dataclass(frozen=True)
class NodeStatus:
    """What a node's agent reports: capacity, readiness, addresses, and where it serves logs."""

    capacity: dict[str, str] = field(default_factory=dict)
    allocatable: dict[str, str] = field(default_factory=dict)
    conditions: tuple[Condition, ...] = ()
    addresses: tuple[NodeAddress, ...] = ()
    last_heartbeat_time: float = 0.0
    daemon_port: int = 0
    daemon_token: str = ""  # shown to the agent by the API server to read logs; never sent to clients
    runtime: str = ""
    agent_version: str = ""
    sandbox: str = ""  # how the agent isolates pods from the node ("none": not at all)


@dataclass(frozen=True)
class Node:
    """A machine whose agent runs the pods bound to it."""

    metadata: Meta
    spec: NodeSpec = field(default_factory=NodeSpec)
    status: NodeStatus = field(default_factory=NodeStatus)


@dataclass(frozen=True)
class EndpointAddress:
    """A pod behind a service: its address, and where it runs."""

    ip: str
    node_name: str = ""
    pod_name: str = ""
    pod_uid: str = ""


@dataclass(frozen=True)
class EndpointPort:
    """A port the service's pods serve on (a service port's target_port)."""

    port: int
    name: str = ""
    protocol: str = "TCP"


@dataclass(frozen=True)
class Endpoints:
    """The pods a service's selector matches: ready ones take traffic, the others wait. Kept by k8shost."""

    metadata: Meta  # the service's name and namespace
    addresses: tuple[EndpointAddress, ...] = ()
    not_ready_addresses: tuple[EndpointAddress, ...] = ()
    ports: tuple[EndpointPort, ...] = ()


@dataclass(frozen=True)
class ObjectReference:
    """The object an event is about (field_path: the part of it, e.g. "spec.containers{main}")."""

    kind: str
    namespace: str = ""
    name: str = ""
    uid: str = ""
    field_path: str = ""
    api_version: str = ""  # as a client gave them ("": not given)
    resource_version: str = ""


@dataclass(frozen=True)
class Event:
    """Something that happened to an object, as Kubernetes' core/v1 Event: repeats of the same report bump
    count and last_timestamp instead of making another event."""

    metadata: Meta
    involved_object: ObjectReference
    reason: str = ""
    message: str = ""
    type: str = NORMAL
    source_component: str = ""
    source_host: str = ""
    first_timestamp: float = 0.0
    last_timestamp: float = 0.0
    count: int = 1


Object = Namespace | Pod | Service | Node | Endpoints | Event
KINDS: dict[str, type[Object]] = {"namespaces": Namespace, "pods": Pod, "services": Service, "nodes": Node,
                                  "endpoints": Endpoints, "events": Event}
KIND_NAMES = {Namespace: "Namespace", Pod: "Pod", Service: "Service", Node: "Node", Endpoints: "Endpoints",
              Event: "Event"}


def condition(conditions: tuple[Condition, ...], type: str) -> Condition | None:
    """The condition of this type, if any."""
    return next((c for c in conditions if c.type == type), None)


def set_condition(conditions: tuple[Condition, ...], new: Condition) -> tuple[Condition, ...]:
    """conditions with new in place of its type (where it was, else last); the transition time moves only when the
    status does."""
    old = condition(conditions, new.type)
    if old is None:
        return (*conditions, new)
    if old.status == new.status:
        new = dataclasses.replace(new, last_transition_time=old.last_transition_time)
    return tuple(new if c.type == new.type else c for c in conditions)


def encode(record: Any) -> Any:
    """A record as plain JSON-ready data (tuples become lists)."""
    if dataclasses.is_dataclass(record):
        return {f.name: encode(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, (tuple, list)):
        return [encode(v) for v in record]
    if isinstance(record, dict):
        return {k: encode(v) for k, v in record.items()}
    return record


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _convert(options[0], value)
    if origin is tuple:
        return tuple(_convert(typing.get_args(hint)[0], v) for v in value)
    if origin is dict:
        return {str(k): _convert(typing.get_args(hint)[1], v) for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return decode(hint, value)
    return value


def decode(cls: type[T], data: dict[str, Any]) -> T:
    """A record of cls from data that encode() made (missing fields take their defaults)."""
    hints = _hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _convert(hints[k], v) for k, v in data.items() if k in known})
