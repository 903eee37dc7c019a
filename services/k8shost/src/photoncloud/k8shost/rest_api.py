"""k8shost's REST adapter: JSON in, `await core.x(...)`, JSON out (shaped by views.py)."""

from __future__ import annotations

from aiohttp import web

from photoncloud.common import sse
from photoncloud.common.auth import OPERATOR, TENANT
from photoncloud.common.models import Body, Query, Result
from photoncloud.common.rest import RouteTable
from photoncloud.common.streams import StreamGuard, watch_guard
from pydantic import Field

from . import core, views
from .core import (
    NAMESPACES_READ,
    NAMESPACES_WRITE,
    NODES_READ,
    NODES_WRITE,
    PODS_READ,
    PODS_WRITE,
    SERVICES_READ,
    SERVICES_WRITE,
)

PACKAGE = "photoncloud.k8shost.v1."
NAMESPACES, PODS, SERVICES, ENDPOINTS, NODES = (PACKAGE + s + "/" for s in ("Namespaces", "Pods", "Services",
                                                                            "Endpoints", "Nodes"))


# -- shared parts ---------------------------------------------------------------------------------

class MetaOut(Result):
    """Kubernetes-style object metadata."""

    name: str
    namespace: str
    uid: str
    labels: dict[str, str]
    annotations: dict[str, str]
    resource_version: str = Field(description="the global revision of the object's last change; send it back on "
                                              "an update or delete to make it conditional")
    creation_timestamp: str


class ConditionModel(Body):
    """One aspect of an object's state."""

    type: str
    status: str = Field("Unknown", description="True, False or Unknown")
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""


class VersionBody(Body):
    """A precondition: the resource_version the caller read ("" or absent: unconditional)."""

    resource_version: str = ""


# -- namespaces -----------------------------------------------------------------------------------

SUBNET_HELP = ("a PrismNET subnet of the project: each pod created in the namespace gets a port there, whose address "
               "is its pod_ip")

class NamespaceOut(Result):
    """A namespace of an IAM project."""

    metadata: MetaOut
    org_id: str
    project_id: str
    phase: str
    subnet_id: str = Field("", description="the PrismNET subnet its pods get their addresses from")


class NamespaceList(Result):
    """A page of namespaces."""

    items: list[NamespaceOut]
    next_page_token: str
    resource_version: str = Field(description="the revision the listing was read at: watch from it")


class NamespaceBody(Body):
    """A namespace to create."""

    name: str
    org_id: str = Field("", description="the project's org (default: as IAM knows it)")
    project_id: str = Field(description="an IAM project")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    subnet_id: str = Field("", description=SUBNET_HELP)


class NamespaceQuery(Query):
    """A page of namespaces, by project and labels."""

    org_id: str = ""
    project_id: str = ""
    label_selector: str = Field("", description="e.g. env=prod,tier in (web,api),!legacy")
    page_size: int = 0
    page_token: str = ""


class LabelsBody(VersionBody):
    """The object's labels and annotations from now on (absent: none)."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class NamespaceUpdateBody(LabelsBody):
    """The namespace's labels, annotations and subnet from now on (absent: none)."""

    subnet_id: str = Field("", description=SUBNET_HELP + "; pods created before keep their addresses")


# -- pods -----------------------------------------------------------------------------------------

class EnvModel(Body):
    """An environment variable."""

    name: str
    value: str = ""


class ContainerPortModel(Body):
    """A port a container listens on."""

    name: str = ""
    container_port: int
    protocol: str = "TCP"


class ResourcesModel(Body):
    """What a container asks of its node."""

    requests: dict[str, str] = Field(default_factory=dict, description='cpu ("250m", "1") and memory ("64Mi")')
    limits: dict[str, str] = Field(default_factory=dict, description='the most it may take: cpu, memory and pids '
                                   '(processes); the node\'s defaults where not given')


class ContainerModel(Body):
    """One container of a pod: with the process runtime, its command is run as a local process."""

    name: str
    image: str = ""
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: list[EnvModel] = Field(default_factory=list)
    ports: list[ContainerPortModel] = Field(default_factory=list)
    resources: ResourcesModel = Field(default_factory=ResourcesModel)
    working_dir: str = ""


class PodSpecModel(Body):
    """What a pod runs and where it may run."""

    containers: list[ContainerModel] = Field(default_factory=list)
    restart_policy: str = Field("Always", description="Always, OnFailure or Never")
    node_selector: dict[str, str] = Field(default_factory=dict)
    node_name: str = Field("", description="set by the scheduler")
    termination_grace_period_seconds: int = 10


class ContainerStatusModel(Body):
    """A container's state as its node agent reports it."""

    name: str
    state: str = Field("WAITING", description="WAITING, RUNNING or TERMINATED")
    reason: str = ""
    message: str = ""
    exit_code: int = 0
    started_at: str = ""
    finished_at: str = ""
    restart_count: int = 0
    ready: bool = False


class PodNetworkModel(Body):
    """The PrismNET port holding a pod's address, and its subnet's range."""

    subnet_id: str
    port_id: str
    cidr_block: str
    gateway_ip: str
    mac_address: str = ""


class PodStatusModel(Body):
    """Where a pod stands."""

    phase: str = Field("Pending", description="Pending, Running, Succeeded, Failed or Unknown")
    conditions: list[ConditionModel] = Field(default_factory=list)
    reason: str = ""
    message: str = ""
    host_ip: str = ""
    pod_ip: str = ""
    start_time: str = ""
    container_statuses: list[ContainerStatusModel] = Field(default_factory=list)
    network: PodNetworkModel | None = Field(None, description="set by k8shost in a namespace with a subnet; "
                                                              "pod_ip is then the port's address")


class PodOut(Result):
    """A pod."""

    metadata: MetaOut
    spec: PodSpecModel
    status: PodStatusModel


class PodList(Result):
    """A page of pods."""

    items: list[PodOut]
    next_page_token: str
    resource_version: str


class PodBody(Body):
    """A pod to create: a spec, or the shorthand image/command/args for one container named main."""

    namespace: str
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    spec: PodSpecModel | None = None
    image: str = ""
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)


class PodQuery(Query):
    """Pods of a namespace (or of every one the caller may read), by labels and node."""

    namespace: str = ""
    label_selector: str = ""
    node_name: str = ""
    page_size: int = 0
    page_token: str = ""


class PodStatusBody(Body):
    """A node agent's report on a pod it runs."""

    uid: str = Field("", description="the pod the agent runs (refused if the name now stands for another)")
    status: PodStatusModel


class LogsQuery(Query):
    """Which container's log, and how much of it."""

    container: str = Field("", description="default: the pod's only container")
    tail_lines: int = Field(0, description="the last lines only (0: the whole log kept)")


class LogsOut(Result):
    """A container's log."""

    namespace: str
    name: str
    container: str
    text: str


# -- services -------------------------------------------------------------------------------------

class ServicePortModel(Body):
    """A port a service exposes and the pods' port it leads to."""

    name: str = ""
    protocol: str = "TCP"
    port: int
    target_port: int = Field(0, description="default: port")
    node_port: int = Field(0, description="NodePort services")


class ServiceSpecModel(Body):
    """Which pods a service selects and how it is reached."""

    type: str = Field("ClusterIP", description="ClusterIP or NodePort")
    selector: dict[str, str] = Field(default_factory=dict)
    ports: list[ServicePortModel] = Field(default_factory=list)
    cluster_ip: str = Field("", description="assigned by k8shost")


class ServiceOut(Result):
    """A service."""

    metadata: MetaOut
    spec: ServiceSpecModel


class ServiceList(Result):
    """A page of services."""

    items: list[ServiceOut]
    next_page_token: str
    resource_version: str


class ServiceBody(Body):
    """A service to create: a spec, or the shorthand service_type/port/target_port/selector."""

    namespace: str
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    spec: ServiceSpecModel | None = None
    service_type: str = ""
    port: int = 0
    target_port: int = 0
    selector: dict[str, str] = Field(default_factory=dict)


class ServiceQuery(Query):
    """Services of a namespace (or of every one the caller may read), by labels."""

    namespace: str = ""
    label_selector: str = ""
    page_size: int = 0
    page_token: str = ""


class ServiceUpdate(LabelsBody):
    """A service's labels and annotations, and its spec if given."""

    spec: ServiceSpecModel | None = None


class EndpointAddressOut(Result):
    """A pod behind a service."""

    ip: str
    node_name: str
    pod_name: str
    pod_uid: str


class EndpointPortOut(Result):
    """A port the service's pods serve on."""

    name: str
    port: int
    protocol: str


class EndpointsOut(Result):
    """The pods a service selects: ready ones take traffic."""

    metadata: MetaOut
    addresses: list[EndpointAddressOut]
    not_ready_addresses: list[EndpointAddressOut]
    ports: list[EndpointPortOut]


class EndpointsList(Result):
    """A page of endpoints."""

    items: list[EndpointsOut]
    next_page_token: str
    resource_version: str


# -- nodes ----------------------------------------------------------------------------------------

class NodeAddressModel(Body):
    """An address of a node."""

    type: str = Field("InternalIP", description="InternalIP or Hostname")
    address: str


class NodeSpecOut(Result):
    """What an administrator decides about a node, and the block its pods' addresses come from."""

    unschedulable: bool
    pod_cidr: str


class NodeStatusOut(Result):
    """What a node's agent reports."""

    capacity: dict[str, str]
    allocatable: dict[str, str]
    conditions: list[ConditionModel]
    addresses: list[NodeAddressModel]
    last_heartbeat_time: str
    daemon_port: int
    runtime: str
    agent_version: str
    sandbox: str = ""


class NodeOut(Result):
    """A node."""

    metadata: MetaOut
    spec: NodeSpecOut
    status: NodeStatusOut


class NodeList(Result):
    """A page of nodes."""

    items: list[NodeOut]
    next_page_token: str
    resource_version: str


class RegisterBody(Body):
    """What a node agent reports when it (re)starts."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    capacity: dict[str, str] = Field(default_factory=dict, description="cpu, memory, pods")
    allocatable: dict[str, str] = Field(default_factory=dict, description="default: the capacity")
    addresses: list[NodeAddressModel] = Field(default_factory=list)
    daemon_port: int = Field(0, description="where the agent serves logs")
    daemon_token: str = Field("", description="what the API server shows the agent to read logs; never shown back")
    runtime: str = ""
    agent_version: str = ""
    sandbox: str = Field("", description='how the agent isolates pods from the node ("none": not at all)')


class NodeQuery(Query):
    """Nodes, by labels."""

    label_selector: str = ""
    page_size: int = 0
    page_token: str = ""


class NodeUpdate(LabelsBody):
    """A node's labels and annotations, and whether new pods may go to it."""

    unschedulable: bool = False


# -- watch ----------------------------------------------------------------------------------------

class WatchQuery(Query):
    """What to watch, and from where."""

    namespace: str = ""
    label_selector: str = ""
    node_name: str = Field("", description="pods bound to this node")
    resource_version: str = Field("", description="send the changes after this one (\"\": the current objects as "
                                                  "ADDED first)")
    timeout_seconds: float = Field(0, ge=0, description="end the stream after this long (0: never)")


def routes(kube: core.KubeCore, heartbeat_seconds: float | None = None,
           streams: StreamGuard | None = None) -> RouteTable:
    """k8shost's REST routes over kube (watch streams send a heartbeat when idle that long, and go
    through streams: capped per caller, ended with the token)."""
    table = RouteTable()
    streams = streams or watch_guard()

    # Namespaces

    @table.post("/api/v1/namespaces", "Create a namespace in an IAM project", body=NamespaceBody,
                response=NamespaceOut, status=201, rpc=NAMESPACES + "CreateNamespace", permission=NAMESPACES_WRITE,
                who=TENANT)
    async def create_namespace(request: web.Request, body: NamespaceBody) -> NamespaceOut:
        return NamespaceOut(**views.obj(await kube.create_namespace(body.name, body.org_id, body.project_id,
                                                                    body.labels, body.annotations,
                                                                    body.subnet_id)))

    @table.get("/api/v1/namespaces", "The namespaces the caller may see", query=NamespaceQuery, response=NamespaceList,
               rpc=NAMESPACES + "ListNamespaces", permission=NAMESPACES_READ, who=TENANT)
    async def list_namespaces(request: web.Request, query: NamespaceQuery) -> NamespaceList:
        found = await kube.namespaces(query.org_id, query.project_id, query.label_selector, query.page_size,
                                      query.page_token)
        return NamespaceList(**views.page(found.items, found.next_page_token, found.resource_version))

    @table.get("/api/v1/namespaces/{name}", "A namespace", response=NamespaceOut, rpc=NAMESPACES + "GetNamespace",
               permission=NAMESPACES_READ, who=TENANT)
    async def get_namespace(request: web.Request, name: str) -> NamespaceOut:
        return NamespaceOut(**views.obj(await kube.namespace(name)))

    @table.put("/api/v1/namespaces/{name}", "Replace a namespace's labels, annotations and subnet",
               body=NamespaceUpdateBody, response=NamespaceOut, rpc=NAMESPACES + "UpdateNamespace",
               permission=NAMESPACES_WRITE, who=TENANT)
    async def update_namespace(request: web.Request, name: str, body: NamespaceUpdateBody) -> NamespaceOut:
        return NamespaceOut(**views.obj(await kube.update_namespace(name, body.labels, body.annotations,
                                                                    body.resource_version, body.subnet_id)))

    @table.delete("/api/v1/namespaces/{name}", "Delete a namespace with its pods and services", body=VersionBody,
                  response=NamespaceOut, rpc=NAMESPACES + "DeleteNamespace", permission=NAMESPACES_WRITE, who=TENANT)
    async def delete_namespace(request: web.Request, name: str, body: VersionBody) -> NamespaceOut:
        return NamespaceOut(**views.obj(await kube.delete_namespace(name, body.resource_version)))

    # Pods

    @table.post("/api/v1/pods", "Create a pod (a spec, or image/command/args for one container)", body=PodBody,
                response=PodOut, status=201, rpc=PODS + "CreatePod", permission=PODS_WRITE, who=TENANT)
    async def create_pod(request: web.Request, body: PodBody) -> PodOut:
        spec = None if body.spec is None else body.spec.model_dump()
        pod = await kube.create_pod(body.namespace, body.name, body.labels, body.annotations, spec, body.image,
                                    body.command, body.args)
        return PodOut(**views.obj(pod))

    @table.get("/api/v1/pods", "Pods, by namespace, labels and node", query=PodQuery, response=PodList,
               rpc=PODS + "ListPods", permission=PODS_READ, who=TENANT)
    async def list_pods(request: web.Request, query: PodQuery) -> PodList:
        found = await kube.pods(query.namespace, query.label_selector, query.node_name, query.page_size,
                                query.page_token)
        return PodList(**views.page(found.items, found.next_page_token, found.resource_version))

    @table.get("/api/v1/pods/{namespace}/{name}", "A pod", response=PodOut, rpc=PODS + "GetPod", permission=PODS_READ,
               who=TENANT)
    async def get_pod(request: web.Request, namespace: str, name: str) -> PodOut:
        return PodOut(**views.obj(await kube.pod(namespace, name)))

    @table.put("/api/v1/pods/{namespace}/{name}", "Replace a pod's labels and annotations", body=LabelsBody,
               response=PodOut, rpc=PODS + "UpdatePod", permission=PODS_WRITE, who=TENANT)
    async def update_pod(request: web.Request, namespace: str, name: str, body: LabelsBody) -> PodOut:
        return PodOut(**views.obj(await kube.update_pod(namespace, name, body.labels, body.annotations,
                                                        body.resource_version)))

    @table.delete("/api/v1/pods/{namespace}/{name}", "Delete a pod", body=VersionBody, response=PodOut,
                  rpc=PODS + "DeletePod", permission=PODS_WRITE, who=TENANT)
    async def delete_pod(request: web.Request, namespace: str, name: str, body: VersionBody) -> PodOut:
        return PodOut(**views.obj(await kube.delete_pod(namespace, name, body.resource_version)))

    @table.put("/api/v1/pods/{namespace}/{name}/status", "A node agent's report on a pod it runs", body=PodStatusBody,
               response=PodOut, rpc=PODS + "UpdatePodStatus", permission=NODES_WRITE, who=OPERATOR)
    async def update_pod_status(request: web.Request, namespace: str, name: str, body: PodStatusBody) -> PodOut:
        return PodOut(**views.obj(await kube.update_pod_status(namespace, name, body.uid, body.status.model_dump())))

    @table.get("/api/v1/pods/{namespace}/{name}/logs", "A container's log, read from its node agent",
               query=LogsQuery, response=LogsOut, rpc=PODS + "GetPodLogs", permission=PODS_READ, who=TENANT)
    async def pod_logs(request: web.Request, namespace: str, name: str, query: LogsQuery) -> LogsOut:
        container, text = await kube.pod_logs(namespace, name, query.container, query.tail_lines)
        return LogsOut(**views.logs(namespace, name, container, text))

    # Services

    @table.post("/api/v1/services", "Create a service (a spec, or service_type/port/target_port/selector)",
                body=ServiceBody, response=ServiceOut, status=201, rpc=SERVICES + "CreateService",
                permission=SERVICES_WRITE, who=TENANT)
    async def create_service(request: web.Request, body: ServiceBody) -> ServiceOut:
        spec = None if body.spec is None else body.spec.model_dump()
        service = await kube.create_service(body.namespace, body.name, body.labels, body.annotations, spec,
                                            body.service_type, body.port, body.target_port, body.selector)
        return ServiceOut(**views.obj(service))

    @table.get("/api/v1/services", "Services, by namespace and labels", query=ServiceQuery, response=ServiceList,
               rpc=SERVICES + "ListServices", permission=SERVICES_READ, who=TENANT)
    async def list_services(request: web.Request, query: ServiceQuery) -> ServiceList:
        found = await kube.services(query.namespace, query.label_selector, query.page_size, query.page_token)
        return ServiceList(**views.page(found.items, found.next_page_token, found.resource_version))

    @table.get("/api/v1/services/{namespace}/{name}", "A service", response=ServiceOut, rpc=SERVICES + "GetService",
               permission=SERVICES_READ, who=TENANT)
    async def get_service(request: web.Request, namespace: str, name: str) -> ServiceOut:
        return ServiceOut(**views.obj(await kube.service(namespace, name)))

    @table.put("/api/v1/services/{namespace}/{name}", "Replace a service's labels, annotations and spec",
               body=ServiceUpdate, response=ServiceOut, rpc=SERVICES + "UpdateService", permission=SERVICES_WRITE,
               who=TENANT)
    async def update_service(request: web.Request, namespace: str, name: str, body: ServiceUpdate) -> ServiceOut:
        spec = None if body.spec is None else body.spec.model_dump()
        return ServiceOut(**views.obj(await kube.update_service(namespace, name, body.labels, body.annotations, spec,
                                                                body.resource_version)))

    @table.delete("/api/v1/services/{namespace}/{name}", "Delete a service", body=VersionBody, response=ServiceOut,
                  rpc=SERVICES + "DeleteService", permission=SERVICES_WRITE, who=TENANT)
    async def delete_service(request: web.Request, namespace: str, name: str, body: VersionBody) -> ServiceOut:
        return ServiceOut(**views.obj(await kube.delete_service(namespace, name, body.resource_version)))

    # Endpoints

    @table.get("/api/v1/endpoints", "Endpoints of services, by namespace and labels", query=ServiceQuery,
               response=EndpointsList, rpc=ENDPOINTS + "ListEndpoints", permission=SERVICES_READ, who=TENANT)
    async def list_endpoints(request: web.Request, query: ServiceQuery) -> EndpointsList:
        found = await kube.endpoints_list(query.namespace, query.label_selector, query.page_size, query.page_token)
        return EndpointsList(**views.page(found.items, found.next_page_token, found.resource_version))

    @table.get("/api/v1/endpoints/{namespace}/{name}", "A service's endpoints", response=EndpointsOut,
               rpc=ENDPOINTS + "GetEndpoints", permission=SERVICES_READ, who=TENANT)
    async def get_endpoints(request: web.Request, namespace: str, name: str) -> EndpointsOut:
        return EndpointsOut(**views.obj(await kube.endpoints(namespace, name)))

    # Nodes

    @table.post("/api/v1/nodes", "Register a node (its agent does, on start): create it or refresh its status",
                body=RegisterBody, response=NodeOut, rpc=NODES + "RegisterNode", permission=NODES_WRITE, who=OPERATOR)
    async def register_node(request: web.Request, body: RegisterBody) -> NodeOut:
        node = await kube.register_node(body.name, body.labels, body.capacity, body.allocatable,
                                        [a.model_dump() for a in body.addresses], body.daemon_port, body.daemon_token,
                                        body.runtime, body.agent_version, body.sandbox)
        return NodeOut(**views.obj(node))

    @table.post("/api/v1/nodes/{name}/heartbeat", "A node agent's heartbeat: the node stays Ready", response=NodeOut,
                rpc=NODES + "Heartbeat", permission=NODES_WRITE, who=OPERATOR)
    async def heartbeat(request: web.Request, name: str) -> NodeOut:
        return NodeOut(**views.obj(await kube.heartbeat(name)))

    @table.get("/api/v1/nodes", "Nodes, by labels", query=NodeQuery, response=NodeList, rpc=NODES + "ListNodes",
               permission=NODES_READ, who=TENANT)
    async def list_nodes(request: web.Request, query: NodeQuery) -> NodeList:
        found = await kube.nodes(query.label_selector, query.page_size, query.page_token)
        return NodeList(**views.page(found.items, found.next_page_token, found.resource_version))

    @table.get("/api/v1/nodes/{name}", "A node", response=NodeOut, rpc=NODES + "GetNode", permission=NODES_READ,
               who=TENANT)
    async def get_node(request: web.Request, name: str) -> NodeOut:
        return NodeOut(**views.obj(await kube.node(name)))

    @table.put("/api/v1/nodes/{name}", "Replace a node's labels and annotations; cordon or uncordon it",
               body=NodeUpdate, response=NodeOut, rpc=NODES + "UpdateNode", permission=NODES_WRITE, who=OPERATOR)
    async def update_node(request: web.Request, name: str, body: NodeUpdate) -> NodeOut:
        return NodeOut(**views.obj(await kube.update_node(name, body.labels, body.annotations, body.unschedulable,
                                                          body.resource_version)))

    @table.delete("/api/v1/nodes/{name}", "Delete a node", body=VersionBody, response=NodeOut,
                  rpc=NODES + "DeleteNode", permission=NODES_WRITE, who=OPERATOR)
    async def delete_node(request: web.Request, name: str, body: VersionBody) -> NodeOut:
        return NodeOut(**views.obj(await kube.delete_node(name, body.resource_version)))

    # Watch

    @table.get("/api/v1/watch/{kind}", "Watch pods, services, endpoints, nodes or namespaces: server-sent events",
               query=WatchQuery, raw=True, rpc=PACKAGE + "Watch/Watch", permission=None, who=TENANT)
    async def watch(request: web.Request, kind: str, query: WatchQuery) -> web.StreamResponse:
        # The permission depends on the kind: the core checks it (k8shost:<kind>:read).
        async with streams.hold():
            opened = await kube.watch(kind, query.namespace, query.label_selector, query.node_name,
                                      query.resource_version)
            return await sse.stream(
                request, streams.watch(opened), f"watching {kind} from resource version {opened.revision}",
                lambda batch: b"".join(sse.event(e.type.lower(), views.event(e.type, e.revision, e.object))
                                       for e in batch),
                query.timeout_seconds, heartbeat_seconds)

    return table

