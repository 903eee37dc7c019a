"""k8shost's records in Kubernetes' own shape (camelCase, metadata/spec/status, kind and apiVersion),
and Kubernetes manifests back into what the core takes.

A namespace's project, org and subnet are shown as annotations under photoncloud.io/ (Kubernetes has
no field for them); on input those annotations are read, never stored as annotations.
"""

from __future__ import annotations

import re
import time
from typing import Any

from photoncloud.common.errors import InvalidArgument

from ..records import (
    CONTAINER_RUNNING,
    TERMINATED,
    Endpoints,
    EndpointAddress,
    Event,
    Meta,
    Namespace,
    Node,
    Object,
    Pod,
    Service,
)
from . import schema

API_VERSION = "v1"
PROJECT, ORG, SUBNET = "photoncloud.io/project-id", "photoncloud.io/org-id", "photoncloud.io/subnet-id"
DERIVED_ANNOTATIONS = (PROJECT, ORG, SUBNET)


def timestamp(epoch: float) -> str | None:
    """An epoch time as Kubernetes writes times (RFC 3339, whole seconds, UTC); None for 0 (never)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    """data without the fields Kubernetes omits when empty (omitempty)."""
    return {k: v for k, v in data.items() if v not in (None, "", [], {})}


def metadata(meta: Meta, namespaced: bool, extra_annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """An object's metadata."""
    annotations = {**meta.annotations, **(extra_annotations or {})}
    return _drop_empty({
        "name": meta.name, "namespace": meta.namespace if namespaced else None, "uid": meta.uid,
        "resourceVersion": str(meta.resource_version), "creationTimestamp": timestamp(meta.creation_timestamp),
        "labels": dict(meta.labels), "annotations": annotations,
    })


def _conditions(conditions: Any, heartbeat: float = 0.0) -> list[dict[str, Any]]:
    out = []
    for c in conditions:
        item = _drop_empty({"type": c.type, "status": c.status, "reason": c.reason, "message": c.message,
                            "lastTransitionTime": timestamp(c.last_transition_time)})
        if heartbeat:
            item["lastHeartbeatTime"] = timestamp(heartbeat)
        out.append(item)
    return out


def _state(s: Any) -> dict[str, Any]:
    if s.state == CONTAINER_RUNNING:
        return {"running": _drop_empty({"startedAt": timestamp(s.started_at)})}
    if s.state == TERMINATED:
        return {"terminated": _drop_empty({"exitCode": s.exit_code, "reason": s.reason, "message": s.message,
                                           "startedAt": timestamp(s.started_at),
                                           "finishedAt": timestamp(s.finished_at)})}
    return {"waiting": _drop_empty({"reason": s.reason or "ContainerCreating", "message": s.message})}


def pod(p: Pod) -> dict[str, Any]:
    """A pod as Kubernetes shows it."""
    spec = p.spec
    containers = []
    for c in spec.containers:
        containers.append(_drop_empty({
            "name": c.name, "image": c.image, "command": list(c.command), "args": list(c.args),
            "env": [{"name": e.name, "value": e.value} for e in c.env],
            "ports": [_drop_empty({"containerPort": x.container_port, "name": x.name, "protocol": x.protocol})
                      for x in c.ports],
            "workingDir": c.working_dir,
        }) | {"resources": _drop_empty({"requests": dict(c.resources.requests),
                                        "limits": dict(c.resources.limits)})})  # {} shown, as Kubernetes does
    images = {c.name: c.image for c in spec.containers}
    status = p.status
    statuses = [{"name": s.name, "state": _state(s), "lastState": {}, "ready": s.ready,
                 "started": s.state == CONTAINER_RUNNING, "restartCount": s.restart_count,
                 "image": images.get(s.name, ""), "imageID": ""} for s in status.container_statuses]
    return {
        "apiVersion": API_VERSION, "kind": "Pod", "metadata": metadata(p.metadata, True),
        "spec": _drop_empty({"containers": containers, "restartPolicy": spec.restart_policy,
                             "nodeSelector": dict(spec.node_selector), "nodeName": spec.node_name,
                             "terminationGracePeriodSeconds": spec.termination_grace_period_seconds}),
        "status": _drop_empty({
            "phase": status.phase, "conditions": _conditions(status.conditions), "reason": status.reason,
            "message": status.message, "hostIP": status.host_ip,
            "hostIPs": [{"ip": status.host_ip}] if status.host_ip else [], "podIP": status.pod_ip,
            "podIPs": [{"ip": status.pod_ip}] if status.pod_ip else [], "startTime": timestamp(status.start_time),
            "containerStatuses": statuses}),
    }


def service(s: Service) -> dict[str, Any]:
    """A service as Kubernetes shows it."""
    spec = s.spec
    ports = [_drop_empty({"name": p.name, "protocol": p.protocol, "port": p.port,
                          "targetPort": p.target_port or p.port, "nodePort": p.node_port}) for p in spec.ports]
    return {
        "apiVersion": API_VERSION, "kind": "Service", "metadata": metadata(s.metadata, True),
        "spec": _drop_empty({"type": spec.type, "selector": dict(spec.selector), "ports": ports,
                             "clusterIP": spec.cluster_ip, "clusterIPs": [spec.cluster_ip] if spec.cluster_ip else []}),
        "status": {"loadBalancer": {}},
    }


def _address(a: EndpointAddress, namespace: str) -> dict[str, Any]:
    return _drop_empty({"ip": a.ip, "nodeName": a.node_name,
                        "targetRef": _drop_empty({"kind": "Pod", "namespace": namespace, "name": a.pod_name,
                                                  "uid": a.pod_uid}) if a.pod_name else None})


def endpoints(e: Endpoints) -> dict[str, Any]:
    """A service's endpoints as Kubernetes shows them (one subset)."""
    namespace = e.metadata.namespace
    subset = _drop_empty({
        "addresses": [_address(a, namespace) for a in e.addresses],
        "notReadyAddresses": [_address(a, namespace) for a in e.not_ready_addresses],
        "ports": [_drop_empty({"port": p.port, "name": p.name, "protocol": p.protocol}) for p in e.ports],
    })
    body: dict[str, Any] = {"apiVersion": API_VERSION, "kind": "Endpoints", "metadata": metadata(e.metadata, True)}
    if "addresses" in subset or "notReadyAddresses" in subset:
        body["subsets"] = [subset]
    return body


SERVICE_NAME = "kubernetes.io/service-name"  # the label that ties an EndpointSlice to its service


def endpoint_slice(e: Endpoints) -> dict[str, Any]:
    """A service's endpoints as one discovery.k8s.io/v1 EndpointSlice (named and labelled for the service)."""
    namespace = e.metadata.namespace

    def endpoint(a: EndpointAddress, ready: bool) -> dict[str, Any]:
        return _drop_empty({"addresses": [a.ip], "conditions": {"ready": ready, "serving": ready,
                                                                "terminating": False},
                            "nodeName": a.node_name,
                            "targetRef": _drop_empty({"kind": "Pod", "namespace": namespace, "name": a.pod_name,
                                                      "uid": a.pod_uid}) if a.pod_name else None})

    meta = metadata(e.metadata, True)
    meta["labels"] = {**meta.get("labels", {}), SERVICE_NAME: e.metadata.name}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta, "addressType": "IPv4",
            "endpoints": [endpoint(a, True) for a in e.addresses] + [endpoint(a, False)
                                                                     for a in e.not_ready_addresses],
            # name even when empty: the controller sets it always, and kubectl reads it without checking
            "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in e.ports]}


def namespace(n: Namespace) -> dict[str, Any]:
    """A namespace as Kubernetes shows it, with its project (and subnet) as annotations."""
    extra = {PROJECT: n.project_id, ORG: n.org_id}
    if n.subnet_id:
        extra[SUBNET] = n.subnet_id
    return {"apiVersion": API_VERSION, "kind": "Namespace", "metadata": metadata(n.metadata, False, extra),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": n.phase}}


def node(n: Node) -> dict[str, Any]:
    """A node as Kubernetes shows it (without the token the API server reads its agent's logs with)."""
    status = n.status
    return {
        "apiVersion": API_VERSION, "kind": "Node", "metadata": metadata(n.metadata, False),
        "spec": _drop_empty({"unschedulable": n.spec.unschedulable or None, "podCIDR": n.spec.pod_cidr,
                             "podCIDRs": [n.spec.pod_cidr] if n.spec.pod_cidr else []}),
        "status": _drop_empty({
            "capacity": dict(status.capacity), "allocatable": dict(status.allocatable),
            "conditions": _conditions(status.conditions, status.last_heartbeat_time),
            "addresses": [{"type": a.type, "address": a.address} for a in status.addresses],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": status.daemon_port}},
            "nodeInfo": {"kubeletVersion": status.agent_version, "containerRuntimeVersion": status.runtime,
                         "operatingSystem": "linux", "architecture": "", "osImage": "", "kernelVersion": "",
                         "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
        }),
    }


def event(e: Event) -> dict[str, Any]:
    """An event as Kubernetes shows it (core/v1)."""
    involved = e.involved_object
    return {
        "apiVersion": API_VERSION, "kind": "Event", "metadata": metadata(e.metadata, True),
        "involvedObject": _drop_empty({"kind": involved.kind, "namespace": involved.namespace,
                                       "name": involved.name, "uid": involved.uid, "apiVersion": API_VERSION,
                                       "fieldPath": involved.field_path}),
        "reason": e.reason, "message": e.message, "type": e.type,
        "source": _drop_empty({"component": e.source_component, "host": e.source_host}),
        "firstTimestamp": timestamp(e.first_timestamp), "lastTimestamp": timestamp(e.last_timestamp),
        "count": e.count, "reportingComponent": e.source_component, "reportingInstance": e.source_host,
    }


SHOW = {Pod: pod, Service: service, Endpoints: endpoints, Namespace: namespace, Node: node, Event: event}


def show(obj: Object, resource: str = "") -> dict[str, Any]:
    """Any record as Kubernetes shows it (as an EndpointSlice when that is the resource asked for)."""
    if resource == "endpointslices" and isinstance(obj, Endpoints):
        return endpoint_slice(obj)
    return SHOW[type(obj)](obj)  # type: ignore[operator]


# Input

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(data: Any, shape: schema.Schema) -> Any:
    """A manifest's part with the field names of the structures schema declares in snake_case (the core's
    names); map keys (labels, selectors, quantities) stay as they are."""
    shape = schema.resolve(shape)
    if isinstance(data, dict) and "properties" in shape:
        return {_CAMEL.sub("_", k).lower(): snake(v, shape["properties"].get(k, {})) for k, v in data.items()}
    if isinstance(data, list) and "items" in shape:
        return [snake(v, shape["items"]) for v in data]
    return data


def labels_and_annotations(body: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """A manifest's labels and its own annotations (the photoncloud.io/ ones k8shost derives are left out)."""
    meta = body.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in DERIVED_ANNOTATIONS}
    return dict(meta.get("labels") or {}), annotations


def spec(body: dict[str, Any], kind: str) -> dict[str, Any]:
    """A manifest's spec in the core's field names."""
    return snake(body.get("spec") or {}, schema.kind_schema(kind)["properties"]["spec"])


def service_spec(body: dict[str, Any], current: Service | None = None) -> dict[str, Any]:
    """A Service manifest's spec for the core: the cluster IP is the server's (the same as now, or absent)."""
    data = spec(body, "Service")
    for i, port in enumerate(data.get("ports") or ()):
        if isinstance(port, dict) and isinstance(port.get("target_port"), str):
            if not port["target_port"].isdigit():
                raise InvalidArgument(f"spec.ports[{i}].targetPort: named target ports are not supported; give the "
                                      "pods' port number", {"field": f"spec.ports[{i}].targetPort"})
            port["target_port"] = int(port["target_port"])
    given = {data.pop("cluster_ip", "") or "", *(data.pop("cluster_ips", None) or ())} - {""}
    now = {current.spec.cluster_ip} if current is not None and current.spec.cluster_ip else set()
    if given and given != now:
        raise InvalidArgument("spec.clusterIP is assigned by k8shost and cannot be changed",
                              {"field": "spec.clusterIP"})
    return data


def pod_spec(body: dict[str, Any]) -> dict[str, Any]:
    """A Pod manifest's spec for the core (nodeName is the scheduler's: left out; dnsPolicy checked, not kept)."""
    data = spec(body, "Pod")
    data.pop("node_name", None)
    if data.pop("dns_policy", "") not in ("", "ClusterFirst", "Default"):
        raise InvalidArgument("spec.dnsPolicy: pods use their node's DNS (ClusterFirst or Default)",
                              {"field": "spec.dnsPolicy"})
    return data


def _container_status(given: dict[str, Any]) -> dict[str, Any]:
    state = given.get("state") or {}
    kind = next((k for k in ("running", "terminated", "waiting") if k in state), "waiting")
    inner = state.get(kind) or {}
    return {"name": given.get("name"), "state": {"running": CONTAINER_RUNNING, "terminated": TERMINATED}.get(
                kind, "WAITING"),
            "reason": inner.get("reason") or "", "message": inner.get("message") or "",
            "exit_code": inner.get("exitCode") or 0, "started_at": inner.get("startedAt") or "",
            "finished_at": inner.get("finishedAt") or "", "restart_count": given.get("restartCount") or 0,
            "ready": bool(given.get("ready"))}


def pod_status(body: dict[str, Any]) -> dict[str, Any]:
    """A Pod's status as Kubernetes writes it, in the form a node agent reports it (what the core reads)."""
    status = body.get("status") or {}
    return {"phase": status.get("phase") or "", "reason": status.get("reason") or "",
            "message": status.get("message") or "", "host_ip": status.get("hostIP") or "",
            "pod_ip": status.get("podIP") or "", "start_time": status.get("startTime") or "",
            "conditions": [{"type": c.get("type"), "status": c.get("status"), "reason": c.get("reason") or "",
                            "message": c.get("message") or "", "last_transition_time": c.get("lastTransitionTime")}
                           for c in status.get("conditions") or ()],
            "container_statuses": [_container_status(c) for c in status.get("containerStatuses") or ()]}


def event_fields(body: dict[str, Any]) -> dict[str, Any]:
    """An Event manifest as the core's create_event takes it."""
    source = body.get("source") or {}
    return {"involved_object": snake(body.get("involvedObject") or {}, schema.SCHEMAS[schema.CORE + "ObjectReference"]),
            "reason": body.get("reason") or "", "message": body.get("message") or "",
            "type": body.get("type") or "Normal",
            "source_component": source.get("component") or body.get("reportingComponent") or "",
            "source_host": source.get("host") or body.get("reportingInstance") or "",
            "first_timestamp": body.get("firstTimestamp") or 0.0, "last_timestamp": body.get("lastTimestamp") or 0.0,
            "count": body.get("count") or 1}
