"""k8shost's gRPC adapter: protobuf in, `await core.x(...)`, protobuf out (shaped by views.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from photoncloud.common.messages import to_message
from photoncloud.common.server import GrpcService
from photoncloud.common.streams import StreamGuard, watch_guard
from photoncloud.k8shost.v1 import k8shost_pb2 as pb
from photoncloud.k8shost.v1 import k8shost_pb2_grpc as pb_grpc

from . import core, views

M = TypeVar("M", bound=Message)
Context = grpc.aio.ServicerContext


def _dict(message: Message) -> dict[str, Any]:
    """A request part as the plain data the core takes (every field, snake_case)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def _page(found: core.Page, message: type[M]) -> M:
    return to_message(views.page(found.items, found.next_page_token, found.resource_version), message)


class NamespacesServicer(pb_grpc.NamespacesServicer):
    """photoncloud.k8shost.v1.Namespaces over the core."""

    def __init__(self, kube: core.KubeCore):
        self.kube = kube

    async def CreateNamespace(self, request: pb.CreateNamespaceRequest, context: Context) -> pb.Namespace:
        ns = await self.kube.create_namespace(request.name, request.org_id, request.project_id, dict(request.labels),
                                              dict(request.annotations), request.subnet_id)
        return to_message(views.obj(ns), pb.Namespace)

    async def GetNamespace(self, request: pb.GetNamespaceRequest, context: Context) -> pb.Namespace:
        return to_message(views.obj(await self.kube.namespace(request.name)), pb.Namespace)

    async def ListNamespaces(self, request: pb.ListNamespacesRequest, context: Context) -> pb.ListNamespacesResponse:
        found = await self.kube.namespaces(request.org_id, request.project_id, request.label_selector,
                                           request.page_size, request.page_token)
        return _page(found, pb.ListNamespacesResponse)

    async def UpdateNamespace(self, request: pb.UpdateNamespaceRequest, context: Context) -> pb.Namespace:
        ns = await self.kube.update_namespace(request.name, dict(request.labels), dict(request.annotations),
                                              request.resource_version, request.subnet_id)
        return to_message(views.obj(ns), pb.Namespace)

    async def DeleteNamespace(self, request: pb.DeleteNamespaceRequest, context: Context) -> pb.Namespace:
        namespace = await self.kube.delete_namespace(request.name, request.resource_version)
        return to_message(views.obj(namespace), pb.Namespace)


class PodsServicer(pb_grpc.PodsServicer):
    """photoncloud.k8shost.v1.Pods over the core."""

    def __init__(self, kube: core.KubeCore):
        self.kube = kube

    async def CreatePod(self, request: pb.CreatePodRequest, context: Context) -> pb.Pod:
        spec = _dict(request.spec) if request.HasField("spec") else None
        pod = await self.kube.create_pod(request.namespace, request.name, dict(request.labels),
                                         dict(request.annotations), spec, request.image, list(request.command),
                                         list(request.args))
        return to_message(views.obj(pod), pb.Pod)

    async def GetPod(self, request: pb.GetPodRequest, context: Context) -> pb.Pod:
        return to_message(views.obj(await self.kube.pod(request.namespace, request.name)), pb.Pod)

    async def ListPods(self, request: pb.ListPodsRequest, context: Context) -> pb.ListPodsResponse:
        found = await self.kube.pods(request.namespace, request.label_selector, request.node_name, request.page_size,
                                     request.page_token)
        return _page(found, pb.ListPodsResponse)

    async def UpdatePod(self, request: pb.UpdatePodRequest, context: Context) -> pb.Pod:
        pod = await self.kube.update_pod(request.namespace, request.name, dict(request.labels),
                                         dict(request.annotations), request.resource_version)
        return to_message(views.obj(pod), pb.Pod)

    async def DeletePod(self, request: pb.DeletePodRequest, context: Context) -> pb.Pod:
        pod = await self.kube.delete_pod(request.namespace, request.name, request.resource_version)
        return to_message(views.obj(pod), pb.Pod)

    async def UpdatePodStatus(self, request: pb.UpdatePodStatusRequest, context: Context) -> pb.Pod:
        pod = await self.kube.update_pod_status(request.namespace, request.name, request.uid, _dict(request.status))
        return to_message(views.obj(pod), pb.Pod)

    async def GetPodLogs(self, request: pb.GetPodLogsRequest, context: Context) -> pb.PodLogs:
        container, text = await self.kube.pod_logs(request.namespace, request.name, request.container,
                                                   request.tail_lines)
        return to_message(views.logs(request.namespace, request.name, container, text), pb.PodLogs)


class ServicesServicer(pb_grpc.ServicesServicer):
    """photoncloud.k8shost.v1.Services over the core."""

    def __init__(self, kube: core.KubeCore):
        self.kube = kube

    async def CreateService(self, request: pb.CreateServiceRequest, context: Context) -> pb.Service:
        spec = _dict(request.spec) if request.HasField("spec") else None
        service = await self.kube.create_service(request.namespace, request.name, dict(request.labels),
                                                 dict(request.annotations), spec, request.service_type, request.port,
                                                 request.target_port, dict(request.selector))
        return to_message(views.obj(service), pb.Service)

    async def GetService(self, request: pb.GetServiceRequest, context: Context) -> pb.Service:
        return to_message(views.obj(await self.kube.service(request.namespace, request.name)), pb.Service)

    async def ListServices(self, request: pb.ListServicesRequest, context: Context) -> pb.ListServicesResponse:
        found = await self.kube.services(request.namespace, request.label_selector, request.page_size,
                                         request.page_token)
        return _page(found, pb.ListServicesResponse)

    async def UpdateService(self, request: pb.UpdateServiceRequest, context: Context) -> pb.Service:
        spec = _dict(request.spec) if request.HasField("spec") else None
        service = await self.kube.update_service(request.namespace, request.name, dict(request.labels),
                                                 dict(request.annotations), spec, request.resource_version)
        return to_message(views.obj(service), pb.Service)

    async def DeleteService(self, request: pb.DeleteServiceRequest, context: Context) -> pb.Service:
        service = await self.kube.delete_service(request.namespace, request.name, request.resource_version)
        return to_message(views.obj(service), pb.Service)


class EndpointsServicer(pb_grpc.EndpointsServicer):
    """photoncloud.k8shost.v1.Endpoints over the core."""

    def __init__(self, kube: core.KubeCore):
        self.kube = kube

    async def GetEndpoints(self, request: pb.GetEndpointsRequest, context: Context) -> pb.EndpointsObject:
        return to_message(views.obj(await self.kube.endpoints(request.namespace, request.name)), pb.EndpointsObject)

    async def ListEndpoints(self, request: pb.ListEndpointsRequest, context: Context) -> pb.ListEndpointsResponse:
        found = await self.kube.endpoints_list(request.namespace, request.label_selector, request.page_size,
                                               request.page_token)
        return _page(found, pb.ListEndpointsResponse)


class NodesServicer(pb_grpc.NodesServicer):
    """photoncloud.k8shost.v1.Nodes over the core."""

    def __init__(self, kube: core.KubeCore):
        self.kube = kube

    async def RegisterNode(self, request: pb.RegisterNodeRequest, context: Context) -> pb.Node:
        node = await self.kube.register_node(request.name, dict(request.labels), dict(request.capacity),
                                             dict(request.allocatable), [_dict(a) for a in request.addresses],
                                             request.daemon_port, request.daemon_token, request.runtime,
                                             request.agent_version, request.sandbox)
        return to_message(views.obj(node), pb.Node)

    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Context) -> pb.Node:
        return to_message(views.obj(await self.kube.heartbeat(request.name)), pb.Node)

    async def GetNode(self, request: pb.GetNodeRequest, context: Context) -> pb.Node:
        return to_message(views.obj(await self.kube.node(request.name)), pb.Node)

    async def ListNodes(self, request: pb.ListNodesRequest, context: Context) -> pb.ListNodesResponse:
        return _page(await self.kube.nodes(request.label_selector, request.page_size, request.page_token),
                     pb.ListNodesResponse)

    async def UpdateNode(self, request: pb.UpdateNodeRequest, context: Context) -> pb.Node:
        node = await self.kube.update_node(request.name, dict(request.labels), dict(request.annotations),
                                           request.unschedulable, request.resource_version)
        return to_message(views.obj(node), pb.Node)

    async def DeleteNode(self, request: pb.DeleteNodeRequest, context: Context) -> pb.Node:
        return to_message(views.obj(await self.kube.delete_node(request.name, request.resource_version)), pb.Node)


class WatchServicer(pb_grpc.WatchServicer):
    """photoncloud.k8shost.v1.Watch over the core."""

    def __init__(self, kube: core.KubeCore, streams: StreamGuard):
        self.kube, self.streams = kube, streams

    async def Watch(self, request: pb.WatchRequest, context: Context) -> AsyncIterator[pb.WatchEvent]:
        async with self.streams.hold():
            async for event in self._watch(request):
                yield event

    async def _watch(self, request: pb.WatchRequest) -> AsyncIterator[pb.WatchEvent]:
        watch = await self.kube.watch(request.kind, request.namespace, request.label_selector, request.node_name,
                                      request.resource_version)
        events = self.streams.until_token_ends(watch)
        loop = asyncio.get_running_loop()
        ends = loop.time() + request.timeout_seconds if request.timeout_seconds > 0 else None
        try:
            while True:
                left = None if ends is None else ends - loop.time()
                if left is not None and left <= 0:
                    return
                try:
                    batch = await asyncio.wait_for(events.__anext__(), left)
                except (TimeoutError, StopAsyncIteration):
                    return
                for e in batch:
                    yield to_message(views.event(e.type, e.revision, e.object), pb.WatchEvent)
        finally:
            await events.aclose()
            watch.close()


def services(kube: core.KubeCore, streams: StreamGuard | None = None) -> list[GrpcService]:
    """k8shost's gRPC services over kube; watches go through streams."""
    streams = streams or watch_guard()
    servicers = {"Namespaces": (NamespacesServicer, pb_grpc.add_NamespacesServicer_to_server),
                 "Pods": (PodsServicer, pb_grpc.add_PodsServicer_to_server),
                 "Services": (ServicesServicer, pb_grpc.add_ServicesServicer_to_server),
                 "Endpoints": (EndpointsServicer, pb_grpc.add_EndpointsServicer_to_server),
                 "Nodes": (NodesServicer, pb_grpc.add_NodesServicer_to_server),
                 "Watch": (lambda kube: WatchServicer(kube, streams), pb_grpc.add_WatchServicer_to_server)}
    descriptor = pb.DESCRIPTOR.services_by_name
    return [GrpcService(descriptor[name].full_name, lambda server, s=servicer, add=add: add(s(kube), server))
            for name, (servicer, add) in servicers.items()]
