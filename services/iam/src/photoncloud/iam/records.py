"""The records IAM keeps: identities, roles, bindings, signing keys, token families, revocations
and audit events. `KEY` names each record's primary key in the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from photoncloud.common.auth import Scope

# A signing key's status.
ACTIVE, RETIRED, EXPIRED = "ACTIVE", "RETIRED", "EXPIRED"


@dataclass(frozen=True)
class Organization:
    """The top of the tenancy tree."""

    KEY: ClassVar[str] = "id"
    id: str
    name: str
    display_name: str
    description: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Project:
    """A tenant's container of resources, inside one organization."""

    KEY: ClassVar[str] = "id"
    id: str
    org_id: str
    name: str
    display_name: str
    description: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class User:
    """A person who signs in with a name and a password."""

    KEY: ClassVar[str] = "id"
    id: str
    name: str
    email: str
    display_name: str
    enabled: bool
    password_hash: str = field(repr=False)
    created_at: float
    updated_at: float
    password_changed_at: float

    @property
    def subject(self) -> str:
        return f"user:{self.id}"


@dataclass(frozen=True)
class ServiceAccount:
    """A program that signs in with its id and a generated secret."""

    KEY: ClassVar[str] = "id"
    id: str
    org_id: str
    project_id: str  # "": the account belongs to the organization itself
    name: str
    display_name: str
    description: str
    enabled: bool
    secret_hash: str = field(repr=False)
    created_at: float
    updated_at: float
    secret_rotated_at: float
    # As an OAuth2 client of the authorization code flow: where a signed-in user may be sent back
    # (exact match), and whether it is public (no secret in that flow; PKCE instead).
    redirect_uris: tuple[str, ...] = ()
    public_client: bool = False

    @property
    def subject(self) -> str:
        return f"serviceaccount:{self.id}"


@dataclass(frozen=True)
class Role:
    """A named set of permissions."""

    KEY: ClassVar[str] = "name"
    name: str
    description: str
    permissions: tuple[str, ...]
    builtin: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Binding:
    """principal holds role on a scope (the system, an org, or a project)."""

    KEY: ClassVar[str] = "id"
    id: str
    principal: str
    role: str
    scope_type: str
    org_id: str
    project_id: str
    created_at: float

    @property
    def scope(self) -> Scope:
        return Scope(self.scope_type, self.org_id, self.project_id)


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair; retired_at 0: the key signing new tokens."""

    KEY: ClassVar[str] = "kid"
    kid: str
    private_pem: str = field(repr=False)  # "" once the key expired
    public_jwk: dict[str, Any]
    created_at: float
    retired_at: float
    expires_at: float  # when a retired key leaves the JWK set

    def status(self, now: float) -> str:
        if not self.retired_at:
            return ACTIVE
        return RETIRED if self.expires_at > now else EXPIRED


@dataclass(frozen=True)
class TokenFamily:
    """One sign-in session: the refresh tokens rotated from one grant and the access tokens issued."""

    KEY: ClassVar[str] = "id"
    id: str
    principal: str
    scope_type: str
    org_id: str
    project_id: str
    created_at: float
    expires_at: float
    revoked_at: float
    # The OAuth2 client a session of the authorization code flow was issued to ("" for the other grants):
    # its refresh tokens are that client's, and stay within the session's scope.
    client_id: str = ""

    @property
    def scope(self) -> Scope:
        return Scope(self.scope_type, self.org_id, self.project_id)


@dataclass(frozen=True)
class RefreshToken:
    """A refresh token, by the SHA-256 of its value; used_at set once it was exchanged."""

    KEY: ClassVar[str] = "token_hash"
    token_hash: str
    family_id: str
    created_at: float
    expires_at: float
    used_at: float


@dataclass(frozen=True)
class AccessToken:
    """An access token IAM issued, remembered until it expires so that it can be revoked."""

    KEY: ClassVar[str] = "jti"
    jti: str
    family_id: str
    principal: str
    expires_at: int


@dataclass(frozen=True)
class Revocation:
    """A revoked token ID; seq is the cursor services poll with."""

    KEY: ClassVar[str] = "seq"
    token_id: str
    expires_at: int
    revoked_at: float
    seq: int = 0


@dataclass(frozen=True)
class AuditEvent:
    """Something that happened: an authentication or a change."""

    KEY: ClassVar[str] = "seq"
    time: float
    principal: str
    action: str
    target: str
    outcome: str
    request_id: str
    client_address: str
    details: dict[str, Any]
    seq: int = 0


@dataclass(frozen=True)
class Meta:
    """A named fact about the store (e.g. that the bootstrap happened)."""

    KEY: ClassVar[str] = "name"
    name: str
    value: str
