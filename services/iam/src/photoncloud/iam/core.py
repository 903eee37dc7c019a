"""IAM's domain: identities (organizations, projects, users, service accounts), roles, bindings,
tokens, authorization decisions and the audit log, with every rule about them.

Every operation takes a `Caller` (who asks, from where) and decides here what that caller may
see and change; the adapters only convert. The rules, in short:

* Reads need `iam:<resource>:read` and show what the caller's token scope covers: a system token
  sees everything; an org token its org, the org's projects, service accounts and bindings; a
  project token its project and what is in it (and the org it belongs to). Users, who are global,
  are visible outside the system scope when they hold a binding the caller can see (and to
  themselves, `GET /api/v1/users/me`). Roles are definitions, visible to every reader.
* Changes need `iam:<resource>:manage` (only a grant of `*` or a custom role naming `manage`) on a
  scope covering the change: orgs are created and deleted, users, roles, signing keys and system
  bindings managed with a system token; projects, service accounts and bindings inside an org
  with a token scoped to that org (or the system). A binding may not grant more than its creator
  holds. The last enabled system administrator cannot be removed.
* No path up: a caller manages a principal (changes, deletes or rotates the secret of a service
  account; creates or deletes a binding of a user or service account) only when all the
  principal's grants lie within the caller's reach: every binding on a scope the caller's token
  covers, every permission one the caller holds. Otherwise PERMISSION_DENIED with the reason
  PRINCIPAL_OUTRANKS_CALLER: an org admin cannot take over, or switch off, an account that acts
  for the system or for another tenant.
* Self-service needs only a valid token: one's own user record, one's own password (with the
  current one), logging out.
* The audit log needs `iam:audit:read` with a system token (system viewers are the auditors).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import jwt

from photoncloud.common import auth, paging, request_id
from photoncloud.common.times import parse_time, rfc3339
from photoncloud.common.auth import (
    AUDIENCE,
    ORG,
    PROJECT,
    REVOKED_KEPT_AFTER_EXPIRY,
    SYSTEM,
    Principal,
    Scope,
    Verifier,
    check_permission_name,
    permits,
)
from photoncloud.common.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
)
from photoncloud.common.replication import LocalLog, Log

from .commands import Absent, Change, Cmp, Commit, Delete, Expect, Insert, Update, Where
from .credentials import (
    ALGORITHM,
    LoginThrottle,
    SecretHasher,
    check_password,
    generate_key,
    load_private_key,
    new_id,
    new_refresh_token,
    new_secret,
    public_key,
    sign,
    token_digest,
)
from .records import (
    ACTIVE,
    EXPIRED,
    AccessToken,
    AuditEvent,
    Binding,
    Meta,
    Organization,
    Project,
    RefreshToken,
    Revocation,
    Role,
    ServiceAccount,
    SigningKey,
    TokenFamily,
    User,
)
from .machine import IamStateMachine
from .store import Records, SqliteIamStore

log = logging.getLogger("photoncloud.iam")
audit_log = logging.getLogger("photoncloud.iam.audit")

DEFAULT_ISSUER = "http://127.0.0.1:8083"

# Permissions of IAM's own operations.
ORGS_READ, ORGS_MANAGE = "iam:orgs:read", "iam:orgs:manage"
PROJECTS_READ, PROJECTS_MANAGE = "iam:projects:read", "iam:projects:manage"
USERS_READ, USERS_MANAGE = "iam:users:read", "iam:users:manage"
SERVICE_ACCOUNTS_READ, SERVICE_ACCOUNTS_MANAGE = "iam:serviceaccounts:read", "iam:serviceaccounts:manage"
ROLES_READ, ROLES_MANAGE = "iam:roles:read", "iam:roles:manage"
BINDINGS_READ, BINDINGS_MANAGE = "iam:bindings:read", "iam:bindings:manage"
KEYS_READ, KEYS_MANAGE = "iam:keys:read", "iam:keys:manage"
AUTHORIZE_READ = "iam:authorize:read"
AUDIT_READ = "iam:audit:read"

# Why a caller may not manage a principal: the principal holds grants beyond the caller's.
PRINCIPAL_OUTRANKS_CALLER = "PRINCIPAL_OUTRANKS_CALLER"

ADMIN, MEMBER, VIEWER = "admin", "member", "viewer"
BUILTIN_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    ADMIN: ("Every permission on the resources of its scope, administration included", ("*",)),
    MEMBER: ("Read and change the resources of its scope", ("*:*:read", "*:*:write")),
    VIEWER: ("Read the resources of its scope", ("*:*:read",)),
}

PASSWORD, CLIENT_CREDENTIALS, REFRESH_TOKEN = "password", "client_credentials", "refresh_token"
GRANT_TYPES = (PASSWORD, CLIENT_CREDENTIALS, REFRESH_TOKEN)
SUCCESS, FAILURE = "SUCCESS", "FAILURE"

MAX_BATCH = 100
MAX_TOKEN_CHARS = 16 * 1024
MAX_CREDENTIAL_CHARS = {"username": 256, "client_id": 256, "password": 1024, "client_secret": 1024,
                        "refresh_token": 1024, "org_id": 256, "project_id": 256}
# How long a retired key stays published beyond the lifetime of the last token it signed.
KEY_RETIREMENT_MARGIN = 60
PURGE_INTERVAL = 60.0

R = TypeVar("R")


# --- values the operations take and return -------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who makes a call (None on public operations) and from which network address."""

    principal: Principal | None = None
    address: str = ""

    @property
    def subject(self) -> str:
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

    def __post_init__(self) -> None:
        for name in ("access_token_ttl", "refresh_token_ttl", "session_ttl", "login_failure_limit",
                     "login_failure_address_limit"):
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


@dataclass(frozen=True)
class IssuedToken:
    """A token response."""

    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str = field(repr=False)  # "" for client_credentials
    refresh_expires_in: int
    scope: Scope
    roles: tuple[str, ...]


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


# --- small rules ---------------------------------------------------------------------------------


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_PRINCIPAL = re.compile(r"(user|serviceaccount):[A-Za-z0-9_-]{1,128}")


def _check_name(value: str, field_name: str, pattern: Any = _NAME) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidArgument(
            f"{field_name} {value!r} is not valid: start with a letter or digit, then letters, digits, "
            f"'.', '_' or '-' ({'128' if pattern is _USER_NAME else '63'} at most)",
            {"field": field_name},
        )
    return value


def _check_text(value: str, field_name: str, limit: int) -> str:
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise InvalidArgument(f"{field_name} must be at most {limit} printable characters", {"field": field_name})
    return value


def _check_labels(fields: Mapping[str, Any]) -> None:
    """The rules for the name, display name and description of orgs, projects and service accounts
    (those of fields: a create gives all three, an update the ones it changes)."""
    if "name" in fields:
        _check_name(fields["name"], "name")
    _check_text(fields.get("display_name", ""), "display_name", 256)
    _check_text(fields.get("description", ""), "description", 1024)


def _check_email(value: str) -> str:
    if value and (len(value) > 254 or not _EMAIL.fullmatch(value)):
        raise InvalidArgument(f"email {value!r} is not a valid address", {"field": "email"})
    return value


def check_principal(value: str, field_name: str = "principal") -> tuple[str, str]:
    """(kind, id) of `user:<id>` or `serviceaccount:<id>`; INVALID_ARGUMENT otherwise."""
    if not isinstance(value, str) or not _PRINCIPAL.fullmatch(value):
        raise InvalidArgument(f"{field_name} must be user:<id> or serviceaccount:<id>", {"field": field_name})
    kind, _, ident = value.partition(":")
    return kind, ident


def _changes(given: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise InvalidArgument(f"field {unknown[0]!r} cannot be changed", {"field": unknown[0]})
    return dict(given)


def binding_applies(binding: Binding | TokenFamily, scope: Scope) -> bool:
    """Whether a binding's (or session's) scope contains scope: system contains everything, an org
    its projects, a project only itself."""
    if binding.scope_type == SYSTEM:
        return True
    if binding.scope_type == ORG:
        return scope.kind in (ORG, PROJECT) and scope.org_id == binding.org_id
    return scope.kind == PROJECT and scope.project_id == binding.project_id


_SPECIFICITY = {PROJECT: 0, ORG: 1, SYSTEM: 2}


def _newest_first(key: SigningKey) -> tuple[bool, float]:
    """The active key first, then by retirement and creation, newest first."""
    return bool(key.retired_at), -max(key.retired_at, key.created_at)


def _describe(scope: Scope) -> str:
    if scope.kind == SYSTEM:
        return "the system"
    if scope.kind == ORG:
        return f"org {scope.org_id}"
    return f"project {scope.project_id}"


def _authenticated(caller: Caller) -> Principal:
    if caller.principal is None:
        raise Unauthenticated("a bearer token is required")
    return caller.principal


def _require(caller: Caller, action: str, org_id: str = "", project_id: str = "") -> Principal:
    """The caller's principal, if it holds action on the resource of org_id/project_id; a resource
    of neither (the system, a user, a role) needs a system-scoped token."""
    principal = _authenticated(caller)
    if not org_id and not project_id:
        return _require_system(caller, action)
    principal.require(action, org_id, project_id)
    return principal


def _require_system(caller: Caller, action: str) -> Principal:
    principal = _authenticated(caller)
    principal.require(action)
    if principal.scope.kind != SYSTEM:
        raise PermissionDenied(
            f"{action} needs a system-scoped token",
            {"reason": "SYSTEM_SCOPE_REQUIRED", "action": action, "scope": principal.scope.as_dict()},
        )
    return principal


def _visible(principal: Principal, org_field: str = "org_id", project_field: str = "project_id") -> list:
    """The conditions that keep a listing inside principal's scope."""
    scope = principal.scope
    if scope.kind == SYSTEM:
        return []
    if scope.kind == ORG:
        return [(org_field, scope.org_id)]
    return [(project_field, scope.project_id)]


# --- what leaves IAM -----------------------------------------------------------------------------


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


# --- audit ---------------------------------------------------------------------------------------


class _Event:
    """An audit event being built while an operation runs."""

    def __init__(self, caller: Caller, action: str, target: str, details: dict[str, Any]):
        self.caller = caller
        self.principal = caller.subject
        self.action = action
        self.target = target
        self.details = details
        self.recorded = False

    def record(self, outcome: str, now: float) -> AuditEvent:
        return AuditEvent(time=now, principal=self.principal, action=self.action, target=self.target,
                          outcome=outcome, request_id=request_id.current(),
                          client_address=self.caller.address, details=dict(self.details))


# --- the verifier's sources ----------------------------------------------------------------------


class LocalKeys:
    """The KeySource of IAM's own verifier: the published keys, from memory."""

    def __init__(self, core: IamCore):
        self.core = core

    async def key(self, kid: str) -> Any:
        return self.core.verification_key(kid)


class LocalRevocations:
    """The RevocationSource of IAM's own verifier: the revocation list in the store."""

    def __init__(self, core: IamCore):
        self.core = core

    async def is_revoked(self, token_id: str) -> bool:
        return await self.core.is_revoked(token_id)


# --- the core ------------------------------------------------------------------------------------


class IamCore:
    """IAM's operations over a store."""

    def __init__(self, store: SqliteIamStore, settings: Settings | None = None, hasher: SecretHasher | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 *, log: Log | None = None):
        # Writes go through the log to the state machine over store (one member alone by default:
        # a replicated log is handed in, built around `IamStateMachine(store)`); reads go to the store.
        self.state = store
        self.log: Log = log if log is not None else LocalLog(IamStateMachine(store))
        self.store = Records(self.log, store)
        self.settings = settings or Settings()
        self.hasher = hasher or SecretHasher()
        self.clock = clock
        # Failures count per user at an address, and per address: never per user alone, so that nobody can lock a
        # user out by failing as them, and the right password from another address always gets in.
        self.throttle = LoginThrottle(self.settings.login_failure_limit, self.settings.login_failure_window,
                                      monotonic, limits={"address": self.settings.login_failure_address_limit})
        self.verifier = Verifier(LocalKeys(self), self.settings.issuer, LocalRevocations(self))
        # Changes run one at a time: every check-then-write below holds this lock.
        self._lock = asyncio.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._private: dict[str, Any] = {}
        self._public: dict[str, Any] = {}
        self._purged_at = float("-inf")

    # --- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the signing keys (making the first one), and make the built-in roles what they are."""
        now = self.clock()
        async with self._lock:
            for name, (description, permissions) in BUILTIN_ROLES.items():
                role = await self.store.get(Role, name)
                wanted = Role(name, description, permissions, True, role.created_at if role else now, now)
                if role is None:
                    await self._propose(Insert(wanted))
                elif (role.description, role.permissions, role.builtin) != (description, permissions, True):
                    await self._propose(Update(wanted))
            keys = await self.store.find(SigningKey)
            if not any(k.status(now) == ACTIVE for k in keys):
                material = await generate_key()  # here, not in the state machine: it is random
                key = SigningKey(material.kid, material.private_pem, material.public_jwk, now, 0, 0)
                await self._propose(Insert(key))
                keys.append(key)
            self._load_keys(keys)

    async def bootstrap(self, admin_password: str | None) -> Bootstrapped | None:
        """On the first start only: org `default`, project `default` in it, and user `admin` bound
        to `admin` on the system, with admin_password or a generated one. None on later starts."""
        if await self.store.get(Meta, "bootstrapped") is not None:
            return None
        generated = not admin_password
        password = admin_password or secrets.token_urlsafe(24)
        check_password(password, "admin", "PHOTONCLOUD_ADMIN_PASSWORD")
        hashed = await self.hasher.hash(password)
        now = self.clock()
        org = Organization(new_id("org"), "default", "Default", "Created on the first start", now, now)
        project = Project(new_id("proj"), org.id, "default", "Default", "Created on the first start", now, now)
        user = User(new_id("user"), "admin", "", "Administrator", True, hashed, now, now, now)
        binding = Binding(new_id("bind"), user.subject, ADMIN, SYSTEM, "", "", now)
        event = _Event(Caller(), "iam.bootstrap", f"users/{user.id}",
                       {"org_id": org.id, "project_id": project.id, "generated_password": generated})
        async with self._lock:
            await self._commit(event, Insert(org), Insert(project), Insert(user), Insert(binding),
                               Insert(Meta("bootstrapped", rfc3339(now))),
                               expect=[Expect(Meta, "bootstrapped", None)])  # only ever once
        return Bootstrapped(org.id, project.id, user.id, password, generated)

    async def close(self) -> None:
        """Wait for the change in flight, then stop the log (the store is closed by whoever opened it)."""
        async with self._lock:
            await self.log.close()

    async def health(self) -> dict[str, Any]:
        """What /health reports: the store answers, and which key signs."""
        users = await self.store.count(User)
        return {"store": {"users": users}, "signing_key": self._active_kid()}

    # --- plumbing --------------------------------------------------------------------------------

    @asynccontextmanager
    async def _audited(self, caller: Caller, action: str, target: str = "",
                       **details: Any) -> AsyncIterator[_Event]:
        """Run an operation as an audit event: recorded with its change (see _commit), or as a
        FAILURE with the error code when it raises."""
        event = _Event(caller, action, target, details)
        try:
            yield event
        except ServiceError as exc:
            if not event.recorded:
                # A create names its new ID only once it is made: a failed one keeps the first target.
                event.target = target
                event.details.update(error=exc.code.name)
                if exc.details and "reason" in exc.details:
                    event.details.setdefault("reason", exc.details["reason"])
                await self._record(event, FAILURE)
            raise
        except Exception:
            if not event.recorded:
                event.details.update(error="INTERNAL")
                await self._record(event, FAILURE)
            raise
        if not event.recorded:
            await self._record(event, SUCCESS)

    async def _record(self, event: _Event, outcome: str) -> None:
        record = event.record(outcome, self.clock())
        try:
            await self.log.propose(Commit(audit=record))
        except Exception:  # noqa: BLE001 - the failure being reported matters more
            log.exception("cannot record audit event %s", event.action)
            return
        event.recorded = True
        self._log(record)

    async def _propose(self, *changes: Change, expect: Sequence[Expect] = ()) -> list[int]:
        """Apply changes through the log, without an audit event; the rows each affected."""
        return await self.log.propose(Commit(tuple(changes), None, tuple(expect)))

    async def _commit(self, event: _Event, *changes: Change, expect: Sequence[Expect] = ()) -> list[int]:
        """Apply changes and their SUCCESS audit event at once, through the log; ALREADY_EXISTS on a
        name conflict, ABORTED when a record in expect changed since it was read."""
        record = event.record(SUCCESS, self.clock())
        counts = await self.log.propose(Commit(tuple(changes), record, tuple(expect)))
        event.recorded = True
        self._log(record)
        return counts

    @staticmethod
    def _log(record: AuditEvent) -> None:
        audit_log.info("%s %s %s", record.action, record.target, record.outcome,
                       extra={"fields": {"audit": {"principal": record.principal, "action": record.action,
                                                   "target": record.target, "outcome": record.outcome,
                                                   "client_address": record.client_address,
                                                   "details": record.details}}})

    async def _page(self, kind: type, where: Where, page_size: int, page_token: str,
                    descending: bool = False) -> Page:
        size = paging.page_size(page_size)
        where = list(where)
        if page_token:
            position = paging.decode_token(page_token)
            after = position.get("after")
            if position.get("kind") != kind.__name__ or not isinstance(after, (str, int)):
                raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
            where.append((kind.KEY, Cmp("<" if descending else ">", after)))
        rows = await self.store.find(kind, where, limit=size + 1, descending=descending)
        if len(rows) <= size:
            return Page(rows)
        rows = rows[:size]
        return Page(rows, paging.encode_token({"kind": kind.__name__, "after": getattr(rows[-1], kind.KEY)}))

    async def _get(self, kind: type[R], key: str, noun: str) -> R:
        record = await self.store.get(kind, key) if key else None
        if record is None:
            raise NotFound(f"{noun} {key!r} not found", {"resource": noun, "id": key})
        return record

    # --- organizations ---------------------------------------------------------------------------

    async def create_org(self, caller: Caller, name: str, display_name: str = "",
                         description: str = "") -> Organization:
        """A new organization (system scope)."""
        async with self._audited(caller, "iam.orgs.create", f"orgs/{name}") as event:
            _require_system(caller, ORGS_MANAGE)
            _check_labels({"name": name, "display_name": display_name, "description": description})
            now = self.clock()
            org = Organization(new_id("org"), name, display_name, description, now, now)
            event.target = f"orgs/{org.id}"
            async with self._lock:
                await self._commit(event, Insert(org))
            return org

    async def get_org(self, caller: Caller, org_id: str) -> Organization:
        """An organization the caller's scope lies in or covers."""
        principal = _authenticated(caller)
        principal.require(ORGS_READ)
        org = await self._get(Organization, org_id, "organization")
        if principal.scope.org_id != org.id:  # the org a token's scope lies in is visible to it
            _require(caller, ORGS_READ, org.id)
        return org

    async def list_orgs(self, caller: Caller, name: str = "", page_size: int = 0, page_token: str = "") -> Page:
        """The organizations the caller can see."""
        principal = _authenticated(caller)
        principal.require(ORGS_READ)
        where: list = [] if principal.scope.kind == SYSTEM else [("id", principal.scope.org_id)]
        if name:
            where.append(("name", name))
        return await self._page(Organization, where, page_size, page_token)

    async def update_org(self, caller: Caller, org_id: str, changes: Mapping[str, Any]) -> Organization:
        """Change an organization's name, display name or description."""
        async with self._audited(caller, "iam.orgs.update", f"orgs/{org_id}") as event:
            changes = _changes(changes, ("name", "display_name", "description"))
            event.details["fields"] = sorted(changes)
            async with self._lock:
                org = await self._get(Organization, org_id, "organization")
                _require(caller, ORGS_MANAGE, org.id)
                _check_labels(changes)
                read, org = org, replace(org, **changes, updated_at=self.clock())
                await self._commit(event, Update(org), expect=[Expect(Organization, read.id, read)])
            return org

    async def delete_org(self, caller: Caller, org_id: str) -> Deleted:
        """Delete an empty organization (no projects, no service accounts) and its bindings."""
        async with self._audited(caller, "iam.orgs.delete", f"orgs/{org_id}") as event:
            _require_system(caller, ORGS_MANAGE)
            async with self._lock:
                org = await self._get(Organization, org_id, "organization")
                projects = await self.store.count(Project, [("org_id", org.id)])
                accounts = await self.store.count(ServiceAccount, [("org_id", org.id)])
                if projects or accounts:
                    raise FailedPrecondition(
                        f"organization {org.name!r} still has {projects} project(s) and {accounts} "
                        "service account(s); delete them first",
                        {"reason": "ORG_NOT_EMPTY", "projects": projects, "service_accounts": accounts},
                    )
                revoking, _ = await self._revoke_families(
                    await self.store.find(TokenFamily, [("org_id", org.id), ("revoked_at", 0)]))
                counts = await self._commit(event, Delete(Binding, [("org_id", org.id)]), *revoking,
                                            Delete(Organization, [("id", org.id)]),
                                            expect=[Absent(Project, [("org_id", org.id)]),
                                                    Absent(ServiceAccount, [("org_id", org.id)])])
            return Deleted(org.id, counts[0])

    # --- projects --------------------------------------------------------------------------------

    async def create_project(self, caller: Caller, org_id: str, name: str, display_name: str = "",
                             description: str = "") -> Project:
        """A new project in an organization (a token scoped to the org or the system)."""
        async with self._audited(caller, "iam.projects.create", f"projects/{name}", org_id=org_id) as event:
            if not org_id:
                raise InvalidArgument("org_id is required", {"field": "org_id"})
            _require(caller, PROJECTS_MANAGE, org_id)
            _check_labels({"name": name, "display_name": display_name, "description": description})
            now = self.clock()
            project = Project(new_id("proj"), org_id, name, display_name, description, now, now)
            event.target = f"projects/{project.id}"
            async with self._lock:
                await self._get(Organization, org_id, "organization")
                await self._commit(event, Insert(project))
            return project

    async def get_project(self, caller: Caller, project_id: str) -> Project:
        """A project inside the caller's scope."""
        _authenticated(caller).require(PROJECTS_READ)
        project = await self._get(Project, project_id, "project")
        _require(caller, PROJECTS_READ, project.org_id, project.id)
        return project

    async def list_projects(self, caller: Caller, org_id: str = "", name: str = "", page_size: int = 0,
                            page_token: str = "") -> Page:
        """The projects inside the caller's scope, optionally of one org or with one name."""
        principal = _authenticated(caller)
        principal.require(PROJECTS_READ)
        where = _visible(principal, project_field="id")
        where += [(f, v) for f, v in (("org_id", org_id), ("name", name)) if v]
        return await self._page(Project, where, page_size, page_token)

    async def update_project(self, caller: Caller, project_id: str, changes: Mapping[str, Any]) -> Project:
        """Change a project's name, display name or description."""
        async with self._audited(caller, "iam.projects.update", f"projects/{project_id}") as event:
            changes = _changes(changes, ("name", "display_name", "description"))
            event.details["fields"] = sorted(changes)
            async with self._lock:
                project = await self._get(Project, project_id, "project")
                _require(caller, PROJECTS_MANAGE, project.org_id, project.id)
                _check_labels(changes)
                read, project = project, replace(project, **changes, updated_at=self.clock())
                await self._commit(event, Update(project), expect=[Expect(Project, read.id, read)])
            return project

    async def delete_project(self, caller: Caller, project_id: str) -> Deleted:
        """Delete a project without service accounts, with its bindings (a token scoped to its org)."""
        async with self._audited(caller, "iam.projects.delete", f"projects/{project_id}") as event:
            async with self._lock:
                project = await self._get(Project, project_id, "project")
                _require(caller, PROJECTS_MANAGE, project.org_id)
                accounts = await self.store.count(ServiceAccount, [("project_id", project.id)])
                if accounts:
                    raise FailedPrecondition(
                        f"project {project.name!r} still has {accounts} service account(s); delete them first",
                        {"reason": "PROJECT_NOT_EMPTY", "service_accounts": accounts},
                    )
                revoking, _ = await self._revoke_families(
                    await self.store.find(TokenFamily, [("project_id", project.id), ("revoked_at", 0)]))
                counts = await self._commit(event, Delete(Binding, [("project_id", project.id)]), *revoking,
                                            Delete(Project, [("id", project.id)]),
                                            expect=[Absent(ServiceAccount, [("project_id", project.id)])])
            return Deleted(project.id, counts[0])

    # --- users -----------------------------------------------------------------------------------

    async def create_user(self, caller: Caller, name: str, password: str, email: str = "",
                          display_name: str = "", enabled: bool = True) -> User:
        """A new user (system scope)."""
        async with self._audited(caller, "iam.users.create", f"users/{name}") as event:
            _require_system(caller, USERS_MANAGE)
            _check_name(name, "name", _USER_NAME)
            _check_email(email)
            _check_text(display_name, "display_name", 256)
            check_password(password, name)
            hashed = await self.hasher.hash(password)
            now = self.clock()
            user = User(new_id("user"), name, email, display_name, bool(enabled), hashed, now, now, now)
            event.target = f"users/{user.id}"
            async with self._lock:
                await self._commit(event, Insert(user))
            return user

    async def _visible_user_ids(self, principal: Principal) -> list[str]:
        bindings = await self.store.find(Binding, [*_visible(principal), ("principal", Cmp("prefix", "user:"))])
        ids = {b.principal.partition(":")[2] for b in bindings}
        if principal.subject.startswith("user:"):
            ids.add(principal.subject.partition(":")[2])
        return sorted(ids)

    async def get_user(self, caller: Caller, user_id: str) -> User:
        """A user: any with a system token, else oneself and the users bound inside the scope."""
        principal = _authenticated(caller)
        principal.require(USERS_READ)
        user = await self._get(User, user_id, "user")
        if principal.scope.kind != SYSTEM and user.id not in await self._visible_user_ids(principal):
            raise PermissionDenied("the user holds no role inside the token's scope",
                                   {"reason": "OUT_OF_SCOPE", "scope": principal.scope.as_dict()})
        return user

    async def current_user(self, caller: Caller) -> User:
        """The user the caller's token names."""
        principal = _authenticated(caller)
        kind, _, ident = principal.subject.partition(":")
        if kind != "user":
            raise NotFound(f"{principal.subject} is not a user", {"reason": "NOT_A_USER"})
        return await self._get(User, ident, "user")

    async def list_users(self, caller: Caller, name: str = "", email: str = "", enabled: bool | None = None,
                         page_size: int = 0, page_token: str = "") -> Page:
        """The users the caller can see (see get_user)."""
        principal = _authenticated(caller)
        principal.require(USERS_READ)
        where: list = []
        if principal.scope.kind != SYSTEM:
            where.append(("id", await self._visible_user_ids(principal)))
        where += [(f, v) for f, v in (("name", name), ("email", email)) if v]
        if enabled is not None:
            where.append(("enabled", bool(enabled)))
        return await self._page(User, where, page_size, page_token)

    async def update_user(self, caller: Caller, user_id: str, changes: Mapping[str, Any]) -> User:
        """Change a user's name, email, display name or enabled flag (disabling revokes their tokens)."""
        async with self._audited(caller, "iam.users.update", f"users/{user_id}") as event:
            _require_system(caller, USERS_MANAGE)
            changes = _changes(changes, ("name", "email", "display_name", "enabled"))
            event.details["fields"] = sorted(changes)
            if "name" in changes:
                _check_name(changes["name"], "name", _USER_NAME)
            _check_email(changes.get("email", ""))
            _check_text(changes.get("display_name", ""), "display_name", 256)
            async with self._lock:
                user = await self._get(User, user_id, "user")
                revoking: list[Change] = []
                if "enabled" in changes:
                    changes["enabled"] = bool(changes["enabled"])
                    if user.enabled and not changes["enabled"]:
                        await self._check_admins_remain(without_user=user.id)
                        revoking, _ = await self._revoke_principal(user.subject)
                read, user = user, replace(user, **changes, updated_at=self.clock())
                await self._commit(event, Update(user), *revoking, expect=[Expect(User, read.id, read)])
            return user

    async def delete_user(self, caller: Caller, user_id: str) -> Deleted:
        """Delete a user, their bindings and their sessions."""
        async with self._audited(caller, "iam.users.delete", f"users/{user_id}") as event:
            _require_system(caller, USERS_MANAGE)
            async with self._lock:
                user = await self._get(User, user_id, "user")
                await self._check_admins_remain(without_user=user.id)
                revoking, _ = await self._revoke_principal(user.subject)
                counts = await self._commit(event, Delete(Binding, [("principal", user.subject)]), *revoking,
                                            Delete(User, [("id", user.id)]), expect=[Expect(User, user.id, user)])
            return Deleted(user.id, counts[0])

    async def set_password(self, caller: Caller, user_id: str, password: str, current_password: str = "") -> User:
        """A user changes their own password (giving the current one); an administrator (system
        scope, iam:users:manage) sets anyone's. Either way the user's sessions are revoked."""
        async with self._audited(caller, "iam.users.set_password", f"users/{user_id}") as event:
            principal = _authenticated(caller)
            admin = principal.can(USERS_MANAGE) and principal.scope.kind == SYSTEM
            if not admin and principal.subject != f"user:{user_id}":
                raise PermissionDenied(f"{principal.subject} may only change its own password",
                                       {"reason": "MISSING_PERMISSION", "action": USERS_MANAGE})
            user = await self._get(User, user_id, "user")
            check_password(password, user.name)
            if not admin:
                if not current_password:
                    raise InvalidArgument("current_password is required to change one's own password",
                                          {"field": "current_password"})
                keys = (f"user:{user.name.casefold()}@{caller.address}", f"address:{caller.address}")
                self.throttle.begin(*keys)
                try:
                    matches, _ = await self.hasher.verify(user.password_hash, current_password)
                finally:
                    self.throttle.end(*keys)
                if not matches:
                    self.throttle.failure(*keys)
                    raise InvalidArgument("current_password is not the current password",
                                          {"field": "current_password", "reason": "WRONG_PASSWORD"})
            hashed = await self.hasher.hash(password)
            async with self._lock:
                user = await self._get(User, user_id, "user")
                now = self.clock()
                revoking, _ = await self._revoke_principal(user.subject)
                read, user = user, replace(user, password_hash=hashed, password_changed_at=now, updated_at=now)
                await self._commit(event, Update(user), *revoking, expect=[Expect(User, read.id, read)])
            return user

    async def _check_admins_remain(self, *, without_user: str = "", without_binding: str = "") -> None:
        """FAILED_PRECONDITION if removing a user or a binding would leave no enabled user holding
        `admin` on the system (only when what goes is one of them)."""
        admins = await self.store.find(Binding, [("role", ADMIN), ("scope_type", SYSTEM),
                                                 ("principal", Cmp("prefix", "user:"))])
        holders = {b.principal.partition(":")[2]: b.id for b in admins}
        affected = without_user in holders or without_binding in holders.values()
        if not affected:
            return
        for user_id, binding_id in holders.items():
            if user_id == without_user or binding_id == without_binding:
                continue
            user = await self.store.get(User, user_id)
            if user is not None and user.enabled:
                return
        raise FailedPrecondition("this would leave no enabled user holding admin on the system",
                                 {"reason": "LAST_ADMIN"})

    # --- who may manage whom ----------------------------------------------------------------------

    async def _require_within_reach(self, me: Principal, subject: str) -> None:
        """PERMISSION_DENIED (PRINCIPAL_OUTRANKS_CALLER) unless every grant of subject lies within
        me's reach: each of its bindings on a scope me's token covers, each of their permissions
        one me holds. Every change to a principal's credentials, record or bindings checks this
        (under the lock), so that managing a principal never yields more than one has."""
        bindings = await self.store.find(Binding, [("principal", subject)])
        # Whoever holds the secret of an account with a system (or another tenant's) binding acts
        # there: a tenant may neither take such an account over nor switch it off.
        if any(not me.scope.covers(b.org_id, b.project_id) for b in bindings):
            raise PermissionDenied(
                f"{subject} holds a role outside {_describe(me.scope)}; only a token covering all its roles "
                "may manage it",
                {"reason": PRINCIPAL_OUTRANKS_CALLER, "principal": subject, "scope": me.scope.as_dict()},
            )
        # Inside the scope too: rotating the secret of an account with more permissions would hand
        # them over, as would a binding granting them (ROLE_EXCEEDS_CALLER).
        beyond = [p for p in await self._permissions({b.role for b in bindings}) if not permits(me.permissions, p)]
        if beyond:
            raise PermissionDenied(
                f"{subject} holds permissions the caller does not",
                {"reason": PRINCIPAL_OUTRANKS_CALLER, "principal": subject, "permissions": beyond},
            )

    # --- service accounts ------------------------------------------------------------------------

    async def create_service_account(self, caller: Caller, org_id: str, name: str, project_id: str = "",
                                     display_name: str = "", description: str = "") -> Credentials:
        """A new service account of an org (or of a project in it), with its secret (shown once)."""
        async with self._audited(caller, "iam.serviceaccounts.create", f"serviceaccounts/{name}",
                                 org_id=org_id, project_id=project_id) as event:
            if not org_id and not project_id:
                raise InvalidArgument("org_id is required", {"field": "org_id"})
            if project_id:
                project = await self._get(Project, project_id, "project")
                if org_id and org_id != project.org_id:
                    raise InvalidArgument(f"project {project_id!r} is not in org {org_id!r}", {"field": "org_id"})
                org_id = project.org_id
            _require(caller, SERVICE_ACCOUNTS_MANAGE, org_id, project_id)
            _check_labels({"name": name, "display_name": display_name, "description": description})
            secret = new_secret()
            hashed = await self.hasher.hash(secret)
            now = self.clock()
            account = ServiceAccount(new_id("sa"), org_id, project_id, name, display_name, description, True,
                                     hashed, now, now, now)
            event.target = f"serviceaccounts/{account.id}"
            async with self._lock:
                await self._get(Organization, org_id, "organization")
                if project_id:
                    await self._get(Project, project_id, "project")
                await self._commit(event, Insert(account))
            return Credentials(account, secret)

    async def get_service_account(self, caller: Caller, account_id: str) -> ServiceAccount:
        """A service account inside the caller's scope."""
        _authenticated(caller).require(SERVICE_ACCOUNTS_READ)
        account = await self._get(ServiceAccount, account_id, "service account")
        _require(caller, SERVICE_ACCOUNTS_READ, account.org_id, account.project_id)
        return account

    async def list_service_accounts(self, caller: Caller, org_id: str = "", project_id: str = "", name: str = "",
                                    page_size: int = 0, page_token: str = "") -> Page:
        """The service accounts inside the caller's scope."""
        principal = _authenticated(caller)
        principal.require(SERVICE_ACCOUNTS_READ)
        auth.listing_scope(org_id, project_id, principal)  # naming another scope is refused, as everywhere
        where = _visible(principal)
        where += [(f, v) for f, v in (("org_id", org_id), ("project_id", project_id), ("name", name)) if v]
        return await self._page(ServiceAccount, where, page_size, page_token)

    async def update_service_account(self, caller: Caller, account_id: str,
                                     changes: Mapping[str, Any]) -> ServiceAccount:
        """Change a service account's name, display name, description or enabled flag."""
        async with self._audited(caller, "iam.serviceaccounts.update", f"serviceaccounts/{account_id}") as event:
            changes = _changes(changes, ("name", "display_name", "description", "enabled"))
            event.details["fields"] = sorted(changes)
            _check_labels(changes)
            async with self._lock:
                account = await self._get(ServiceAccount, account_id, "service account")
                me = _require(caller, SERVICE_ACCOUNTS_MANAGE, account.org_id, account.project_id)
                await self._require_within_reach(me, account.subject)
                revoking: list[Change] = []
                if "enabled" in changes:
                    changes["enabled"] = bool(changes["enabled"])
                    if account.enabled and not changes["enabled"]:
                        revoking, _ = await self._revoke_principal(account.subject)
                read, account = account, replace(account, **changes, updated_at=self.clock())
                await self._commit(event, Update(account), *revoking, expect=[Expect(ServiceAccount, read.id, read)])
            return account

    async def delete_service_account(self, caller: Caller, account_id: str) -> Deleted:
        """Delete a service account, its bindings and its tokens."""
        async with self._audited(caller, "iam.serviceaccounts.delete", f"serviceaccounts/{account_id}") as event:
            async with self._lock:
                account = await self._get(ServiceAccount, account_id, "service account")
                me = _require(caller, SERVICE_ACCOUNTS_MANAGE, account.org_id, account.project_id)
                await self._require_within_reach(me, account.subject)
                revoking, _ = await self._revoke_principal(account.subject)
                counts = await self._commit(event, Delete(Binding, [("principal", account.subject)]), *revoking,
                                            Delete(ServiceAccount, [("id", account.id)]),
                                            expect=[Expect(ServiceAccount, account.id, account)])
            return Deleted(account.id, counts[0])

    async def rotate_secret(self, caller: Caller, account_id: str) -> Credentials:
        """A new secret for a service account (shown once); the old one and its tokens stop working."""
        async with self._audited(caller, "iam.serviceaccounts.rotate_secret",
                                 f"serviceaccounts/{account_id}") as event:
            account = await self._get(ServiceAccount, account_id, "service account")
            me = _require(caller, SERVICE_ACCOUNTS_MANAGE, account.org_id, account.project_id)
            secret = new_secret()
            hashed = await self.hasher.hash(secret)
            async with self._lock:
                account = await self._get(ServiceAccount, account_id, "service account")
                # Under the lock: a binding made while the secret was hashed counts too.
                await self._require_within_reach(me, account.subject)
                now = self.clock()
                revoking, _ = await self._revoke_principal(account.subject)
                read, account = account, replace(account, secret_hash=hashed, secret_rotated_at=now, updated_at=now)
                await self._commit(event, Update(account), *revoking, expect=[Expect(ServiceAccount, read.id, read)])
            return Credentials(account, secret)

    # --- roles -----------------------------------------------------------------------------------

    @staticmethod
    def _check_permissions(permissions: Sequence[str]) -> tuple[str, ...]:
        if isinstance(permissions, str) or not permissions:
            raise InvalidArgument("a role needs at least one permission", {"field": "permissions"})
        if len(permissions) > 100:
            raise InvalidArgument("a role has at most 100 permissions", {"field": "permissions"})
        return tuple(dict.fromkeys(check_permission_name(p) for p in permissions))

    async def create_role(self, caller: Caller, name: str, permissions: Sequence[str],
                          description: str = "") -> Role:
        """A custom role (system scope)."""
        async with self._audited(caller, "iam.roles.create", f"roles/{name}") as event:
            _require_system(caller, ROLES_MANAGE)
            _check_name(name, "name")
            _check_text(description, "description", 1024)
            now = self.clock()
            role = Role(name, description, self._check_permissions(permissions), False, now, now)
            event.details["permissions"] = list(role.permissions)
            async with self._lock:
                await self._commit(event, Insert(role))
            return role

    async def get_role(self, caller: Caller, name: str) -> Role:
        """A role (roles are visible to every reader)."""
        _authenticated(caller).require(ROLES_READ)
        return await self._get(Role, name, "role")

    async def list_roles(self, caller: Caller, builtin: bool | None = None, page_size: int = 0,
                         page_token: str = "") -> Page:
        """Every role, by name."""
        _authenticated(caller).require(ROLES_READ)
        where = [] if builtin is None else [("builtin", bool(builtin))]
        return await self._page(Role, where, page_size, page_token)

    async def update_role(self, caller: Caller, name: str, changes: Mapping[str, Any]) -> Role:
        """Change a custom role's description or permissions; the access tokens of its holders are
        revoked when permissions change (they get the new ones on refresh)."""
        async with self._audited(caller, "iam.roles.update", f"roles/{name}") as event:
            _require_system(caller, ROLES_MANAGE)
            changes = _changes(changes, ("description", "permissions"))
            event.details["fields"] = sorted(changes)
            if "permissions" in changes:
                changes["permissions"] = self._check_permissions(changes["permissions"])
                event.details["permissions"] = list(changes["permissions"])
            _check_text(changes.get("description", ""), "description", 1024)
            async with self._lock:
                role = await self._get(Role, name, "role")
                if role.builtin:
                    raise FailedPrecondition(f"built-in role {name!r} cannot be changed", {"reason": "BUILTIN_ROLE"})
                revoking: list[Change] = []
                if changes.get("permissions", role.permissions) != role.permissions:
                    for binding in await self.store.find(Binding, [("role", name)]):
                        revoking += await self._revoke_access_for(binding)
                read, role = role, replace(role, **changes, updated_at=self.clock())
                await self._commit(event, Update(role), *revoking, expect=[Expect(Role, read.name, read)])
            return role

    async def delete_role(self, caller: Caller, name: str) -> Deleted:
        """Delete a custom role that no binding uses."""
        async with self._audited(caller, "iam.roles.delete", f"roles/{name}") as event:
            _require_system(caller, ROLES_MANAGE)
            async with self._lock:
                role = await self._get(Role, name, "role")
                if role.builtin:
                    raise FailedPrecondition(f"built-in role {name!r} cannot be deleted", {"reason": "BUILTIN_ROLE"})
                used = await self.store.count(Binding, [("role", name)])
                if used:
                    raise FailedPrecondition(f"role {name!r} is used by {used} binding(s); delete them first",
                                             {"reason": "ROLE_IN_USE", "bindings": used})
                await self._commit(event, Delete(Role, [("name", name)]), expect=[Absent(Binding, [("role", name)])])
            return Deleted(name)

    # --- bindings --------------------------------------------------------------------------------

    async def _binding_scope(self, scope_type: str, org_id: str, project_id: str) -> Scope:
        if scope_type == SYSTEM:
            if org_id or project_id:
                raise InvalidArgument("a system binding names no org or project", {"field": "scope.org_id"})
            return Scope(SYSTEM)
        if scope_type == ORG:
            if project_id:
                raise InvalidArgument("an org binding names no project", {"field": "scope.project_id"})
            if not org_id:
                raise InvalidArgument("an org binding needs scope.org_id", {"field": "scope.org_id"})
            await self._get(Organization, org_id, "organization")
            return Scope(ORG, org_id)
        if scope_type == PROJECT:
            if not project_id:
                raise InvalidArgument("a project binding needs scope.project_id", {"field": "scope.project_id"})
            project = await self._get(Project, project_id, "project")
            if org_id and org_id != project.org_id:
                raise InvalidArgument(f"project {project_id!r} is not in org {org_id!r}", {"field": "scope.org_id"})
            return Scope(PROJECT, project.org_id, project.id)
        raise InvalidArgument("scope.type must be system, org or project", {"field": "scope.type"})

    async def _principal_record(self, subject: str) -> User | ServiceAccount | None:
        kind, ident = check_principal(subject)
        return await self.store.get(User if kind == "user" else ServiceAccount, ident)

    async def create_binding(self, caller: Caller, principal: str, role: str, scope_type: str,
                             org_id: str = "", project_id: str = "") -> Binding:
        """Grant principal role on a scope; the caller must manage bindings on that scope and hold
        every permission the role grants."""
        async with self._audited(caller, "iam.bindings.create", "bindings", principal=principal, role=role,
                                 scope={"type": scope_type, "org_id": org_id, "project_id": project_id}) as event:
            check_principal(principal)
            async with self._lock:
                scope = await self._binding_scope(scope_type, org_id, project_id)
                event.details["scope"] = scope.as_dict()
                me = _require(caller, BINDINGS_MANAGE, scope.org_id, scope.project_id)
                granted = await self._get(Role, role, "role")
                beyond = [p for p in granted.permissions if not permits(me.permissions, p)]
                if beyond:
                    raise PermissionDenied(f"role {role!r} grants permissions the caller does not hold",
                                           {"reason": "ROLE_EXCEEDS_CALLER", "permissions": beyond})
                if await self._principal_record(principal) is None:
                    raise NotFound(f"principal {principal!r} not found", {"resource": "principal", "id": principal})
                await self._require_within_reach(me, principal)
                binding = Binding(new_id("bind"), principal, role, scope.kind, scope.org_id, scope.project_id,
                                  self.clock())
                event.target = f"bindings/{binding.id}"
                # The role is still the one whose permissions were weighed against the caller's.
                await self._commit(event, Insert(binding), expect=[Expect(Role, granted.name, granted)])
            return binding

    async def get_binding(self, caller: Caller, binding_id: str) -> Binding:
        """A binding on a scope the caller's scope covers."""
        _authenticated(caller).require(BINDINGS_READ)
        binding = await self._get(Binding, binding_id, "binding")
        _require(caller, BINDINGS_READ, binding.org_id, binding.project_id)
        return binding

    async def list_bindings(self, caller: Caller, principal: str = "", role: str = "", org_id: str = "",
                            project_id: str = "", scope_type: str = "", page_size: int = 0,
                            page_token: str = "") -> Page:
        """The bindings on scopes the caller's scope covers (org_id: on the org and its projects)."""
        me = _authenticated(caller)
        me.require(BINDINGS_READ)
        if scope_type and scope_type not in (SYSTEM, ORG, PROJECT):
            raise InvalidArgument("scope_type must be system, org or project", {"field": "scope_type"})
        auth.listing_scope(org_id, project_id, me)  # naming another scope is refused, as everywhere
        where = _visible(me)
        where += [(f, v) for f, v in (("principal", principal), ("role", role), ("org_id", org_id),
                                      ("project_id", project_id), ("scope_type", scope_type)) if v]
        return await self._page(Binding, where, page_size, page_token)

    async def delete_binding(self, caller: Caller, binding_id: str) -> Deleted:
        """Remove a binding; the principal's access tokens it contributed to are revoked."""
        async with self._audited(caller, "iam.bindings.delete", f"bindings/{binding_id}") as event:
            async with self._lock:
                binding = await self._get(Binding, binding_id, "binding")
                event.details.update(principal=binding.principal, role=binding.role,
                                     scope=binding.scope.as_dict())
                me = _require(caller, BINDINGS_MANAGE, binding.org_id, binding.project_id)
                await self._require_within_reach(me, binding.principal)
                await self._check_admins_remain(without_binding=binding.id)
                revoking = await self._revoke_access_for(binding)
                await self._commit(event, Delete(Binding, [("id", binding.id)]), *revoking)
            return Deleted(binding.id, 1)

    # --- tokens ----------------------------------------------------------------------------------

    def _load_keys(self, keys: Sequence[SigningKey]) -> None:
        now = self.clock()
        self._keys = {k.kid: k for k in keys if k.status(now) != EXPIRED}
        self._private = {k.kid: load_private_key(k.private_pem) for k in self._keys.values()
                         if k.status(now) == ACTIVE}
        self._public = {k.kid: public_key(k.public_jwk) for k in self._keys.values()}

    def _active_kid(self) -> str:
        return next(iter(self._private), "")

    def verification_key(self, kid: str) -> Any:
        """The public key of a published key id; UNAUTHENTICATED for any other."""
        key = self._keys.get(kid)
        if key is None or key.status(self.clock()) == EXPIRED:
            raise Unauthenticated("the token is signed with an unknown key", {"reason": "UNKNOWN_KEY"})
        return self._public[kid]

    async def is_revoked(self, token_id: str) -> bool:
        """Whether a token ID is on the revocation list."""
        return bool(await self.store.find(Revocation, [("token_id", token_id)], limit=1))

    async def _revoke_families(self, families: Sequence[TokenFamily],
                               refresh: bool = True) -> tuple[list[Change], list[str]]:
        """The changes that revoke the live access tokens of families (and, with refresh, the
        families themselves); and the revoked token IDs."""
        now = self.clock()
        changes: list[Change] = []
        revoked: list[str] = []
        for family in families:
            if refresh:
                changes += [Update(replace(family, revoked_at=now)), Delete(RefreshToken, [("family_id", family.id)])]
            for token in await self.store.find(AccessToken, [("family_id", family.id)]):
                if token.expires_at + REVOKED_KEPT_AFTER_EXPIRY >= now:  # a verifier may still take it
                    changes.append(Insert(Revocation(token.jti, token.expires_at, now)))
                    revoked.append(token.jti)
                changes.append(Delete(AccessToken, [("jti", token.jti)]))
        return changes, revoked

    async def _revoke_principal(self, subject: str) -> tuple[list[Change], list[str]]:
        return await self._revoke_families(
            await self.store.find(TokenFamily, [("principal", subject), ("revoked_at", 0)]))

    async def _revoke_access_for(self, binding: Binding) -> list[Change]:
        """Revoke the access tokens whose roles a binding contributed to (their sessions live on:
        a refresh gets the roles that hold now)."""
        families = await self.store.find(TokenFamily, [("principal", binding.principal), ("revoked_at", 0)])
        changes, _ = await self._revoke_families([f for f in families if binding_applies(binding, f.scope)],
                                                 refresh=False)
        return changes

    async def _token_scope(self, org_id: str, project_id: str) -> Scope:
        if project_id:
            project = await self._get(Project, project_id, "project")
            if org_id and org_id != project.org_id:
                raise InvalidArgument(f"project {project_id!r} is not in org {org_id!r}", {"field": "scope.org_id"})
            return Scope(PROJECT, project.org_id, project.id)
        if org_id:
            await self._get(Organization, org_id, "organization")
            return Scope(ORG, org_id)
        return Scope(SYSTEM)

    async def _roles_on(self, subject: str, scope: Scope) -> list[Binding]:
        """The principal's bindings that apply on scope, most specific first."""
        bindings = await self.store.find(Binding, [("principal", subject)])
        applicable = [b for b in bindings if binding_applies(b, scope)]
        return sorted(applicable, key=lambda b: (_SPECIFICITY[b.scope_type], b.created_at, b.id))

    async def _permissions(self, roles: Sequence[str]) -> list[str]:
        granted: dict[str, None] = {}
        for name in roles:
            role = await self.store.get(Role, name)
            if role is not None:
                granted.update(dict.fromkeys(role.permissions))
        return sorted(granted)

    def _fail_sign_in(self, event: _Event, keys: Sequence[str], reason: str, message: str) -> Unauthenticated:
        event.details["reason"] = reason
        if self.throttle.failure(*keys):
            event.details["throttled"] = True
        return Unauthenticated(message, {"reason": "INVALID_CREDENTIALS"})

    async def issue_token(self, caller: Caller, grant: Grant) -> IssuedToken:
        """Authenticate a grant and issue an access token (and a refresh token) for a scope on which
        the principal holds a role."""
        if grant.grant_type not in GRANT_TYPES:
            raise InvalidArgument(f"grant_type must be one of {', '.join(GRANT_TYPES)}",
                                  {"field": "grant_type", "allowed": list(GRANT_TYPES)})
        needed = {PASSWORD: ("username", "password"), CLIENT_CREDENTIALS: ("client_id", "client_secret"),
                  REFRESH_TOKEN: ("refresh_token",)}[grant.grant_type]
        for name in needed:
            if not getattr(grant, name):
                raise InvalidArgument(f"{name} is required with grant_type {grant.grant_type}", {"field": name})
        for name, limit in MAX_CREDENTIAL_CHARS.items():
            if len(getattr(grant, name)) > limit:  # also bounds what the throttle keeps in memory
                raise InvalidArgument(f"{name} is longer than {limit} characters", {"field": name})
        keys = [f"address:{caller.address}"]
        if grant.grant_type == PASSWORD:
            keys.append(f"user:{grant.username.casefold()}@{caller.address}")
        elif grant.grant_type == CLIENT_CREDENTIALS:
            keys.append(f"client:{grant.client_id}@{caller.address}")
        self.throttle.begin(*keys)
        try:
            await self._purge_expired()
            details: dict[str, Any] = {"grant_type": grant.grant_type}
            if grant.grant_type == PASSWORD:
                details["username"] = grant.username[:128]
            elif grant.grant_type == CLIENT_CREDENTIALS:
                details["client_id"] = grant.client_id[:128]
            async with self._audited(caller, "iam.tokens.issue", "", **details) as event:
                if grant.grant_type == REFRESH_TOKEN:
                    async with self._lock:
                        return await self._refresh(event, grant, keys)
                who = await self._sign_in(event, grant, keys)
                scope = await self._token_scope(grant.org_id, grant.project_id)
                async with self._lock:
                    now = self.clock()
                    family = TokenFamily(new_id("fam"), who.subject, scope.kind, scope.org_id, scope.project_id,
                                         now, now + self.settings.session_ttl, 0)
                    return await self._issue(event, who, family, Insert(family),
                                             with_refresh=grant.grant_type == PASSWORD)
        finally:
            self.throttle.end(*keys)

    async def _sign_in(self, event: _Event, grant: Grant, keys: Sequence[str]) -> User | ServiceAccount:
        """The user or service account whose credentials the grant holds; UNAUTHENTICATED otherwise."""
        if grant.grant_type == PASSWORD:
            found = await self.store.find(User, [("name", grant.username)], limit=1)
            if not found:
                await self.hasher.waste(grant.password)
                raise self._fail_sign_in(event, keys, "UNKNOWN_USER", "invalid username or password")
            who: User | ServiceAccount = found[0]
            stored, secret, message = who.password_hash, grant.password, "invalid username or password"
        else:
            account = await self.store.get(ServiceAccount, grant.client_id)
            if account is None:
                await self.hasher.waste(grant.client_secret)
                raise self._fail_sign_in(event, keys, "UNKNOWN_CLIENT", "invalid client credentials")
            who = account
            stored, secret, message = account.secret_hash, grant.client_secret, "invalid client credentials"
        event.principal, event.target = who.subject, f"{type(who).__name__.lower()}s/{who.id}"
        matches, stale = await self.hasher.verify(stored, secret)
        if not matches:
            raise self._fail_sign_in(event, keys, "WRONG_SECRET", message)
        if not who.enabled:
            raise self._fail_sign_in(event, keys, "DISABLED", message)
        self.throttle.success(keys[-1])
        if stale and isinstance(who, User):  # argon2 parameters were raised: store the stronger hash
            rehashed = await self.hasher.hash(secret)
            async with self._lock:
                current = await self.store.get(User, who.id)
                if current is not None and current.password_hash == who.password_hash:
                    try:
                        await self._propose(Update(replace(current, password_hash=rehashed)),
                                            expect=[Expect(User, who.id, current)])
                    except Aborted:  # the user changed meanwhile (a new password): that one stands
                        pass
        return who

    async def _refresh(self, event: _Event, grant: Grant, keys: Sequence[str]) -> IssuedToken:
        """Exchange a refresh token (under the lock): rotate it, or on reuse revoke its whole family."""
        now = self.clock()
        token = await self.store.get(RefreshToken, token_digest(grant.refresh_token))
        family = await self.store.get(TokenFamily, token.family_id) if token else None
        if token is None or family is None:
            raise self._fail_sign_in(event, keys, "UNKNOWN_REFRESH_TOKEN", "invalid refresh token")
        event.principal = family.principal
        if token.used_at:
            changes, revoked = await self._revoke_families([family])
            await self._propose(*changes)
            event.details.update(family=family.id, revoked_tokens=len(revoked))
            raise self._fail_sign_in(event, keys, "REFRESH_TOKEN_REUSED", "invalid refresh token")
        if family.revoked_at or min(token.expires_at, family.expires_at) <= now:
            raise self._fail_sign_in(event, keys, "REFRESH_TOKEN_EXPIRED", "invalid refresh token")
        who = await self._principal_record(family.principal)
        event.target = family.principal
        if who is None or not who.enabled:
            raise self._fail_sign_in(event, keys, "DISABLED", "invalid refresh token")
        scope = family.scope
        if grant.org_id or grant.project_id:
            scope = await self._token_scope(grant.org_id, grant.project_id)
        family = replace(family, scope_type=scope.kind, org_id=scope.org_id, project_id=scope.project_id)
        return await self._issue(event, who, family, Update(family), Update(replace(token, used_at=now)),
                                 with_refresh=True)

    async def _issue(self, event: _Event, who: User | ServiceAccount, family: TokenFamily, *changes: Change,
                     with_refresh: bool) -> IssuedToken:
        """Sign an access token for who on the family's scope (under the lock)."""
        scope = family.scope
        event.principal, event.details["scope"] = who.subject, scope.as_dict()
        bindings = await self._roles_on(who.subject, scope)
        if not bindings:
            raise PermissionDenied(
                f"{who.subject} holds no role on {_describe(scope)}"
                + ("; ask for an org or project scope" if scope.kind == SYSTEM else ""),
                {"reason": "NO_ROLE_ON_SCOPE", "scope": scope.as_dict()},
            )
        roles = sorted({b.role for b in bindings})
        now = int(self.clock())
        expires = now + self.settings.access_token_ttl
        claims = {
            "iss": self.settings.issuer, "aud": AUDIENCE, "sub": who.subject, "name": who.name,
            "iat": now, "nbf": now, "exp": expires, "jti": uuid.uuid4().hex,
            "scope": scope.as_dict(), "roles": roles, "permissions": await self._permissions(roles),
        }
        kid = self._active_kid()
        access = sign(claims, kid, self._private[kid])
        refresh, refresh_expires = "", 0
        writes: list[Change] = [*changes, Insert(AccessToken(claims["jti"], family.id, who.subject, expires))]
        if with_refresh:
            refresh = new_refresh_token()
            refresh_expires = int(min(now + self.settings.refresh_token_ttl, family.expires_at))
            writes.append(Insert(RefreshToken(token_digest(refresh), family.id, now, refresh_expires, 0)))
        event.details.update(token_id=claims["jti"], family=family.id, roles=roles)
        await self._commit(event, *writes)
        return IssuedToken(access, expires - now, refresh, max(0, refresh_expires - now) if refresh else 0,
                           scope, tuple(roles))

    async def _purge_expired(self) -> None:
        """Forget expired sessions, tokens, revocations and keys (at most once a minute)."""
        if time.monotonic() - self._purged_at < PURGE_INTERVAL:
            return
        self._purged_at = time.monotonic()
        now = self.clock()
        margin = REVOKED_KEPT_AFTER_EXPIRY + KEY_RETIREMENT_MARGIN
        async with self._lock:
            changes: list[Change] = [
                Delete(AccessToken, [("expires_at", Cmp("<", now - margin))]),
                Delete(RefreshToken, [("expires_at", Cmp("<", now))]),
                Delete(TokenFamily, [("expires_at", Cmp("<", now))]),
                Delete(Revocation, [("expires_at", Cmp("<", now - margin))]),
            ]
            for key in await self.store.find(SigningKey):
                if key.status(now) == EXPIRED and key.private_pem:
                    changes.append(Update(replace(key, private_pem="")))
            await self._propose(*changes)
            self._load_keys(await self.store.find(SigningKey))

    async def revoke_token(self, caller: Caller) -> list[str]:
        """Log out: revoke the caller's access token and every token of its session."""
        principal = _authenticated(caller)
        async with self._audited(caller, "iam.tokens.revoke", f"tokens/{principal.token_id}") as event:
            async with self._lock:
                access = await self.store.get(AccessToken, principal.token_id)
                family = await self.store.get(TokenFamily, access.family_id) if access else None
                changes, revoked = await self._revoke_families([family] if family else [])
                if principal.token_id not in revoked and not await self.is_revoked(principal.token_id):
                    changes.append(Insert(Revocation(principal.token_id, principal.expires_at, self.clock())))
                    revoked.append(principal.token_id)
                event.details["revoked_tokens"] = len(revoked)
                await self._commit(event, *changes)
            return revoked

    async def verify_token(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid, live token; None for anything else."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            await self.verifier.verify(token)
        except ServiceError:
            return None
        return jwt.decode(token, options={"verify_signature": False})

    async def revocations(self, since: int) -> tuple[list[Revocation], int]:
        """The revocations after cursor since whose tokens have not expired (or only just: a
        verifier's leeway), and the next cursor. A cursor from the future (a store that was reset)
        starts over."""
        if since < 0:
            raise InvalidArgument("since must be a cursor from a previous answer, or 0", {"field": "since"})
        latest = await self.store.find(Revocation, limit=1, descending=True)
        top = latest[0].seq if latest else 0
        if since > top:
            since = 0
        horizon = int(self.clock()) - REVOKED_KEPT_AFTER_EXPIRY
        items = await self.store.find(Revocation, [("seq", Cmp(">", since)), ("expires_at", Cmp(">=", horizon))])
        return items, max([top, *(r.seq for r in items)])

    def jwks(self) -> list[dict[str, Any]]:
        """The published public keys (the signing one and the retired ones still needed)."""
        now = self.clock()
        keys = sorted((k for k in self._keys.values() if k.status(now) != EXPIRED), key=_newest_first)
        return [dict(k.public_jwk) for k in keys]

    def openid_configuration(self) -> dict[str, Any]:
        """OpenID Connect discovery for this issuer."""
        issuer = self.settings.issuer
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "token_endpoint": f"{issuer}/api/v1/auth/token",
            "introspection_endpoint": f"{issuer}/api/v1/auth/verify",
            "revocation_endpoint": f"{issuer}/api/v1/auth/revoke",
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "grant_types_supported": list(GRANT_TYPES),
            "subject_types_supported": ["public"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "claims_supported": ["iss", "aud", "sub", "name", "iat", "nbf", "exp", "jti", "scope", "roles",
                                 "permissions"],
        }

    async def rotate_signing_key(self, caller: Caller) -> SigningKey:
        """A new key signs from now on; the previous one stays published until its tokens expired."""
        async with self._audited(caller, "iam.keys.rotate", "keys") as event:
            _require_system(caller, KEYS_MANAGE)
            material = await generate_key()
            async with self._lock:
                now = self.clock()
                retire_until = now + self.settings.access_token_ttl + self.verifier.leeway + KEY_RETIREMENT_MARGIN
                key = SigningKey(material.kid, material.private_pem, material.public_jwk, now, 0, 0)
                keys = await self.store.find(SigningKey)
                retiring = [replace(k, retired_at=now, expires_at=retire_until) for k in keys
                            if k.status(now) == ACTIVE]
                event.target = f"keys/{key.kid}"
                event.details["retired"] = [k.kid for k in retiring]
                await self._commit(event, Insert(key), *(Update(k) for k in retiring))
                self._load_keys(await self.store.find(SigningKey))
            return key

    async def list_signing_keys(self, caller: Caller) -> list[SigningKey]:
        """Every signing key IAM has had: the active one, then the others newest first."""
        _authenticated(caller).require(KEYS_READ)
        return sorted(await self.store.find(SigningKey), key=_newest_first)

    # --- authorization ---------------------------------------------------------------------------

    async def authorize(self, caller: Caller, question: Question) -> Decision:
        """Whether question.principal may do question.action on the resource, from the bindings."""
        return (await self.authorize_batch(caller, [question]))[0]

    async def authorize_batch(self, caller: Caller, questions: Sequence[Question]) -> list[Decision]:
        """Answers to up to 100 questions, in order. The caller needs iam:authorize:read on each
        resource's scope (a question about the system as a whole: a system token)."""
        if not questions:
            raise InvalidArgument("give at least one question", {"field": "requests"})
        if len(questions) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} questions at once", {"field": "requests"})
        bindings: dict[str, list[Binding]] = {}
        roles: dict[str, Role | None] = {}
        answers = []
        for question in questions:
            answers.append(await self._decide(caller, question, bindings, roles))
        return answers

    async def _decide(self, caller: Caller, question: Question, cache: dict[str, list[Binding]],
                      roles: dict[str, Role | None]) -> Decision:
        check_principal(question.principal)
        action = question.action
        if not isinstance(action, str) or "*" in action:
            raise InvalidArgument("action must be a permission without wildcards, e.g. compute:instances:create",
                                  {"field": "action"})
        check_permission_name(action)
        org_id, project_id = question.org_id, question.project_id
        if project_id:
            project = await self.store.get(Project, project_id)
            if project is not None:
                if org_id and org_id != project.org_id:
                    raise InvalidArgument(f"project {project_id!r} is not in org {org_id!r}",
                                          {"field": "resource.org_id"})
                org_id = project.org_id
            _require(caller, AUTHORIZE_READ, org_id, project_id)
            if project is None:
                return Decision(False, f"project {project_id!r} does not exist")
            scope = Scope(PROJECT, org_id, project_id)
        elif org_id:
            _require(caller, AUTHORIZE_READ, org_id)
            if await self.store.get(Organization, org_id) is None:
                return Decision(False, f"organization {org_id!r} does not exist")
            scope = Scope(ORG, org_id)
        else:
            _require(caller, AUTHORIZE_READ)
            scope = Scope(SYSTEM)
        who = await self._principal_record(question.principal)
        if who is None:
            return Decision(False, f"principal {question.principal!r} does not exist")
        if not who.enabled:
            return Decision(False, f"principal {question.principal!r} is disabled")
        if question.principal not in cache:
            cache[question.principal] = await self.store.find(Binding, [("principal", question.principal)])
        applicable = sorted((b for b in cache[question.principal] if binding_applies(b, scope)),
                            key=lambda b: (_SPECIFICITY[b.scope_type], b.created_at, b.id))
        for binding in applicable:
            if binding.role not in roles:
                roles[binding.role] = await self.store.get(Role, binding.role)
            role = roles[binding.role]
            if role is not None and permits(role.permissions, action):
                return Decision(True, f"role {role.name!r} bound on {_describe(binding.scope)} grants {action}",
                                binding.id, role.name)
        return Decision(False, f"no role bound to {question.principal} on {_describe(scope)} grants {action}")

    # --- audit -----------------------------------------------------------------------------------

    async def list_audit(self, caller: Caller, principal: str = "", action: str = "", since: str = "",
                         until: str = "", page_size: int = 0, page_token: str = "") -> Page:
        """Audit events, newest first (system scope, iam:audit:read)."""
        _require_system(caller, AUDIT_READ)
        where: list = []
        if principal:
            where.append(("principal", principal))
        if action:
            where.append(("action", Cmp("under", action)))
        if since:
            where.append(("time", Cmp(">=", parse_time(since, "since"))))
        if until:
            where.append(("time", Cmp("<", parse_time(until, "until"))))
        return await self._page(AuditEvent, where, page_size, page_token, descending=True)
