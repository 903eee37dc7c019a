"""k8shost's commands: what ObjectStateMachine (machine.py) applies, one at a time.

Frozen dataclasses of plain values, complete in themselves: the proposer (core.py) puts in `now`
and generated uids, so that applying a command needs no clock and no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import Event, Node, NodeSpec, Object, PodStatus, ServiceSpec

NODE_PORTS = (30000, 32767)  # Kubernetes' default --service-node-port-range


@dataclass(frozen=True)
class Create:
    """Create an object (services get their cluster IP and node ports here)."""

    kind: str
    object: Object
    cluster_ip_range: str = ""  # services: where the cluster IP comes from ("": none is given)
    node_ports: tuple[int, int] = NODE_PORTS


@dataclass(frozen=True)
class Update:
    """Replace an object's labels and annotations (and a service's or node's spec, a namespace's subnet)."""

    kind: str
    namespace: str
    name: str
    expected: int  # the resource_version the caller read (0: unconditional)
    labels: dict[str, str] | None
    annotations: dict[str, str] | None
    spec: ServiceSpec | NodeSpec | None  # a service's or a node's new spec
    node_ports: tuple[int, int] = NODE_PORTS
    subnet_id: str | None = None  # a namespace's subnet from now on (None: unchanged)


@dataclass(frozen=True)
class Delete:
    """Delete an object (a namespace with everything in it)."""

    kind: str
    namespace: str
    name: str
    expected: int


@dataclass(frozen=True)
class RegisterNode:
    """Create a node, or refresh what its agent reports; it is Ready."""

    node: Node  # uid and creation time used if the node is new
    now: float
    cluster_cidr: str = ""  # where a new node's pod CIDR comes from ("": none)
    node_prefix: int = 24


@dataclass(frozen=True)
class Heartbeat:
    """A node agent is alive: its node is Ready."""

    name: str
    now: float


@dataclass(frozen=True)
class MarkStale:
    """Nodes silent since before the cutoff become NotReady, and their pods Unknown."""

    cutoff: float  # nodes whose last heartbeat is older become NotReady
    now: float


@dataclass(frozen=True)
class Bind:
    """Bind a pending pod to a node that (still) has room for it."""

    namespace: str
    name: str
    uid: str
    node_name: str
    now: float


@dataclass(frozen=True)
class Unschedulable:
    """Say why a pending pod fits no node."""

    namespace: str
    name: str
    uid: str
    message: str
    now: float


@dataclass(frozen=True)
class SetPodStatus:
    """A node agent's report on a pod bound to its node."""

    namespace: str
    name: str
    uid: str
    status: PodStatus
    now: float


@dataclass(frozen=True)
class CreateEvent:
    """Record an event a client reports (the platform's own are recorded by the commands they are about)."""

    event: Event
    now: float  # the proposer's clock: what the namespace's expired events are measured against


@dataclass(frozen=True)
class ReplaceEvent:
    """Replace a client's event (as Kubernetes' recorders do to count a repeat); its uid and creation time stay."""

    event: Event
    expected: int  # the resource_version the caller read (0: unconditional)
    now: float


Command = (Create | Update | Delete | RegisterNode | Heartbeat | MarkStale | Bind | Unschedulable | SetPodStatus
           | CreateEvent | ReplaceEvent)
