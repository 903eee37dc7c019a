"""The agent's own small HTTP port: the containers' logs, for the API server only.

Every call must show the daemon token the agent gave the API server when it registered (a fresh
random one per start), so nothing else on the network reads pods' logs through the agent.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from photoncloud.common import envelope
from photoncloud.common.errors import Code

MAX_LOG_BYTES = 1024 * 1024  # the most of a log one answer carries (its end)


def _error(code: Code, message: str) -> web.Response:
    return web.json_response(envelope.error(code, message), status=code.http_status)


def tail(path: Path, lines: int, limit: int = MAX_LOG_BYTES) -> str:
    """The end of a log file: its last `lines` lines (0: all), at most `limit` bytes."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - limit))
        data = f.read()
    text = data.decode("utf-8", errors="replace")
    if lines:
        text = "".join(deque(text.splitlines(keepends=True), maxlen=lines))
    return text


def app(token: str, log_path: Callable[[str, str], Path | None],
        about: dict[str, str] | None = None) -> web.Application:
    """The daemon's routes: GET /pods/{uid}/containers/{container}/logs and GET /healthz (with `about`: the
    runtime, and how pods' networks are wired)."""
    routes = web.RouteTableDef()

    @routes.get("/healthz")
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(envelope.success({"status": "SERVING", **(about or {})}))

    @routes.get("/pods/{uid}/containers/{container}/logs")
    async def logs(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(Code.UNAUTHENTICATED, "the daemon token is missing or wrong")
        try:
            lines = int(request.query.get("tail_lines", "0"))
        except ValueError:
            return _error(Code.INVALID_ARGUMENT, "tail_lines must be a number")
        path = log_path(request.match_info["uid"], request.match_info["container"])
        if path is None:
            return _error(Code.NOT_FOUND, "this agent does not run that pod's container")
        if not path.exists():
            return web.Response(text="", content_type="text/plain")  # not started yet: nothing logged
        return web.Response(text=tail(path, lines), content_type="text/plain")

    application = web.Application()
    application.add_routes(routes)
    return application
