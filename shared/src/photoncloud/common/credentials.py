"""Where an agent's bearer token comes from (k8shost's node agent, PrismNET's dataplane agent).

An agent authenticates as an IAM service account: with a client id and secret it asks IAM for
tokens (the client_credentials grant) and asks again before each one expires; or it is given a
bearer token, fixed or in a file that is read again on every renewal so that it can be rotated.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from . import envelope
from .errors import Unauthenticated


class Tokens:
    """A fixed token, a token file, or IAM's client_credentials grant."""

    def __init__(self, token: str = "", token_file: Path | None = None, iam_url: str = "", client_id: str = "",
                 client_secret: str = "", how: str = "--client-id with a client secret, or --token-file"):
        self.token, self.token_file = token, token_file
        self.iam_url, self.client_id, self.client_secret = iam_url.rstrip("/"), client_id, client_secret
        self._cached, self._renew_at = "", 0.0
        if not (token or token_file or (client_id and client_secret)):
            raise ValueError(f"the agent needs a token: {how}")

    async def get(self, session: aiohttp.ClientSession) -> str:
        """A token to call a service with (renewed before it expires)."""
        if self.token:
            return self.token
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        if self._cached and time.monotonic() < self._renew_at:
            return self._cached
        body = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}
        async with session.post(f"{self.iam_url}/api/v1/auth/token", json=body) as response:
            reply = await response.json(content_type=None)
        if "data" not in reply:
            error = envelope.error_from_body(response.status, reply, str(response.status))
            raise Unauthenticated(f"IAM refused the agent's credentials: {error.message}")
        self._cached = reply["data"]["access_token"]
        self._renew_at = time.monotonic() + max(1.0, reply["data"]["expires_in"] * 0.8)
        return self._cached

    def forget(self) -> None:
        """Drop a cached token a service refused (e.g. revoked): the next call asks IAM again."""
        self._cached = ""
