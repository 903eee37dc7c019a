"""Errors carry the HTTP headers clients act on: Retry-After for a wait, WWW-Authenticate on 401."""

from __future__ import annotations

from photoncloud.common import auth
from photoncloud.common.errors import ResourceExhausted
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import Service
from photoncloud.common.testing import TokenMint


async def test_retry_after_and_www_authenticate(start, http):
    routes = RouteTable()

    @routes.get("/api/v1/busy", "Always throttled", who=auth.PUBLIC)
    async def busy(request):
        raise ResourceExhausted("slow down", {"retry_after_seconds": 7})

    @routes.get("/api/v1/private", "Needs a token", permission="x:y:read")
    async def private(request):
        return {}

    server = await start(Service("t", "0", routes, [], verifier=TokenMint().verifier()))
    base = f"http://127.0.0.1:{server.rest_port}/api/v1"
    async with http.get(f"{base}/busy") as response:
        assert (response.status, response.headers.get("Retry-After")) == (429, "7")
    async with http.get(f"{base}/private") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Retry-After" not in response.headers
