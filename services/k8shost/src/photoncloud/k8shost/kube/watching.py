"""Streams of the Kubernetes API: watch events (one JSON document a line, as `?watch=true` answers), and a
pod's log followed as it grows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from photoncloud.common import request_id, sse
from photoncloud.common.errors import NotFound, ServiceError

from ..records import FAILED, SUCCEEDED, Pod
from . import objects, status, tables
from .resources import Resource

log = logging.getLogger("photoncloud.k8shost.kube")

BOOKMARK_SECONDS = 60.0  # how often an idle watch that allows bookmarks is sent one (the API server: about a minute)
LOG_POLL_SECONDS = 1.0  # how often a followed log is read again
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


async def _open(request: web.Request, content_type: str = "application/json") -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache",
                                           request_id.HEADER: request_id.current() or ""})
    await response.prepare(request)
    return response


async def expired(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """A watch from a version no longer kept: one ERROR event with the 410 Status, as the API server sends it."""
    response = await _open(request)
    await response.write(_line("ERROR", body))
    await response.write_eof()
    return response


class _Events:
    """Turns the core's events into watch lines: the field selector applied (an object leaving it is DELETED,
    one entering it ADDED), objects in the table form when asked for."""

    def __init__(self, resource: Resource, matches: Callable[[dict[str, Any]], bool], table: str | None) -> None:
        self.resource = resource
        self.matches = matches
        self.table = table
        self.seen: set[str] = set()  # objects this stream has shown as matching, by namespace/name

    def line(self, kind: str, obj: dict[str, Any]) -> bytes:
        """One event as its line."""
        if self.table is not None and kind in ("ADDED", "MODIFIED", "DELETED"):
            obj = tables.table(self.resource.name, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                               self.table)
        return _line(kind, obj)

    def lines(self, kind: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> bytes:
        """The line an event of the core's becomes ("" when the field selector leaves it out): the core's type
        when the object matches the selector now and did before (previous: the object before a MODIFIED), ADDED
        when it starts matching, DELETED (with the object as it was) when it stops."""
        meta = obj["metadata"]
        key = f"{meta.get('namespace', '')}/{meta['name']}"
        now = self.matches(obj)
        if kind == "ADDED":
            before = False
        elif kind == "DELETED":
            before = now or key in self.seen  # its last state matched, or this stream showed it
        else:
            before = self.matches(previous) if previous is not None else key in self.seen
        if now:
            self.seen.add(key)
        else:
            self.seen.discard(key)
        if now and kind != "DELETED":
            return self.line(kind if before else "ADDED", obj)
        if not before:
            return b""
        if previous is not None:  # it left the selector: the object as the watch last saw it, at the new version
            obj = {**previous, "metadata": {**previous["metadata"], "resourceVersion": meta["resourceVersion"]}}
        return self.line("DELETED", obj)


async def stream(request: web.Request, watch: sse.Watch, resource: Resource,
                 matches: Callable[[dict[str, Any]], bool], revision: int, timeout_seconds: int, table: str | None,
                 bookmarks: bool, bookmark_seconds: float, initial: list[dict[str, Any]] | None) -> web.StreamResponse:
    """Send the watch's events until the client goes, the watch ends, or timeout_seconds (0: never) pass."""
    events = _Events(resource, matches, table)
    last = revision  # the newest version whose changes have all been sent

    def bookmark(extra: dict[str, str] | None = None) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(last)}
        if extra:
            meta["annotations"] = extra
        return _line("BOOKMARK", {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": meta})

    response = await _open(request)
    try:
        if initial is not None:
            await response.write(b"".join(events.lines("ADDED", obj) for obj in initial)
                                 + bookmark({INITIAL_EVENTS_END: "true"}))
        mark = time.monotonic() + bookmark_seconds
        async with contextlib.aclosing(sse.batches(request, watch, timeout_seconds)) as arriving:
            async for batch in arriving:
                if batch is None:
                    if bookmarks and time.monotonic() >= mark:
                        await response.write(bookmark())
                        mark = time.monotonic() + bookmark_seconds
                    continue
                await response.write(b"".join(
                    events.lines(e.type, objects.show(e.object, resource.name),
                                 objects.show(e.previous, resource.name) if e.previous is not None else None)
                    for e in batch))
                last = max([last, *(e.revision for e in batch)])
    except ServiceError as exc:  # e.g. compacted while catching up: say so, then end
        await response.write(_line("ERROR", status.of_error(exc)))
    except ConnectionResetError:
        pass  # the client went away
    except Exception:  # the answer has begun: the failure can only be an event (and the log)
        log.exception("watch of %s failed", resource.name)
        await response.write(_line("ERROR", status.status("internal error; see the service log", "InternalError",
                                                          500)))
    finally:
        watch.close()  # also when the answer could not begin (batches() closes it otherwise)
    return response


async def follow(request: web.Request, text: str, limit: int, read: Callable[[], Awaitable[tuple[str, str]]],
                 pod: Callable[[], Awaitable[Pod]]) -> web.StreamResponse:
    """A pod's log, then what is added to it, until the pod has ended (or is gone), the client goes, or limit
    bytes (0: no limit) are sent."""
    response = await _open(request, "text/plain; charset=utf-8")
    sent = 0
    shown = ""
    try:
        while True:
            new = text[len(shown):] if text.startswith(shown) else text  # a log that was cut short starts over
            data = new.encode()
            if limit:
                data = data[:max(0, limit - sent)]
            if data:
                await response.write(data)
                sent += len(data)
            shown = text
            if limit and sent >= limit:
                break
            try:
                ended = (await pod()).status.phase in (SUCCEEDED, FAILED)
            except NotFound:
                break
            if ended and not new:
                break
            for _ in range(int(LOG_POLL_SECONDS / sse.GONE_CHECK_SECONDS) or 1):
                await asyncio.sleep(sse.GONE_CHECK_SECONDS)
                if request.transport is None or request.transport.is_closing():
                    return response
            _, text = await read()
    except ConnectionResetError:
        pass  # the client went away
    except ServiceError as exc:  # the agent can no longer be reached: the log so far is what there is
        await response.write(f"\n(k8shost: the log cannot be followed further: {exc.message})\n".encode())
    return response
