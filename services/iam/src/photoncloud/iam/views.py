"""What leaves IAM: the public fields of its records and values, as both adapters send them."""

from __future__ import annotations

import time
from typing import Any

from photoncloud.common.times import rfc3339

from .credentials import ALGORITHM
from .records import AuditEvent, Binding, Organization, Project, Revocation, Role, ServiceAccount, SigningKey, User
from .values import Credentials, Decision, Deleted, IssuedToken


def view(record: Any, now: float | None = None) -> dict[str, Any]:
    """The public fields of a record, times in RFC 3339: never a hash, a secret or a private key.
    Both adapters build their responses from this."""
    if isinstance(record, (Organization, Project)):
        data = {"id": record.id, **({"org_id": record.org_id} if isinstance(record, Project) else {}),
                "name": record.name, "display_name": record.display_name, "description": record.description}
        return {**data, "created_at": rfc3339(record.created_at), "updated_at": rfc3339(record.updated_at)}
    if isinstance(record, User):
        return {"id": record.id, "name": record.name, "email": record.email, "display_name": record.display_name,
                "enabled": record.enabled, "created_at": rfc3339(record.created_at),
                "updated_at": rfc3339(record.updated_at), "password_changed_at": rfc3339(record.password_changed_at)}
    if isinstance(record, ServiceAccount):
        return {"id": record.id, "org_id": record.org_id, "project_id": record.project_id, "name": record.name,
                "display_name": record.display_name, "description": record.description,
                "enabled": record.enabled, "created_at": rfc3339(record.created_at),
                "updated_at": rfc3339(record.updated_at), "secret_rotated_at": rfc3339(record.secret_rotated_at)}
    if isinstance(record, Role):
        return {"name": record.name, "description": record.description, "permissions": list(record.permissions),
                "builtin": record.builtin, "created_at": rfc3339(record.created_at),
                "updated_at": rfc3339(record.updated_at)}
    if isinstance(record, Binding):
        return {"id": record.id, "principal": record.principal, "role": record.role,
                "scope": record.scope.as_dict(), "created_at": rfc3339(record.created_at)}
    if isinstance(record, SigningKey):
        return {"kid": record.kid, "alg": ALGORITHM, "status": record.status(time.time() if now is None else now),
                "created_at": rfc3339(record.created_at), "retired_at": rfc3339(record.retired_at),
                "expires_at": rfc3339(record.expires_at)}
    if isinstance(record, AuditEvent):
        return {"id": record.seq, "time": rfc3339(record.time), "principal": record.principal,
                "action": record.action, "target": record.target, "outcome": record.outcome,
                "request_id": record.request_id, "client_address": record.client_address,
                "details": record.details}
    if isinstance(record, Revocation):
        return {"token_id": record.token_id, "expires_at": record.expires_at}
    if isinstance(record, Credentials):
        return {"service_account": view(record.service_account), "client_id": record.service_account.id,
                "client_secret": record.client_secret}
    if isinstance(record, Deleted):
        return {"id": record.id, "deleted_bindings": record.deleted_bindings}
    if isinstance(record, Decision):
        return {"allowed": record.allowed, "reason": record.reason, "matched_binding": record.matched_binding,
                "matched_role": record.matched_role}
    if isinstance(record, IssuedToken):
        return {"access_token": record.access_token, "token_type": "Bearer", "expires_in": record.expires_in,
                "refresh_token": record.refresh_token, "refresh_expires_in": record.refresh_expires_in,
                "scope": record.scope.as_dict(), "roles": list(record.roles)}
    raise TypeError(f"no public view of {type(record).__name__}")
