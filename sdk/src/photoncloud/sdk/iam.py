"""IAM: organizations, projects, users, service accounts, roles, bindings, tokens and authorization."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .service import Json, Service, fields, seg


class IAM(Service):
    """IAM's REST API (port 8083). Signing in is the client's `auth` (TokenManager)."""

    def me(self) -> Json:
        """The signed-in user."""
        return self._get("/api/v1/users/me")

    def verify(self, token: str) -> Json:
        """Whether token is live, and its claims."""
        return self.transport.request("POST", "/api/v1/auth/verify", json={"token": token}, authenticated=False)

    def create_org(self, name: str, display_name: str | None = None, description: str | None = None) -> Json:
        """An organization (the operator's)."""
        return self._post("/api/v1/orgs", fields(name=name, display_name=display_name, description=description))

    def get_org(self, org_id: str) -> Json:
        """One organization."""
        return self._get(f"/api/v1/orgs/{seg(org_id)}")

    def orgs(self, name: str | None = None) -> Iterator[Json]:
        """The organizations the token sees (by name)."""
        return self._pages("/api/v1/orgs", name=name)

    def delete_org(self, org_id: str) -> Json:
        """Delete an organization."""
        return self._delete(f"/api/v1/orgs/{seg(org_id)}")

    def create_project(self, org_id: str, name: str, display_name: str | None = None,
                       description: str | None = None) -> Json:
        """A project in an organization."""
        return self._post("/api/v1/projects", fields(org_id=org_id, name=name, display_name=display_name,
                                                     description=description))

    def get_project(self, project_id: str) -> Json:
        """One project."""
        return self._get(f"/api/v1/projects/{seg(project_id)}")

    def projects(self, org_id: str | None = None, name: str | None = None) -> Iterator[Json]:
        """The projects the token sees (of an org, by name)."""
        return self._pages("/api/v1/projects", org_id=org_id, name=name)

    def update_project(self, project_id: str, **changes: Any) -> Json:
        """Change a project's name, display_name or description."""
        return self._patch(f"/api/v1/projects/{seg(project_id)}", changes)

    def delete_project(self, project_id: str) -> Json:
        """Delete a project."""
        return self._delete(f"/api/v1/projects/{seg(project_id)}")

    def create_user(self, name: str, password: str, email: str | None = None,
                    display_name: str | None = None) -> Json:
        """A user (the operator's)."""
        return self._post("/api/v1/users", fields(name=name, password=password, email=email,
                                                  display_name=display_name))

    def get_user(self, user_id: str) -> Json:
        """One user."""
        return self._get(f"/api/v1/users/{seg(user_id)}")

    def users(self, name: str | None = None, email: str | None = None) -> Iterator[Json]:
        """The users (by name or email)."""
        return self._pages("/api/v1/users", name=name, email=email)

    def update_user(self, user_id: str, **changes: Any) -> Json:
        """Change a user's name, email, display_name or enabled."""
        return self._patch(f"/api/v1/users/{seg(user_id)}", changes)

    def delete_user(self, user_id: str) -> Json:
        """Delete a user."""
        return self._delete(f"/api/v1/users/{seg(user_id)}")

    def set_password(self, user_id: str, password: str, current_password: str | None = None) -> Json:
        """A user's new password (current_password when users change their own)."""
        return self._post(f"/api/v1/users/{seg(user_id)}/password",
                          fields(password=password, current_password=current_password))

    def create_service_account(self, name: str, project_id: str | None = None, org_id: str | None = None,
                               **more: Any) -> Json:
        """A service account (its client secret is in the answer, once)."""
        return self._post("/api/v1/service-accounts", fields(name=name, project_id=project_id, org_id=org_id,
                                                             **more))

    def service_accounts(self, project_id: str | None = None, org_id: str | None = None) -> Iterator[Json]:
        """The service accounts the token sees."""
        return self._pages("/api/v1/service-accounts", project_id=project_id, org_id=org_id)

    def delete_service_account(self, service_account_id: str) -> Json:
        """Delete a service account."""
        return self._delete(f"/api/v1/service-accounts/{seg(service_account_id)}")

    def create_role(self, name: str, permissions: list[str], description: str | None = None) -> Json:
        """A custom role (the operator's)."""
        return self._post("/api/v1/roles", fields(name=name, permissions=permissions, description=description))

    def get_role(self, name: str) -> Json:
        """One role."""
        return self._get(f"/api/v1/roles/{seg(name)}")

    def roles(self, builtin: bool | None = None) -> Iterator[Json]:
        """The roles."""
        return self._pages("/api/v1/roles", builtin=builtin)

    def delete_role(self, name: str) -> Json:
        """Delete a custom role."""
        return self._delete(f"/api/v1/roles/{seg(name)}")

    def create_binding(self, principal: str, role: str, scope: Json) -> Json:
        """Give principal (`user:<id>`, `service_account:<id>`) role on scope ({"type": ..., ...})."""
        return self._post("/api/v1/bindings", {"principal": principal, "role": role, "scope": scope})

    def bindings(self, **params: Any) -> Iterator[Json]:
        """The bindings in the token's scope (filtered by principal, role, ...)."""
        return self._pages("/api/v1/bindings", **params)

    def delete_binding(self, binding_id: str) -> Json:
        """Delete a binding."""
        return self._delete(f"/api/v1/bindings/{seg(binding_id)}")

    def authorize(self, action: str, resource: Json | None = None, **more: Any) -> Json:
        """Whether the token may do action (on resource)."""
        return self._post("/api/v1/authorize", fields(action=action, resource=resource, **more))

    def audit(self, **params: Any) -> Iterator[Json]:
        """IAM's audit log (the operator's)."""
        return self._pages("/api/v1/audit", **params)
