"""IAM against a real server: tokens checked by plain PyJWT and by the shared verifier over HTTP,
key rotation, throttling with Retry-After, audit, OpenAPI, health and gRPC specifics."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

import grpc
import jwt
import pytest
from authlib.oidc.discovery import OpenIDProviderMetadata
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photoncloud.common.auth import AUDIENCE, JwksKeys, PolledRevocations, Verifier
from photoncloud.common.errors import Code, ServiceError
from photoncloud.common.rpc import error_from_rpc
from photoncloud.iam.v1 import iam_pb2 as pb
from photoncloud.iam.v1 import iam_pb2_grpc as pb_grpc

PASSWORD = "a long enough password"


async def make_user(http, admin, name: str, role: str = "member", **scope) -> dict:
    """A user bound to role on scope (the default project when none is given)."""
    status, reply, _ = await http.call("POST", "/api/v1/users", admin.token, json={"name": name, "password": PASSWORD})
    assert status == 200, reply
    user = reply["data"]
    if not scope:
        _, projects, _ = await http.call("GET", "/api/v1/projects", admin.token, params={"name": "default"})
        scope = {"type": "project", "project_id": projects["data"]["items"][0]["id"]}
    status, reply, _ = await http.call("POST", "/api/v1/bindings", admin.token,
                                       json={"principal": f"user:{user['id']}", "role": role, "scope": scope})
    assert status == 200, reply
    user["scope"] = reply["data"]["scope"]
    return user


def jwks_client(server) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(f"http://127.0.0.1:{server.rest_port}/.well-known/jwks.json", cache_keys=False)


def forge(claims: dict, kid: str) -> str:
    """A token like IAM's, signed by a key IAM never had."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, other, algorithm="RS256", headers={"kid": kid})


async def test_tokens_verify_with_plain_pyjwt_and_the_published_jwks(server, http, admin):
    client = jwks_client(server)
    issuer = server.iam.settings.issuer

    def decode(token: str) -> dict:
        key = client.get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=issuer, leeway=0)

    claims = await asyncio.to_thread(decode, admin.token)
    assert claims["scope"]["type"] == "system" and claims["roles"] == ["admin"] and claims["permissions"] == ["*"]

    header = jwt.get_unverified_header(admin.token)
    with pytest.raises(jwt.InvalidSignatureError):
        await asyncio.to_thread(decode, forge(claims, header["kid"]))
    head, body, signature = admin.token.split(".")
    altered = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    altered["roles"] = ["admin", "owner"]
    tampered = ".".join([head, base64.urlsafe_b64encode(json.dumps(altered).encode()).decode().rstrip("="), signature])
    with pytest.raises(jwt.InvalidSignatureError):
        await asyncio.to_thread(decode, tampered)
    # A token IAM signed an hour and a half ago has expired.
    real_clock = server.iam.clock
    server.iam.clock = lambda: real_clock() - 5400
    try:
        old = await http.token()
    finally:
        server.iam.clock = real_clock
    with pytest.raises(jwt.ExpiredSignatureError):
        await asyncio.to_thread(decode, old["access_token"])
    for token in (forge(claims, header["kid"]), tampered, old["access_token"]):
        status, reply, _ = await http.call("POST", "/api/v1/auth/verify", json={"token": token})
        assert (status, reply["data"]) == (200, {"active": False})
        status, reply, _ = await http.call("GET", "/api/v1/orgs", token)
        assert (status, reply["error"]["code"]) == (401, "UNAUTHENTICATED")


async def test_discovery_documents_are_plain_json(server, http):
    status, doc, _ = await http.call("GET", "/.well-known/openid-configuration")
    issuer = server.iam.settings.issuer
    assert status == 200 and "data" not in doc
    assert doc["issuer"] == issuer and doc["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert doc["token_endpoint"] == f"{issuer}/oauth2/token"
    assert doc["revocation_endpoint"] == f"{issuer}/oauth2/revoke"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(doc["grant_types_supported"]) == {"authorization_code", "password", "client_credentials",
                                                 "refresh_token"}
    # "none": a public client of the code flow, which proves itself with PKCE instead of a secret.
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post", "none"}
    # Every field OpenID Connect Discovery and RFC 8414 require, as the field's library checks them; the
    # authorization endpoint of the code flow, with PKCE's S256 only.
    OpenIDProviderMetadata(doc).validate()
    assert doc["authorization_endpoint"] == f"{issuer}/oauth2/authorize"
    assert (doc["response_types_supported"], doc["response_modes_supported"]) == (["code"], ["query"])
    assert doc["code_challenge_methods_supported"] == ["S256"]
    status, jwks, _ = await http.call("GET", "/.well-known/jwks.json")
    (key,) = jwks["keys"]
    assert {key[k] for k in ("kty", "use", "alg")} == {"RSA", "sig", "RS256"} and key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # public parts only


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(server, http, admin):
    old_kid = jwt.get_unverified_header(admin.token)["kid"]
    status, reply, _ = await http.call("POST", "/api/v1/auth/keys/rotate", admin.token)
    assert status == 200 and reply["data"]["status"] == "ACTIVE"
    new_kid = reply["data"]["kid"]
    fresh = await http.token()
    assert jwt.get_unverified_header(fresh["access_token"])["kid"] == new_kid
    client = jwks_client(server)
    for token in (admin.token, fresh["access_token"]):  # both verify from the published set
        key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
        jwt.decode(token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=server.iam.settings.issuer)
    status, reply, _ = await http.call("GET", "/api/v1/orgs", admin.token)
    assert status == 200
    _, keys, _ = await http.call("GET", "/api/v1/auth/keys", admin.token)
    assert [(k["kid"], k["status"]) for k in keys["data"]["items"]] == [(new_kid, "ACTIVE"), (old_kid, "RETIRED")]
    assert keys["data"]["items"][1]["expires_at"] > keys["data"]["items"][1]["retired_at"]


async def test_the_shared_verifier_refuses_a_revoked_token_within_its_poll_interval(server, http, admin):
    base = f"http://127.0.0.1:{server.rest_port}"
    user = await make_user(http, admin, "alice")
    token = (await http.token("alice", PASSWORD, project_id=user["scope"]["project_id"]))["access_token"]
    verifier = Verifier(JwksKeys(base + "/.well-known/jwks.json"), server.iam.settings.issuer,
                        PolledRevocations(base + "/api/v1/auth/revocations", interval_seconds=0.2))
    caller = await verifier.verify(token)
    assert caller.subject == f"user:{user['id']}" and caller.can("compute:instances:write")
    status, reply, _ = await http.call("POST", "/api/v1/auth/revoke", token)
    assert status == 200 and reply["data"]["revoked_token_ids"] == [caller.token_id]
    deadline = time.monotonic() + 5
    while True:
        try:
            await verifier.verify(token)
        except ServiceError as exc:
            assert exc.details["reason"] == "REVOKED"
            break
        assert time.monotonic() < deadline, "the revoked token was still accepted"
        await asyncio.sleep(0.05)
    status, reply, _ = await http.call("GET", "/api/v1/auth/revocations", params={"since": 0})
    assert caller.token_id in [item["token_id"] for item in reply["data"]["items"]]


async def test_failed_logins_get_429_with_retry_after_on_both_transports(server, http, admin):
    await make_user(http, admin, "mallory")
    body = {"grant_type": "password", "username": "mallory", "password": "not the password"}
    for _ in range(5):
        status, reply, _ = await http.call("POST", "/api/v1/auth/token", json=body)
        assert (status, reply["error"]["code"]) == (401, "UNAUTHENTICATED")
    status, reply, headers = await http.call("POST", "/api/v1/auth/token", json={**body, "password": PASSWORD})
    assert (status, reply["error"]["code"]) == (429, "RESOURCE_EXHAUSTED")
    seconds = reply["error"]["details"]["retry_after_seconds"]
    assert 1 <= seconds <= 60 and headers["Retry-After"] == str(seconds)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await pb_grpc.TokensStub(channel).IssueToken(pb.IssueTokenRequest(
                grant_type="password", username="mallory", password=PASSWORD))
    error = error_from_rpc(raised.value)
    assert error.code is Code.RESOURCE_EXHAUSTED and error.details["retry_after_seconds"] >= 1


async def test_audit_records_sign_ins_and_changes_without_secrets(server, http, admin, admin_password, caplog):
    caplog.set_level(logging.DEBUG)
    user = await make_user(http, admin, "dave")
    await http.call("POST", "/api/v1/auth/token",
                    json={"grant_type": "password", "username": "dave", "password": "guessing-wrongly"})
    issued = await http.token("dave", PASSWORD, project_id=user["scope"]["project_id"])
    _, created, _ = await http.call("POST", "/api/v1/service-accounts", admin.token,
                                    json={"org_id": user["scope"]["org_id"], "name": "builder"})
    secret = created["data"]["client_secret"]
    status, page, _ = await http.call("GET", "/api/v1/audit", admin.token, params={"principal": f"user:{user['id']}"},
                                      headers={"X-Request-ID": "audit-check"})
    assert status == 200
    assert [(e["action"], e["outcome"]) for e in page["data"]["items"]] == \
        [("iam.tokens.issue", "SUCCESS"), ("iam.tokens.issue", "FAILURE")]
    failure = page["data"]["items"][1]
    assert failure["client_address"] == "127.0.0.1" and failure["request_id"] and failure["time"].endswith("Z")
    _, everything, _ = await http.call("GET", "/api/v1/audit", admin.token, params={"page_size": 1000})
    actions = {e["action"] for e in everything["data"]["items"]}
    assert {"iam.bootstrap", "iam.users.create", "iam.bindings.create", "iam.serviceaccounts.create"} <= actions
    _, since, _ = await http.call("GET", "/api/v1/audit", admin.token,
                                  params={"action": "iam.serviceaccounts", "since": failure["time"]})
    assert [e["action"] for e in since["data"]["items"]] == ["iam.serviceaccounts.create"]
    secrets = (PASSWORD, admin_password, "guessing-wrongly", secret, issued["access_token"],
               issued["refresh_token"], admin.token)
    dumped = json.dumps(everything)
    logged = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    for value in secrets:
        assert value not in dumped and value not in logged


async def test_reads_writes_and_self_service_are_gated(server, http, admin):
    status, reply, _ = await http.call("GET", "/api/v1/users")
    assert (status, reply["error"]["code"]) == (401, "UNAUTHENTICATED")
    viewer = await make_user(http, admin, "victor", role="viewer")
    token = (await http.token("victor", PASSWORD, project_id=viewer["scope"]["project_id"]))["access_token"]
    status, reply, _ = await http.call("POST", "/api/v1/orgs", token, json={"name": "mine"})
    assert (status, reply["error"]["details"]["action"]) == (403, "iam:orgs:manage")
    status, me, _ = await http.call("GET", "/api/v1/users/me", token)
    assert (status, me["data"]["name"]) == (200, "victor") and "password_hash" not in me["data"]
    status, reply, _ = await http.call("POST", f"/api/v1/users/{viewer['id']}/password", token,
                                       json={"password": "victors new password", "current_password": PASSWORD})
    assert status == 200
    status, reply, _ = await http.call("GET", "/api/v1/users/me", token)  # the change ended the session
    assert (status, reply["error"]["details"]["reason"]) == (401, "REVOKED")
    status, reply, _ = await http.call("POST", "/api/v1/authorize", admin.token, json={
        "principal": f"user:{viewer['id']}", "action": "compute:instances:delete",
        "resource": {"project_id": viewer["scope"]["project_id"]}, "context": {"ip": "10.0.0.1"}})
    assert (status, reply["data"]["allowed"]) == (200, False)


async def test_bad_requests_are_refused_in_the_envelope(server, http, admin):
    cases = [
        ("POST", "/api/v1/users", {"name": "x"}, "password"),
        ("POST", "/api/v1/users", {"name": "eve", "password": "short"}, "password"),
        ("POST", "/api/v1/bindings", {"principal": "user:x", "role": "admin", "scope": {"type": "galaxy"}},
         "scope.type"),
        ("POST", "/api/v1/auth/token", {"grant_type": "password", "username": "x"}, "password"),
        ("POST", "/api/v1/auth/token", {"grant_type": "magic"}, "grant_type"),
        ("POST", "/api/v1/roles", {"name": "r", "permissions": ["nope"]}, "permissions"),
        ("POST", "/api/v1/orgs", {"name": "ok", "colour": "red"}, "colour"),
    ]
    for method, path, body, field in cases:
        status, reply, _ = await http.call(method, path, admin.token, json=body)
        assert (status, reply["error"]["code"], reply["error"]["details"]["field"]) == \
            (400, "INVALID_ARGUMENT", field), (path, body, reply)
        assert "short" not in reply["error"]["message"]
    status, reply, _ = await http.call("GET", "/api/v1/orgs", admin.token, params={"page_token": "%%%"})
    assert (status, reply["error"]["details"]["field"]) == (400, "page_token")
    status, reply, _ = await http.call("GET", "/api/v1/users/user-nobody", admin.token)
    assert (status, reply["error"]["code"]) == (404, "NOT_FOUND")


async def test_health_openapi_and_grpc_services(server, http):
    status, health, _ = await http.call("GET", "/health")
    assert status == 200 and health["data"]["dependencies"]["signing_key"]
    _, doc, _ = await http.call("GET", "/api/v1/openapi.json")
    token = doc["paths"]["/api/v1/auth/token"]["post"]
    assert token["security"] == [] and token["x-grpc-method"] == "photoncloud.iam.v1.Tokens/IssueToken"
    assert doc["paths"]["/api/v1/users"]["post"]["x-permission"] == "iam:users:manage"
    assert doc["paths"]["/api/v1/users/me"]["get"]["security"] == [{"bearer": []}]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        health_stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", "photoncloud.iam.v1.Tokens", "photoncloud.iam.v1.Users", "photoncloud.iam.v1.Audit"):
            reply = await health_stub.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        jwks = await pb_grpc.TokensStub(channel).GetJwks(pb.GetJwksRequest())
        assert len(jwks.keys) == 1 and jwks.keys[0].alg == "RS256"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await pb_grpc.UsersStub(channel).ListUsers(pb.ListUsersRequest())
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_peers_give_the_same_addresses_as_rest():
    from photoncloud.iam.grpc_api import peer_address

    assert peer_address("ipv4:127.0.0.1:50123") == "127.0.0.1"
    assert peer_address("ipv6:[::1]:50123") == "::1"
    assert peer_address("ipv6:%5B::1%5D:50123") == "::1"
    assert peer_address("unix:/run/iam.sock") == "/run/iam.sock"


async def test_a_failed_create_is_audited_under_the_name_it_asked_for(server, http, admin):
    await make_user(http, admin, "erin")
    status, _, _ = await http.call("POST", "/api/v1/users", admin.token,
                                   json={"name": "erin", "password": PASSWORD + "-2"})
    assert status == 409
    _, page, _ = await http.call("GET", "/api/v1/audit", admin.token, params={"action": "iam.users.create"})
    failures = [e for e in page["data"]["items"] if e["outcome"] == "FAILURE"]
    assert [e["target"] for e in failures] == ["users/erin"]


async def test_an_org_admin_gets_403_rotating_the_secret_of_a_system_bound_account(server, http, admin):
    _, orgs, _ = await http.call("GET", "/api/v1/orgs", admin.token, params={"name": "default"})
    org_id = orgs["data"]["items"][0]["id"]
    status, made, _ = await http.call("POST", "/api/v1/service-accounts", admin.token,
                                      json={"org_id": org_id, "name": "k8shost-agent-node1"})
    assert status == 200, made
    agent = made["data"]["client_id"]
    status, reply, _ = await http.call("POST", "/api/v1/bindings", admin.token, json={
        "principal": f"serviceaccount:{agent}", "role": "admin", "scope": {"type": "system"}})
    assert status == 200, reply
    await make_user(http, admin, "olga", role="admin", type="org", org_id=org_id)
    olga = (await http.token("olga", PASSWORD, org_id=org_id))["access_token"]
    status, reply, _ = await http.call("POST", f"/api/v1/service-accounts/{agent}/secret", olga)
    assert (status, reply["error"]["code"], reply["error"]["details"]["reason"]) == \
        (403, "PERMISSION_DENIED", "PRINCIPAL_OUTRANKS_CALLER")
    status, reply, _ = await http.call("POST", "/api/v1/auth/token", json={
        "grant_type": "client_credentials", "client_id": agent, "client_secret": made["data"]["client_secret"]})
    assert (status, reply["data"]["scope"]["type"]) == (200, "system")  # the old secret still stands
