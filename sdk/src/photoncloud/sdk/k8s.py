"""k8shost: namespaces, pods and their logs, services and endpoints, nodes."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any

from .service import Json, Service, fields, seg

# Phases a pod does not leave.
FINISHED = frozenset({"Succeeded", "Failed"})


class K8s(Service):
    """k8shost's REST API (port 8085)."""

    def create_namespace(self, name: str, project_id: str, labels: dict[str, str] | None = None,
                         subnet_id: str | None = None, **more: Any) -> Json:
        """A namespace in a project (its pods on a PrismNET subnet of the project, if named)."""
        return self._post("/api/v1/namespaces", fields(name=name, project_id=project_id, labels=labels,
                                                       subnet_id=subnet_id, **more))

    def get_namespace(self, name: str) -> Json:
        """One namespace."""
        return self._get(f"/api/v1/namespaces/{seg(name)}")

    def namespaces(self, project_id: str | None = None, label_selector: str | None = None) -> Iterator[Json]:
        """The namespaces the token sees."""
        return self._pages("/api/v1/namespaces", project_id=project_id, label_selector=label_selector)

    def delete_namespace(self, name: str) -> Json:
        """Delete a namespace with its pods and services."""
        return self._delete(f"/api/v1/namespaces/{seg(name)}")

    def create_pod(self, namespace: str, name: str, image: str | None = None,
                   command: builtins.list[str] | None = None, args: builtins.list[str] | None = None,
                   labels: dict[str, str] | None = None, spec: Json | None = None, **more: Any) -> Json:
        """A pod: a spec, or image/command/args for one container named `main`."""
        return self._post("/api/v1/pods", fields(namespace=namespace, name=name, image=image, command=command,
                                                 args=args, labels=labels, spec=spec, **more))

    def get_pod(self, namespace: str, name: str) -> Json:
        """One pod."""
        return self._get(f"/api/v1/pods/{seg(namespace)}/{seg(name)}")

    def pods(self, namespace: str | None = None, label_selector: str | None = None,
             node_name: str | None = None) -> Iterator[Json]:
        """The pods of a namespace (or of every namespace the token reads)."""
        return self._pages("/api/v1/pods", namespace=namespace, label_selector=label_selector, node_name=node_name)

    def delete_pod(self, namespace: str, name: str) -> Json:
        """Delete a pod (its agent stops it); the pod as it was last."""
        return self._delete(f"/api/v1/pods/{seg(namespace)}/{seg(name)}")

    def pod_logs(self, namespace: str, name: str, container: str | None = None,
                 tail_lines: int | None = None) -> Json:
        """A container's log ({"text": ...}), read from its node's agent."""
        return self._get(f"/api/v1/pods/{seg(namespace)}/{seg(name)}/logs", container=container,
                         tail_lines=tail_lines)

    def create_service(self, namespace: str, name: str, spec: Json | None = None, **more: Any) -> Json:
        """A ClusterIP or NodePort service (a spec, or service_type/port/target_port/selector)."""
        return self._post("/api/v1/services", fields(namespace=namespace, name=name, spec=spec, **more))

    def get_service(self, namespace: str, name: str) -> Json:
        """One service."""
        return self._get(f"/api/v1/services/{seg(namespace)}/{seg(name)}")

    def services(self, namespace: str | None = None, label_selector: str | None = None) -> Iterator[Json]:
        """The services of a namespace (or of every namespace the token reads)."""
        return self._pages("/api/v1/services", namespace=namespace, label_selector=label_selector)

    def delete_service(self, namespace: str, name: str) -> Json:
        """Delete a service."""
        return self._delete(f"/api/v1/services/{seg(namespace)}/{seg(name)}")

    def endpoints(self, namespace: str, name: str) -> Json:
        """The pods a service selects."""
        return self._get(f"/api/v1/endpoints/{seg(namespace)}/{seg(name)}")

    def nodes(self, label_selector: str | None = None) -> Iterator[Json]:
        """The nodes."""
        return self._pages("/api/v1/nodes", label_selector=label_selector)

    def get_node(self, name: str) -> Json:
        """One node."""
        return self._get(f"/api/v1/nodes/{seg(name)}")
