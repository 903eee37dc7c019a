"""Authentication and authorization for every service: bearer JWTs that IAM signs, verified
locally against IAM's published keys (JWKS), and permission checks on the principal they name.

Permissions are `service:resource:verb` (e.g. `chainfire:kv:write`); a granted permission may use
`*` for any segment, and `*` alone grants everything. Verbs: `read`, `write`, and `manage` for
administration (IAM identities, roles and bindings), which only a grant naming it or `*` covers.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import jwt

from . import tls
from .errors import InvalidArgument, PermissionDenied, Unauthenticated, Unavailable

log = logging.getLogger("photoncloud.auth")

AUDIENCE = "photoncloud"
ALGORITHMS = ["RS256"]
SYSTEM, ORG, PROJECT = "system", "org", "project"
# Who an operation is for; every route and RPC declares one. PUBLIC: anyone, no token. TENANT: any
# token whose grants cover the operation's permission, the resource's scope checked by the service.
# OPERATOR: a system-scoped token only, whatever roles an org- or project-scoped token holds (a
# project's own admin is still a tenant).
PUBLIC, TENANT, OPERATOR = "public", "tenant", "operator"
AUDIENCES = (PUBLIC, TENANT, OPERATOR)
REVOKED_KEPT_AFTER_EXPIRY = 60  # seconds; longer than any verifier's leeway


@dataclass(frozen=True)
class Scope:
    """What a token may act on: everything (system), one org, or one project of an org."""

    kind: str
    org_id: str = ""
    project_id: str = ""

    def covers(self, org_id: str = "", project_id: str = "") -> bool:
        """Whether a resource of org_id / project_id lies inside this scope."""
        if self.kind == SYSTEM:
            return True
        if self.kind == ORG:
            return bool(org_id) and org_id == self.org_id
        return bool(project_id) and project_id == self.project_id and org_id in ("", self.org_id)

    def as_dict(self) -> dict[str, str]:
        """The scope as a JWT claim."""
        return {"type": self.kind, "org_id": self.org_id, "project_id": self.project_id}


def permits(granted: Iterable[str], action: str) -> bool:
    """Whether any granted permission (with `*` wildcards) covers action."""
    wanted = action.split(":")
    for grant in granted:
        if grant == "*":
            return True
        parts = grant.split(":")
        if len(parts) == len(wanted) and all(p in ("*", w) for p, w in zip(parts, wanted)):
            return True
    return False


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: who, in which scope, with which roles and permissions."""

    subject: str  # "user:<id>" or "serviceaccount:<id>"
    name: str
    scope: Scope
    roles: tuple[str, ...]
    permissions: tuple[str, ...]
    token_id: str
    expires_at: int
    token: str = field(repr=False)  # the bearer token itself, forwarded on calls to other services
    # Where the verifier that admitted the token learns of revocations, so that a stream opened
    # with it can end when it is revoked (None: the verifier checks none).
    revocations: RevocationSource | None = field(default=None, repr=False, compare=False)

    def can(self, action: str) -> bool:
        """Whether the principal holds a permission covering action."""
        return permits(self.permissions, action)

    def require_operator(self, action: str = "") -> None:
        """PERMISSION_DENIED (OPERATOR_ONLY) unless the token is system-scoped, i.e. the operator's."""
        if self.scope.kind != SYSTEM:
            raise PermissionDenied(
                f"{action or 'this operation'} is the operator's: it takes a system-scoped token",
                {"reason": "OPERATOR_ONLY", "action": action, "scope": self.scope.as_dict()},
            )

    def require(self, action: str, org_id: str = "", project_id: str = "") -> None:
        """PERMISSION_DENIED unless the principal may do action on a resource of org_id/project_id."""
        if not self.can(action):
            raise PermissionDenied(
                f"{self.subject} may not {action}", {"reason": "MISSING_PERMISSION", "action": action}
            )
        if (org_id or project_id) and not self.scope.covers(org_id, project_id):
            raise PermissionDenied(
                "the resource lies outside the token's scope",
                {"reason": "OUT_OF_SCOPE", "action": action, "scope": self.scope.as_dict()},
            )


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current() -> Principal | None:
    """The principal of the request being served (None on public routes)."""
    return _current.get()


def caller() -> Principal:
    """The principal of the request being served; UNAUTHENTICATED when there is none."""
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("a bearer token is required")
    return principal


def listing_scope(org_id: str, project_id: str, principal: Principal | None = None) -> tuple[str, str]:
    """The org and project a listing is limited to: what was asked, narrowed to the token's scope
    (principal's, or the current one's; "" is any); asking for what lies outside it is
    PERMISSION_DENIED."""
    principal = principal or current()
    if principal is None or principal.scope.kind == SYSTEM:
        return org_id, project_id
    scope = principal.scope
    if (org_id and org_id != scope.org_id) or (scope.kind == PROJECT and project_id
                                               and project_id != scope.project_id):
        raise PermissionDenied("the listing lies outside the token's scope",
                               {"reason": "OUT_OF_SCOPE", "scope": scope.as_dict()})
    return scope.org_id, scope.project_id if scope.kind == PROJECT else project_id


def bind(principal: Principal | None) -> contextvars.Token[Principal | None]:
    """Make principal the current one; returns the token to reset it with."""
    return _current.set(principal)


def reset(token: contextvars.Token[Principal | None]) -> None:
    """Restore the principal that was current before bind()."""
    _current.reset(token)


def outgoing_headers() -> dict[str, str]:
    """Headers that forward the caller's token on a call to another service."""
    principal = _current.get()
    return {"Authorization": f"Bearer {principal.token}"} if principal else {}


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` value; UNAUTHENTICATED when absent."""
    if not authorization:
        raise Unauthenticated("a bearer token is required (Authorization: Bearer <token>)")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be `Bearer <token>`")
    return token.strip()


async def admit(verifier: Verifier | None, authorization: str | None, who: str,
                permission: str | None) -> Principal | None:
    """The principal a call runs as, after the checks its operation declares (None: public/no auth).

    The one gate both transports pass calls through: a missing or bad token is UNAUTHENTICATED; a
    tenant's token on an operator's operation, or a token without the operation's permission,
    PERMISSION_DENIED. An operation that declares no audience is taken as the operator's: a route
    someone forgot to declare fails closed.
    """
    if verifier is None or who == PUBLIC:
        return None
    principal = await verifier.verify(bearer_token(authorization))
    if who != TENANT:
        principal.require_operator(permission or "")
    if permission:
        principal.require(permission)
    return principal


class KeySource(Protocol):
    """Where a verifier finds the public key for a key id."""

    async def key(self, kid: str) -> Any:
        """The verification key for kid; UNAUTHENTICATED when no such key is published."""


class RevocationSource(Protocol):
    """Where a verifier learns which token IDs were revoked."""

    async def is_revoked(self, token_id: str) -> bool:
        """Whether the token with this ID was revoked (as far as this source knows now)."""


class JwksKeys:
    """IAM's JWKS, fetched over HTTP(S), cached, and fetched again when an unknown key id appears.
    An https URL is verified against clients' CA (the process's TLS client settings by default)."""

    def __init__(self, jwks_url: str, min_refresh_seconds: float = 1.0, clients: tls.ClientTls | None = None):
        self.jwks_url = jwks_url
        self.clients = clients
        self.min_refresh_seconds = min_refresh_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Any:
        """The key for kid, refreshing the cache (at most every min_refresh_seconds) on a miss."""
        if kid not in self._keys:
            async with self._lock:
                if kid not in self._keys and time.monotonic() - self._fetched_at >= self.min_refresh_seconds:
                    await self._fetch()
        if kid not in self._keys:
            raise Unauthenticated("the token is signed with an unknown key", {"reason": "UNKNOWN_KEY"})
        return self._keys[kid]

    async def _fetch(self) -> None:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                async with session.get(self.jwks_url, ssl=(self.clients or tls.clients()).http_ssl(self.jwks_url)) \
                        as response:
                    response.raise_for_status()
                    document = await response.json()
            keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(document).keys if k.key_id}
        except (TimeoutError, aiohttp.ClientError, ValueError, jwt.PyJWTError, LookupError, TypeError,
                AttributeError) as exc:  # unreachable, or not a usable key set
            raise Unavailable(f"cannot fetch the signing keys from IAM: {exc}", {"jwks_url": self.jwks_url}) from None
        self._keys = keys
        self._fetched_at = time.monotonic()


class PolledRevocations:
    """IAM's revocation list, polled every interval: a revoked token is refused within that delay."""

    def __init__(self, revocations_url: str, interval_seconds: float = 5.0, clients: tls.ClientTls | None = None):
        self.url = revocations_url
        self.clients = clients  # whose CA an https URL is verified against (None: the process's)
        self.interval = interval_seconds
        self._revoked: dict[str, int] = {}  # token id -> its expiry, to forget it once it expired
        self._cursor = 0
        self._polled_at = float("-inf")
        self._lock = asyncio.Lock()

    async def is_revoked(self, token_id: str) -> bool:
        """Whether token_id is on the list, polling first when the list is older than interval."""
        if time.monotonic() - self._polled_at >= self.interval:
            async with self._lock:
                if time.monotonic() - self._polled_at >= self.interval:
                    await self._poll()
        return token_id in self._revoked

    async def _poll(self) -> None:
        self._polled_at = time.monotonic()  # a failed poll too: IAM is asked every interval, not every call
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                async with session.get(self.url, params={"since": self._cursor},
                                       ssl=(self.clients or tls.clients()).http_ssl(self.url)) as response:
                    response.raise_for_status()
                    data = (await response.json())["data"]
            fresh = {item["token_id"]: int(item["expires_at"]) for item in data["items"]}
            cursor = data["cursor"]
        except (TimeoutError, aiohttp.ClientError, ValueError, LookupError, TypeError) as exc:
            # Failing closed would let an IAM outage stop every service; the staleness is bounded
            # by how long IAM is down, and logged.
            log.warning("cannot poll revoked tokens from IAM: %s", exc)
            return
        # Kept a while past expiry: verifiers accept a token a few seconds (their leeway) after it.
        horizon = int(time.time()) - REVOKED_KEPT_AFTER_EXPIRY
        self._revoked = {jti: exp for jti, exp in {**self._revoked, **fresh}.items() if exp >= horizon}
        self._cursor = cursor


class Verifier:
    """Verifies bearer tokens locally: signature, issuer, audience, expiry, then revocation.

    A token verified once is remembered (the last `remembered` of them) with the key that verified
    it, so that the next request with it skips decoding and the signature check, which were most of
    a request's cost: its expiry, its key (still the one its key source gives for its key id) and
    its revocation are checked again every time."""

    def __init__(self, keys: KeySource, issuer: str, revocations: RevocationSource | None = None,
                 audience: str = AUDIENCE, leeway_seconds: float = 5.0, remembered: int = 1024):
        self.keys = keys
        self.issuer = issuer
        self.revocations = revocations
        self.audience = audience
        self.leeway = leeway_seconds
        self.remembered = remembered
        self._verified: collections.OrderedDict[str, tuple[str, Any, Principal]] = collections.OrderedDict()

    async def verify(self, token: str) -> Principal:
        """The principal token names; UNAUTHENTICATED if it is not a valid, live token."""
        known = self._verified.get(token)
        if known is not None:
            kid, key, principal = known
            if time.time() >= principal.expires_at + self.leeway:
                del self._verified[token]
                raise Unauthenticated("the token has expired", {"reason": "EXPIRED"})
            if await self.keys.key(kid) is key:  # a key replaced under its id: verify again
                self._verified.move_to_end(token)
                await self._check_revoked(principal.token_id)
                return principal
            self._verified.pop(token, None)
        kid, key, principal = await self._verify(token)
        self._verified[token] = (kid, key, principal)
        if len(self._verified) > self.remembered:
            self._verified.popitem(last=False)
        return principal

    async def _check_revoked(self, token_id: str) -> None:
        if self.revocations is not None and await self.revocations.is_revoked(token_id):
            raise Unauthenticated("the token has been revoked", {"reason": "REVOKED"})

    async def _verify(self, token: str) -> tuple[str, Any, Principal]:
        """The token's key id, the key that verified it, and its principal."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token is not a JWT", {"reason": "MALFORMED"}) from None
        if header.get("alg") not in ALGORITHMS or not isinstance(header.get("kid"), str):
            raise Unauthenticated("the token's algorithm or key id is not accepted", {"reason": "MALFORMED"})
        key = await self.keys.key(header["kid"])
        try:
            claims = jwt.decode(
                token, key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                leeway=self.leeway, options={"require": ["exp", "iat", "sub", "jti", "scope"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired", {"reason": "EXPIRED"}) from None
        except jwt.InvalidIssuerError:  # both values, so that a misconfigured --iam-issuer shows itself
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            raise Unauthenticated(f"the token is not valid: token issuer {issuer!r}, expected {self.issuer!r}",
                                  {"reason": "INVALID", "issuer": issuer, "expected_issuer": self.issuer}) from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the token is not valid: {exc}", {"reason": "INVALID"}) from None
        await self._check_revoked(claims["jti"])
        return header["kid"], key, principal_from_claims(claims, token, self.revocations)


def iam_verifier(iam_url: str, issuer: str, revocation_poll_seconds: float = 5.0,
                 clients: tls.ClientTls | None = None) -> Verifier:
    """The verifier of a service other than IAM: IAM's JWKS and revocation list, over HTTP (HTTPS
    verified against the platform's CA when iam_url is https)."""
    return Verifier(
        JwksKeys(f"{iam_url}/.well-known/jwks.json", clients=clients),
        issuer,
        PolledRevocations(f"{iam_url}/api/v1/auth/revocations", revocation_poll_seconds, clients=clients),
    )


def principal_from_claims(claims: dict[str, Any], token: str,
                          revocations: RevocationSource | None = None) -> Principal:
    """The principal a verified token's claims describe."""
    scope = claims["scope"]
    if not isinstance(scope, dict) or scope.get("type") not in (SYSTEM, ORG, PROJECT):
        raise Unauthenticated("the token's scope is not valid", {"reason": "INVALID"})
    grants = {name: claims.get(name, []) for name in ("roles", "permissions")}
    if not all(isinstance(v, list) and all(isinstance(g, str) for g in v) for v in grants.values()):
        # a string would be read character by character, and one `*` in it grant everything
        raise Unauthenticated("the token's roles or permissions are not lists of names", {"reason": "INVALID"})
    return Principal(
        subject=claims["sub"],
        name=str(claims.get("name", "")),
        scope=Scope(scope["type"], scope.get("org_id") or "", scope.get("project_id") or ""),
        roles=tuple(grants["roles"]),
        permissions=tuple(grants["permissions"]),
        token_id=claims["jti"],
        expires_at=int(claims["exp"]),
        token=token,
        revocations=revocations,
    )


def check_permission_name(permission: str) -> str:
    """permission if it is `service:resource:verb` (segments may be `*`); INVALID_ARGUMENT otherwise."""
    parts = permission.split(":")
    if permission != "*" and (len(parts) != 3 or not all(
            p and (p == "*" or p.replace("-", "").replace("_", "").isalnum()) for p in parts)):
        raise InvalidArgument(f"permission {permission!r} is not service:resource:verb", {"field": "permissions"})
    return permission
