"""IAM's grants and decisions: roles, bindings, and the answers to authorization questions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from photoncloud.common import auth
from photoncloud.common.auth import ORG, PROJECT, SYSTEM, Scope, check_permission_name, permits
from photoncloud.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

from .commands import Absent, Change, Delete, Expect, Insert, Update
from .credentials import new_id
from .facade import Facade
from .records import Binding, Organization, Project, Role, ServiceAccount, User
from .rules import (AUTHORIZE_READ, BINDINGS_MANAGE, BINDINGS_READ, MAX_BATCH, ROLES_MANAGE, ROLES_READ, SPECIFICITY,
                    allowed_changes, authenticated, binding_applies, check_name, check_principal, check_text, describe,
                    require, require_system, visible)
from .values import Caller, Decision, Deleted, Page, Question


class Access(Facade):
    """Roles, bindings and authorization."""

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
            require_system(caller, ROLES_MANAGE)
            check_name(name, "name")
            check_text(description, "description", 1024)
            now = self.clock()
            role = Role(name, description, self._check_permissions(permissions), False, now, now)
            event.details["permissions"] = list(role.permissions)
            async with self._lock:
                await self._commit(event, Insert(role))
            return role

    async def get_role(self, caller: Caller, name: str) -> Role:
        """A role (roles are visible to every reader)."""
        authenticated(caller).require(ROLES_READ)
        return await self._get(Role, name, "role")

    async def list_roles(self, caller: Caller, builtin: bool | None = None, page_size: int = 0,
                         page_token: str = "") -> Page:
        """Every role, by name."""
        authenticated(caller).require(ROLES_READ)
        where = [] if builtin is None else [("builtin", bool(builtin))]
        return await self._page(Role, where, page_size, page_token)

    async def update_role(self, caller: Caller, name: str, changes: Mapping[str, Any]) -> Role:
        """Change a custom role's description or permissions; the access tokens of its holders are
        revoked when permissions change (they get the new ones on refresh)."""
        async with self._audited(caller, "iam.roles.update", f"roles/{name}") as event:
            require_system(caller, ROLES_MANAGE)
            changes = allowed_changes(changes, ("description", "permissions"))
            event.details["fields"] = sorted(changes)
            if "permissions" in changes:
                changes["permissions"] = self._check_permissions(changes["permissions"])
                event.details["permissions"] = list(changes["permissions"])
            check_text(changes.get("description", ""), "description", 1024)
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
            require_system(caller, ROLES_MANAGE)
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
                me = require(caller, BINDINGS_MANAGE, scope.org_id, scope.project_id)
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
        authenticated(caller).require(BINDINGS_READ)
        binding = await self._get(Binding, binding_id, "binding")
        require(caller, BINDINGS_READ, binding.org_id, binding.project_id)
        return binding

    async def list_bindings(self, caller: Caller, principal: str = "", role: str = "", org_id: str = "",
                            project_id: str = "", scope_type: str = "", page_size: int = 0,
                            page_token: str = "") -> Page:
        """The bindings on scopes the caller's scope covers (org_id: on the org and its projects)."""
        me = authenticated(caller)
        me.require(BINDINGS_READ)
        if scope_type and scope_type not in (SYSTEM, ORG, PROJECT):
            raise InvalidArgument("scope_type must be system, org or project", {"field": "scope_type"})
        auth.listing_scope(org_id, project_id, me)  # naming another scope is refused, as everywhere
        where = visible(me)
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
                me = require(caller, BINDINGS_MANAGE, binding.org_id, binding.project_id)
                await self._require_within_reach(me, binding.principal)
                await self._check_admins_remain(without_binding=binding.id)
                revoking = await self._revoke_access_for(binding)
                await self._commit(event, Delete(Binding, [("id", binding.id)]), *revoking)
            return Deleted(binding.id, 1)

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
            require(caller, AUTHORIZE_READ, org_id, project_id)
            if project is None:
                return Decision(False, f"project {project_id!r} does not exist")
            scope = Scope(PROJECT, org_id, project_id)
        elif org_id:
            require(caller, AUTHORIZE_READ, org_id)
            if await self.store.get(Organization, org_id) is None:
                return Decision(False, f"organization {org_id!r} does not exist")
            scope = Scope(ORG, org_id)
        else:
            require(caller, AUTHORIZE_READ)
            scope = Scope(SYSTEM)
        who = await self._principal_record(question.principal)
        if who is None:
            return Decision(False, f"principal {question.principal!r} does not exist")
        if not who.enabled:
            return Decision(False, f"principal {question.principal!r} is disabled")
        if question.principal not in cache:
            cache[question.principal] = await self.store.find(Binding, [("principal", question.principal)])
        applicable = sorted((b for b in cache[question.principal] if binding_applies(b, scope)),
                            key=lambda b: (SPECIFICITY[b.scope_type], b.created_at, b.id))
        for binding in applicable:
            if binding.role not in roles:
                roles[binding.role] = await self.store.get(Role, binding.role)
            role = roles[binding.role]
            if role is not None and permits(role.permissions, action):
                return Decision(True, f"role {role.name!r} bound on {describe(binding.scope)} grants {action}",
                                binding.id, role.name)
        return Decision(False, f"no role bound to {question.principal} on {describe(scope)} grants {action}")
