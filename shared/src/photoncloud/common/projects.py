"""IAM's projects as other services see them: which org a project belongs to, asked with the
caller's own token (so a caller learns nothing about projects it may not read)."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from . import auth, envelope, tls
from .errors import InvalidArgument, ServiceError, Unavailable

TIMEOUT = aiohttp.ClientTimeout(total=5)


class Projects:
    """Looks projects up in IAM over its REST API (an https URL verified against the platform's CA)."""

    def __init__(self, iam_url: str):
        self.iam_url = iam_url.rstrip("/")

    async def org_of(self, project_id: str) -> str:
        """The org of an existing project; IAM's own error (NOT_FOUND, PERMISSION_DENIED) otherwise."""
        url = f"{self.iam_url}/api/v1/projects/{quote(project_id, safe='')}"
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                async with session.get(url, headers=auth.outgoing_headers(), ssl=tls.http_ssl(url)) as response:
                    body = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise Unavailable(f"IAM cannot be reached to look up the project: {type(exc).__name__}",
                              {"dependency": "iam"}) from None
        if "data" in body:
            org_id: str = body["data"]["org_id"]
            return org_id
        error = envelope.error_from_body(response.status, body, "the project cannot be read")
        details = {**(error.details or {}), "project_id": project_id}
        raise ServiceError(f"IAM: {error.message}", details, code=error.code)

    async def resolve(self, project_id: str, org_id: str) -> str:
        """The project's org, checked against org_id when the request names one."""
        actual = await self.org_of(project_id)
        if org_id and org_id != actual:
            raise InvalidArgument(f"project {project_id} belongs to org {actual}, not {org_id}", {"field": "org_id"})
        return actual
