"""The main flows run over REST and over gRPC against fresh servers: the same outcomes, the same codes.

Each flow is written once against a neutral client; every step's outcome (an error code, or the
fields that do not depend on generated IDs) goes into a transcript, and the transcripts of the two
transports must be equal.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.field_mask_pb2 import FieldMask

from photoncloud.common.rpc import error_from_rpc
from photoncloud.iam.v1 import iam_pb2 as pb
from photoncloud.iam.v1 import iam_pb2_grpc as pb_grpc

PASSWORD = "a long enough password"


class Rest:
    """The operations over REST: results are the envelope's data, errors {"error": CODE}."""

    def __init__(self, session: aiohttp.ClientSession, port: int):
        self.session, self.base = session, f"http://127.0.0.1:{port}"

    async def call(self, method: str, path: str, token: str = "", **kw: Any) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.base + path, headers=headers, **kw) as response:
            body = await response.json()
        if "error" in body:
            assert response.status >= 400
            return {"error": body["error"]["code"], "details": body["error"]["details"] or {}}
        return body["data"]

    async def token(self, **grant) -> dict:
        scope = {k: grant.pop(k) for k in ("org_id", "project_id") if k in grant}
        data = await self.call("POST", "/api/v1/auth/token", json={**grant, **({"scope": scope} if scope else {})})
        if "error" not in data:
            data["refresh_token"] = data["refresh_token"] or ""
        return data

    async def create_org(self, token, name):
        return await self.call("POST", "/api/v1/orgs", token, json={"name": name})

    async def update_org(self, token, org_id, **fields):
        return await self.call("PATCH", f"/api/v1/orgs/{org_id}", token, json=fields)

    async def get_org(self, token, org_id):
        return await self.call("GET", f"/api/v1/orgs/{org_id}", token)

    async def delete_org(self, token, org_id):
        return await self.call("DELETE", f"/api/v1/orgs/{org_id}", token)

    async def list_orgs(self, token, page_size=0, page_token=""):
        return await self.call("GET", "/api/v1/orgs", token, params={"page_size": page_size, "page_token": page_token})

    async def create_project(self, token, org_id, name):
        return await self.call("POST", "/api/v1/projects", token, json={"org_id": org_id, "name": name})

    async def list_projects(self, token, org_id=""):
        return await self.call("GET", "/api/v1/projects", token, params={"org_id": org_id})

    async def delete_project(self, token, project_id):
        return await self.call("DELETE", f"/api/v1/projects/{project_id}", token)

    async def create_user(self, token, name, password):
        return await self.call("POST", "/api/v1/users", token, json={"name": name, "password": password})

    async def update_user(self, token, user_id, **fields):
        return await self.call("PATCH", f"/api/v1/users/{user_id}", token, json=fields)

    async def me(self, token):
        return await self.call("GET", "/api/v1/users/me", token)

    async def create_binding(self, token, principal, role, **scope):
        return await self.call("POST", "/api/v1/bindings", token, json={"principal": principal, "role": role,
                                                                        "scope": scope})

    async def list_bindings(self, token, **filters):
        return await self.call("GET", "/api/v1/bindings", token, params=filters)

    async def create_role(self, token, name, permissions):
        return await self.call("POST", "/api/v1/roles", token, json={"name": name, "permissions": permissions})

    async def update_role(self, token, name, permissions):
        return await self.call("PATCH", f"/api/v1/roles/{name}", token, json={"permissions": permissions})

    async def create_service_account(self, token, org_id, name, **client):
        return await self.call("POST", "/api/v1/service-accounts", token,
                               json={"org_id": org_id, "name": name, **client})

    async def update_service_account(self, token, account_id, **fields):
        return await self.call("PATCH", f"/api/v1/service-accounts/{account_id}", token, json=fields)

    async def get_service_account(self, token, account_id):
        return await self.call("GET", f"/api/v1/service-accounts/{account_id}", token)

    async def rotate_secret(self, token, account_id):
        return await self.call("POST", f"/api/v1/service-accounts/{account_id}/secret", token)

    async def verify(self, token):
        return await self.call("POST", "/api/v1/auth/verify", json={"token": token})

    async def revoke(self, token):
        return await self.call("POST", "/api/v1/auth/revoke", token)

    async def revocations(self, since=0):
        return await self.call("GET", "/api/v1/auth/revocations", params={"since": since})

    async def authorize(self, token, principal, action, **resource):
        return await self.call("POST", "/api/v1/authorize", token, json={"principal": principal, "action": action,
                                                                         "resource": resource})

    async def authorize_batch(self, token, questions):
        requests = [{"principal": p, "action": a, "resource": r} for p, a, r in questions]
        return await self.call("POST", "/api/v1/authorize/batch", token, json={"requests": requests})

    async def audit(self, token, **filters):
        return await self.call("GET", "/api/v1/audit", token, params=filters)


class Grpc:
    """The same operations over gRPC, answered in REST's shape."""

    def __init__(self, channel: grpc.aio.Channel):
        self.stubs = {name: getattr(pb_grpc, f"{name}Stub")(channel) for name in
                      ("Organizations", "Projects", "Users", "ServiceAccounts", "Roles", "Bindings", "Tokens",
                       "Authorization", "Audit")}

    async def call(self, service: str, method: str, request: Any, token: str = "") -> dict:
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        try:
            reply = await getattr(self.stubs[service], method)(request, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            error = error_from_rpc(exc)
            return {"error": error.code.name, "details": error.details or {}}
        return json_format.MessageToDict(reply, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)

    async def token(self, **grant) -> dict:
        scope = {k: grant.pop(k) for k in ("org_id", "project_id") if k in grant}
        data = await self.call("Tokens", "IssueToken", pb.IssueTokenRequest(**grant, scope=scope or None))
        if "error" not in data:
            data["expires_in"], data["refresh_expires_in"] = int(data["expires_in"]), int(data["refresh_expires_in"])
            data.setdefault("refresh_token", "")  # unset for client_credentials
        return data

    async def create_org(self, token, name):
        return await self.call("Organizations", "CreateOrganization", pb.CreateOrganizationRequest(name=name), token)

    async def update_org(self, token, org_id, **fields):
        return await self.call("Organizations", "UpdateOrganization",
                               pb.UpdateOrganizationRequest(org_id=org_id, **fields), token)

    async def get_org(self, token, org_id):
        return await self.call("Organizations", "GetOrganization", pb.GetOrganizationRequest(org_id=org_id), token)

    async def delete_org(self, token, org_id):
        return await self.call("Organizations", "DeleteOrganization", pb.DeleteOrganizationRequest(org_id=org_id),
                               token)

    async def list_orgs(self, token, page_size=0, page_token=""):
        return await self.call("Organizations", "ListOrganizations",
                               pb.ListOrganizationsRequest(page_size=page_size, page_token=page_token), token)

    async def create_project(self, token, org_id, name):
        return await self.call("Projects", "CreateProject", pb.CreateProjectRequest(org_id=org_id, name=name), token)

    async def list_projects(self, token, org_id=""):
        return await self.call("Projects", "ListProjects", pb.ListProjectsRequest(org_id=org_id), token)

    async def delete_project(self, token, project_id):
        return await self.call("Projects", "DeleteProject", pb.DeleteProjectRequest(project_id=project_id), token)

    async def create_user(self, token, name, password):
        return await self.call("Users", "CreateUser", pb.CreateUserRequest(name=name, password=password), token)

    async def update_user(self, token, user_id, **fields):
        return await self.call("Users", "UpdateUser", pb.UpdateUserRequest(user_id=user_id, **fields), token)

    async def me(self, token):
        return await self.call("Users", "GetCurrentUser", pb.GetCurrentUserRequest(), token)

    async def create_binding(self, token, principal, role, **scope):
        return await self.call("Bindings", "CreateBinding",
                               pb.CreateBindingRequest(principal=principal, role=role, scope=pb.Scope(**scope)), token)

    async def list_bindings(self, token, **filters):
        return await self.call("Bindings", "ListBindings", pb.ListBindingsRequest(**filters), token)

    async def create_role(self, token, name, permissions):
        return await self.call("Roles", "CreateRole", pb.CreateRoleRequest(name=name, permissions=permissions), token)

    async def update_role(self, token, name, permissions):
        return await self.call("Roles", "UpdateRole", pb.UpdateRoleRequest(
            name=name, permissions=permissions, update_mask=FieldMask(paths=["permissions"])), token)

    async def create_service_account(self, token, org_id, name, **client):
        return await self.call("ServiceAccounts", "CreateServiceAccount",
                               pb.CreateServiceAccountRequest(org_id=org_id, name=name, **client), token)

    async def update_service_account(self, token, account_id, **fields):
        # As the REST gateway does: the fields given are the update mask (an empty list clears).
        return await self.call("ServiceAccounts", "UpdateServiceAccount", pb.UpdateServiceAccountRequest(
            service_account_id=account_id, update_mask=FieldMask(paths=list(fields)), **fields), token)

    async def get_service_account(self, token, account_id):
        return await self.call("ServiceAccounts", "GetServiceAccount",
                               pb.GetServiceAccountRequest(service_account_id=account_id), token)

    async def rotate_secret(self, token, account_id):
        return await self.call("ServiceAccounts", "RotateServiceAccountSecret",
                               pb.RotateServiceAccountSecretRequest(service_account_id=account_id), token)

    async def verify(self, token):
        data = await self.call("Tokens", "VerifyToken", pb.VerifyTokenRequest(token=token))
        if data.get("active"):
            data["claims"] = {k: int(v) if k in ("iat", "nbf", "exp") else v for k, v in data["claims"].items()}
        else:
            data.pop("claims", None)
        return data

    async def revoke(self, token):
        return await self.call("Tokens", "RevokeToken", pb.RevokeTokenRequest(), token)

    async def revocations(self, since=0):
        data = await self.call("Tokens", "ListRevocations", pb.ListRevocationsRequest(since=since))
        data["cursor"] = int(data["cursor"])
        data["items"] = [{**item, "expires_at": int(item["expires_at"])} for item in data["items"]]
        return data

    async def authorize(self, token, principal, action, **resource):
        return await self.call("Authorization", "Authorize", pb.AuthorizeRequest(
            principal=principal, action=action, resource=pb.Resource(**resource)), token)

    async def authorize_batch(self, token, questions):
        requests = [pb.AuthorizeRequest(principal=p, action=a, resource=pb.Resource(**r)) for p, a, r in questions]
        return await self.call("Authorization", "BatchAuthorize", pb.BatchAuthorizeRequest(requests=requests), token)

    async def audit(self, token, **filters):
        data = await self.call("Audit", "ListAuditEvents", pb.ListAuditEventsRequest(**filters), token)
        if "items" in data:
            data["items"] = [{**item, "id": int(item["id"])} for item in data["items"]]
        return data


def outcome(result: dict, *fields: str) -> Any:
    """What a step's result contributes to the transcript: its error code, or the named fields."""
    if "error" in result:
        return result["error"]
    return {field: result[field] for field in fields}


async def identity_and_tokens(api, admin: str, log: list) -> None:
    """Create org, project, user; bind a role; issue, verify, refresh, revoke; authorize."""
    org = await api.create_org(admin, "acme")
    log.append(outcome(org, "name"))
    log.append(outcome(await api.create_org(admin, "acme")))  # ALREADY_EXISTS
    project = await api.create_project(admin, org["id"], "web")
    log.append(outcome(project, "name"))
    log.append(project["org_id"] == org["id"])
    log.append(outcome(await api.create_project(admin, "org-missing", "x")))  # NOT_FOUND
    short = await api.create_user(admin, "alice", "short")
    log.append((short["error"], short["details"]["field"], short["details"]["reason"]))
    alice = await api.create_user(admin, "alice", PASSWORD)
    log.append(outcome(alice, "name", "enabled"))
    subject = f"user:{alice['id']}"
    password = dict(grant_type="password", username="alice", password=PASSWORD)
    log.append(outcome(await api.token(**password, project_id=project["id"])))  # PERMISSION_DENIED: no role
    binding = await api.create_binding(admin, subject, "viewer", type="project", project_id=project["id"])
    log.append(outcome(binding, "role") | {"scope": binding["scope"]["type"], "mine": binding["principal"] == subject})
    log.append(outcome(await api.create_binding(admin, subject, "viewer", type="project", project_id=project["id"])))
    log.append(outcome(await api.token(**{**password, "password": "wrong password!"}, project_id=project["id"])))
    issued = await api.token(**password, project_id=project["id"])
    log.append(outcome(issued, "token_type", "expires_in", "roles", "refresh_expires_in"))
    log.append(issued["scope"] == {"type": "project", "org_id": org["id"], "project_id": project["id"]})
    token = issued["access_token"]
    verified = await api.verify(token)
    claims = verified["claims"]
    log.append((verified["active"], claims["sub"] == subject, claims["name"], claims["roles"], claims["permissions"],
                claims["aud"], claims["scope"]["type"], claims["exp"] - claims["iat"]))
    log.append(await api.verify("not.a.token"))
    log.append(outcome(await api.me(token), "name"))
    log.append(outcome(await api.list_projects(token), "next_page_token") | {
        "names": [p["name"] for p in (await api.list_projects(token))["items"]]})
    log.append(outcome(await api.create_org(token, "mine")))  # PERMISSION_DENIED
    read = await api.authorize(token, subject, "compute:instances:read", project_id=project["id"])
    log.append(outcome(read, "allowed", "matched_role") | {"binding": read["matched_binding"] == binding["id"]})
    log.append(outcome(await api.authorize(token, subject, "compute:instances:write", project_id=project["id"]),
                       "allowed", "matched_binding", "matched_role"))
    log.append(outcome(await api.authorize(token, subject, "compute:*:read", project_id=project["id"])))
    batch = await api.authorize_batch(admin, [(subject, "a:b:read", {"org_id": org["id"]}),
                                              (subject, "a:b:read", {"project_id": project["id"]})])
    log.append([r["allowed"] for r in batch["results"]])
    # Refresh rotates; presenting a used refresh token revokes the whole session.
    refreshed = await api.token(grant_type="refresh_token", refresh_token=issued["refresh_token"])
    log.append(outcome(refreshed, "roles") | {"rotated": refreshed["refresh_token"] != issued["refresh_token"]})
    log.append(outcome(await api.token(grant_type="refresh_token", refresh_token=issued["refresh_token"])))
    log.append((await api.verify(refreshed["access_token"]))["active"])
    log.append(outcome(await api.token(grant_type="refresh_token", refresh_token=refreshed["refresh_token"])))
    # Log out: the token is refused and listed for every service to refuse.
    again = await api.token(**password, project_id=project["id"])
    revoked = await api.revoke(again["access_token"])
    log.append(len(revoked["revoked_token_ids"]))
    log.append((await api.verify(again["access_token"]))["active"])
    me = await api.me(again["access_token"])
    log.append((me["error"], me["details"]["reason"]))
    listed = await api.revocations()
    log.append(set(revoked["revoked_token_ids"]) <= {item["token_id"] for item in listed["items"]})
    log.append((await api.revocations(listed["cursor"]))["items"])
    # Disabling the user ends its sessions.
    fresh = await api.token(**password, project_id=project["id"])
    log.append(outcome(await api.update_user(admin, alice["id"], enabled=False), "enabled"))
    log.append((await api.verify(fresh["access_token"]))["active"])
    log.append(outcome(await api.token(**password, project_id=project["id"])))


async def lists_deletes_roles_and_accounts(api, admin: str, log: list) -> None:
    """Pages, updates, deletes with their preconditions, roles, service accounts, audit."""
    org = None
    for name in ("a1", "a2", "a3"):
        org = await api.create_org(admin, name)
    first = await api.list_orgs(admin, page_size=2)
    log.append((len(first["items"]), bool(first["next_page_token"])))
    second = await api.list_orgs(admin, page_size=2, page_token=first["next_page_token"])
    log.append((len(second["items"]), second["next_page_token"]))
    log.append(outcome(await api.list_orgs(admin, page_token="bogus")))
    log.append(outcome(await api.update_org(admin, org["id"], display_name="Org One"), "display_name"))
    project = await api.create_project(admin, org["id"], "p")
    log.append(outcome(await api.delete_org(admin, org["id"])))  # FAILED_PRECONDITION: has a project
    user = await api.create_user(admin, "bob", PASSWORD)
    await api.create_binding(admin, f"user:{user['id']}", "member", type="project", project_id=project["id"])
    log.append(outcome(await api.delete_project(admin, project["id"]), "deleted_bindings"))
    log.append(outcome(await api.delete_org(admin, org["id"]), "deleted_bindings"))
    log.append(outcome(await api.get_org(admin, org["id"])))
    log.append(outcome(await api.update_role(admin, "viewer", ["*"])))  # FAILED_PRECONDITION
    log.append(outcome(await api.create_role(admin, "deployer", ["deploy"])))  # INVALID_ARGUMENT
    role = await api.create_role(admin, "deployer", ["compute:instances:create"])
    log.append(outcome(role, "permissions", "builtin"))
    log.append(outcome(await api.update_role(admin, "deployer", ["compute:*:create"]), "permissions"))
    org2 = await api.create_org(admin, "svc")
    created = await api.create_service_account(admin, org2["id"], "ci")
    account = created["service_account"]
    log.append((bool(created["client_secret"]), created["client_id"] == account["id"], account["name"]))
    await api.create_binding(admin, f"serviceaccount:{account['id']}", "deployer", type="org", org_id=org2["id"])
    grant = dict(grant_type="client_credentials", client_id=account["id"], client_secret=created["client_secret"])
    issued = await api.token(**grant, org_id=org2["id"])
    log.append(outcome(issued, "roles", "refresh_token"))
    log.append(outcome(await api.me(issued["access_token"])))  # NOT_FOUND: not a user
    rotated = await api.rotate_secret(admin, account["id"])
    log.append(rotated["client_secret"] != created["client_secret"])
    log.append(outcome(await api.token(**grant, org_id=org2["id"])))
    # No path up: once the account is bound on the system, its org's admin may not rotate its secret.
    keeper = await api.create_user(admin, "keeper", PASSWORD)
    await api.create_binding(admin, f"user:{keeper['id']}", "admin", type="org", org_id=org2["id"])
    keeper_token = (await api.token(grant_type="password", username="keeper", password=PASSWORD,
                                    org_id=org2["id"]))["access_token"]
    log.append(bool((await api.rotate_secret(keeper_token, account["id"]))["client_secret"]))  # its own: fine
    await api.create_binding(admin, f"serviceaccount:{account['id']}", "viewer", type="system")
    denied = await api.rotate_secret(keeper_token, account["id"])
    log.append((denied["error"], denied["details"]["reason"],
                denied["details"]["principal"] == f"serviceaccount:{account['id']}"))
    log.append(outcome(await api.list_bindings(admin, org_id=org2["id"]), "next_page_token"))
    audit = await api.audit(admin, action="iam.serviceaccounts")
    log.append([(e["action"], e["outcome"]) for e in audit["items"]])


async def oauth2_clients(api, admin: str, log: list) -> None:
    """Service accounts as OAuth2 clients: redirect URIs and public set at creation, shown on reads,
    replaced and cleared by updates, refused when they are not ones a browser may be sent to; a
    project's admin may not register redirect URIs on another project's client."""
    org = await api.create_org(admin, "apps")
    web = await api.create_project(admin, org["id"], "web")
    db = await api.create_project(admin, org["id"], "db")
    uris = ["https://grafana.example/login/generic_oauth", "http://127.0.0.1:8000/callback"]
    created = await api.create_service_account(admin, org["id"], "grafana", redirect_uris=uris, public_client=True)
    account = created["service_account"]
    log.append((account["redirect_uris"], account["public_client"]))
    assert log[-1] == (uris, True)
    log.append(outcome(await api.get_service_account(admin, account["id"]), "redirect_uris", "public_client"))
    log.append(outcome(await api.update_service_account(admin, account["id"], redirect_uris=uris[:1]),
                       "redirect_uris", "public_client", "name"))
    log.append(outcome(await api.update_service_account(admin, account["id"], public_client=False),
                       "redirect_uris", "public_client"))
    log.append(outcome(await api.update_service_account(admin, account["id"], redirect_uris=[]), "redirect_uris"))
    assert log[-3:] == [{"redirect_uris": uris[:1], "public_client": True, "name": "grafana"},
                        {"redirect_uris": uris[:1], "public_client": False}, {"redirect_uris": []}]
    for bad in ("http://grafana.example/cb", "https://grafana.example/cb#frag", "/relative", "javascript:alert(1)",
                "https://user@grafana.example/cb", "https://grafana.example/a b"):
        refused = await api.create_service_account(admin, org["id"], "bad", redirect_uris=[bad])
        log.append((bad, refused["error"], refused["details"]["field"]))
        refused = await api.update_service_account(admin, account["id"], redirect_uris=[bad])
        log.append((bad, refused["error"], refused["details"]["field"]))
        assert log[-1] == log[-2] == (bad, "INVALID_ARGUMENT", "redirect_uris")
    log.append(outcome(await api.create_service_account(admin, org["id"], "twice", redirect_uris=uris[:1] * 2)))
    # A tenant: web's admin manages web's clients, never db's.
    owner = await api.create_user(admin, "web-owner", PASSWORD)
    await api.create_binding(admin, f"user:{owner['id']}", "admin", type="project", project_id=web["id"])
    token = (await api.token(grant_type="password", username="web-owner", password=PASSWORD,
                             project_id=web["id"]))["access_token"]
    db_client = (await api.create_service_account(admin, "", "db-app", project_id=db["id"],
                                                  redirect_uris=uris[:1]))["service_account"]
    log.append(outcome(await api.update_service_account(token, db_client["id"],
                                                        redirect_uris=["https://evil.example/cb"])))
    log.append(outcome(await api.get_service_account(admin, db_client["id"]), "redirect_uris"))
    assert log[-2:] == ["PERMISSION_DENIED", {"redirect_uris": uris[:1]}]
    mine = await api.create_service_account(token, "", "web-app", project_id=web["id"], redirect_uris=uris[1:])
    log.append(outcome(mine["service_account"], "redirect_uris", "project_id") == {
        "redirect_uris": uris[1:], "project_id": web["id"]})
    assert log[-1] is True


FLOWS = {"identity and tokens": identity_and_tokens,
         "lists, deletes, roles and accounts": lists_deletes_roles_and_accounts,
         "OAuth2 clients": oauth2_clients}


@pytest.mark.parametrize("name", list(FLOWS))
async def test_rest_and_grpc_agree(tmp_path, start, admin_password, name):
    transcripts = {}
    for transport in ("rest", "grpc"):
        server = await start(tmp_path / transport)
        try:
            async with aiohttp.ClientSession() as session, \
                    grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
                api = Rest(session, server.rest_port) if transport == "rest" else Grpc(channel)
                admin = await api.token(grant_type="password", username="admin", password=admin_password)
                transcripts[transport] = []
                await FLOWS[name](api, admin["access_token"], transcripts[transport])
        finally:
            await server.stop()
    assert len(transcripts["rest"]) == len(transcripts["grpc"])
    for step, (over_rest, over_grpc) in enumerate(zip(transcripts["rest"], transcripts["grpc"], strict=True)):
        assert over_rest == over_grpc, (step, over_rest, over_grpc)
