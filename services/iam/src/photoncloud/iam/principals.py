"""IAM's principals: users and service accounts, and who may manage them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from photoncloud.common import auth
from photoncloud.common.auth import SYSTEM, Principal, permits
from photoncloud.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

from .commands import Change, Cmp, Delete, Expect, Insert, Update
from .credentials import check_password, new_id, new_secret
from .facade import Facade
from .records import Binding, Organization, Project, ServiceAccount, User
from .rules import (ADMIN, PRINCIPAL_OUTRANKS_CALLER, SERVICE_ACCOUNTS_MANAGE, SERVICE_ACCOUNTS_READ, USER_NAME,
                    USERS_MANAGE, USERS_READ, allowed_changes, authenticated, check_email, check_labels, check_name,
                    check_redirect_uris, check_text, describe, require, require_system, visible)
from .values import Caller, Credentials, Deleted, Page


class Principals(Facade):
    """Users and service accounts."""

    # --- users -----------------------------------------------------------------------------------

    async def create_user(self, caller: Caller, name: str, password: str, email: str = "",
                          display_name: str = "", enabled: bool = True) -> User:
        """A new user (system scope)."""
        async with self._audited(caller, "iam.users.create", f"users/{name}") as event:
            require_system(caller, USERS_MANAGE)
            check_name(name, "name", USER_NAME)
            check_email(email)
            check_text(display_name, "display_name", 256)
            check_password(password, name)
            hashed = await self.hasher.hash(password)
            now = self.clock()
            user = User(new_id("user"), name, email, display_name, bool(enabled), hashed, now, now, now)
            event.target = f"users/{user.id}"
            async with self._lock:
                await self._commit(event, Insert(user))
            return user

    async def _visible_user_ids(self, principal: Principal) -> list[str]:
        bindings = await self.store.find(Binding, [*visible(principal), ("principal", Cmp("prefix", "user:"))])
        ids = {b.principal.partition(":")[2] for b in bindings}
        if principal.subject.startswith("user:"):
            ids.add(principal.subject.partition(":")[2])
        return sorted(ids)

    async def get_user(self, caller: Caller, user_id: str) -> User:
        """A user: any with a system token, else oneself and the users bound inside the scope."""
        principal = authenticated(caller)
        principal.require(USERS_READ)
        user = await self._get(User, user_id, "user")
        if principal.scope.kind != SYSTEM and user.id not in await self._visible_user_ids(principal):
            raise PermissionDenied("the user holds no role inside the token's scope",
                                   {"reason": "OUT_OF_SCOPE", "scope": principal.scope.as_dict()})
        return user

    async def current_user(self, caller: Caller) -> User:
        """The user the caller's token names."""
        principal = authenticated(caller)
        kind, _, ident = principal.subject.partition(":")
        if kind != "user":
            raise NotFound(f"{principal.subject} is not a user", {"reason": "NOT_A_USER"})
        return await self._get(User, ident, "user")

    async def list_users(self, caller: Caller, name: str = "", email: str = "", enabled: bool | None = None,
                         page_size: int = 0, page_token: str = "") -> Page:
        """The users the caller can see (see get_user)."""
        principal = authenticated(caller)
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
            require_system(caller, USERS_MANAGE)
            changes = allowed_changes(changes, ("name", "email", "display_name", "enabled"))
            event.details["fields"] = sorted(changes)
            if "name" in changes:
                check_name(changes["name"], "name", USER_NAME)
            check_email(changes.get("email", ""))
            check_text(changes.get("display_name", ""), "display_name", 256)
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
            require_system(caller, USERS_MANAGE)
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
            principal = authenticated(caller)
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
                f"{subject} holds a role outside {describe(me.scope)}; only a token covering all its roles "
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
                                     display_name: str = "", description: str = "",
                                     redirect_uris: Sequence[str] = (), public_client: bool = False) -> Credentials:
        """A new service account of an org (or of a project in it), with its secret (shown once); with
        redirect_uris, an OAuth2 client of the authorization code flow (public: it signs users in with
        PKCE and no secret)."""
        async with self._audited(caller, "iam.serviceaccounts.create", f"serviceaccounts/{name}",
                                 org_id=org_id, project_id=project_id) as event:
            if not org_id and not project_id:
                raise InvalidArgument("org_id is required", {"field": "org_id"})
            if project_id:
                project = await self._get(Project, project_id, "project")
                if org_id and org_id != project.org_id:
                    raise InvalidArgument(f"project {project_id!r} is not in org {org_id!r}", {"field": "org_id"})
                org_id = project.org_id
            require(caller, SERVICE_ACCOUNTS_MANAGE, org_id, project_id)
            check_labels({"name": name, "display_name": display_name, "description": description})
            uris = check_redirect_uris(list(redirect_uris))
            secret = new_secret()
            hashed = await self.hasher.hash(secret)
            now = self.clock()
            account = ServiceAccount(new_id("sa"), org_id, project_id, name, display_name, description, True,
                                     hashed, now, now, now, uris, bool(public_client))
            event.target = f"serviceaccounts/{account.id}"
            async with self._lock:
                await self._get(Organization, org_id, "organization")
                if project_id:
                    await self._get(Project, project_id, "project")
                await self._commit(event, Insert(account))
            return Credentials(account, secret)

    async def get_service_account(self, caller: Caller, account_id: str) -> ServiceAccount:
        """A service account inside the caller's scope."""
        authenticated(caller).require(SERVICE_ACCOUNTS_READ)
        account = await self._get(ServiceAccount, account_id, "service account")
        require(caller, SERVICE_ACCOUNTS_READ, account.org_id, account.project_id)
        return account

    async def list_service_accounts(self, caller: Caller, org_id: str = "", project_id: str = "", name: str = "",
                                    page_size: int = 0, page_token: str = "") -> Page:
        """The service accounts inside the caller's scope."""
        principal = authenticated(caller)
        principal.require(SERVICE_ACCOUNTS_READ)
        auth.listing_scope(org_id, project_id, principal)  # naming another scope is refused, as everywhere
        where = visible(principal)
        where += [(f, v) for f, v in (("org_id", org_id), ("project_id", project_id), ("name", name)) if v]
        return await self._page(ServiceAccount, where, page_size, page_token)

    async def update_service_account(self, caller: Caller, account_id: str,
                                     changes: Mapping[str, Any]) -> ServiceAccount:
        """Change a service account's name, display name, description, enabled flag, or what it is
        as an OAuth2 client (redirect URIs, public)."""
        async with self._audited(caller, "iam.serviceaccounts.update", f"serviceaccounts/{account_id}") as event:
            changes = allowed_changes(changes, ("name", "display_name", "description", "enabled", "redirect_uris",
                                                "public_client"))
            event.details["fields"] = sorted(changes)
            check_labels(changes)
            if "redirect_uris" in changes:
                changes["redirect_uris"] = check_redirect_uris(list(changes["redirect_uris"]))
            if "public_client" in changes:
                changes["public_client"] = bool(changes["public_client"])
            async with self._lock:
                account = await self._get(ServiceAccount, account_id, "service account")
                me = require(caller, SERVICE_ACCOUNTS_MANAGE, account.org_id, account.project_id)
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
                me = require(caller, SERVICE_ACCOUNTS_MANAGE, account.org_id, account.project_id)
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
            me = require(caller, SERVICE_ACCOUNTS_MANAGE, account.org_id, account.project_id)
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
