"""IAM's REST adapter: JSON in, `await core.x(...)`, JSON out. Every rule lives in the core."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from photoncloud.common import auth, envelope, paging
from photoncloud.common.auth import OPERATOR, PUBLIC, TENANT
from photoncloud.common.models import Body, Query, Result
from photoncloud.common.rest import RouteTable, json_response

from . import core
from .core import Caller, IamCore, view

V1 = "photoncloud.iam.v1."
ORGS, PROJECTS, USERS = V1 + "Organizations/", V1 + "Projects/", V1 + "Users/"
SERVICE_ACCOUNTS, ROLES, BINDINGS = V1 + "ServiceAccounts/", V1 + "Roles/", V1 + "Bindings/"
TOKENS, AUTHORIZATION, AUDIT = V1 + "Tokens/", V1 + "Authorization/", V1 + "Audit/"


# --- query parameters and bodies -----------------------------------------------------------------


class ListQuery(Query):
    """A page of a listing."""

    page_size: int = Field(0, description=f"items per page (default {paging.DEFAULT_PAGE_SIZE}, "
                                          f"at most {paging.MAX_PAGE_SIZE})")
    page_token: str = Field("", description="next_page_token of the previous page")


class OrgsQuery(ListQuery):
    name: str = ""


class ProjectsQuery(ListQuery):
    org_id: str = ""
    name: str = ""


class UsersQuery(ListQuery):
    name: str = ""
    email: str = ""
    enabled: bool | None = None


class ServiceAccountsQuery(ListQuery):
    org_id: str = ""
    project_id: str = ""
    name: str = ""


class RolesQuery(ListQuery):
    builtin: bool | None = None


class BindingsQuery(ListQuery):
    principal: str = Field("", description="user:<id> or serviceaccount:<id>")
    role: str = ""
    org_id: str = Field("", description="bindings on this org and on its projects")
    project_id: str = ""
    scope_type: str = Field("", description="system, org or project")


class AuditQuery(ListQuery):
    principal: str = ""
    action: str = Field("", description="an action (iam.users.create) or a dotted prefix of actions (iam.users)")
    since: str = Field("", description="RFC 3339: events at or after this time")
    until: str = Field("", description="RFC 3339: events before this time")


class RevocationsQuery(Query):
    since: int = Field(0, description="the cursor of the previous answer (0: from the start)")


class OrgCreate(Body):
    name: str
    display_name: str = ""
    description: str = ""


class OrgUpdate(Body):
    """The fields to change (absent or null: unchanged)."""

    name: str | None = None
    display_name: str | None = None
    description: str | None = None


class ProjectCreate(Body):
    org_id: str
    name: str
    display_name: str = ""
    description: str = ""


class ProjectUpdate(OrgUpdate):
    """The fields to change (absent or null: unchanged)."""


class UserCreate(Body):
    name: str
    password: str = Field(description="12 to 256 characters, not the user name")
    email: str = ""
    display_name: str = ""
    enabled: bool = True


class UserUpdate(Body):
    """The fields to change (absent or null: unchanged); disabling revokes the user's tokens."""

    name: str | None = None
    email: str | None = None
    display_name: str | None = None
    enabled: bool | None = None


class PasswordBody(Body):
    password: str
    current_password: str = Field("", description="required when users change their own password")


class ServiceAccountCreate(Body):
    org_id: str = Field("", description="the owning org (may be left out when project_id is given)")
    project_id: str = Field("", description="empty: the account belongs to the org itself")
    name: str
    display_name: str = ""
    description: str = ""


class ServiceAccountUpdate(Body):
    """The fields to change (absent or null: unchanged); disabling revokes the account's tokens."""

    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    enabled: bool | None = None


class RoleCreate(Body):
    name: str
    description: str = ""
    permissions: list[str] = Field(description="service:resource:verb, `*` allowed for any segment")


class RoleUpdate(Body):
    """The fields to change (absent or null: unchanged)."""

    description: str | None = None
    permissions: list[str] | None = None


class ScopeIn(Body):
    type: Literal["system", "org", "project"]
    org_id: str = ""
    project_id: str = ""


class BindingCreate(Body):
    principal: str = Field(description="user:<id> or serviceaccount:<id>")
    role: str
    scope: ScopeIn


class TokenScopeIn(Body):
    org_id: str = ""
    project_id: str = ""


class TokenBody(Body):
    grant_type: str = Field(description="password, client_credentials or refresh_token")
    username: str = ""
    password: str = ""
    client_id: str = Field("", description="client_credentials: the service account's id")
    client_secret: str = ""
    refresh_token: str = ""
    scope: TokenScopeIn | None = Field(None, description="absent: the system scope (or the refresh token's)")


class VerifyBody(Body):
    token: str


class ResourceIn(Body):
    org_id: str = ""
    project_id: str = ""


class AuthorizeBody(Body):
    principal: str = Field(description="user:<id> or serviceaccount:<id>")
    action: str = Field(description="a permission, e.g. compute:instances:create")
    resource: ResourceIn = Field(default_factory=ResourceIn, description="absent: the system as a whole")
    context: dict[str, Any] = Field(default_factory=dict, description="free attributes (not evaluated yet)")


class BatchAuthorizeBody(Body):
    requests: list[AuthorizeBody]


# --- responses -----------------------------------------------------------------------------------


class ScopeOut(Result):
    type: str
    org_id: str
    project_id: str


class OrgOut(Result):
    id: str
    name: str
    display_name: str
    description: str
    created_at: str
    updated_at: str


class ProjectOut(OrgOut):
    org_id: str


class UserOut(Result):
    id: str
    name: str
    email: str
    display_name: str
    enabled: bool
    created_at: str
    updated_at: str
    password_changed_at: str


class ServiceAccountOut(Result):
    id: str
    org_id: str
    project_id: str
    name: str
    display_name: str
    description: str
    enabled: bool
    created_at: str
    updated_at: str
    secret_rotated_at: str


class CredentialsOut(Result):
    """A service account with its secret: shown this once only."""

    service_account: ServiceAccountOut
    client_id: str
    client_secret: str


class RoleOut(Result):
    name: str
    description: str
    permissions: list[str]
    builtin: bool
    created_at: str
    updated_at: str


class BindingOut(Result):
    id: str
    principal: str
    role: str
    scope: ScopeOut
    created_at: str


class OrgList(Result):
    items: list[OrgOut]
    next_page_token: str


class ProjectList(Result):
    items: list[ProjectOut]
    next_page_token: str


class UserList(Result):
    items: list[UserOut]
    next_page_token: str


class ServiceAccountList(Result):
    items: list[ServiceAccountOut]
    next_page_token: str


class RoleList(Result):
    items: list[RoleOut]
    next_page_token: str


class BindingList(Result):
    items: list[BindingOut]
    next_page_token: str


class DeletedOut(Result):
    id: str
    deleted_bindings: int = Field(description="bindings removed with the resource")


class TokenOut(Result):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str | None = Field(description="null for client_credentials")
    refresh_expires_in: int
    scope: ScopeOut
    roles: list[str]


class RevokeOut(Result):
    revoked_token_ids: list[str]


class ClaimsOut(Result):
    iss: str
    aud: str
    sub: str
    name: str
    iat: int
    nbf: int
    exp: int
    jti: str
    scope: ScopeOut
    roles: list[str]
    permissions: list[str]


class VerifyOut(Result):
    active: bool
    claims: ClaimsOut | None = Field(None, description="only when active")


class RevocationOut(Result):
    token_id: str
    expires_at: int = Field(description="Unix seconds")


class RevocationsOut(Result):
    items: list[RevocationOut]
    cursor: int


class SigningKeyOut(Result):
    kid: str
    alg: str
    status: str = Field(description="ACTIVE, RETIRED or EXPIRED")
    created_at: str
    retired_at: str
    expires_at: str


class SigningKeyList(Result):
    items: list[SigningKeyOut]


class DecisionOut(Result):
    allowed: bool
    reason: str
    matched_binding: str
    matched_role: str


class BatchDecisionOut(Result):
    results: list[DecisionOut]


class AuditEventOut(Result):
    id: int
    time: str
    principal: str
    action: str
    target: str
    outcome: str = Field(description="SUCCESS or FAILURE")
    request_id: str
    client_address: str
    details: dict[str, Any]


class AuditList(Result):
    items: list[AuditEventOut]
    next_page_token: str


# --- conversions ---------------------------------------------------------------------------------


def _caller(request: web.Request) -> Caller:
    """The authenticated caller of the request being served."""
    return Caller(auth.caller(), request.remote or "")


def _anonymous(request: web.Request) -> Caller:
    """The caller of a public route: known only by its address."""
    return Caller(None, request.remote or "")


def _set(body: Body) -> dict[str, Any]:
    """The fields a PATCH body gives (null counts as not given)."""
    return {name: value for name, value in body.model_dump(exclude_unset=True).items() if value is not None}


def _page(page: core.Page, now: float | None = None) -> dict[str, Any]:
    return envelope.page([view(item, now) for item in page.items], page.next_page_token)


def _token(issued: core.IssuedToken) -> dict[str, Any]:
    data = view(issued)
    data["refresh_token"] = data["refresh_token"] or None
    return data


def _question(body: AuthorizeBody) -> core.Question:
    return core.Question(body.principal, body.action, body.resource.org_id, body.resource.project_id, body.context)


def routes(iam: IamCore) -> RouteTable:
    """IAM's REST routes over iam."""
    table = RouteTable()

    # --- organizations ---

    @table.post("/api/v1/orgs", "Create an organization", body=OrgCreate, response=OrgOut,
                rpc=ORGS + "CreateOrganization", permission=core.ORGS_MANAGE, who=OPERATOR)
    async def create_org(request: web.Request, body: OrgCreate) -> dict:
        return view(await iam.create_org(_caller(request), body.name, body.display_name, body.description))

    @table.get("/api/v1/orgs", "List the organizations in the token's scope", query=OrgsQuery, response=OrgList,
               rpc=ORGS + "ListOrganizations", permission=core.ORGS_READ, who=TENANT)
    async def list_orgs(request: web.Request, query: OrgsQuery) -> dict:
        return _page(await iam.list_orgs(_caller(request), query.name, query.page_size, query.page_token))

    @table.get("/api/v1/orgs/{org_id}", "Read an organization", response=OrgOut,
               rpc=ORGS + "GetOrganization", permission=core.ORGS_READ, who=TENANT)
    async def get_org(request: web.Request, org_id: str) -> dict:
        return view(await iam.get_org(_caller(request), org_id))

    @table.patch("/api/v1/orgs/{org_id}", "Change an organization's fields", body=OrgUpdate, response=OrgOut,
                 rpc=ORGS + "UpdateOrganization", permission=core.ORGS_MANAGE, who=TENANT)
    async def update_org(request: web.Request, org_id: str, body: OrgUpdate) -> dict:
        return view(await iam.update_org(_caller(request), org_id, _set(body)))

    @table.delete("/api/v1/orgs/{org_id}", "Delete an organization without projects", response=DeletedOut,
                  rpc=ORGS + "DeleteOrganization", permission=core.ORGS_MANAGE, who=OPERATOR)
    async def delete_org(request: web.Request, org_id: str) -> dict:
        return view(await iam.delete_org(_caller(request), org_id))

    # --- projects ---

    @table.post("/api/v1/projects", "Create a project in an organization", body=ProjectCreate,
                response=ProjectOut, rpc=PROJECTS + "CreateProject", permission=core.PROJECTS_MANAGE, who=TENANT)
    async def create_project(request: web.Request, body: ProjectCreate) -> dict:
        return view(await iam.create_project(_caller(request), body.org_id, body.name, body.display_name,
                                             body.description))

    @table.get("/api/v1/projects", "List the projects in the token's scope", query=ProjectsQuery,
               response=ProjectList, rpc=PROJECTS + "ListProjects", permission=core.PROJECTS_READ, who=TENANT)
    async def list_projects(request: web.Request, query: ProjectsQuery) -> dict:
        return _page(await iam.list_projects(_caller(request), query.org_id, query.name, query.page_size,
                                             query.page_token))

    @table.get("/api/v1/projects/{project_id}", "Read a project", response=ProjectOut,
               rpc=PROJECTS + "GetProject", permission=core.PROJECTS_READ, who=TENANT)
    async def get_project(request: web.Request, project_id: str) -> dict:
        return view(await iam.get_project(_caller(request), project_id))

    @table.patch("/api/v1/projects/{project_id}", "Change a project's fields", body=ProjectUpdate,
                 response=ProjectOut, rpc=PROJECTS + "UpdateProject", permission=core.PROJECTS_MANAGE, who=TENANT)
    async def update_project(request: web.Request, project_id: str, body: ProjectUpdate) -> dict:
        return view(await iam.update_project(_caller(request), project_id, _set(body)))

    @table.delete("/api/v1/projects/{project_id}", "Delete a project and its bindings", response=DeletedOut,
                  rpc=PROJECTS + "DeleteProject", permission=core.PROJECTS_MANAGE, who=TENANT)
    async def delete_project(request: web.Request, project_id: str) -> dict:
        return view(await iam.delete_project(_caller(request), project_id))

    # --- users ---

    @table.post("/api/v1/users", "Create a user", body=UserCreate, response=UserOut,
                rpc=USERS + "CreateUser", permission=core.USERS_MANAGE, who=OPERATOR)
    async def create_user(request: web.Request, body: UserCreate) -> dict:
        return view(await iam.create_user(_caller(request), body.name, body.password, body.email,
                                          body.display_name, body.enabled))

    @table.get("/api/v1/users", "List the users the token can see", query=UsersQuery, response=UserList,
               rpc=USERS + "ListUsers", permission=core.USERS_READ, who=TENANT)
    async def list_users(request: web.Request, query: UsersQuery) -> dict:
        return _page(await iam.list_users(_caller(request), query.name, query.email, query.enabled,
                                          query.page_size, query.page_token))

    # Before /users/{user_id}, which would match "me" too. Any valid token may read its own user.
    @table.get("/api/v1/users/me", "Read the user the token names", response=UserOut,
               rpc=USERS + "GetCurrentUser", who=TENANT)
    async def get_current_user(request: web.Request) -> dict:
        return view(await iam.current_user(_caller(request)))

    @table.get("/api/v1/users/{user_id}", "Read a user", response=UserOut, rpc=USERS + "GetUser",
               permission=core.USERS_READ, who=TENANT)
    async def get_user(request: web.Request, user_id: str) -> dict:
        return view(await iam.get_user(_caller(request), user_id))

    @table.patch("/api/v1/users/{user_id}", "Change a user's fields", body=UserUpdate, response=UserOut,
                 rpc=USERS + "UpdateUser", permission=core.USERS_MANAGE, who=OPERATOR)
    async def update_user(request: web.Request, user_id: str, body: UserUpdate) -> dict:
        return view(await iam.update_user(_caller(request), user_id, _set(body)))

    @table.delete("/api/v1/users/{user_id}", "Delete a user, their bindings and sessions", response=DeletedOut,
                  rpc=USERS + "DeleteUser", permission=core.USERS_MANAGE, who=OPERATOR)
    async def delete_user(request: web.Request, user_id: str) -> dict:
        return view(await iam.delete_user(_caller(request), user_id))

    # Any valid token: users change their own password; administrators reset anyone's (the core decides).
    @table.post("/api/v1/users/{user_id}/password", "Change or reset a user's password", body=PasswordBody,
                response=UserOut, rpc=USERS + "SetPassword", who=TENANT)
    async def set_password(request: web.Request, user_id: str, body: PasswordBody) -> dict:
        return view(await iam.set_password(_caller(request), user_id, body.password, body.current_password))

    # --- service accounts ---

    @table.post("/api/v1/service-accounts", "Create a service account; its secret is shown once",
                body=ServiceAccountCreate, response=CredentialsOut,
                rpc=SERVICE_ACCOUNTS + "CreateServiceAccount", permission=core.SERVICE_ACCOUNTS_MANAGE, who=TENANT)
    async def create_service_account(request: web.Request, body: ServiceAccountCreate) -> dict:
        return view(await iam.create_service_account(_caller(request), body.org_id, body.name, body.project_id,
                                                     body.display_name, body.description))

    @table.get("/api/v1/service-accounts", "List the service accounts in the token's scope",
               query=ServiceAccountsQuery, response=ServiceAccountList,
               rpc=SERVICE_ACCOUNTS + "ListServiceAccounts", permission=core.SERVICE_ACCOUNTS_READ, who=TENANT)
    async def list_service_accounts(request: web.Request, query: ServiceAccountsQuery) -> dict:
        return _page(await iam.list_service_accounts(_caller(request), query.org_id, query.project_id, query.name,
                                                     query.page_size, query.page_token))

    @table.get("/api/v1/service-accounts/{service_account_id}", "Read a service account",
               response=ServiceAccountOut, rpc=SERVICE_ACCOUNTS + "GetServiceAccount",
               permission=core.SERVICE_ACCOUNTS_READ, who=TENANT)
    async def get_service_account(request: web.Request, service_account_id: str) -> dict:
        return view(await iam.get_service_account(_caller(request), service_account_id))

    @table.patch("/api/v1/service-accounts/{service_account_id}", "Change a service account's fields",
                 body=ServiceAccountUpdate, response=ServiceAccountOut,
                 rpc=SERVICE_ACCOUNTS + "UpdateServiceAccount", permission=core.SERVICE_ACCOUNTS_MANAGE, who=TENANT)
    async def update_service_account(request: web.Request, service_account_id: str,
                                     body: ServiceAccountUpdate) -> dict:
        return view(await iam.update_service_account(_caller(request), service_account_id, _set(body)))

    @table.delete("/api/v1/service-accounts/{service_account_id}", "Delete a service account and its bindings",
                  response=DeletedOut, rpc=SERVICE_ACCOUNTS + "DeleteServiceAccount",
                  permission=core.SERVICE_ACCOUNTS_MANAGE, who=TENANT)
    async def delete_service_account(request: web.Request, service_account_id: str) -> dict:
        return view(await iam.delete_service_account(_caller(request), service_account_id))

    @table.post("/api/v1/service-accounts/{service_account_id}/secret",
                "Replace a service account's secret; the new one is shown once", response=CredentialsOut,
                rpc=SERVICE_ACCOUNTS + "RotateServiceAccountSecret", permission=core.SERVICE_ACCOUNTS_MANAGE,
                who=TENANT)
    async def rotate_secret(request: web.Request, service_account_id: str) -> dict:
        return view(await iam.rotate_secret(_caller(request), service_account_id))

    # --- roles ---

    @table.post("/api/v1/roles", "Create a custom role", body=RoleCreate, response=RoleOut,
                rpc=ROLES + "CreateRole", permission=core.ROLES_MANAGE, who=OPERATOR)
    async def create_role(request: web.Request, body: RoleCreate) -> dict:
        return view(await iam.create_role(_caller(request), body.name, body.permissions, body.description))

    @table.get("/api/v1/roles", "List roles, built-in and custom", query=RolesQuery, response=RoleList,
               rpc=ROLES + "ListRoles", permission=core.ROLES_READ, who=TENANT)
    async def list_roles(request: web.Request, query: RolesQuery) -> dict:
        return _page(await iam.list_roles(_caller(request), query.builtin, query.page_size, query.page_token))

    @table.get("/api/v1/roles/{name}", "Read a role", response=RoleOut, rpc=ROLES + "GetRole",
               permission=core.ROLES_READ, who=TENANT)
    async def get_role(request: web.Request, name: str) -> dict:
        return view(await iam.get_role(_caller(request), name))

    @table.patch("/api/v1/roles/{name}", "Change a custom role", body=RoleUpdate, response=RoleOut,
                 rpc=ROLES + "UpdateRole", permission=core.ROLES_MANAGE, who=OPERATOR)
    async def update_role(request: web.Request, name: str, body: RoleUpdate) -> dict:
        return view(await iam.update_role(_caller(request), name, _set(body)))

    @table.delete("/api/v1/roles/{name}", "Delete an unused custom role", response=DeletedOut,
                  rpc=ROLES + "DeleteRole", permission=core.ROLES_MANAGE, who=OPERATOR)
    async def delete_role(request: web.Request, name: str) -> dict:
        return view(await iam.delete_role(_caller(request), name))

    # --- bindings ---

    @table.post("/api/v1/bindings", "Bind a principal to a role on a scope", body=BindingCreate,
                response=BindingOut, rpc=BINDINGS + "CreateBinding", permission=core.BINDINGS_MANAGE, who=TENANT)
    async def create_binding(request: web.Request, body: BindingCreate) -> dict:
        return view(await iam.create_binding(_caller(request), body.principal, body.role, body.scope.type,
                                             body.scope.org_id, body.scope.project_id))

    @table.get("/api/v1/bindings", "List the bindings in the token's scope", query=BindingsQuery,
               response=BindingList, rpc=BINDINGS + "ListBindings", permission=core.BINDINGS_READ, who=TENANT)
    async def list_bindings(request: web.Request, query: BindingsQuery) -> dict:
        return _page(await iam.list_bindings(_caller(request), query.principal, query.role, query.org_id,
                                             query.project_id, query.scope_type, query.page_size, query.page_token))

    @table.get("/api/v1/bindings/{binding_id}", "Read a binding", response=BindingOut,
               rpc=BINDINGS + "GetBinding", permission=core.BINDINGS_READ, who=TENANT)
    async def get_binding(request: web.Request, binding_id: str) -> dict:
        return view(await iam.get_binding(_caller(request), binding_id))

    @table.delete("/api/v1/bindings/{binding_id}", "Delete a binding", response=DeletedOut,
                  rpc=BINDINGS + "DeleteBinding", permission=core.BINDINGS_MANAGE, who=TENANT)
    async def delete_binding(request: web.Request, binding_id: str) -> dict:
        return view(await iam.delete_binding(_caller(request), binding_id))

    # --- tokens ---

    # raw: tokens are never cached (RFC 6749 section 5.1).
    @table.post("/api/v1/auth/token", "Issue a token: password, client_credentials or refresh_token grant",
                body=TokenBody, response=TokenOut, rpc=TOKENS + "IssueToken", who=PUBLIC, raw=True)
    async def issue_token(request: web.Request, body: TokenBody) -> web.Response:
        scope = body.scope or TokenScopeIn()
        grant = core.Grant(body.grant_type, body.username, body.password, body.client_id, body.client_secret,
                           body.refresh_token, scope.org_id, scope.project_id)
        issued = await iam.issue_token(_anonymous(request), grant)
        response = json_response(envelope.success(_token(issued)))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    @table.post("/api/v1/auth/revoke", "Log out: revoke this token and every token of its session",
                response=RevokeOut, rpc=TOKENS + "RevokeToken", who=TENANT)
    async def revoke_token(request: web.Request) -> dict:
        return {"revoked_token_ids": await iam.revoke_token(_caller(request))}

    @table.post("/api/v1/auth/verify", "Introspect a token: its claims, or active=false", body=VerifyBody,
                response=VerifyOut, rpc=TOKENS + "VerifyToken", who=PUBLIC)
    async def verify_token(request: web.Request, body: VerifyBody) -> dict:
        claims = await iam.verify_token(body.token)
        return {"active": True, "claims": claims} if claims is not None else {"active": False}

    @table.get("/api/v1/auth/revocations", "Revoked, unexpired token IDs after a cursor",
               query=RevocationsQuery, response=RevocationsOut, rpc=TOKENS + "ListRevocations", who=PUBLIC)
    async def list_revocations(request: web.Request, query: RevocationsQuery) -> dict:
        items, cursor = await iam.revocations(query.since)
        return {"items": [view(item) for item in items], "cursor": cursor}

    # The well-known documents are plain JSON, not enveloped: JWT and OIDC libraries read them as they are.
    @table.get("/.well-known/jwks.json", "The public signing keys (JWK set)", rpc=TOKENS + "GetJwks",
               who=PUBLIC, raw=True)
    async def get_jwks(request: web.Request) -> web.Response:
        return json_response({"keys": iam.jwks()})

    @table.get("/.well-known/openid-configuration", "OpenID Connect discovery",
               rpc=TOKENS + "GetOpenIdConfiguration", who=PUBLIC, raw=True)
    async def get_openid_configuration(request: web.Request) -> web.Response:
        return json_response(iam.openid_configuration())

    @table.post("/api/v1/auth/keys/rotate", "Make a new signing key; the old one verifies until its tokens expire",
                response=SigningKeyOut, rpc=TOKENS + "RotateSigningKey", permission=core.KEYS_MANAGE, who=OPERATOR)
    async def rotate_signing_key(request: web.Request) -> dict:
        return view(await iam.rotate_signing_key(_caller(request)), iam.clock())

    @table.get("/api/v1/auth/keys", "List the signing keys and their status", response=SigningKeyList,
               rpc=TOKENS + "ListSigningKeys", permission=core.KEYS_READ, who=OPERATOR)
    async def list_signing_keys(request: web.Request) -> dict:
        return {"items": [view(key, iam.clock()) for key in await iam.list_signing_keys(_caller(request))]}

    # --- authorization ---

    @table.post("/api/v1/authorize", "May a principal do an action on a resource?", body=AuthorizeBody,
                response=DecisionOut, rpc=AUTHORIZATION + "Authorize", permission=core.AUTHORIZE_READ, who=TENANT)
    async def authorize(request: web.Request, body: AuthorizeBody) -> dict:
        return view(await iam.authorize(_caller(request), _question(body)))

    @table.post("/api/v1/authorize/batch", "Up to 100 authorization questions at once", body=BatchAuthorizeBody,
                response=BatchDecisionOut, rpc=AUTHORIZATION + "BatchAuthorize", permission=core.AUTHORIZE_READ,
                who=TENANT)
    async def authorize_batch(request: web.Request, body: BatchAuthorizeBody) -> dict:
        decisions = await iam.authorize_batch(_caller(request), [_question(q) for q in body.requests])
        return {"results": [view(d) for d in decisions]}

    # --- audit ---

    @table.get("/api/v1/audit", "Audit events, newest first", query=AuditQuery, response=AuditList,
               rpc=AUDIT + "ListAuditEvents", permission=core.AUDIT_READ, who=OPERATOR)
    async def list_audit(request: web.Request, query: AuditQuery) -> dict:
        return _page(await iam.list_audit(_caller(request), query.principal, query.action, query.since,
                                          query.until, query.page_size, query.page_token))

    return table
