"""auth.py on its own: permission wildcards, scopes, the principal's checks, bearer parsing, token
verification, IAM's key set and revocation list (over real loopback HTTP), and the IAM settings."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

from photoncloud.common import auth
from photoncloud.common.auth import (
    AUDIENCE, ORG, PROJECT, SYSTEM, JwksKeys, PolledRevocations, Principal, Scope, Verifier,
    bearer_token, check_permission_name, iam_verifier, permits,
)
from photoncloud.common.config import load_config
from photoncloud.common.errors import Code, ServiceError
from photoncloud.common.testing import StaticKeys, TokenMint

ISSUER = "http://iam.test"
EVERYTHING = Scope(SYSTEM)


def principal(permissions: tuple[str, ...] = ("*",), scope: Scope = EVERYTHING) -> Principal:
    return Principal(subject="user:alice", name="alice", scope=scope, roles=("custom",),
                     permissions=permissions, token_id="jti-1", expires_at=2**31, token="t")


def refused(exc_info: pytest.ExceptionInfo, code: Code, reason: str | None = None) -> dict[str, Any]:
    """Assert the ServiceError caught has code (and details.reason); returns its details."""
    exc = exc_info.value
    assert isinstance(exc, ServiceError)
    assert exc.code is code, exc
    details = exc.details or {}
    if reason is not None:
        assert details.get("reason") == reason, exc
    return details


# --- permits and permission names ---------------------------------------------------------------


@pytest.mark.parametrize(("granted", "action", "allowed"), [
    (["chainfire:kv:write"], "chainfire:kv:write", True),
    (["chainfire:kv:write"], "chainfire:kv:read", False),
    (["chainfire:kv:write"], "flaredb:kv:write", False),
    (["chainfire:kv:read", "chainfire:kv:write"], "chainfire:kv:write", True),
    ([], "chainfire:kv:read", False),
    (["*"], "chainfire:kv:write", True),
    (["*"], "iam:users:manage", True),
    (["chainfire:*:read"], "chainfire:lease:read", True),
    (["chainfire:*:read"], "chainfire:lease:write", False),
    (["chainfire:*:read"], "flaredb:lease:read", False),
    (["*:kv:*"], "flaredb:kv:write", True),
    (["*:kv:*"], "flaredb:sql:write", False),
    (["chainfire:kv:*"], "chainfire:kv:write", True),
    (["*:*:read"], "prismnet:vpc:read", True),
    # segment counts must agree: a two- or four-segment grant covers no three-segment action
    (["chainfire:kv"], "chainfire:kv:read", False),
    (["chainfire:*"], "chainfire:kv:read", False),
    (["*:*"], "chainfire:kv:read", False),
    (["chainfire:kv:read:x"], "chainfire:kv:read", False),
    (["*:*:*:*"], "chainfire:kv:read", False),
    # `manage` is covered only by a grant naming it or by a wildcard, never by read/write grants
    (["*:*:read"], "iam:users:manage", False),
    (["*:*:write"], "iam:users:manage", False),
    (["*:*:read", "*:*:write"], "iam:roles:manage", False),
    (["iam:*:manage"], "iam:roles:manage", True),
    (["iam:users:manage"], "iam:users:write", False),
    # the wildcard lives in grants: a concrete grant does not cover an action spelled with `*`
    (["chainfire:kv:read"], "chainfire:*:read", False),
    (["chainfire:kv:read"], "*", False),
])
def test_permits(granted, action, allowed):
    assert permits(granted, action) is allowed
    assert principal(tuple(granted)).can(action) is allowed


def test_permits_accepts_any_iterable():
    assert permits(iter(["x:y:z"]), "x:y:z")
    assert permits(("a:b:c", "*"), "q:r:s")


@pytest.mark.parametrize("name", [
    "chainfire:kv:write", "*", "*:*:read", "*:*:*", "iam:*:manage", "iam:service-accounts:manage",
    "credit_service:wallets:read", "k8shost:pods:write",
])
def test_check_permission_name_accepts(name):
    assert check_permission_name(name) == name


@pytest.mark.parametrize("name", [
    "", "chainfire", "chainfire:kv", "chainfire:kv:write:now", "chainfire::write", ":kv:write",
    "chainfire:kv:", "chainfire:kv:wr ite", "chainfire:k*:write", "chainfire:kv:*x", "**", "*:*",
    "chainfire:kv:write\n", "chain/fire:kv:write",
])
def test_check_permission_name_refuses(name):
    with pytest.raises(ServiceError) as caught:
        check_permission_name(name)
    assert refused(caught, Code.INVALID_ARGUMENT)["field"] == "permissions"


# --- Scope --------------------------------------------------------------------------------------


def test_system_scope_covers_everything():
    scope = Scope(SYSTEM)
    assert scope.covers("o1", "p1")
    assert scope.covers("o2")
    assert scope.covers(project_id="p9")
    assert scope.covers()


def test_org_scope_covers_its_org_and_its_projects_only():
    scope = Scope(ORG, org_id="o1")
    assert scope.covers("o1")
    assert scope.covers("o1", "p1")
    assert scope.covers("o1", "any-project")
    assert not scope.covers("o2")
    assert not scope.covers("o2", "p1")
    # a project named without its org cannot be placed inside the org
    assert not scope.covers(project_id="p1")
    assert not scope.covers()
    assert not scope.covers("")


def test_project_scope_covers_only_that_project():
    scope = Scope(PROJECT, org_id="o1", project_id="p1")
    assert scope.covers("o1", "p1")
    assert scope.covers(project_id="p1")
    assert not scope.covers("o1", "p2")
    assert not scope.covers(project_id="p2")
    # the same project id in another org is another project
    assert not scope.covers("o2", "p1")
    # the org itself (an org-wide resource) is more than the project
    assert not scope.covers("o1")
    assert not scope.covers()


def test_scope_as_claim():
    assert Scope(PROJECT, "o1", "p1").as_dict() == {"type": "project", "org_id": "o1", "project_id": "p1"}
    assert Scope(SYSTEM).as_dict() == {"type": "system", "org_id": "", "project_id": ""}


# --- Principal.require --------------------------------------------------------------------------


def test_require_passes_with_permission_and_scope():
    p = principal(("chainfire:kv:write",), Scope(PROJECT, "o1", "p1"))
    p.require("chainfire:kv:write")
    p.require("chainfire:kv:write", "o1", "p1")
    p.require("chainfire:kv:write", project_id="p1")


def test_require_without_permission_is_missing_permission():
    p = principal(("chainfire:kv:read",), Scope(SYSTEM))
    with pytest.raises(ServiceError) as caught:
        p.require("chainfire:kv:write")
    details = refused(caught, Code.PERMISSION_DENIED, "MISSING_PERMISSION")
    assert details["action"] == "chainfire:kv:write"


def test_require_outside_scope_is_out_of_scope():
    p = principal(("*",), Scope(PROJECT, "o1", "p1"))
    with pytest.raises(ServiceError) as caught:
        p.require("prismnet:vpc:write", "o1", "p2")
    details = refused(caught, Code.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert details["action"] == "prismnet:vpc:write"
    assert details["scope"] == {"type": "project", "org_id": "o1", "project_id": "p1"}
    with pytest.raises(ServiceError) as caught:
        principal(("*",), Scope(ORG, "o1")).require("prismnet:vpc:read", org_id="o2")
    refused(caught, Code.PERMISSION_DENIED, "OUT_OF_SCOPE")


def test_require_checks_the_permission_before_the_scope():
    p = principal(("chainfire:kv:read",), Scope(PROJECT, "o1", "p1"))
    with pytest.raises(ServiceError) as caught:
        p.require("chainfire:kv:write", "o2", "p2")
    refused(caught, Code.PERMISSION_DENIED, "MISSING_PERMISSION")


def test_the_token_is_kept_out_of_the_principal_repr():
    p = Principal("user:a", "a", Scope(SYSTEM), (), (), "j", 1, token="eyJ.secret.token")
    assert "eyJ.secret.token" not in repr(p)


# --- current / caller / outgoing headers --------------------------------------------------------


def test_no_principal_outside_a_request():
    assert auth.current() is None
    assert auth.outgoing_headers() == {}
    with pytest.raises(ServiceError) as caught:
        auth.caller()
    refused(caught, Code.UNAUTHENTICATED)


def test_bind_and_reset():
    p = principal()
    token = auth.bind(p)
    try:
        assert auth.current() is p
        assert auth.caller() is p
        assert auth.outgoing_headers() == {"Authorization": "Bearer t"}
    finally:
        auth.reset(token)
    assert auth.current() is None
    assert auth.outgoing_headers() == {}


# --- bearer_token -------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc.def.ghi", "abc.def.ghi"),
    ("bearer abc.def.ghi", "abc.def.ghi"),  # the scheme is case-insensitive (RFC 7235)
    ("BEARER abc.def.ghi", "abc.def.ghi"),
    ("Bearer   abc.def.ghi", "abc.def.ghi"),
    ("  Bearer abc.def.ghi  ", "abc.def.ghi"),
])
def test_bearer_token_accepts(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", [
    None, "", "   ", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc.def.ghi",
    "abc.def.ghi", "Bearerabc.def.ghi",
])
def test_bearer_token_refuses(header):
    with pytest.raises(ServiceError) as caught:
        bearer_token(header)
    refused(caught, Code.UNAUTHENTICATED)


# --- admit --------------------------------------------------------------------------------------


async def test_admit():
    mint = TokenMint()
    verifier = mint.verifier()
    token = mint.token(permissions=("chainfire:kv:read",), subject="user:bob")
    assert await auth.admit(None, None, auth.TENANT, "chainfire:kv:write") is None  # no verifier: no checks
    assert await auth.admit(verifier, None, auth.PUBLIC, "chainfire:kv:write") is None
    assert await auth.admit(verifier, "Bearer garbage", auth.PUBLIC, None) is None  # public ignores tokens
    admitted = await auth.admit(verifier, f"Bearer {token}", auth.TENANT, "chainfire:kv:read")
    assert admitted is not None and admitted.subject == "user:bob"
    admitted = await auth.admit(verifier, f"Bearer {token}", auth.TENANT, None)
    assert admitted is not None and admitted.subject == "user:bob"
    with pytest.raises(ServiceError) as caught:
        await auth.admit(verifier, None, auth.TENANT, None)
    refused(caught, Code.UNAUTHENTICATED)
    with pytest.raises(ServiceError) as caught:
        await auth.admit(verifier, f"Bearer {token}", auth.TENANT, "chainfire:kv:write")
    assert refused(caught, Code.PERMISSION_DENIED, "MISSING_PERMISSION")["action"] == "chainfire:kv:write"


@pytest.mark.parametrize("who", [auth.OPERATOR, ""])  # "": undeclared, served as the operator's
async def test_admit_an_operators_operation_takes_a_system_token(who):
    mint = TokenMint()
    verifier = mint.verifier()
    operator = mint.token(permissions=("chainfire:cluster:manage",), subject="user:operator")
    admitted = await auth.admit(verifier, f"Bearer {operator}", who, "chainfire:cluster:manage")
    assert admitted.subject == "user:operator"
    for scope in (Scope(ORG, "org-a"), Scope(PROJECT, "org-a", "project-a")):
        tenant_admin = mint.token(permissions=("*",), scope=scope, subject="user:tenant-admin")
        with pytest.raises(ServiceError) as caught:
            await auth.admit(verifier, f"Bearer {tenant_admin}", who, "chainfire:cluster:manage")
        assert refused(caught, Code.PERMISSION_DENIED, "OPERATOR_ONLY")["scope"]["type"] == scope.kind
    with pytest.raises(ServiceError) as caught:  # the operator still needs the permission
        await auth.admit(verifier, f"Bearer {mint.token(permissions=())}", who, "chainfire:cluster:manage")
    refused(caught, Code.PERMISSION_DENIED, "MISSING_PERMISSION")


# --- Verifier -----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def hand_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A JWT built by hand: HMAC-SHA256 with secret, or no signature at all."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{b64url(signature)}"


def claims_of(mint: TokenMint, **changes: Any) -> dict[str, Any]:
    """The claims of a fresh mint token, with changes applied (a value of None removes the claim)."""
    claims = jwt.decode(mint.token(), options={"verify_signature": False})
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def signed(mint: TokenMint, claims: dict[str, Any], **headers: Any) -> str:
    return jwt.encode(claims, mint.private_key, algorithm="RS256", headers={"kid": mint.kid, **headers})


def public_bytes(mint: TokenMint, encoding: serialization.Encoding = serialization.Encoding.PEM) -> bytes:
    return mint.private_key.public_key().public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)


def jwk(mint: TokenMint) -> dict[str, Any]:
    """mint's public key as IAM would publish it in its JWKS."""
    return {**RSAAlgorithm.to_jwk(mint.private_key.public_key(), as_dict=True),
            "kid": mint.kid, "alg": "RS256", "use": "sig"}


class Revoked:
    """A RevocationSource that knows a fixed set of revoked token IDs."""

    def __init__(self, *token_ids: str):
        self.token_ids = set(token_ids)
        self.asked: list[str] = []

    async def is_revoked(self, token_id: str) -> bool:
        self.asked.append(token_id)
        return token_id in self.token_ids


@pytest.fixture(scope="module")
def mint() -> TokenMint:
    return TokenMint(issuer=ISSUER, kid="key-1")


@pytest.fixture(scope="module")
def verifier(mint) -> Verifier:
    return mint.verifier()


async def test_a_valid_token_names_its_principal(mint, verifier):
    scope = Scope(PROJECT, "o1", "p1")
    token = mint.token(permissions=("chainfire:kv:read", "flaredb:*:read"), roles=("viewer", "auditor"),
                       scope=scope, subject="serviceaccount:sa-7", ttl=120)
    claims = jwt.decode(token, options={"verify_signature": False})
    p = await verifier.verify(token)
    assert p.subject == "serviceaccount:sa-7"
    assert p.name == "sa-7"
    assert p.scope == scope
    assert p.roles == ("viewer", "auditor")
    assert p.permissions == ("chainfire:kv:read", "flaredb:*:read")
    assert p.token_id == claims["jti"]
    assert p.expires_at == claims["exp"]
    assert p.token == token
    assert p.can("flaredb:sql:read") and not p.can("flaredb:sql:write")


async def test_a_system_token_has_an_empty_org_and_project(mint, verifier):
    p = await verifier.verify(mint.token(scope=Scope(SYSTEM)))
    assert p.scope == Scope(SYSTEM, "", "")


async def test_an_expired_token_is_refused(mint):
    verifier = Verifier(StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))}), ISSUER, leeway_seconds=5)
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(mint.token(ttl=-60))
    refused(caught, Code.UNAUTHENTICATED, "EXPIRED")


async def test_an_expiry_within_the_leeway_is_tolerated(mint):
    verifier = Verifier(StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))}), ISSUER, leeway_seconds=60)
    assert (await verifier.verify(mint.token(ttl=-5))).subject == "user:test"


async def test_a_token_not_valid_yet_is_refused(mint, verifier):
    now = int(time.time())
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(signed(mint, claims_of(mint, nbf=now + 3600, exp=now + 7200)))
    refused(caught, Code.UNAUTHENTICATED, "INVALID")


async def test_a_token_signed_by_another_key_with_the_same_kid_is_invalid(mint, verifier):
    impostor = TokenMint(issuer=ISSUER, kid=mint.kid)
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(impostor.token())
    refused(caught, Code.UNAUTHENTICATED, "INVALID")


async def test_an_altered_token_is_invalid(mint, verifier):
    header, _, signature = mint.token(permissions=("chainfire:kv:read",)).split(".")
    payload = b64url(json.dumps(claims_of(mint, permissions=["*"])).encode())
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(f"{header}.{payload}.{signature}")
    refused(caught, Code.UNAUTHENTICATED, "INVALID")


async def test_an_unknown_kid_is_unknown_key(mint, verifier):
    stranger = TokenMint(issuer=ISSUER, kid="key-nobody-published")
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(stranger.token())
    refused(caught, Code.UNAUTHENTICATED, "UNKNOWN_KEY")


@pytest.mark.parametrize("header", [{"alg": "RS256"}, {"alg": "RS256", "kid": None}, {"alg": "RS256", "kid": 7},
                                    {"alg": "RS256", "kid": ["key-1"]}])
async def test_a_token_without_a_usable_kid_is_refused(mint, verifier, header):
    token = hand_signed({"typ": "JWT", **header}, claims_of(mint), b"x")
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(token)
    refused(caught, Code.UNAUTHENTICATED)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9"])
async def test_garbage_is_refused(verifier, token):
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(token)
    refused(caught, Code.UNAUTHENTICATED)


async def test_the_wrong_audience_is_refused(mint, verifier):
    for audience in ("another-platform", ["another-platform"]):
        with pytest.raises(ServiceError) as caught:
            await verifier.verify(mint.token(aud=audience))
        refused(caught, Code.UNAUTHENTICATED, "INVALID")


async def test_the_wrong_issuer_is_refused(mint, verifier):
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(mint.token(iss="http://evil.test"))
    refused(caught, Code.UNAUTHENTICATED, "INVALID")
    other_issuer = TokenMint(issuer="http://elsewhere.test", kid=mint.kid)
    other_issuer.private_key = mint.private_key  # the right key, the wrong issuer
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(other_issuer.token())
    refused(caught, Code.UNAUTHENTICATED, "INVALID")


async def test_the_audience_is_configurable(mint):
    verifier = Verifier(StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))}), ISSUER, audience="other")
    assert (await verifier.verify(mint.token(aud="other"))).subject == "user:test"
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(mint.token())  # aud = photoncloud
    refused(caught, Code.UNAUTHENTICATED, "INVALID")


async def test_alg_none_is_refused(mint, verifier):
    token = hand_signed({"alg": "none", "typ": "JWT", "kid": mint.kid}, claims_of(mint), None)
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(token)
    refused(caught, Code.UNAUTHENTICATED)


@pytest.mark.parametrize("keys", ["jwk", "pem"])
async def test_hs256_signed_with_the_public_key_is_refused(mint, keys):
    """The algorithm-confusion attack: HMAC keyed with the (public) RSA key's bytes."""
    pem, der = public_bytes(mint), public_bytes(mint, serialization.Encoding.DER)
    key = jwt.PyJWK(jwk(mint)) if keys == "jwk" else pem
    verifier = Verifier(StaticKeys({mint.kid: key}), ISSUER)
    assert (await verifier.verify(mint.token())).subject == "user:test"  # the key itself works
    claims = claims_of(mint, permissions=["*"], sub="user:mallory")
    for secret in (pem, der, json.dumps(jwk(mint)).encode()):
        token = hand_signed({"alg": "HS256", "typ": "JWT", "kid": mint.kid}, claims, secret)
        with pytest.raises(ServiceError) as caught:
            await verifier.verify(token)
        refused(caught, Code.UNAUTHENTICATED)


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256"])
async def test_only_rs256_is_accepted(mint, verifier, alg):
    token = jwt.encode(claims_of(mint), mint.private_key, algorithm=alg, headers={"kid": mint.kid})
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(token)
    refused(caught, Code.UNAUTHENTICATED)


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "jti", "scope", "aud", "iss"])
async def test_a_missing_required_claim_is_refused(mint, verifier, claim):
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(signed(mint, claims_of(mint, **{claim: None})))
    refused(caught, Code.UNAUTHENTICATED, "INVALID")


@pytest.mark.parametrize("scope", [
    "system", ["system"], 7, {}, {"type": "galaxy"}, {"type": "SYSTEM"}, {"org_id": "o1"},
])
async def test_a_bad_scope_is_refused(mint, verifier, scope):
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(signed(mint, claims_of(mint, scope=scope)))
    refused(caught, Code.UNAUTHENTICATED, "INVALID")


@pytest.mark.parametrize(("claim", "value"), [
    ("permissions", "chainfire:*:read"),  # a string, not a list: its characters include `*`
    ("permissions", {"*": True}),
    ("permissions", ["chainfire:kv:read", 7]),
    ("roles", "admin"),
    ("roles", [None]),
])
async def test_badly_typed_grants_are_refused(mint, verifier, claim, value):
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(signed(mint, claims_of(mint, **{claim: value})))
    refused(caught, Code.UNAUTHENTICATED, "INVALID")


async def test_absent_grants_are_empty(mint, verifier):
    p = await verifier.verify(signed(mint, claims_of(mint, permissions=None, roles=None)))
    assert p.permissions == () and p.roles == ()
    assert not p.can("chainfire:kv:read")


async def test_a_revoked_token_is_refused(mint):
    revoked, live = mint.token(), mint.token()
    revoked_id = jwt.decode(revoked, options={"verify_signature": False})["jti"]
    source = Revoked(revoked_id)
    verifier = Verifier(StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))}), ISSUER, source)
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(revoked)
    refused(caught, Code.UNAUTHENTICATED, "REVOKED")
    admitted = await verifier.verify(live)
    assert admitted.token_id != revoked_id
    assert source.asked[0] == revoked_id
    assert admitted.revocations is source  # where a stream opened with it learns of its revocation


async def test_revocation_is_not_consulted_for_a_token_that_fails_verification(mint):
    source = Revoked()
    verifier = Verifier(StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))}), ISSUER, source)
    with pytest.raises(ServiceError):
        await verifier.verify(TokenMint(issuer=ISSUER, kid=mint.kid).token())
    assert source.asked == []


# --- tokens verified once are remembered, and still checked ---------------------------------------


def count_decodes(monkeypatch) -> list[str]:
    """The tokens jwt.decode is asked to verify from now on."""
    decoded: list[str] = []
    original = jwt.decode

    def counting(token, *args, **kwargs):
        decoded.append(token)
        return original(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return decoded


async def test_a_token_verified_once_is_not_decoded_again(mint, monkeypatch):
    verifier = Verifier(StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))}), ISSUER)
    decoded = count_decodes(monkeypatch)
    token = mint.token()
    first, second = await verifier.verify(token), await verifier.verify(token)
    assert second == first and decoded == [token]


async def test_a_remembered_token_revoked_later_is_refused(mint):
    source = Revoked()
    verifier = Verifier(StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))}), ISSUER, source)
    token = mint.token()
    admitted = await verifier.verify(token)
    source.token_ids.add(admitted.token_id)
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(token)
    refused(caught, Code.UNAUTHENTICATED, "REVOKED")


async def test_a_remembered_token_past_its_expiry_is_refused(mint, monkeypatch):
    verifier = Verifier(StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))}), ISSUER, leeway_seconds=5)
    token = mint.token(ttl=60)
    admitted = await verifier.verify(token)
    later = admitted.expires_at + 5
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(token)
    refused(caught, Code.UNAUTHENTICATED, "EXPIRED")


async def test_a_remembered_token_whose_key_went_or_changed_is_verified_again(mint, monkeypatch):
    keys = StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))})
    verifier = Verifier(keys, ISSUER)
    token = mint.token()
    await verifier.verify(token)
    decoded = count_decodes(monkeypatch)
    keys.keys = {mint.kid: jwt.PyJWK(jwk(TokenMint(issuer=ISSUER, kid=mint.kid)))}  # another key, the same id
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(token)
    refused(caught, Code.UNAUTHENTICATED, "INVALID")
    assert decoded == [token]
    keys.keys = {}
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(token)
    assert caught.value.code is Code.UNAUTHENTICATED


async def test_the_remembered_tokens_are_bounded(mint, monkeypatch):
    verifier = Verifier(StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))}), ISSUER, remembered=2)
    first, second, third = mint.token(), mint.token(), mint.token()
    for token in (first, second, third):
        await verifier.verify(token)
    decoded = count_decodes(monkeypatch)
    await verifier.verify(third)
    await verifier.verify(first)  # forgotten when the third came: verified again
    assert decoded == [first] and len(verifier._verified) == 2


# --- a fake IAM on loopback: JWKS and revocation list -------------------------------------------


class FakeIam:
    """IAM's two endpoints a verifier reads, with what they were asked."""

    def __init__(self) -> None:
        self.jwks: Any = {"keys": []}
        self.jwks_requests = 0
        self.revocations: list[tuple[int, str, int]] = []  # (sequence, token id, expires_at)
        self.since: list[str] = []
        self.broken = False  # answer 500
        self.revocations_body: Any = None  # answer this instead, when set
        self.url = ""
        self._runner: web.AppRunner | None = None

    def revoke(self, token_id: str, expires_at: int) -> None:
        self.revocations.append((len(self.revocations) + 1, token_id, expires_at))

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        if self.broken:
            raise web.HTTPInternalServerError()
        return web.json_response(self.jwks)

    async def _revoked(self, request: web.Request) -> web.Response:
        self.since.append(request.query.get("since", ""))
        if self.broken:
            raise web.HTTPInternalServerError()
        if self.revocations_body is not None:
            return web.json_response(self.revocations_body)
        since = int(request.query.get("since") or 0)
        fresh = [r for r in self.revocations if r[0] > since]
        cursor = max([since, *(r[0] for r in fresh)])
        items = [{"token_id": jti, "expires_at": exp} for _, jti, exp in fresh]
        return web.json_response({"data": {"items": items, "next_page_token": "", "cursor": cursor}})

    async def start(self) -> FakeIam:
        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        app.router.add_get("/api/v1/auth/revocations", self._revoked)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def iam() -> AsyncIterator[FakeIam]:
    fake = await FakeIam().start()
    yield fake
    await fake.stop()


@pytest.fixture
def dead_url() -> Any:
    """A loopback URL where nothing listens (the port stays bound, so nothing else takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


class Clock:
    """Stands in for the time module inside auth: monotonic time moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall_offset = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time() + self.wall_offset

    def advance(self, seconds: float, wall: bool = False) -> None:
        self.now += seconds
        if wall:
            self.wall_offset += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(auth, "time", fake)
    return fake


# --- JwksKeys -----------------------------------------------------------------------------------


async def test_jwks_is_fetched_on_first_use(iam, mint):
    iam.jwks = {"keys": [jwk(mint)]}
    keys = JwksKeys(f"{iam.url}/.well-known/jwks.json")
    assert iam.jwks_requests == 0  # nothing is fetched before a token needs a key
    verifier = Verifier(keys, ISSUER)
    p = await verifier.verify(mint.token(subject="user:carol"))
    assert p.subject == "user:carol"
    assert iam.jwks_requests == 1
    await verifier.verify(mint.token())  # a known key is served from the cache
    assert iam.jwks_requests == 1


async def test_a_rotated_key_is_picked_up_on_the_next_miss(iam, mint, clock):
    iam.jwks = {"keys": [jwk(mint)]}
    verifier = Verifier(JwksKeys(f"{iam.url}/.well-known/jwks.json", min_refresh_seconds=10), ISSUER)
    await verifier.verify(mint.token())
    assert iam.jwks_requests == 1
    rotated = TokenMint(issuer=ISSUER, kid="key-2")
    iam.jwks = {"keys": [jwk(rotated), jwk(mint)]}  # IAM publishes the new key next to the old one
    clock.advance(11)
    assert (await verifier.verify(rotated.token(subject="user:dave"))).subject == "user:dave"
    assert iam.jwks_requests == 2
    assert (await verifier.verify(mint.token())).subject == "user:test"  # the old key still works
    assert iam.jwks_requests == 2


async def test_misses_within_min_refresh_do_not_refetch(iam, mint, clock):
    iam.jwks = {"keys": [jwk(mint)]}
    verifier = Verifier(JwksKeys(f"{iam.url}/.well-known/jwks.json", min_refresh_seconds=10), ISSUER)
    await verifier.verify(mint.token())
    stranger = TokenMint(issuer=ISSUER, kid="key-unpublished")
    for _ in range(5):
        with pytest.raises(ServiceError) as caught:
            await verifier.verify(stranger.token())
        refused(caught, Code.UNAUTHENTICATED, "UNKNOWN_KEY")
        clock.advance(1)
    assert iam.jwks_requests == 1  # unknown kids cannot make a service hammer IAM
    clock.advance(10)
    iam.jwks = {"keys": [jwk(mint), jwk(stranger)]}
    assert (await verifier.verify(stranger.token())).subject == "user:test"
    assert iam.jwks_requests == 2


async def test_a_key_removed_from_the_jwks_stops_working_after_a_refetch(iam, mint, clock):
    old = TokenMint(issuer=ISSUER, kid="key-old")
    iam.jwks = {"keys": [jwk(old)]}
    verifier = Verifier(JwksKeys(f"{iam.url}/.well-known/jwks.json", min_refresh_seconds=10), ISSUER)
    await verifier.verify(old.token())
    iam.jwks = {"keys": [jwk(mint)]}
    clock.advance(11)
    await verifier.verify(mint.token())  # a miss: refetched, and the old key is gone
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(old.token())
    refused(caught, Code.UNAUTHENTICATED, "UNKNOWN_KEY")


async def test_an_unreachable_jwks_is_unavailable(dead_url, mint):
    keys = JwksKeys(f"{dead_url}/.well-known/jwks.json")
    with pytest.raises(ServiceError) as caught:
        await Verifier(keys, ISSUER).verify(mint.token())
    details = refused(caught, Code.UNAVAILABLE)
    assert details["jwks_url"] == f"{dead_url}/.well-known/jwks.json"


async def test_a_failing_jwks_is_unavailable_and_retried(iam, mint):
    iam.broken = True
    verifier = Verifier(JwksKeys(f"{iam.url}/.well-known/jwks.json"), ISSUER)
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(mint.token())
    refused(caught, Code.UNAVAILABLE)
    iam.broken = False
    iam.jwks = {"keys": [jwk(mint)]}
    assert (await verifier.verify(mint.token())).subject == "user:test"  # IAM is back


@pytest.mark.parametrize("document", [{"keys": []}, {}, {"keys": "none"}, ["not", "a", "key", "set"]])
async def test_an_unusable_jwks_is_unavailable(iam, mint, document):
    iam.jwks = document
    with pytest.raises(ServiceError) as caught:
        await Verifier(JwksKeys(f"{iam.url}/.well-known/jwks.json"), ISSUER).verify(mint.token())
    refused(caught, Code.UNAVAILABLE)


# --- PolledRevocations --------------------------------------------------------------------------


def revocations(iam: FakeIam, interval: float = 5.0) -> PolledRevocations:
    return PolledRevocations(f"{iam.url}/api/v1/auth/revocations", interval)


async def test_a_revocation_shows_up_after_the_interval(iam, clock):
    source = revocations(iam, interval=5)
    assert not await source.is_revoked("jti-1")
    assert len(iam.since) == 1
    iam.revoke("jti-1", int(time.time()) + 3600)
    clock.advance(4)
    assert not await source.is_revoked("jti-1")  # the list is younger than the interval
    assert len(iam.since) == 1
    clock.advance(1)
    assert await source.is_revoked("jti-1")
    assert len(iam.since) == 2
    assert not await source.is_revoked("jti-2")


async def test_a_revocation_is_seen_with_a_tiny_interval(iam):
    source = revocations(iam, interval=0.001)
    assert not await source.is_revoked("jti-1")
    iam.revoke("jti-1", int(time.time()) + 3600)
    await asyncio.sleep(0.002)
    assert await source.is_revoked("jti-1")


async def test_the_cursor_is_sent_back(iam, clock):
    source = revocations(iam, interval=1)
    iam.revoke("a", int(time.time()) + 3600)
    iam.revoke("b", int(time.time()) + 3600)
    assert await source.is_revoked("a")
    clock.advance(1)
    iam.revoke("c", int(time.time()) + 3600)
    assert await source.is_revoked("c")
    clock.advance(1)
    assert await source.is_revoked("b")  # earlier entries are kept between polls
    assert iam.since == ["0", "2", "3"]


async def test_expired_entries_are_dropped(iam, clock):
    now = int(time.time())
    iam.revoke("long-expired", now - 3600)
    iam.revoke("expires-soon", now + 100)
    iam.revoke("long-lived", now + 86400)
    source = revocations(iam, interval=1)
    assert not await source.is_revoked("long-expired")
    assert await source.is_revoked("expires-soon")
    clock.advance(3600, wall=True)  # an hour on: "expires-soon" has long expired
    assert not await source.is_revoked("expires-soon")
    assert await source.is_revoked("long-lived")


async def test_a_revoked_token_within_the_expiry_leeway_stays_refused(iam, mint):
    """The verifier tolerates a few seconds past `exp`; the revocation must outlive that too."""
    token = mint.token(ttl=-2)
    claims = jwt.decode(token, options={"verify_signature": False})
    iam.revoke(claims["jti"], claims["exp"])
    verifier = Verifier(StaticKeys({mint.kid: jwt.PyJWK(jwk(mint))}), ISSUER, revocations(iam),
                        leeway_seconds=30)
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(token)
    refused(caught, Code.UNAUTHENTICATED, "REVOKED")


async def test_an_unreachable_iam_leaves_the_list_in_force(iam, clock, caplog):
    caplog.set_level(logging.WARNING, logger="photoncloud.auth")
    source = revocations(iam, interval=1)
    iam.revoke("jti-1", int(time.time()) + 3600)
    assert await source.is_revoked("jti-1")
    await iam.stop()
    clock.advance(2)
    assert await source.is_revoked("jti-1")  # no exception, the last list still applies
    assert not await source.is_revoked("jti-2")
    assert any("revoked" in r.getMessage() for r in caplog.records if r.name == "photoncloud.auth")


async def test_an_unreachable_iam_on_first_poll_revokes_nothing(dead_url):
    source = PolledRevocations(f"{dead_url}/api/v1/auth/revocations", 1)
    assert not await source.is_revoked("jti-1")


async def test_a_failing_iam_is_polled_every_interval_not_every_call(iam, clock):
    """'Polled every interval': an outage must not turn every request into a call to IAM."""
    source = revocations(iam, interval=5)
    iam.revoke("jti-1", int(time.time()) + 3600)
    assert await source.is_revoked("jti-1")
    iam.broken = True
    clock.advance(5)
    for _ in range(5):
        assert await source.is_revoked("jti-1")
    assert len(iam.since) == 2
    clock.advance(5)
    iam.broken = False
    iam.revoke("jti-2", int(time.time()) + 3600)
    assert await source.is_revoked("jti-2")  # recovered on the next interval
    assert iam.since[-1] == "1"  # the cursor survived the outage


@pytest.mark.parametrize("body", [
    {"items": []},
    {"data": None},
    {"data": {"items": [{"token": "x"}], "cursor": 9}},
    {"data": {"items": "x", "cursor": 9}},
    {"data": {"items": []}},
    ["data"],
])
async def test_a_malformed_revocation_list_leaves_the_list_in_force(iam, clock, body):
    source = revocations(iam, interval=1)
    iam.revoke("jti-1", int(time.time()) + 3600)
    assert await source.is_revoked("jti-1")
    iam.revocations_body = body
    clock.advance(1)
    assert await source.is_revoked("jti-1")
    assert not await source.is_revoked("x")
    iam.revocations_body = None
    clock.advance(1)
    iam.revoke("jti-2", int(time.time()) + 3600)
    assert await source.is_revoked("jti-2")
    assert iam.since[-1] == "1"  # a malformed answer did not move the cursor


# --- iam_verifier: both halves against one (fake) IAM -------------------------------------------


async def test_iam_verifier_reads_keys_and_revocations_from_iam(iam, mint, clock):
    iam.jwks = {"keys": [jwk(mint)]}
    verifier = iam_verifier(iam.url, ISSUER, revocation_poll_seconds=1)
    token = mint.token(subject="user:erin")
    assert (await verifier.verify(token)).subject == "user:erin"
    assert iam.jwks_requests == 1 and len(iam.since) == 1
    claims = jwt.decode(token, options={"verify_signature": False})
    iam.revoke(claims["jti"], claims["exp"])
    clock.advance(1)
    with pytest.raises(ServiceError) as caught:
        await verifier.verify(token)
    refused(caught, Code.UNAUTHENTICATED, "REVOKED")
    assert (await verifier.verify(mint.token())).subject == "user:test"
    with pytest.raises(ServiceError) as caught:
        await iam_verifier(iam.url, "http://another-issuer").verify(mint.token())
    refused(caught, Code.UNAUTHENTICATED, "INVALID")


# --- IAM settings in the configuration ----------------------------------------------------------


def test_iam_url_default_and_issuer():
    config = load_config("chainfire", 8081, argv=[], environ={})
    assert config.iam_url == "http://127.0.0.1:8083"  # IAM's REST port in DESIGN.md's table
    assert config.expected_issuer == config.iam_url


def test_iam_url_precedence():
    environ = {"PHOTONCLOUD_IAM_URL": "http://platform:1", "CHAINFIRE_IAM_URL": "http://service:2"}
    assert load_config("chainfire", 8081, argv=[], environ={"PHOTONCLOUD_IAM_URL": "http://platform:1"}) \
        .iam_url == "http://platform:1"
    assert load_config("chainfire", 8081, argv=[], environ=environ).iam_url == "http://service:2"
    assert load_config("chainfire", 8081, argv=["--iam-url", "http://flag:3"], environ=environ) \
        .iam_url == "http://flag:3"
    # another service's setting is not this one's
    assert load_config("flaredb", 8082, argv=[], environ=environ).iam_url == "http://platform:1"


def test_iam_url_trailing_slash_is_dropped_and_issuer_follows_it():
    config = load_config("prismnet", 8087, argv=["--iam-url", "http://iam.example:8083/"], environ={})
    assert config.iam_url == "http://iam.example:8083"
    assert config.expected_issuer == "http://iam.example:8083"


def test_the_issuer_can_differ_from_the_url():
    environ = {"PHOTONCLOUD_IAM_URL": "http://10.0.0.5:8083", "PHOTONCLOUD_IAM_ISSUER": "https://iam.example"}
    config = load_config("k8shost", 8085, argv=[], environ=environ)
    assert config.iam_url == "http://10.0.0.5:8083"
    assert config.expected_issuer == "https://iam.example"
    config = load_config("k8shost", 8085, argv=["--iam-issuer", "https://flag.example"], environ=environ)
    assert config.expected_issuer == "https://flag.example"


def test_revocation_poll_seconds_precedence():
    assert load_config("iam", 8083, argv=[], environ={}).revocation_poll_seconds == 5.0
    environ = {"PHOTONCLOUD_REVOCATION_POLL_SECONDS": "2"}
    assert load_config("iam", 8083, argv=[], environ=environ).revocation_poll_seconds == 2.0
    environ["IAM_REVOCATION_POLL_SECONDS"] = "1.5"
    assert load_config("iam", 8083, argv=[], environ=environ).revocation_poll_seconds == 1.5
    config = load_config("iam", 8083, argv=["--revocation-poll-seconds", "0.5"], environ=environ)
    assert config.revocation_poll_seconds == 0.5


def test_the_platform_data_dir_is_still_the_base_directory(tmp_path):
    environ = {"PHOTONCLOUD_DATA_DIR": str(tmp_path), "PHOTONCLOUD_IAM_URL": "http://iam:1"}
    for service, port in (("chainfire", 8081), ("iam", 8083)):
        config = load_config(service, port, argv=[], environ=environ)
        assert config.data_dir == tmp_path / service
        assert config.data_dir != Path(tmp_path)


def test_the_audience_is_the_platform():
    assert AUDIENCE == "photoncloud"
    assert jwt.decode(TokenMint().token(), options={"verify_signature": False})["aud"] == AUDIENCE
