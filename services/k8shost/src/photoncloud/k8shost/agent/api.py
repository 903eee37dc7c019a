"""The agent's side of the API server's REST API, and the token it calls it with.

An agent authenticates as an IAM service account: with `--client-id` and a client secret it asks
IAM for tokens (the client_credentials grant) and asks again before each one expires; or it is
given a bearer token (`--token-file`, read again on every renewal so it can be rotated, or
K8SHOST_AGENT_TOKEN). The account needs `k8shost:nodes:write` and `k8shost:pods:read` on the
system scope, and `k8shost:services:read` for its service proxy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp

from photoncloud.common import envelope, tls
from photoncloud.common.credentials import Tokens
from photoncloud.common.errors import Code, Unavailable

TIMEOUT = aiohttp.ClientTimeout(total=15)
WATCH_IDLE_SECONDS = 30  # a watch stream silent this long is dead (the API server sends a heartbeat every 10 s)


class ApiServer:
    """Calls the API server's REST API as the agent."""

    def __init__(self, url: str, tokens: Tokens):
        self.url = url.rstrip("/")
        self.tokens = tokens
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Open the HTTP session."""
        self.session = aiohttp.ClientSession(timeout=TIMEOUT, trust_env=False, connector=tls.clients().connector())

    async def close(self) -> None:
        """Close the HTTP session."""
        if self.session is not None:
            await self.session.close()

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None,
                   params: dict[str, str] | None = None) -> Any:
        """One call; its `data`, or the platform error it answered (UNAVAILABLE when unreachable)."""
        assert self.session is not None
        try:
            headers = {"Authorization": f"Bearer {await self.tokens.get(self.session)}"}
            async with self.session.request(method, self.url + path, json=body, params=params,
                                            headers=headers) as response:
                reply = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise Unavailable(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from None
        if "data" in reply:
            return reply["data"]
        error = envelope.error_from_body(response.status, reply)
        if error.code is Code.UNAUTHENTICATED:
            self.tokens.forget()
        raise error

    async def changes(self, kind: str, **filters: str) -> AsyncIterator[str]:
        """The type of each change of a kind from now on (a watch over server-sent events), until the
        stream ends or fails."""
        assert self.session is not None
        headers = {"Authorization": f"Bearer {await self.tokens.get(self.session)}"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=WATCH_IDLE_SECONDS)
        try:
            async with self.session.get(f"{self.url}/api/v1/watch/{kind}", params=filters, headers=headers,
                                        timeout=timeout) as response:
                if response.status == 401:  # e.g. revoked: the next watch asks IAM for a new token
                    self.tokens.forget()
                if response.status != 200:
                    raise Unavailable(f"the watch of {kind} was refused: HTTP {response.status}")
                async for line in response.content:
                    if line.startswith(b"event: "):
                        yield line[len(b"event: "):].decode().strip()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable(f"the watch of {kind} broke: {type(exc).__name__}") from None

    async def register(self, node: dict[str, Any]) -> dict[str, Any]:
        """Register the node (or refresh it)."""
        return await self.call("POST", "/api/v1/nodes", node)

    async def heartbeat(self, name: str) -> dict[str, Any]:
        """Post a heartbeat."""
        return await self.call("POST", f"/api/v1/nodes/{quote(name, safe='')}/heartbeat")

    async def list_all(self, path: str, **filters: str) -> list[dict[str, Any]]:
        """Every item of a listing, over as many pages as it takes."""
        items, token = [], ""
        while True:
            page = await self.call("GET", path, params={**filters, "page_size": "500", "page_token": token})
            items += page["items"]
            token = page["next_page_token"]
            if not token:
                return items

    async def pods(self, node_name: str) -> list[dict[str, Any]]:
        """Every pod bound to the node."""
        return await self.list_all("/api/v1/pods", node_name=node_name)

    async def report(self, namespace: str, name: str, uid: str, status: dict[str, Any]) -> dict[str, Any]:
        """Report a pod's status."""
        return await self.call("PUT", f"/api/v1/pods/{quote(namespace, safe='')}/{quote(name, safe='')}/status",
                               {"uid": uid, "status": status})
