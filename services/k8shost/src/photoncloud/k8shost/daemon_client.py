"""How the API server reaches node agents: a container's log, over the agent's small HTTP port.

The agent hands the API server a random daemon token when it registers; the API server shows it
(as a bearer token) on every call to that agent, so only the API server that the agent registered
with reads its logs, and the agent needs no key of IAM's.
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from photoncloud.common import envelope, request_id
from photoncloud.common.errors import ServiceError, Unavailable

TIMEOUT = aiohttp.ClientTimeout(total=10)


class AgentClient:
    """Calls node agents over HTTP."""

    async def logs(self, host: str, port: int, token: str, pod_uid: str, container: str, tail_lines: int) -> str:
        """A container's log from the agent at host:port."""
        address = f"[{host}]" if ":" in host else host
        url = f"http://{address}:{port}/pods/{quote(pod_uid, safe='')}/containers/{quote(container, safe='')}/logs"
        headers = {"Authorization": f"Bearer {token}", **request_id.outgoing_headers()}
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT, trust_env=False) as session, \
                    session.get(url, params={"tail_lines": str(tail_lines)}, headers=headers) as response:
                if response.status == 200:
                    return await response.text(errors="replace")
                body = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise Unavailable(f"the node agent at {address}:{port} cannot be reached: {type(exc).__name__}",
                              {"dependency": "node-agent"}) from None
        error = envelope.error_from_body(response.status, body, "the log cannot be read")
        raise ServiceError(f"node agent: {error.message}", error.details, code=error.code)
