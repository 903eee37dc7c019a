"""IAM's tenancy tree: organizations and the projects inside them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from photoncloud.common.auth import SYSTEM
from photoncloud.common.errors import FailedPrecondition, InvalidArgument

from .commands import Absent, Delete, Expect, Insert, Update
from .credentials import new_id
from .facade import Facade
from .records import Binding, Organization, Project, ServiceAccount, TokenFamily
from .rules import (ORGS_MANAGE, ORGS_READ, PROJECTS_MANAGE, PROJECTS_READ, allowed_changes, authenticated,
                    check_labels, require, require_system, visible)
from .values import Caller, Deleted, Page


class Tenancy(Facade):
    """Organizations and projects."""

    # --- organizations ---------------------------------------------------------------------------

    async def create_org(self, caller: Caller, name: str, display_name: str = "",
                         description: str = "") -> Organization:
        """A new organization (system scope)."""
        async with self._audited(caller, "iam.orgs.create", f"orgs/{name}") as event:
            require_system(caller, ORGS_MANAGE)
            check_labels({"name": name, "display_name": display_name, "description": description})
            now = self.clock()
            org = Organization(new_id("org"), name, display_name, description, now, now)
            event.target = f"orgs/{org.id}"
            async with self._lock:
                await self._commit(event, Insert(org))
            return org

    async def get_org(self, caller: Caller, org_id: str) -> Organization:
        """An organization the caller's scope lies in or covers."""
        principal = authenticated(caller)
        principal.require(ORGS_READ)
        org = await self._get(Organization, org_id, "organization")
        if principal.scope.org_id != org.id:  # the org a token's scope lies in is visible to it
            require(caller, ORGS_READ, org.id)
        return org

    async def list_orgs(self, caller: Caller, name: str = "", page_size: int = 0, page_token: str = "") -> Page:
        """The organizations the caller can see."""
        principal = authenticated(caller)
        principal.require(ORGS_READ)
        where: list = [] if principal.scope.kind == SYSTEM else [("id", principal.scope.org_id)]
        if name:
            where.append(("name", name))
        return await self._page(Organization, where, page_size, page_token)

    async def update_org(self, caller: Caller, org_id: str, changes: Mapping[str, Any]) -> Organization:
        """Change an organization's name, display name or description."""
        async with self._audited(caller, "iam.orgs.update", f"orgs/{org_id}") as event:
            changes = allowed_changes(changes, ("name", "display_name", "description"))
            event.details["fields"] = sorted(changes)
            async with self._lock:
                org = await self._get(Organization, org_id, "organization")
                require(caller, ORGS_MANAGE, org.id)
                check_labels(changes)
                read, org = org, replace(org, **changes, updated_at=self.clock())
                await self._commit(event, Update(org), expect=[Expect(Organization, read.id, read)])
            return org

    async def delete_org(self, caller: Caller, org_id: str) -> Deleted:
        """Delete an empty organization (no projects, no service accounts) and its bindings."""
        async with self._audited(caller, "iam.orgs.delete", f"orgs/{org_id}") as event:
            require_system(caller, ORGS_MANAGE)
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
            require(caller, PROJECTS_MANAGE, org_id)
            check_labels({"name": name, "display_name": display_name, "description": description})
            now = self.clock()
            project = Project(new_id("proj"), org_id, name, display_name, description, now, now)
            event.target = f"projects/{project.id}"
            async with self._lock:
                await self._get(Organization, org_id, "organization")
                await self._commit(event, Insert(project))
            return project

    async def get_project(self, caller: Caller, project_id: str) -> Project:
        """A project inside the caller's scope."""
        authenticated(caller).require(PROJECTS_READ)
        project = await self._get(Project, project_id, "project")
        require(caller, PROJECTS_READ, project.org_id, project.id)
        return project

    async def list_projects(self, caller: Caller, org_id: str = "", name: str = "", page_size: int = 0,
                            page_token: str = "") -> Page:
        """The projects inside the caller's scope, optionally of one org or with one name."""
        principal = authenticated(caller)
        principal.require(PROJECTS_READ)
        where = visible(principal, project_field="id")
        where += [(f, v) for f, v in (("org_id", org_id), ("name", name)) if v]
        return await self._page(Project, where, page_size, page_token)

    async def update_project(self, caller: Caller, project_id: str, changes: Mapping[str, Any]) -> Project:
        """Change a project's name, display name or description."""
        async with self._audited(caller, "iam.projects.update", f"projects/{project_id}") as event:
            changes = allowed_changes(changes, ("name", "display_name", "description"))
            event.details["fields"] = sorted(changes)
            async with self._lock:
                project = await self._get(Project, project_id, "project")
                require(caller, PROJECTS_MANAGE, project.org_id, project.id)
                check_labels(changes)
                read, project = project, replace(project, **changes, updated_at=self.clock())
                await self._commit(event, Update(project), expect=[Expect(Project, read.id, read)])
            return project

    async def delete_project(self, caller: Caller, project_id: str) -> Deleted:
        """Delete a project without service accounts, with its bindings (a token scoped to its org)."""
        async with self._audited(caller, "iam.projects.delete", f"projects/{project_id}") as event:
            async with self._lock:
                project = await self._get(Project, project_id, "project")
                require(caller, PROJECTS_MANAGE, project.org_id)
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
