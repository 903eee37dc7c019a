"""The Kubernetes object shapes k8shost serves, as OpenAPI v3 schemas: one source for the OpenAPI
document kubectl reads, for refusing fields k8shost does not keep, and for the strategic merge
patch's list keys.

Only what k8shost stores is declared: a field Kubernetes has and k8shost does not (volumes, probes,
...) is unknown here, so a manifest carrying one is refused by name instead of losing it silently.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
CORE = "io.k8s.api.core.v1."


def ref(name: str) -> Schema:
    """A reference to a component schema (inside allOf, as Kubernetes' own v3 documents write it)."""
    return {"allOf": [{"$ref": f"#/components/schemas/{name}"}]}


def string(description: str = "", **extra: Any) -> Schema:
    """A string field."""
    return {"type": "string", "description": description, **extra}


def integer(description: str = "") -> Schema:
    """An integer field."""
    return {"type": "integer", "format": "int32", "description": description}


def boolean(description: str = "") -> Schema:
    """A boolean field."""
    return {"type": "boolean", "description": description}


def strings(description: str = "") -> Schema:
    """A map of strings to strings (labels, annotations, selectors, resource quantities)."""
    return {"type": "object", "additionalProperties": {"type": "string", "default": ""}, "description": description}


def array(items: Schema, description: str = "", merge_key: str = "") -> Schema:
    """A list; with merge_key, a strategic merge patch merges its items by that key (Kubernetes' patchMergeKey)."""
    schema: Schema = {"type": "array", "items": items, "description": description}
    if merge_key:
        schema["x-kubernetes-patch-merge-key"] = merge_key
        schema["x-kubernetes-patch-strategy"] = "merge"
        schema["x-kubernetes-list-type"] = "map"
        schema["x-kubernetes-list-map-keys"] = [merge_key]
    else:
        schema["x-kubernetes-list-type"] = "atomic"
    return schema


def struct(description: str, properties: dict[str, Schema], required: tuple[str, ...] = (),
           kind: str = "") -> Schema:
    """An object with exactly these fields (kind: the Kubernetes kind it is, for kubectl)."""
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = list(required)
    if kind:
        schema["x-kubernetes-group-version-kind"] = [{"group": "", "version": "v1", "kind": kind}]
    return schema


def _top(kind: str, description: str, spec: str = "", status: str = "", **fields: Schema) -> Schema:
    properties: dict[str, Schema] = {
        "apiVersion": string("APIVersion: v1"),
        "kind": string(f"Kind: {kind}"),
        "metadata": ref(META + "ObjectMeta"),
    }
    if spec:
        properties["spec"] = ref(CORE + spec)
    if status:
        properties["status"] = ref(CORE + status)
    properties.update(fields)
    return struct(description, properties, kind=kind)


TIME = string("an RFC 3339 time", format="date-time")

SCHEMAS: dict[str, Schema] = {
    META + "ObjectMeta": struct("Metadata every object has.", {
        "name": string("Unique within its namespace (DNS label); cannot be changed."),
        "namespace": string("The namespace of a namespaced object."),
        "uid": string("Set by the server; unique in time and space."),
        "resourceVersion": string("The object's version, for optimistic concurrency and watches (opaque)."),
        "creationTimestamp": TIME,
        "labels": strings("Labels, for selectors."),
        "annotations": strings("Annotations: arbitrary metadata. photoncloud.io/project-id (namespaces, at creation) "
                               "names the IAM project; photoncloud.io/subnet-id a PrismNET subnet for its pods."),
    }),
    CORE + "Namespace": _top("Namespace", "A namespace of pods and services, belonging to an IAM project.",
                             "NamespaceSpec", "NamespaceStatus"),
    CORE + "NamespaceSpec": struct("A namespace's finalizers (shown; not kept).", {"finalizers": array(string())}),
    CORE + "NamespaceStatus": struct("A namespace's phase.", {"phase": string("Active")}),
    CORE + "EnvVar": struct("An environment variable.", {"name": string(), "value": string()}, ("name",)),
    CORE + "ContainerPort": struct("A port a container listens on.", {
        "containerPort": integer(), "name": string(), "protocol": string("TCP, UDP or SCTP")}, ("containerPort",)),
    CORE + "ResourceRequirements": struct("What a container asks for (requests) and may use at most (limits).", {
        "requests": strings("cpu, memory, pids"), "limits": strings("cpu, memory, pids")}),
    CORE + "Container": struct("One process or image of a pod.", {
        "name": string(), "image": string(),
        "command": array(string()), "args": array(string()),
        "env": array(ref(CORE + "EnvVar"), merge_key="name"),
        "ports": array(ref(CORE + "ContainerPort"), merge_key="containerPort"),
        "resources": ref(CORE + "ResourceRequirements"),
        "workingDir": string(),
    }, ("name",)),
    CORE + "PodSpec": struct("What a pod runs and where it may run. It cannot change once created.", {
        "containers": array(ref(CORE + "Container"), merge_key="name"),
        "restartPolicy": string("Always, OnFailure or Never"),
        "nodeSelector": strings(),
        "nodeName": string("Set by the scheduler."),
        "dnsPolicy": string("ClusterFirst or Default: pods use their node's DNS (there is no cluster DNS, and "
                            "ClusterFirst falls back to Default without one, as the kubelet does); not kept"),
        "terminationGracePeriodSeconds": integer(),
    }, ("containers",)),
    CORE + "PodCondition": struct("One aspect of a pod's state.", {
        "type": string(), "status": string(), "reason": string(), "message": string(),
        "lastTransitionTime": TIME, "lastProbeTime": TIME}),
    CORE + "ContainerState": struct("A container's state: one of waiting, running, terminated.", {
        "waiting": {"type": "object", "additionalProperties": True},
        "running": {"type": "object", "additionalProperties": True},
        "terminated": {"type": "object", "additionalProperties": True}}),
    CORE + "ContainerStatus": struct("A container's state as its node agent reports it.", {
        "name": string(), "state": ref(CORE + "ContainerState"), "lastState": ref(CORE + "ContainerState"),
        "ready": boolean(), "started": boolean(), "restartCount": integer(), "image": string(),
        "imageID": string()}),
    CORE + "PodIP": struct("An address of a pod.", {"ip": string()}),
    CORE + "HostIP": struct("An address of a pod's node.", {"ip": string()}),
    CORE + "PodStatus": struct("Where a pod stands (written by the platform).", {
        "phase": string(), "conditions": array(ref(CORE + "PodCondition"), merge_key="type"),
        "reason": string(), "message": string(), "hostIP": string(),
        "hostIPs": array(ref(CORE + "HostIP")), "podIP": string(), "podIPs": array(ref(CORE + "PodIP")),
        "startTime": TIME, "containerStatuses": array(ref(CORE + "ContainerStatus"))}),
    CORE + "Pod": _top("Pod", "A group of containers scheduled together onto one node.", "PodSpec", "PodStatus"),
    CORE + "ServicePort": struct("A port a service exposes, and the pods' port it leads to.", {
        "name": string(), "protocol": string("TCP, UDP or SCTP"), "port": integer(),
        "targetPort": {"type": "integer", "x-kubernetes-int-or-string": True,
                       "description": "the pods' port (a number: named ports are not supported)"},
        "nodePort": integer()}, ("port",)),
    CORE + "ServiceSpec": struct("Which pods a service selects and how it is reached.", {
        "type": string("ClusterIP or NodePort"), "selector": strings(),
        "ports": array(ref(CORE + "ServicePort"), merge_key="port"),
        "clusterIP": string("Given by the server; cannot be changed."), "clusterIPs": array(string())}),
    CORE + "ServiceStatus": struct("A service's status.", {
        "loadBalancer": {"type": "object", "additionalProperties": True}}),
    CORE + "Service": _top("Service", "A stable address in front of the pods its selector matches.", "ServiceSpec",
                           "ServiceStatus"),
    CORE + "ObjectReference": struct("A reference to an object.", {
        "kind": string(), "namespace": string(), "name": string(), "uid": string(), "apiVersion": string(),
        "resourceVersion": string(), "fieldPath": string()}),
    CORE + "EndpointAddress": struct("A pod behind a service.", {
        "ip": string(), "nodeName": string(), "targetRef": ref(CORE + "ObjectReference")}),
    CORE + "EndpointPort": struct("A port the pods serve on.", {
        "port": integer(), "name": string(), "protocol": string()}),
    CORE + "EndpointSubset": struct("Addresses and the ports they serve.", {
        "addresses": array(ref(CORE + "EndpointAddress")), "notReadyAddresses": array(ref(CORE + "EndpointAddress")),
        "ports": array(ref(CORE + "EndpointPort"))}),
    CORE + "Endpoints": _top("Endpoints", "The pods a service selects (kept by k8shost; read-only).",
                             subsets=array(ref(CORE + "EndpointSubset"))),
    CORE + "NodeSpec": struct("What an administrator decides about a node.", {
        "unschedulable": boolean(), "podCIDR": string(), "podCIDRs": array(string())}),
    CORE + "NodeCondition": struct("One aspect of a node's state.", {
        "type": string(), "status": string(), "reason": string(), "message": string(),
        "lastTransitionTime": TIME, "lastHeartbeatTime": TIME}),
    CORE + "NodeAddress": struct("An address of a node.", {"type": string(), "address": string()}),
    CORE + "NodeSystemInfo": struct("What the node runs.", {
        "kubeletVersion": string(), "containerRuntimeVersion": string(), "operatingSystem": string(),
        "architecture": string(), "osImage": string(), "kernelVersion": string(), "kubeProxyVersion": string(),
        "machineID": string(), "systemUUID": string(), "bootID": string()}),
    CORE + "NodeStatus": struct("What a node's agent reports.", {
        "capacity": strings(), "allocatable": strings(),
        "conditions": array(ref(CORE + "NodeCondition"), merge_key="type"),
        "addresses": array(ref(CORE + "NodeAddress"), merge_key="type"),
        "nodeInfo": ref(CORE + "NodeSystemInfo"),
        "daemonEndpoints": {"type": "object", "additionalProperties": True}}),
    CORE + "Node": _top("Node", "A machine whose agent runs the pods bound to it.", "NodeSpec", "NodeStatus"),
    CORE + "EventSource": struct("Who reported an event.", {"component": string(), "host": string()}),
    CORE + "Event": _top("Event", "Something that happened to an object (kept an hour).",
                         involvedObject=ref(CORE + "ObjectReference"), reason=string(), message=string(),
                         type=string("Normal or Warning"), source=ref(CORE + "EventSource"),
                         firstTimestamp=TIME, lastTimestamp=TIME, count=integer(),
                         reportingComponent=string(), reportingInstance=string()),
}


def resolve(schema: Schema) -> Schema:
    """schema with a reference followed (the component it names)."""
    if "allOf" in schema:
        return SCHEMAS[schema["allOf"][0]["$ref"].rsplit("/", 1)[1]]
    return schema


def unknown_fields(data: Any, schema: Schema, path: str = "") -> list[str]:
    """The dotted paths of fields in data that schema does not declare."""
    schema = resolve(schema)
    found: list[str] = []
    if isinstance(data, dict) and "properties" in schema:
        for key, value in data.items():
            where = f"{path}.{key}" if path else key
            if key not in schema["properties"]:
                found.append(where)
            else:
                found.extend(unknown_fields(value, schema["properties"][key], where))
    elif isinstance(data, list) and "items" in schema:
        for i, item in enumerate(data):
            found.extend(unknown_fields(item, schema["items"], f"{path}[{i}]"))
    return found


def known(data: Any, schema: Schema) -> Any:
    """data without the fields schema does not declare (fieldValidation Ignore and Warn drop them)."""
    schema = resolve(schema)
    if isinstance(data, dict) and "properties" in schema:
        return {k: known(v, schema["properties"][k]) for k, v in data.items() if k in schema["properties"]}
    if isinstance(data, list) and "items" in schema:
        return [known(v, schema["items"]) for v in data]
    return data


def field(schema: Schema, key: str) -> Schema | None:
    """The schema of field key of an object schema (None: not declared)."""
    properties = resolve(schema).get("properties") or {}
    return properties.get(key)


def kind_schema(kind: str) -> Schema:
    """The schema of a top-level kind (Pod, Service, ...)."""
    return SCHEMAS[CORE + kind]
