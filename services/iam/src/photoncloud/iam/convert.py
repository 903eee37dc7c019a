"""IAM's records as the messages of its contract, and the messages' parts the core takes. Only the
public fields leave: never a hash, a secret (but the one shown once) or a private key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from photoncloud.common.auth import Scope
from photoncloud.common.errors import InvalidArgument
from photoncloud.common.messages import from_record
from photoncloud.common.times import rfc3339
from photoncloud.iam.v1 import iam_pb2 as pb

from .credentials import ALGORITHM
from .records import AuditEvent, Binding, Organization, Project, Revocation, Role, ServiceAccount, SigningKey, User
from .values import Credentials, Decision, Deleted, Grant, IssuedToken, Question


def scope(s: Scope) -> pb.Scope:
    """Where a binding or a token applies."""
    return pb.Scope(**s.as_dict())


def organization(o: Organization) -> pb.Organization:
    """An organization."""
    return from_record(pb.Organization, o)


def project(p: Project) -> pb.Project:
    """A project."""
    return from_record(pb.Project, p)


def user(u: User) -> pb.User:
    """A user (never the password's hash)."""
    return from_record(pb.User, u)


def service_account(a: ServiceAccount) -> pb.ServiceAccount:
    """A service account (never the secret's hash)."""
    return from_record(pb.ServiceAccount, a)


def credentials(c: Credentials) -> pb.ServiceAccountCredentials:
    """A service account with its new secret: the one time it is shown."""
    return pb.ServiceAccountCredentials(service_account=service_account(c.service_account),
                                        client_id=c.service_account.id, client_secret=c.client_secret)


def role(r: Role) -> pb.Role:
    """A role and its permissions."""
    return from_record(pb.Role, r)


def binding(b: Binding) -> pb.Binding:
    """A binding, its scope as one message."""
    return from_record(pb.Binding, b, scope=scope(b.scope))


def deleted(d: Deleted) -> pb.DeleteResponse:
    """What a delete removed."""
    return from_record(pb.DeleteResponse, d)


def signing_key(k: SigningKey, now: float) -> pb.SigningKey:
    """A signing key and its status at now (never the private key)."""
    return from_record(pb.SigningKey, k, alg=ALGORITHM, status=k.status(now))


def revocation(r: Revocation) -> pb.Revocation:
    """A revoked token's ID and when it expires anyway."""
    return from_record(pb.Revocation, r)


def issued_token(t: IssuedToken) -> pb.TokenResponse:
    """A token response; refresh_token unset when none was issued (client_credentials)."""
    return pb.TokenResponse(access_token=t.access_token, token_type="Bearer", expires_in=t.expires_in,
                            refresh_token=t.refresh_token or None, refresh_expires_in=t.refresh_expires_in,
                            scope=scope(t.scope), roles=list(t.roles))


def claims(found: Mapping[str, Any]) -> pb.Claims:
    """A valid token's claims (those the contract names)."""
    fields = pb.Claims.DESCRIPTOR.fields_by_name
    message = pb.Claims(**{name: value for name, value in found.items() if name in fields and name != "scope"})
    message.scope.CopyFrom(pb.Scope(**found.get("scope", {})))
    return message


def decision(d: Decision) -> pb.AuthorizeResponse:
    """An authorization decision."""
    return from_record(pb.AuthorizeResponse, d)


def audit_event(e: AuditEvent) -> pb.AuditEvent:
    """An audit event: its sequence number as its ID, its details as a Struct."""
    details = struct_pb2.Struct()
    details.update(e.details)
    return from_record(pb.AuditEvent, e, id=e.seq, time=rfc3339(e.time), details=details)


def jwk(key: Mapping[str, Any]) -> pb.Jwk:
    """A public key of the JWK set."""
    fields = pb.Jwk.DESCRIPTOR.fields_by_name
    return pb.Jwk(**{name: value for name, value in key.items() if name in fields})


# -- requests ---------------------------------------------------------------------------------

def grant(request: pb.IssueTokenRequest) -> Grant:
    """The grant a token request makes (no scope: the system's, or the refresh token's)."""
    return Grant(request.grant_type, request.username, request.password, request.client_id, request.client_secret,
                 request.refresh_token, request.scope.org_id, request.scope.project_id)


def question(request: pb.AuthorizeRequest) -> Question:
    """An authorization question."""
    context = json_format.MessageToDict(request.context) if request.HasField("context") else {}
    return Question(request.principal, request.action, request.resource.org_id, request.resource.project_id,
                    context)


def changes(request: Message, *names: str) -> dict[str, Any]:
    """The fields an update request sets (optional fields: set when present)."""
    return {name: getattr(request, name) for name in names if request.HasField(name)}


def service_account_changes(request: pb.UpdateServiceAccountRequest) -> dict[str, Any]:
    """What a service account update changes: the fields update_mask names (REST: those of the
    body), or without a mask the fields set and the redirect URIs if any are given."""
    names = ("name", "display_name", "description", "enabled", "public_client")
    paths = list(request.update_mask.paths)
    for path in paths:
        if path not in (*names, "redirect_uris"):
            raise InvalidArgument(f"update_mask: {path!r} is not a field a service account update changes",
                                  {"field": "update_mask"})
    found = changes(request, *names)
    if "redirect_uris" in paths or (not paths and request.redirect_uris):
        found["redirect_uris"] = list(request.redirect_uris)
    return {name: value for name, value in found.items() if not paths or name in paths}


def role_changes(request: pb.UpdateRoleRequest) -> dict[str, Any]:
    """What a role update changes: the fields update_mask names (REST: those of the body), or
    without a mask the description if set and the permissions if any are given."""
    paths = list(request.update_mask.paths)
    for path in paths:
        if path not in ("description", "permissions"):
            raise InvalidArgument(f"update_mask: {path!r} is not a field a role update changes",
                                  {"field": "update_mask"})
    found = changes(request, "description")
    if "permissions" in paths or (not paths and request.permissions):
        found["permissions"] = list(request.permissions)
    if paths and "description" not in paths:
        found.pop("description", None)
    return found
