"""k8shost's hand-written REST route: the watch, a stream of server-sent events, which the gateway
(one JSON document per call) cannot serve. It reads its request as the gateway would (the RPC's
WatchRequest from the path and query string); every other route is made from the contract."""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web

from photoncloud.common import gateway, protojson, sse
from photoncloud.common.rest import RouteTable
from photoncloud.common.streams import StreamGuard, watch_guard
from photoncloud.k8shost.v1 import k8shost_pb2 as pb

from . import convert, core
from .watch import Event

WATCH, WATCH_PATH = "photoncloud.k8shost.v1.Watch/Watch", "/api/v1/watch/{kind}"


def event_json(e: Event) -> dict[str, Any]:
    """A watch event as JSON: the object under its kind's field alone (the oneof's other members are unset)."""
    return {k: v for k, v in protojson.to_json(convert.event(e.type, e.revision, e.object)).items() if v is not None}


def routes(kube: core.KubeCore | None, heartbeat_seconds: float | None = None,
           streams: StreamGuard | None = None) -> RouteTable:
    """k8shost's hand-written REST routes over kube (None: described, not served; watch streams send a
    heartbeat when idle that long, and go through streams: capped per caller, ended with the token)."""
    table = RouteTable()
    guard = streams or watch_guard()
    binding = gateway.binding(WATCH, WATCH_PATH)

    # A stream of server-sent events (text/event-stream): the gateway answers one JSON document per call.
    @table.get(WATCH_PATH, "Watch pods, services, endpoints, nodes or namespaces: server-sent events", raw=True,
               binding=binding, **gateway.declared(WATCH))
    async def watch(request: web.Request, kind: str) -> web.StreamResponse:
        # The permission depends on the kind: the core checks it (k8shost:<kind>:read).
        assert kube is not None, "routes(None) describes the routes; it does not serve them"
        query = cast(pb.WatchRequest, await gateway.request_message(request, binding))
        timeout, watched = convert.watch_timeout(query), convert.watch_kind(query)
        async with guard.hold():
            opened = await kube.watch(watched, query.namespace, query.label_selector, query.node_name,
                                      query.resource_version)
            return await sse.stream(
                request, guard.watch(opened), f"watching {kind} from resource version {opened.revision}",
                lambda batch: b"".join(sse.event(e.type.lower(), event_json(e)) for e in batch),
                timeout, heartbeat_seconds)

    return table
