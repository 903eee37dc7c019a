"""The values IAM's operations take and return, and IAM's own settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from photoncloud.common.auth import Principal, Scope

from .records import ServiceAccount

DEFAULT_ISSUER = "http://127.0.0.1:8083"  # IAM's own REST address, on the design's port


@dataclass(frozen=True)
class Caller:
    """Who makes a call (None on public operations) and from which network address."""

    principal: Principal | None = None
    address: str = ""

    @property
    def subject(self) -> str:
        """The caller's subject (`user:<id>`, `serviceaccount:<id>`), "" without a token."""
        return self.principal.subject if self.principal else ""


@dataclass(frozen=True)
class Settings:
    """IAM's own configuration, beside the server's."""

    issuer: str = DEFAULT_ISSUER
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 24 * 3600
    session_ttl: int = 7 * 24 * 3600  # a session's refresh tokens end this long after sign-in
    login_failure_limit: int = 5  # failures of one user (or client) from one address
    login_failure_address_limit: int = 20  # failures from one address, whoever they were for
    login_failure_window: float = 60.0
    authorization_code_ttl: float = 60.0  # seconds a code of the authorization code flow lives
    max_authorization_codes: int = 10_000  # codes kept at once (they live in memory)

    def __post_init__(self) -> None:
        for name in ("access_token_ttl", "refresh_token_ttl", "session_ttl", "login_failure_limit",
                     "login_failure_address_limit", "authorization_code_ttl", "max_authorization_codes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if not self.issuer.startswith(("http://", "https://")):
            raise ValueError("the issuer must be an http(s) URL")
        object.__setattr__(self, "issuer", self.issuer.rstrip("/"))


@dataclass(frozen=True)
class Page:
    """A page of a listing; next_page_token is empty on the last page."""

    items: list[Any]
    next_page_token: str = ""


@dataclass(frozen=True)
class Deleted:
    """What a delete removed."""

    id: str
    deleted_bindings: int = 0


@dataclass(frozen=True)
class Credentials:
    """A service account and its new secret, returned once."""

    service_account: ServiceAccount
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class Grant:
    """A token request."""

    grant_type: str
    username: str = ""
    password: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    org_id: str = ""
    project_id: str = ""
    # Asks for the system scope by name (OAuth2's `scope=system`): on a refresh, not the session's scope.
    system: bool = False
    # A refresh that may keep or narrow its session's scope, never leave it (RFC 6749 section 6: the
    # OAuth2 endpoint's); without it a refresh may switch to any scope the principal holds a role on.
    within_session: bool = False
    # OpenID Connect's `openid` scope: an ID token comes with the access token, for this audience
    # (the client's id); "" for none.
    id_token_audience: str = ""


@dataclass(frozen=True)
class CodeRequest:
    """An authorization request of the code flow (RFC 6749 section 4.1.1, with RFC 7636's PKCE):
    which client, where to send the user back, what scope the token is to have, and what the code
    will be bound to."""

    client_id: str
    redirect_uri: str
    org_id: str = ""
    project_id: str = ""
    system: bool = False
    oidc: tuple[str, ...] = ()  # openid (and profile, email): an ID token comes with the access token
    nonce: str = ""  # OpenID Connect's: echoed in the ID token
    code_challenge: str = ""  # RFC 7636's S256 challenge; "" for none (a confidential client's choice)


@dataclass(frozen=True)
class IssuedToken:
    """A token response."""

    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str = field(repr=False)  # "" for client_credentials
    refresh_expires_in: int
    scope: Scope
    roles: tuple[str, ...]
    id_token: str = field(default="", repr=False)  # "" unless the grant asked for one


@dataclass(frozen=True)
class Question:
    """May principal do action on the resource of org_id / project_id?"""

    principal: str
    action: str
    org_id: str = ""
    project_id: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The answer to a Question, with the binding and role that allowed it."""

    allowed: bool
    reason: str
    matched_binding: str = ""
    matched_role: str = ""


@dataclass(frozen=True)
class Bootstrapped:
    """What the first start created."""

    org_id: str
    project_id: str
    user_id: str
    password: str = field(repr=False)
    generated: bool
