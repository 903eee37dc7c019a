"""k8shost's servicers: a request message in, `await core.x(...)`, a message out (convert.py).
gRPC serves them, and REST through the routes the contract binds to HTTP (shared gateway); the
watch stream's REST counterpart (server-sent events) is rest_api.py's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from photoncloud.common.server import GrpcService, grpc_services
from photoncloud.common.streams import StreamGuard, watch_guard
from photoncloud.k8shost.v1 import k8shost_pb2 as pb
from photoncloud.k8shost.v1 import k8shost_pb2_grpc as pb_grpc

from . import convert, core
from .convert import fields, optional_fields

Context = Any  # grpc.aio.ServicerContext, or the gateway's RestContext


class NamespacesServicer(pb_grpc.NamespacesServicer):
    """photoncloud.k8shost.v1.Namespaces over the core."""

    def __init__(self, kube: core.KubeCore):
        self.kube = kube

    async def CreateNamespace(self, request: pb.CreateNamespaceRequest, context: Context) -> pb.Namespace:
        ns = await self.kube.create_namespace(request.name, request.org_id, request.project_id, dict(request.labels),
                                              dict(request.annotations), request.subnet_id)
        return convert.namespace(ns)

    async def GetNamespace(self, request: pb.GetNamespaceRequest, context: Context) -> pb.Namespace:
        return convert.namespace(await self.kube.namespace(request.name))

    async def ListNamespaces(self, request: pb.ListNamespacesRequest, context: Context) -> pb.ListNamespacesResponse:
        found = await self.kube.namespaces(request.org_id, request.project_id, request.label_selector,
                                           request.page_size, request.page_token)
        return convert.page(pb.ListNamespacesResponse, found)

    async def UpdateNamespace(self, request: pb.UpdateNamespaceRequest, context: Context) -> pb.Namespace:
        ns = await self.kube.update_namespace(request.name, dict(request.labels), dict(request.annotations),
                                              request.resource_version, request.subnet_id)
        return convert.namespace(ns)

    async def DeleteNamespace(self, request: pb.DeleteNamespaceRequest, context: Context) -> pb.Namespace:
        return convert.namespace(await self.kube.delete_namespace(request.name, request.resource_version))


class PodsServicer(pb_grpc.PodsServicer):
    """photoncloud.k8shost.v1.Pods over the core."""

    def __init__(self, kube: core.KubeCore):
        self.kube = kube

    async def CreatePod(self, request: pb.CreatePodRequest, context: Context) -> pb.Pod:
        pod = await self.kube.create_pod(request.namespace, request.name, dict(request.labels),
                                         dict(request.annotations), optional_fields(request, "spec"), request.image,
                                         list(request.command), list(request.args))
        return convert.pod(pod)

    async def GetPod(self, request: pb.GetPodRequest, context: Context) -> pb.Pod:
        return convert.pod(await self.kube.pod(request.namespace, request.name))

    async def ListPods(self, request: pb.ListPodsRequest, context: Context) -> pb.ListPodsResponse:
        found = await self.kube.pods(request.namespace, request.label_selector, request.node_name, request.page_size,
                                     request.page_token)
        return convert.page(pb.ListPodsResponse, found)

    async def UpdatePod(self, request: pb.UpdatePodRequest, context: Context) -> pb.Pod:
        pod = await self.kube.update_pod(request.namespace, request.name, dict(request.labels),
                                         dict(request.annotations), request.resource_version)
        return convert.pod(pod)

    async def DeletePod(self, request: pb.DeletePodRequest, context: Context) -> pb.Pod:
        return convert.pod(await self.kube.delete_pod(request.namespace, request.name, request.resource_version))

    async def UpdatePodStatus(self, request: pb.UpdatePodStatusRequest, context: Context) -> pb.Pod:
        pod = await self.kube.update_pod_status(request.namespace, request.name, request.uid, fields(request.status))
        return convert.pod(pod)

    async def GetPodLogs(self, request: pb.GetPodLogsRequest, context: Context) -> pb.PodLogs:
        container, text = await self.kube.pod_logs(request.namespace, request.name, request.container,
                                                   request.tail_lines)
        return convert.logs(request.namespace, request.name, container, text)


class ServicesServicer(pb_grpc.ServicesServicer):
    """photoncloud.k8shost.v1.Services over the core."""

    def __init__(self, kube: core.KubeCore):
        self.kube = kube

    async def CreateService(self, request: pb.CreateServiceRequest, context: Context) -> pb.Service:
        service = await self.kube.create_service(request.namespace, request.name, dict(request.labels),
                                                 dict(request.annotations), optional_fields(request, "spec"),
                                                 request.service_type, request.port, request.target_port,
                                                 dict(request.selector))
        return convert.service(service)

    async def GetService(self, request: pb.GetServiceRequest, context: Context) -> pb.Service:
        return convert.service(await self.kube.service(request.namespace, request.name))

    async def ListServices(self, request: pb.ListServicesRequest, context: Context) -> pb.ListServicesResponse:
        found = await self.kube.services(request.namespace, request.label_selector, request.page_size,
                                         request.page_token)
        return convert.page(pb.ListServicesResponse, found)

    async def UpdateService(self, request: pb.UpdateServiceRequest, context: Context) -> pb.Service:
        service = await self.kube.update_service(request.namespace, request.name, dict(request.labels),
                                                 dict(request.annotations), optional_fields(request, "spec"),
                                                 request.resource_version)
        return convert.service(service)

    async def DeleteService(self, request: pb.DeleteServiceRequest, context: Context) -> pb.Service:
        return convert.service(await self.kube.delete_service(request.namespace, request.name,
                                                              request.resource_version))


class EndpointsServicer(pb_grpc.EndpointsServicer):
    """photoncloud.k8shost.v1.Endpoints over the core."""

    def __init__(self, kube: core.KubeCore):
        self.kube = kube

    async def GetEndpoints(self, request: pb.GetEndpointsRequest, context: Context) -> pb.EndpointsObject:
        return convert.endpoints(await self.kube.endpoints(request.namespace, request.name))

    async def ListEndpoints(self, request: pb.ListEndpointsRequest, context: Context) -> pb.ListEndpointsResponse:
        found = await self.kube.endpoints_list(request.namespace, request.label_selector, request.page_size,
                                               request.page_token)
        return convert.page(pb.ListEndpointsResponse, found)


class NodesServicer(pb_grpc.NodesServicer):
    """photoncloud.k8shost.v1.Nodes over the core."""

    def __init__(self, kube: core.KubeCore):
        self.kube = kube

    async def RegisterNode(self, request: pb.RegisterNodeRequest, context: Context) -> pb.Node:
        node = await self.kube.register_node(request.name, dict(request.labels), dict(request.capacity),
                                             dict(request.allocatable), [fields(a) for a in request.addresses],
                                             request.daemon_port, request.daemon_token, request.runtime,
                                             request.agent_version, request.sandbox)
        return convert.node(node)

    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Context) -> pb.Node:
        return convert.node(await self.kube.heartbeat(request.name))

    async def GetNode(self, request: pb.GetNodeRequest, context: Context) -> pb.Node:
        return convert.node(await self.kube.node(request.name))

    async def ListNodes(self, request: pb.ListNodesRequest, context: Context) -> pb.ListNodesResponse:
        found = await self.kube.nodes(request.label_selector, request.page_size, request.page_token)
        return convert.page(pb.ListNodesResponse, found)

    async def UpdateNode(self, request: pb.UpdateNodeRequest, context: Context) -> pb.Node:
        node = await self.kube.update_node(request.name, dict(request.labels), dict(request.annotations),
                                           request.unschedulable, request.resource_version)
        return convert.node(node)

    async def DeleteNode(self, request: pb.DeleteNodeRequest, context: Context) -> pb.Node:
        return convert.node(await self.kube.delete_node(request.name, request.resource_version))


class WatchServicer(pb_grpc.WatchServicer):
    """photoncloud.k8shost.v1.Watch over the core."""

    def __init__(self, kube: core.KubeCore, streams: StreamGuard):
        self.kube, self.streams = kube, streams

    async def Watch(self, request: pb.WatchRequest, context: Context) -> AsyncIterator[pb.WatchEvent]:
        async with self.streams.hold():
            async for event in self._watch(request):
                yield event

    async def _watch(self, request: pb.WatchRequest) -> AsyncIterator[pb.WatchEvent]:
        timeout, kind = convert.watch_timeout(request), convert.watch_kind(request)
        watch = await self.kube.watch(kind, request.namespace, request.label_selector, request.node_name,
                                      request.resource_version)
        events = self.streams.until_token_ends(watch)
        loop = asyncio.get_running_loop()
        ends = loop.time() + timeout if timeout else None
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
                    yield convert.event(e.type, e.revision, e.object)
        finally:
            await events.aclose()  # type: ignore[attr-defined]  # until_token_ends is an async generator
            watch.close()


def services(kube: core.KubeCore, streams: StreamGuard | None = None) -> list[GrpcService]:
    """k8shost's gRPC services over kube; watches go through streams."""
    return grpc_services(pb, pb_grpc, {
        "Namespaces": NamespacesServicer(kube), "Pods": PodsServicer(kube), "Services": ServicesServicer(kube),
        "Endpoints": EndpointsServicer(kube), "Nodes": NodesServicer(kube),
        "Watch": WatchServicer(kube, streams or watch_guard()),
    })
