"""IAM's gRPC adapter: protobuf in, `await core.x(...)`, protobuf out. Every rule lives in the core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import grpc
from google.protobuf import json_format, struct_pb2

from photoncloud.common import auth
from photoncloud.common.server import GrpcService
from photoncloud.iam.v1 import iam_pb2 as pb
from photoncloud.iam.v1 import iam_pb2_grpc as pb_grpc

from . import core
from .core import Caller, IamCore, view

Context = grpc.aio.ServicerContext


def peer_address(peer: str) -> str:
    """The client's address of a gRPC peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000")."""
    kind, _, rest = unquote(peer or "").partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rpartition(":")[0].strip("[]")
    return rest or kind


def _caller(context: Context) -> Caller:
    return Caller(auth.caller(), peer_address(context.peer()))


def _anonymous(context: Context) -> Caller:
    return Caller(None, peer_address(context.peer()))


def _set(message: Any, *names: str) -> dict[str, Any]:
    """The optional fields a request sets (its PATCH)."""
    return {name: getattr(message, name) for name in names if message.HasField(name)}


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(data)
    return message


def _audit_event(event: core.AuditEvent) -> pb.AuditEvent:
    data = view(event)
    return pb.AuditEvent(**{**data, "details": _struct(data["details"])})


def _question(m: pb.AuthorizeRequest) -> core.Question:
    context = json_format.MessageToDict(m.context) if m.HasField("context") else {}
    return core.Question(m.principal, m.action, m.resource.org_id, m.resource.project_id, context)


def _list(response: type, page: core.Page, convert: Callable[[Any], Any]) -> Any:
    return response(items=[convert(item) for item in page.items], next_page_token=page.next_page_token)


class OrganizationsServicer(pb_grpc.OrganizationsServicer):
    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateOrganization(self, request: pb.CreateOrganizationRequest, context: Context) -> pb.Organization:
        org = await self.iam.create_org(_caller(context), request.name, request.display_name, request.description)
        return pb.Organization(**view(org))

    async def GetOrganization(self, request: pb.GetOrganizationRequest, context: Context) -> pb.Organization:
        return pb.Organization(**view(await self.iam.get_org(_caller(context), request.org_id)))

    async def ListOrganizations(self, request: pb.ListOrganizationsRequest,
                                context: Context) -> pb.ListOrganizationsResponse:
        page = await self.iam.list_orgs(_caller(context), request.name, request.page_size, request.page_token)
        return _list(pb.ListOrganizationsResponse, page, lambda o: pb.Organization(**view(o)))

    async def UpdateOrganization(self, request: pb.UpdateOrganizationRequest, context: Context) -> pb.Organization:
        changes = _set(request, "name", "display_name", "description")
        return pb.Organization(**view(await self.iam.update_org(_caller(context), request.org_id, changes)))

    async def DeleteOrganization(self, request: pb.DeleteOrganizationRequest, context: Context) -> pb.DeleteResponse:
        return pb.DeleteResponse(**view(await self.iam.delete_org(_caller(context), request.org_id)))


class ProjectsServicer(pb_grpc.ProjectsServicer):
    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateProject(self, request: pb.CreateProjectRequest, context: Context) -> pb.Project:
        project = await self.iam.create_project(_caller(context), request.org_id, request.name,
                                                request.display_name, request.description)
        return pb.Project(**view(project))

    async def GetProject(self, request: pb.GetProjectRequest, context: Context) -> pb.Project:
        return pb.Project(**view(await self.iam.get_project(_caller(context), request.project_id)))

    async def ListProjects(self, request: pb.ListProjectsRequest, context: Context) -> pb.ListProjectsResponse:
        page = await self.iam.list_projects(_caller(context), request.org_id, request.name, request.page_size,
                                            request.page_token)
        return _list(pb.ListProjectsResponse, page, lambda p: pb.Project(**view(p)))

    async def UpdateProject(self, request: pb.UpdateProjectRequest, context: Context) -> pb.Project:
        changes = _set(request, "name", "display_name", "description")
        return pb.Project(**view(await self.iam.update_project(_caller(context), request.project_id, changes)))

    async def DeleteProject(self, request: pb.DeleteProjectRequest, context: Context) -> pb.DeleteResponse:
        return pb.DeleteResponse(**view(await self.iam.delete_project(_caller(context), request.project_id)))


class UsersServicer(pb_grpc.UsersServicer):
    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateUser(self, request: pb.CreateUserRequest, context: Context) -> pb.User:
        enabled = request.enabled if request.HasField("enabled") else True
        user = await self.iam.create_user(_caller(context), request.name, request.password, request.email,
                                          request.display_name, enabled)
        return pb.User(**view(user))

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.User:
        return pb.User(**view(await self.iam.get_user(_caller(context), request.user_id)))

    async def GetCurrentUser(self, request: pb.GetCurrentUserRequest, context: Context) -> pb.User:
        return pb.User(**view(await self.iam.current_user(_caller(context))))

    async def ListUsers(self, request: pb.ListUsersRequest, context: Context) -> pb.ListUsersResponse:
        enabled = request.enabled if request.HasField("enabled") else None
        page = await self.iam.list_users(_caller(context), request.name, request.email, enabled,
                                         request.page_size, request.page_token)
        return _list(pb.ListUsersResponse, page, lambda u: pb.User(**view(u)))

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: Context) -> pb.User:
        changes = _set(request, "name", "email", "display_name", "enabled")
        return pb.User(**view(await self.iam.update_user(_caller(context), request.user_id, changes)))

    async def DeleteUser(self, request: pb.DeleteUserRequest, context: Context) -> pb.DeleteResponse:
        return pb.DeleteResponse(**view(await self.iam.delete_user(_caller(context), request.user_id)))

    async def SetPassword(self, request: pb.SetPasswordRequest, context: Context) -> pb.User:
        user = await self.iam.set_password(_caller(context), request.user_id, request.password,
                                           request.current_password)
        return pb.User(**view(user))


def _credentials(credentials: core.Credentials) -> pb.ServiceAccountCredentials:
    data = view(credentials)
    return pb.ServiceAccountCredentials(service_account=pb.ServiceAccount(**data["service_account"]),
                                        client_id=data["client_id"], client_secret=data["client_secret"])


class ServiceAccountsServicer(pb_grpc.ServiceAccountsServicer):
    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateServiceAccount(self, request: pb.CreateServiceAccountRequest,
                                   context: Context) -> pb.ServiceAccountCredentials:
        credentials = await self.iam.create_service_account(_caller(context), request.org_id, request.name,
                                                            request.project_id, request.display_name,
                                                            request.description)
        return _credentials(credentials)

    async def GetServiceAccount(self, request: pb.GetServiceAccountRequest, context: Context) -> pb.ServiceAccount:
        account = await self.iam.get_service_account(_caller(context), request.service_account_id)
        return pb.ServiceAccount(**view(account))

    async def ListServiceAccounts(self, request: pb.ListServiceAccountsRequest,
                                  context: Context) -> pb.ListServiceAccountsResponse:
        page = await self.iam.list_service_accounts(_caller(context), request.org_id, request.project_id,
                                                    request.name, request.page_size, request.page_token)
        return _list(pb.ListServiceAccountsResponse, page, lambda a: pb.ServiceAccount(**view(a)))

    async def UpdateServiceAccount(self, request: pb.UpdateServiceAccountRequest,
                                   context: Context) -> pb.ServiceAccount:
        changes = _set(request, "name", "display_name", "description", "enabled")
        account = await self.iam.update_service_account(_caller(context), request.service_account_id, changes)
        return pb.ServiceAccount(**view(account))

    async def DeleteServiceAccount(self, request: pb.DeleteServiceAccountRequest,
                                   context: Context) -> pb.DeleteResponse:
        deleted = await self.iam.delete_service_account(_caller(context), request.service_account_id)
        return pb.DeleteResponse(**view(deleted))

    async def RotateServiceAccountSecret(self, request: pb.RotateServiceAccountSecretRequest,
                                         context: Context) -> pb.ServiceAccountCredentials:
        return _credentials(await self.iam.rotate_secret(_caller(context), request.service_account_id))


class RolesServicer(pb_grpc.RolesServicer):
    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateRole(self, request: pb.CreateRoleRequest, context: Context) -> pb.Role:
        role = await self.iam.create_role(_caller(context), request.name, list(request.permissions),
                                          request.description)
        return pb.Role(**view(role))

    async def GetRole(self, request: pb.GetRoleRequest, context: Context) -> pb.Role:
        return pb.Role(**view(await self.iam.get_role(_caller(context), request.name)))

    async def ListRoles(self, request: pb.ListRolesRequest, context: Context) -> pb.ListRolesResponse:
        builtin = request.builtin if request.HasField("builtin") else None
        page = await self.iam.list_roles(_caller(context), builtin, request.page_size, request.page_token)
        return _list(pb.ListRolesResponse, page, lambda r: pb.Role(**view(r)))

    async def UpdateRole(self, request: pb.UpdateRoleRequest, context: Context) -> pb.Role:
        changes = _set(request, "description")
        if request.HasField("permissions"):
            changes["permissions"] = list(request.permissions.items)
        return pb.Role(**view(await self.iam.update_role(_caller(context), request.name, changes)))

    async def DeleteRole(self, request: pb.DeleteRoleRequest, context: Context) -> pb.DeleteResponse:
        return pb.DeleteResponse(**view(await self.iam.delete_role(_caller(context), request.name)))


class BindingsServicer(pb_grpc.BindingsServicer):
    def __init__(self, iam: IamCore):
        self.iam = iam

    async def CreateBinding(self, request: pb.CreateBindingRequest, context: Context) -> pb.Binding:
        scope = request.scope
        binding = await self.iam.create_binding(_caller(context), request.principal, request.role, scope.type,
                                                scope.org_id, scope.project_id)
        return pb.Binding(**view(binding))

    async def GetBinding(self, request: pb.GetBindingRequest, context: Context) -> pb.Binding:
        return pb.Binding(**view(await self.iam.get_binding(_caller(context), request.binding_id)))

    async def ListBindings(self, request: pb.ListBindingsRequest, context: Context) -> pb.ListBindingsResponse:
        page = await self.iam.list_bindings(_caller(context), request.principal, request.role, request.org_id,
                                            request.project_id, request.scope_type, request.page_size,
                                            request.page_token)
        return _list(pb.ListBindingsResponse, page, lambda b: pb.Binding(**view(b)))

    async def DeleteBinding(self, request: pb.DeleteBindingRequest, context: Context) -> pb.DeleteResponse:
        return pb.DeleteResponse(**view(await self.iam.delete_binding(_caller(context), request.binding_id)))


class TokensServicer(pb_grpc.TokensServicer):
    def __init__(self, iam: IamCore):
        self.iam = iam

    async def IssueToken(self, request: pb.IssueTokenRequest, context: Context) -> pb.TokenResponse:
        grant = core.Grant(request.grant_type, request.username, request.password, request.client_id,
                           request.client_secret, request.refresh_token, request.scope.org_id,
                           request.scope.project_id)
        return pb.TokenResponse(**view(await self.iam.issue_token(_anonymous(context), grant)))

    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Context) -> pb.RevokeTokenResponse:
        return pb.RevokeTokenResponse(revoked_token_ids=await self.iam.revoke_token(_caller(context)))

    async def VerifyToken(self, request: pb.VerifyTokenRequest, context: Context) -> pb.VerifyTokenResponse:
        claims = await self.iam.verify_token(request.token)
        if claims is None:
            return pb.VerifyTokenResponse(active=False)
        fields = {name: claims[name] for name in pb.Claims.DESCRIPTOR.fields_by_name if name in claims}
        return pb.VerifyTokenResponse(active=True, claims=pb.Claims(**fields))

    async def ListRevocations(self, request: pb.ListRevocationsRequest,
                              context: Context) -> pb.ListRevocationsResponse:
        items, cursor = await self.iam.revocations(request.since)
        return pb.ListRevocationsResponse(items=[pb.Revocation(**view(r)) for r in items], cursor=cursor)

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> pb.Jwks:
        fields = pb.Jwk.DESCRIPTOR.fields_by_name
        return pb.Jwks(keys=[pb.Jwk(**{k: v for k, v in key.items() if k in fields}) for key in self.iam.jwks()])

    async def GetOpenIdConfiguration(self, request: pb.GetOpenIdConfigurationRequest,
                                     context: Context) -> pb.OpenIdConfiguration:
        return pb.OpenIdConfiguration(**self.iam.openid_configuration())

    async def RotateSigningKey(self, request: pb.RotateSigningKeyRequest, context: Context) -> pb.SigningKey:
        return pb.SigningKey(**view(await self.iam.rotate_signing_key(_caller(context)), self.iam.clock()))

    async def ListSigningKeys(self, request: pb.ListSigningKeysRequest,
                              context: Context) -> pb.ListSigningKeysResponse:
        keys = await self.iam.list_signing_keys(_caller(context))
        return pb.ListSigningKeysResponse(items=[pb.SigningKey(**view(k, self.iam.clock())) for k in keys])


class AuthorizationServicer(pb_grpc.AuthorizationServicer):
    def __init__(self, iam: IamCore):
        self.iam = iam

    async def Authorize(self, request: pb.AuthorizeRequest, context: Context) -> pb.AuthorizeResponse:
        return pb.AuthorizeResponse(**view(await self.iam.authorize(_caller(context), _question(request))))

    async def BatchAuthorize(self, request: pb.BatchAuthorizeRequest,
                             context: Context) -> pb.BatchAuthorizeResponse:
        decisions = await self.iam.authorize_batch(_caller(context), [_question(q) for q in request.requests])
        return pb.BatchAuthorizeResponse(results=[pb.AuthorizeResponse(**view(d)) for d in decisions])


class AuditServicer(pb_grpc.AuditServicer):
    def __init__(self, iam: IamCore):
        self.iam = iam

    async def ListAuditEvents(self, request: pb.ListAuditEventsRequest,
                              context: Context) -> pb.ListAuditEventsResponse:
        page = await self.iam.list_audit(_caller(context), request.principal, request.action, request.since,
                                         request.until, request.page_size, request.page_token)
        return _list(pb.ListAuditEventsResponse, page, _audit_event)


SERVICERS: dict[str, tuple[type, Callable]] = {
    "Organizations": (OrganizationsServicer, pb_grpc.add_OrganizationsServicer_to_server),
    "Projects": (ProjectsServicer, pb_grpc.add_ProjectsServicer_to_server),
    "Users": (UsersServicer, pb_grpc.add_UsersServicer_to_server),
    "ServiceAccounts": (ServiceAccountsServicer, pb_grpc.add_ServiceAccountsServicer_to_server),
    "Roles": (RolesServicer, pb_grpc.add_RolesServicer_to_server),
    "Bindings": (BindingsServicer, pb_grpc.add_BindingsServicer_to_server),
    "Tokens": (TokensServicer, pb_grpc.add_TokensServicer_to_server),
    "Authorization": (AuthorizationServicer, pb_grpc.add_AuthorizationServicer_to_server),
    "Audit": (AuditServicer, pb_grpc.add_AuditServicer_to_server),
}


def services(iam: IamCore) -> list[GrpcService]:
    """IAM's gRPC services over iam."""
    descriptor = pb.DESCRIPTOR.services_by_name

    def adder(servicer: type, add: Callable) -> Callable[[grpc.aio.Server], None]:
        return lambda server: add(servicer(iam), server)

    return [GrpcService(descriptor[name].full_name, adder(servicer, add))
            for name, (servicer, add) in SERVICERS.items()]
