"""k8shost's records as the messages of its contract, and the messages' parts the core takes.

Times become RFC 3339 strings ("" for never) and resource versions strings (opaque to clients, as
in Kubernetes); a node's daemon token, which only the API server uses, is never shown (NodeStatus
has no field for it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message

from photoncloud.common import protojson
from photoncloud.common.errors import InvalidArgument
from photoncloud.common.messages import from_record
from photoncloud.common.times import rfc3339
from photoncloud.k8shost.v1 import k8shost_pb2 as pb

from .core import Page
from .records import KIND_NAMES, KINDS, Condition, Endpoints, Meta, Namespace, Node, Object, Pod, PodStatus, Service

# The kinds this contract's WatchEvent has a message for (events have none: they are served elsewhere).
WATCHED_KINDS = ("namespaces", "pods", "services", "nodes", "endpoints")  # as the kinds were listed before events

M = TypeVar("M", bound=Message)


def meta(m: Meta) -> pb.ObjectMeta:
    """An object's metadata."""
    return from_record(pb.ObjectMeta, m, resource_version=str(m.resource_version),
                       creation_timestamp=rfc3339(m.creation_timestamp))


def conditions(found: Sequence[Condition]) -> list[pb.Condition]:
    """An object's conditions."""
    return [from_record(pb.Condition, c, last_transition_time=rfc3339(c.last_transition_time)) for c in found]


def namespace(n: Namespace) -> pb.Namespace:
    """A namespace."""
    return from_record(pb.Namespace, n, metadata=meta(n.metadata))


def pod_status(s: PodStatus) -> pb.PodStatus:
    """Where a pod stands (its containers' started_at and finished_at are converted by name)."""
    return from_record(pb.PodStatus, s, conditions=conditions(s.conditions), start_time=rfc3339(s.start_time))


def pod(p: Pod) -> pb.Pod:
    """A pod."""
    return from_record(pb.Pod, p, metadata=meta(p.metadata), status=pod_status(p.status))


def service(s: Service) -> pb.Service:
    """A service."""
    return from_record(pb.Service, s, metadata=meta(s.metadata))


def endpoints(e: Endpoints) -> pb.EndpointsObject:
    """A service's endpoints."""
    return from_record(pb.EndpointsObject, e, metadata=meta(e.metadata))


def node(n: Node) -> pb.Node:
    """A node, without the token its agent serves logs with."""
    status = from_record(pb.NodeStatus, n.status, conditions=conditions(n.status.conditions),
                         last_heartbeat_time=rfc3339(n.status.last_heartbeat_time))
    return from_record(pb.Node, n, metadata=meta(n.metadata), status=status)


def obj(record: Object) -> Message:
    """Any object of a kind the contract has a message for, as that message."""
    if isinstance(record, Pod):
        return pod(record)
    if isinstance(record, Service):
        return service(record)
    if isinstance(record, Node):
        return node(record)
    if isinstance(record, Namespace):
        return namespace(record)
    if isinstance(record, Endpoints):
        return endpoints(record)
    raise TypeError(f"the contract has no message for a {type(record).__name__}")


def page(response_class: Callable[..., M], found: Page) -> M:
    """A page of a listing (response_class: the List*Response), with the revision it was read at (watch from there)."""
    return response_class(items=[obj(i) for i in found.items], next_page_token=found.next_page_token,
                          resource_version=str(found.resource_version))


def event(event_type: str, revision: int, record: Object) -> pb.WatchEvent:
    """A watch event: the object under the field named for its kind (pod, service, node, ...)."""
    name = KIND_NAMES[type(record)]
    member: dict[str, Any] = {name.lower(): obj(record)}  # the oneof's member for the kind
    return pb.WatchEvent(type=event_type, kind=name, resource_version=str(revision), **member)


def logs(namespace: str, name: str, container: str, text: str) -> pb.PodLogs:
    """A container's log."""
    return pb.PodLogs(namespace=namespace, name=name, container=container, text=text)


def watch_kind(request: pb.WatchRequest) -> str:
    """The kind a watch asks for, if the contract can carry its objects."""
    if request.kind not in WATCHED_KINDS:
        why = f" ({request.kind} have no message in this API)" if request.kind in KINDS else ""
        raise InvalidArgument(f"kind is one of {', '.join(WATCHED_KINDS)}{why}", {"field": "kind"})
    return request.kind


def watch_timeout(request: pb.WatchRequest) -> float:
    """How long a watch runs, in seconds (0: until the client goes)."""
    if request.timeout_seconds < 0:
        raise InvalidArgument("timeout_seconds must be at least 0 (0: never end)", {"field": "timeout_seconds"})
    return request.timeout_seconds


def fields(message: Message) -> dict[str, Any]:
    """A request part (a spec, a status, an address) as the plain data the core takes: every field by
    its .proto name, times as the RFC 3339 strings sent, an unset message as None."""
    data: dict[str, Any] = protojson.to_json(message)
    return data


def optional_fields(request: Message, field: str) -> dict[str, Any] | None:
    """fields() of the request's message field, or None when the request leaves it unset."""
    return fields(getattr(request, field)) if request.HasField(field) else None
