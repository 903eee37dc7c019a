"""IAM's domain: identities (organizations, projects, users, service accounts), roles, bindings,
tokens, authorization decisions and the audit log, with every rule about them.

IamCore is the service's facade: an operation authorizes the caller, validates, hashes and signs
what needs it, then proposes a command to the log (commands.py; machine.py applies it) or reads
the store. The operations live by subject in tenancy.py, principals.py, access.py, tokens.py and
codeflow.py (the authorization code flow).

Every operation takes a `Caller` (who asks, from where) and decides what that caller may see and
change; the adapters only convert. The rules, in short:

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
import secrets
import time
from collections.abc import Callable
from typing import Any

from photoncloud.common.auth import (
    SYSTEM,
    Verifier,
)
from photoncloud.common.replication import LocalLog, Log
from photoncloud.common.times import parse_time, rfc3339

from .access import Access
from .audit import Event
from .commands import Cmp, Expect, Insert, Update
from .credentials import (
    LoginThrottle,
    SecretHasher,
    check_password,
    generate_key,
    new_id,
)
from .machine import IamStateMachine
from .principals import Principals
from .records import (
    ACTIVE,
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
from .rules import (
    ADMIN,
    AUDIT_READ,
    AUTHORIZE_READ,
    BINDINGS_MANAGE,
    BINDINGS_READ,
    BUILTIN_ROLES,
    KEYS_MANAGE,
    KEYS_READ,
    MEMBER,
    ORGS_MANAGE,
    ORGS_READ,
    PRINCIPAL_OUTRANKS_CALLER,
    PROJECTS_MANAGE,
    PROJECTS_READ,
    ROLES_MANAGE,
    ROLES_READ,
    SERVICE_ACCOUNTS_MANAGE,
    SERVICE_ACCOUNTS_READ,
    USERS_MANAGE,
    USERS_READ,
    VIEWER,
    binding_applies,
    check_principal,
    require_system,
)
from .store import Records, SqliteIamStore
from .tenancy import Tenancy
from .authcodes import CodeTable
from .codeflow import CodeFlow
from .tokens import LocalKeys, LocalRevocations
from .values import (
    DEFAULT_ISSUER,
    Bootstrapped,
    Caller,
    Credentials,
    Decision,
    Deleted,
    Grant,
    IssuedToken,
    Page,
    Question,
    Settings,
)

# What the adapters, the app and the tests take from here: the core and the names of its world.
__all__ = [
    "ADMIN", "AUDIT_READ", "AUTHORIZE_READ", "BINDINGS_MANAGE", "BINDINGS_READ", "BUILTIN_ROLES", "DEFAULT_ISSUER",
    "KEYS_MANAGE", "KEYS_READ", "MEMBER", "ORGS_MANAGE", "ORGS_READ", "PRINCIPAL_OUTRANKS_CALLER",
    "PROJECTS_MANAGE", "PROJECTS_READ", "ROLES_MANAGE", "ROLES_READ", "SERVICE_ACCOUNTS_MANAGE",
    "SERVICE_ACCOUNTS_READ", "USERS_MANAGE", "USERS_READ", "VIEWER", "AccessToken", "AuditEvent", "Binding",
    "Bootstrapped", "Caller", "Credentials", "Decision", "Deleted", "Grant", "IamCore", "IssuedToken", "Meta",
    "Organization", "Page", "Project", "Question", "RefreshToken", "Revocation", "Role", "ServiceAccount",
    "Settings", "SigningKey", "TokenFamily", "User", "binding_applies", "check_principal",
]


class IamCore(Tenancy, Principals, Access, CodeFlow):
    """IAM's operations: authorize, validate, then propose a command to the log or read the store."""

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
        self.codes = CodeTable(self.settings.authorization_code_ttl, self.settings.max_authorization_codes, clock)
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
        event = Event(Caller(), "iam.bootstrap", f"users/{user.id}",
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

    # --- audit -----------------------------------------------------------------------------------

    async def list_audit(self, caller: Caller, principal: str = "", action: str = "", since: str = "",
                         until: str = "", page_size: int = 0, page_token: str = "") -> Page:
        """Audit events, newest first (system scope, iam:audit:read)."""
        require_system(caller, AUDIT_READ)
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
