"""k8shost's hand-written REST route: the watch, a stream of server-sent events, which the gateway
(unary RPCs only) cannot serve. Every other route is made from the contract (grpc_api.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from photoncloud.common import protojson, sse
from photoncloud.common.auth import TENANT
from photoncloud.common.models import Query
from photoncloud.common.rest import RouteTable
from photoncloud.common.streams import StreamGuard, watch_guard

from . import convert, core
from .watch import Event

WATCH = "photoncloud.k8shost.v1.Watch/Watch"


class WatchQuery(Query):
    """What to watch, and from where."""

    namespace: str = ""
    label_selector: str = ""
    node_name: str = Field("", description="pods bound to this node")
    resource_version: str = Field("", description="send the changes after this one (\"\": the current objects as "
                                                  "ADDED first)")
    timeout_seconds: float = Field(0, ge=0, description="end the stream after this long (0: never)")


def event_json(e: Event) -> dict[str, Any]:
    """A watch event as JSON: the object under its kind's field alone (the oneof's other members are unset)."""
    return {k: v for k, v in protojson.to_json(convert.event(e.type, e.revision, e.object)).items() if v is not None}


def routes(kube: core.KubeCore | None, heartbeat_seconds: float | None = None,
           streams: StreamGuard | None = None) -> RouteTable:
    """k8shost's hand-written REST routes over kube (watch streams send a heartbeat when idle that long,
    and go through streams: capped per caller, ended with the token)."""
    table = RouteTable()
    guard = streams or watch_guard()

    # A stream of server-sent events: the gateway serves unary RPCs only.
    @table.get("/api/v1/watch/{kind}", "Watch pods, services, endpoints, nodes or namespaces: server-sent events",
               query=WatchQuery, raw=True, rpc=WATCH, permission=None, who=TENANT)
    async def watch(request: web.Request, kind: str, query: WatchQuery) -> web.StreamResponse:
        # The permission depends on the kind: the core checks it (k8shost:<kind>:read).
        assert kube is not None  # routes(None) only describes the route
        async with guard.hold():
            opened = await kube.watch(kind, query.namespace, query.label_selector, query.node_name,
                                      query.resource_version)
            return await sse.stream(
                request, guard.watch(opened), f"watching {kind} from resource version {opened.revision}",
                lambda batch: b"".join(sse.event(e.type.lower(), event_json(e)) for e in batch),
                query.timeout_seconds, heartbeat_seconds)

    return table
