"""Server-sent events: a watch streamed to a REST client, batch by batch, with heartbeats.

A watch is an async iterable of batches of events with a `close()`; a ServiceError it raises (a
revision compacted while catching up, ...) is sent as an `error` event in the standard envelope,
and ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from typing import Any, Protocol, cast

from aiohttp import web

from . import envelope, request_id
from .errors import ServiceError

CONTENT_TYPE = "text/event-stream"
HEARTBEAT_SECONDS = 10.0  # a comment line on an idle stream, so proxies and clients see it live
# How often an idle stream looks whether its client has gone, so that what the stream holds (a
# watch, the caller's slot of its watch limit) is given back within a second.
GONE_CHECK_SECONDS = 1.0


class Watch(AsyncIterable[Any], Protocol):
    """Batches of events, until closed."""

    def close(self) -> None:
        """Stop watching."""


def event(name: str, data: object) -> bytes:
    """One server-sent event: its name, and its data as compact JSON."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def batches(request: web.Request, watch: Watch, timeout_seconds: float = 0,
                  tick: float = GONE_CHECK_SECONDS) -> AsyncGenerator[Any, None]:
    """The watch's batches as they come, and None whenever tick seconds (at most a second) pass without one
    (for a heartbeat that is due), until the client goes, the watch ends, or timeout_seconds (0: never)
    have passed; then the watch is closed. A ServiceError the watch raises comes out of the iteration.
    Iterate it inside contextlib.aclosing, so that an early end closes the watch at once."""
    # Every watch iterates as an async generator (aclose() below): the Protocol says only AsyncIterable.
    source = cast("AsyncGenerator[Any, None]", watch.__aiter__())
    pending: asyncio.Future[Any] | None = None
    ends = time.monotonic() + timeout_seconds if timeout_seconds else None
    try:
        while True:
            left = None if ends is None else ends - time.monotonic()
            if left is not None and left <= 0:
                return
            if pending is None:
                pending = asyncio.ensure_future(source.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=min(tick, GONE_CHECK_SECONDS, *(() if left is None
                                                                                           else (left,))))
            if not done:
                if request.transport is None or request.transport.is_closing():
                    return  # the client went away: end now, not at the next heartbeat's failed write
                yield None
                continue
            try:
                batch = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            yield batch
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await source.aclose()
        watch.close()


async def stream(request: web.Request, watch: Watch, greeting: str, render: Callable[[Any], bytes],
                 timeout_seconds: float = 0, heartbeat: float | None = None) -> web.StreamResponse:
    """Send greeting (a comment), then each batch as render makes it, until the client goes, the
    watch ends, or timeout_seconds (0: never) have passed."""
    response = web.StreamResponse(headers={
        "Content-Type": CONTENT_TYPE, "Cache-Control": "no-cache",
        request_id.HEADER: request_id.current() or "",
    })
    heartbeat = heartbeat or HEARTBEAT_SECONDS
    try:
        await response.prepare(request)
        await response.write(f": {greeting}\n\n".encode())
        beat = time.monotonic() + heartbeat  # when the next heartbeat is due
        async with contextlib.aclosing(batches(request, watch, timeout_seconds, heartbeat)) as arriving:
            async for batch in arriving:
                if batch is not None:
                    await response.write(render(batch))
                elif time.monotonic() < beat:
                    continue
                else:
                    await response.write(b": heartbeat\n\n")
                beat = time.monotonic() + heartbeat
    except ServiceError as exc:  # e.g. compacted while catching up: say so, then end
        await response.write(event("error", envelope.error(exc.code, exc.message, exc.details)))
    except ConnectionResetError:
        pass  # the client went away
    finally:
        watch.close()  # also when the answer could not begin (batches() closes it otherwise)
    return response
