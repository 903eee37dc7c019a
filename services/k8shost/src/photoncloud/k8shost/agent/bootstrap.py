"""Bootstrapping an agent's identity, as Kubernetes' bootstrap tokens do for kubelets.

On a single machine (the embedded platform) the agent can be started with an IAM administrator's
name and password file instead of credentials of its own. On its first start it then creates, in
IAM, a role holding exactly what agents need, a service account for its node bound to that role
on the system scope, and keeps the account's client id and secret in its data directory (mode
0600). Every later start uses those credentials, and the administrator's password is used for
nothing else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import aiohttp

from photoncloud.common import envelope, tls
from photoncloud.common.errors import Code, ServiceError, Unavailable

log = logging.getLogger("photoncloud.k8shost.agent")

ROLE = "k8shost-node-agent"
PERMISSIONS = ["k8shost:nodes:write", "k8shost:nodes:read", "k8shost:pods:read", "k8shost:services:read"]
TIMEOUT = aiohttp.ClientTimeout(total=15)


async def _call(session: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any] | None = None,
                token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with session.request(method, url, json=body, headers=headers) as response:
            reply = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise Unavailable(f"IAM cannot be reached: {type(exc).__name__}") from None
    if "data" in reply:
        return reply["data"]
    error = envelope.error_from_body(response.status, reply, str(response.status))
    raise ServiceError(f"IAM: {error.message}", error.details, code=error.code)


async def wait_for_credentials(iam_url: str, node_name: str, user: str, password_file: Path | None, path: Path,
                               timeout: float, password: str = "") -> tuple[str, str]:
    """credentials(), waiting up to timeout seconds for IAM to answer and for its password file to exist (the
    whole platform starts at once, IAM writing the file on its first start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not path.exists() and password_file is not None:
                password = password_file.read_text().strip()
            return await credentials(iam_url, node_name, user, password, path)
        except (FileNotFoundError, Unavailable) as exc:
            if time.monotonic() >= deadline:
                raise Unavailable(f"cannot bootstrap the agent's account: {exc}") from None
            log.info("waiting for IAM to bootstrap the agent's account: %s", exc)
            await asyncio.sleep(1.0)


async def credentials(iam_url: str, node_name: str, user: str, password: str, path: Path) -> tuple[str, str]:
    """The agent's (client_id, client_secret): kept at path, or made in IAM with the administrator's login."""
    if path.exists():
        saved = json.loads(path.read_text())
        return saved["client_id"], saved["client_secret"]
    iam = iam_url.rstrip("/")
    async with aiohttp.ClientSession(timeout=TIMEOUT, trust_env=False, connector=tls.clients().connector()) as session:
        token = (await _call(session, "POST", f"{iam}/api/v1/auth/token",
                             {"grant_type": "password", "username": user, "password": password}))["access_token"]
        try:
            await _call(session, "POST", f"{iam}/api/v1/roles",
                        {"name": ROLE, "description": "what k8shost node agents need", "permissions": PERMISSIONS},
                        token)
        except ServiceError as exc:
            if exc.code is not Code.ALREADY_EXISTS:  # another agent made it first
                raise
        org_id = (await _call(session, "GET", f"{iam}/api/v1/orgs?name=default", token=token))["items"][0]["id"]
        name = f"k8shost-agent-{node_name}"[:63]
        try:
            made = await _call(session, "POST", f"{iam}/api/v1/service-accounts",
                               {"org_id": org_id, "name": name,
                                "description": f"the k8shost agent of node {node_name}"},
                               token)
        except ServiceError as exc:
            if exc.code is not Code.ALREADY_EXISTS:
                raise
            # The account outlived the agent's data directory: its secret was shown once, so replace it.
            found = await _call(session, "GET", f"{iam}/api/v1/service-accounts?org_id={org_id}&name={name}",
                                token=token)
            made = await _call(session, "POST", f"{iam}/api/v1/service-accounts/{found['items'][0]['id']}/secret",
                               token=token)
        try:
            await _call(session, "POST", f"{iam}/api/v1/bindings",
                        {"principal": f"serviceaccount:{made['service_account']['id']}", "role": ROLE,
                         "scope": {"type": "system"}}, token)
        except ServiceError as exc:
            if exc.code is not Code.ALREADY_EXISTS:
                raise
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as f:
        json.dump({"client_id": made["client_id"], "client_secret": made["client_secret"]}, f)
    log.info("created IAM service account %s for node %s", made["client_id"], node_name)
    return made["client_id"], made["client_secret"]
