"""ChainFire's hand-written REST route: the watch stream (every other route is the gateway's, made
from the contract). Keys are UTF-8 text; an event's value is text, or `value_base64` when it is not."""

from __future__ import annotations

from pydantic import Field

from aiohttp import web

from photoncloud.common import gateway, sse
from photoncloud.common.errors import InvalidArgument
from photoncloud.common.models import Query
from photoncloud.common.rest import RouteTable
from photoncloud.common.streams import StreamGuard, watch_guard

from . import convert, core, keyspace



class WatchQuery(Query):
    """What to watch (one key, a prefix, or [key, range_end)) and from which revision."""

    key: str = Field(description="the key, the prefix (with prefix=true) or the start of the range")
    prefix: bool = Field(False, description="watch every key that starts with key")
    range_end: str | None = Field(None, description="watch [key, range_end); \\u0000: every key from key on")
    start_revision: int = Field(0, description="send the changes from this revision on (0: from now)")
    prev_kv: bool = Field(False, description="send each event with the pair as it was before")
    timeout_seconds: float = Field(0, ge=0, description="end the stream after this long (0: never)")


def _bytes(text: str | None) -> bytes:
    return (text or "").encode()


def routes(kv: core.KVCore | None, heartbeat_seconds: float | None = None,
           streams: StreamGuard | None = None) -> RouteTable:
    """ChainFire's hand-written REST routes over kv (None: described, not served), each call in its
    token's keyspace (watch streams send a heartbeat when idle that long, and go through streams:
    capped per caller, ended with the token)."""
    table = RouteTable()
    scoped = keyspace.scoped(kv) if kv is not None else None
    guard = streams or watch_guard()

    # A server-sent-event stream (text/event-stream): the gateway answers one JSON document per call.
    @table.get("/api/v1/watch", "Watch a key, a prefix or a range: server-sent events (text/event-stream)",
               query=WatchQuery, raw=True, **gateway.declared("photoncloud.chainfire.v1.Watch/Watch"))
    async def watch(request: web.Request, query: WatchQuery) -> web.StreamResponse:
        if query.prefix and query.range_end is not None:
            raise InvalidArgument("give either prefix or range_end, not both", {"field": "range_end"})
        assert scoped is not None, "routes(None) describes the routes; it does not serve them"
        async with guard.hold():
            opened = await scoped.watch(core.WatchRequest(_bytes(query.key), _bytes(query.range_end), query.prefix,
                                                          query.start_revision, query.prev_kv))
            return await sse.stream(
                request, guard.watch(opened), f"watching from revision {opened.revision}",
                lambda batch: b"".join(sse.event(e.type.value.lower(), convert.text_event(e)) for e in batch.events),
                query.timeout_seconds, heartbeat_seconds)

    return table
