"""IAM's gRPC adapter: protobuf in, `await core.x(...)`, protobuf out (built by convert.py). REST is
served by the same servicers, through the routes the contract binds (rest_api.py writes the few it
cannot make). Every rule lives in the core."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from photoncloud.common import auth
from photoncloud.common.messages import optional
from photoncloud.common.server import GrpcService, grpc_services
from photoncloud.iam.v1 import iam_pb2 as pb
from photoncloud.iam.v1 import iam_pb2_grpc as pb_grpc

from . import convert
from .core import Caller, IamCore

# A servicer's context: grpc.aio.ServicerContext, or the REST gateway's RestContext.
Context = Any


def peer_address(peer: str) -> str:
    """The client's address of a gRPC peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000")."""
    kind, _, rest = unquote(peer or "").partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rpartition(":")[0].strip("[]")
    return rest or kind


def _caller(context: Context) -> Caller:
    """The authenticated caller: its principal and the client's address."""
    return Caller(auth.caller(), peer_address(context.peer()))


def _anonymous(context: Context) -> Caller:
    """The caller of a public method: known only by its address."""
    return Caller(None, peer_address(context.peer()))


class OrganizationsServicer(pb_grpc.OrganizationsServicer):
    """photoncloud.iam.v1.Organizations over the core."""

    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateOrganization(self, request: pb.CreateOrganizationRequest, context: Context) -> pb.Organization:
        return convert.organization(await self.iam.create_org(_caller(context), request.name, request.display_name,
                                                              request.description))

    async def GetOrganization(self, request: pb.GetOrganizationRequest, context: Context) -> pb.Organization:
        return convert.organization(await self.iam.get_org(_caller(context), request.org_id))

    async def ListOrganizations(self, request: pb.ListOrganizationsRequest,
                                context: Context) -> pb.ListOrganizationsResponse:
        page = await self.iam.list_orgs(_caller(context), request.name, request.page_size, request.page_token)
        return pb.ListOrganizationsResponse(items=[convert.organization(o) for o in page.items],
                                            next_page_token=page.next_page_token)

    async def UpdateOrganization(self, request: pb.UpdateOrganizationRequest, context: Context) -> pb.Organization:
        changes = convert.changes(request, "name", "display_name", "description")
        return convert.organization(await self.iam.update_org(_caller(context), request.org_id, changes))

    async def DeleteOrganization(self, request: pb.DeleteOrganizationRequest, context: Context) -> pb.DeleteResponse:
        return convert.deleted(await self.iam.delete_org(_caller(context), request.org_id))


class ProjectsServicer(pb_grpc.ProjectsServicer):
    """photoncloud.iam.v1.Projects over the core."""

    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateProject(self, request: pb.CreateProjectRequest, context: Context) -> pb.Project:
        return convert.project(await self.iam.create_project(_caller(context), request.org_id, request.name,
                                                             request.display_name, request.description))

    async def GetProject(self, request: pb.GetProjectRequest, context: Context) -> pb.Project:
        return convert.project(await self.iam.get_project(_caller(context), request.project_id))

    async def ListProjects(self, request: pb.ListProjectsRequest, context: Context) -> pb.ListProjectsResponse:
        page = await self.iam.list_projects(_caller(context), request.org_id, request.name, request.page_size,
                                            request.page_token)
        return pb.ListProjectsResponse(items=[convert.project(p) for p in page.items],
                                       next_page_token=page.next_page_token)

    async def UpdateProject(self, request: pb.UpdateProjectRequest, context: Context) -> pb.Project:
        changes = convert.changes(request, "name", "display_name", "description")
        return convert.project(await self.iam.update_project(_caller(context), request.project_id, changes))

    async def DeleteProject(self, request: pb.DeleteProjectRequest, context: Context) -> pb.DeleteResponse:
        return convert.deleted(await self.iam.delete_project(_caller(context), request.project_id))


class UsersServicer(pb_grpc.UsersServicer):
    """photoncloud.iam.v1.Users over the core."""

    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateUser(self, request: pb.CreateUserRequest, context: Context) -> pb.User:
        return convert.user(await self.iam.create_user(_caller(context), request.name, request.password,
                                                       request.email, request.display_name,
                                                       optional(request, "enabled", True)))

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.User:
        return convert.user(await self.iam.get_user(_caller(context), request.user_id))

    async def GetCurrentUser(self, request: pb.GetCurrentUserRequest, context: Context) -> pb.User:
        return convert.user(await self.iam.current_user(_caller(context)))

    async def ListUsers(self, request: pb.ListUsersRequest, context: Context) -> pb.ListUsersResponse:
        page = await self.iam.list_users(_caller(context), request.name, request.email,
                                         optional(request, "enabled", None), request.page_size,
                                         request.page_token)
        return pb.ListUsersResponse(items=[convert.user(u) for u in page.items], next_page_token=page.next_page_token)

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: Context) -> pb.User:
        changes = convert.changes(request, "name", "email", "display_name", "enabled")
        return convert.user(await self.iam.update_user(_caller(context), request.user_id, changes))

    async def DeleteUser(self, request: pb.DeleteUserRequest, context: Context) -> pb.DeleteResponse:
        return convert.deleted(await self.iam.delete_user(_caller(context), request.user_id))

    async def SetPassword(self, request: pb.SetPasswordRequest, context: Context) -> pb.User:
        return convert.user(await self.iam.set_password(_caller(context), request.user_id, request.password,
                                                        request.current_password))


class ServiceAccountsServicer(pb_grpc.ServiceAccountsServicer):
    """photoncloud.iam.v1.ServiceAccounts over the core."""

    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateServiceAccount(self, request: pb.CreateServiceAccountRequest,
                                   context: Context) -> pb.ServiceAccountCredentials:
        return convert.credentials(await self.iam.create_service_account(
            _caller(context), request.org_id, request.name, request.project_id, request.display_name,
            request.description, list(request.redirect_uris), request.public_client))

    async def GetServiceAccount(self, request: pb.GetServiceAccountRequest, context: Context) -> pb.ServiceAccount:
        return convert.service_account(await self.iam.get_service_account(_caller(context),
                                                                          request.service_account_id))

    async def ListServiceAccounts(self, request: pb.ListServiceAccountsRequest,
                                  context: Context) -> pb.ListServiceAccountsResponse:
        page = await self.iam.list_service_accounts(_caller(context), request.org_id, request.project_id,
                                                    request.name, request.page_size, request.page_token)
        return pb.ListServiceAccountsResponse(items=[convert.service_account(a) for a in page.items],
                                              next_page_token=page.next_page_token)

    async def UpdateServiceAccount(self, request: pb.UpdateServiceAccountRequest,
                                   context: Context) -> pb.ServiceAccount:
        changes = convert.service_account_changes(request)
        return convert.service_account(await self.iam.update_service_account(
            _caller(context), request.service_account_id, changes))

    async def DeleteServiceAccount(self, request: pb.DeleteServiceAccountRequest,
                                   context: Context) -> pb.DeleteResponse:
        return convert.deleted(await self.iam.delete_service_account(_caller(context), request.service_account_id))

    async def RotateServiceAccountSecret(self, request: pb.RotateServiceAccountSecretRequest,
                                         context: Context) -> pb.ServiceAccountCredentials:
        return convert.credentials(await self.iam.rotate_secret(_caller(context), request.service_account_id))


class RolesServicer(pb_grpc.RolesServicer):
    """photoncloud.iam.v1.Roles over the core."""

    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateRole(self, request: pb.CreateRoleRequest, context: Context) -> pb.Role:
        return convert.role(await self.iam.create_role(_caller(context), request.name, list(request.permissions),
                                                       request.description))

    async def GetRole(self, request: pb.GetRoleRequest, context: Context) -> pb.Role:
        return convert.role(await self.iam.get_role(_caller(context), request.name))

    async def ListRoles(self, request: pb.ListRolesRequest, context: Context) -> pb.ListRolesResponse:
        page = await self.iam.list_roles(_caller(context), optional(request, "builtin", None),
                                         request.page_size, request.page_token)
        return pb.ListRolesResponse(items=[convert.role(r) for r in page.items], next_page_token=page.next_page_token)

    async def UpdateRole(self, request: pb.UpdateRoleRequest, context: Context) -> pb.Role:
        return convert.role(await self.iam.update_role(_caller(context), request.name,
                                                       convert.role_changes(request)))

    async def DeleteRole(self, request: pb.DeleteRoleRequest, context: Context) -> pb.DeleteResponse:
        return convert.deleted(await self.iam.delete_role(_caller(context), request.name))


class BindingsServicer(pb_grpc.BindingsServicer):
    """photoncloud.iam.v1.Bindings over the core."""

    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateBinding(self, request: pb.CreateBindingRequest, context: Context) -> pb.Binding:
        scope = request.scope
        return convert.binding(await self.iam.create_binding(_caller(context), request.principal, request.role,
                                                             scope.type, scope.org_id, scope.project_id))

    async def GetBinding(self, request: pb.GetBindingRequest, context: Context) -> pb.Binding:
        return convert.binding(await self.iam.get_binding(_caller(context), request.binding_id))

    async def ListBindings(self, request: pb.ListBindingsRequest, context: Context) -> pb.ListBindingsResponse:
        page = await self.iam.list_bindings(_caller(context), request.principal, request.role, request.org_id,
                                            request.project_id, request.scope_type, request.page_size,
                                            request.page_token)
        return pb.ListBindingsResponse(items=[convert.binding(b) for b in page.items],
                                       next_page_token=page.next_page_token)

    async def DeleteBinding(self, request: pb.DeleteBindingRequest, context: Context) -> pb.DeleteResponse:
        return convert.deleted(await self.iam.delete_binding(_caller(context), request.binding_id))


class TokensServicer(pb_grpc.TokensServicer):
    """photoncloud.iam.v1.Tokens over the core."""

    def __init__(self, iam: IamCore):
        self.iam = iam

    async def IssueToken(self, request: pb.IssueTokenRequest, context: Context) -> pb.TokenResponse:
        return convert.issued_token(await self.iam.issue_token(_anonymous(context), convert.grant(request)))

    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Context) -> pb.RevokeTokenResponse:
        return pb.RevokeTokenResponse(revoked_token_ids=await self.iam.revoke_token(_caller(context)))

    async def VerifyToken(self, request: pb.VerifyTokenRequest, context: Context) -> pb.VerifyTokenResponse:
        claims = await self.iam.verify_token(request.token)
        if claims is None:
            return pb.VerifyTokenResponse(active=False)
        return pb.VerifyTokenResponse(active=True, claims=convert.claims(claims))

    async def ListRevocations(self, request: pb.ListRevocationsRequest,
                              context: Context) -> pb.ListRevocationsResponse:
        items, cursor = await self.iam.revocations(request.since)
        return pb.ListRevocationsResponse(items=[convert.revocation(r) for r in items], cursor=cursor)

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> pb.Jwks:
        return pb.Jwks(keys=[convert.jwk(key) for key in self.iam.jwks()])

    async def GetOpenIdConfiguration(self, request: pb.GetOpenIdConfigurationRequest,
                                     context: Context) -> pb.OpenIdConfiguration:
        # The message carries the fields the contract has; REST serves the whole document.
        fields = pb.OpenIdConfiguration.DESCRIPTOR.fields_by_name
        return pb.OpenIdConfiguration(**{k: v for k, v in self.iam.openid_configuration().items() if k in fields})

    async def RotateSigningKey(self, request: pb.RotateSigningKeyRequest, context: Context) -> pb.SigningKey:
        return convert.signing_key(await self.iam.rotate_signing_key(_caller(context)), self.iam.clock())

    async def ListSigningKeys(self, request: pb.ListSigningKeysRequest,
                              context: Context) -> pb.ListSigningKeysResponse:
        keys = await self.iam.list_signing_keys(_caller(context))
        now = self.iam.clock()
        return pb.ListSigningKeysResponse(items=[convert.signing_key(k, now) for k in keys])


class AuthorizationServicer(pb_grpc.AuthorizationServicer):
    """photoncloud.iam.v1.Authorization over the core."""

    def __init__(self, iam: IamCore):
        self.iam = iam

    async def Authorize(self, request: pb.AuthorizeRequest, context: Context) -> pb.AuthorizeResponse:
        return convert.decision(await self.iam.authorize(_caller(context), convert.question(request)))

    async def BatchAuthorize(self, request: pb.BatchAuthorizeRequest,
                             context: Context) -> pb.BatchAuthorizeResponse:
        decisions = await self.iam.authorize_batch(_caller(context), [convert.question(q) for q in request.requests])
        return pb.BatchAuthorizeResponse(results=[convert.decision(d) for d in decisions])


class AuditServicer(pb_grpc.AuditServicer):
    """photoncloud.iam.v1.Audit over the core."""

    def __init__(self, iam: IamCore):
        self.iam = iam

    async def ListAuditEvents(self, request: pb.ListAuditEventsRequest,
                              context: Context) -> pb.ListAuditEventsResponse:
        page = await self.iam.list_audit(_caller(context), request.principal, request.action, request.since,
                                         request.until, request.page_size, request.page_token)
        return pb.ListAuditEventsResponse(items=[convert.audit_event(e) for e in page.items],
                                          next_page_token=page.next_page_token)


def services(iam: IamCore) -> list[GrpcService]:
    """IAM's gRPC services over iam, each carrying its servicer (the REST gateway calls it too)."""
    return grpc_services(pb, pb_grpc, {
        "Organizations": OrganizationsServicer(iam), "Projects": ProjectsServicer(iam), "Users": UsersServicer(iam),
        "ServiceAccounts": ServiceAccountsServicer(iam), "Roles": RolesServicer(iam),
        "Bindings": BindingsServicer(iam), "Tokens": TokensServicer(iam),
        "Authorization": AuthorizationServicer(iam), "Audit": AuditServicer(iam),
    })
