"""IAM's OAuth2 endpoints against a real server, on the wire RFC 6749 and RFC 7009 define: form bodies,
top-level JSON answers, section 5.2's errors, client authentication both ways, the scope parameter,
and tenants trying to get a wider scope than theirs."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import jwt
import pytest

from photoncloud.common.auth import AUDIENCE

from .conftest import ADMIN_PASSWORD

PASSWORD = "a long enough password"


async def form(http, path: str, data: Any, headers: dict | None = None) -> tuple[int, Any, Any]:
    """POST data as a form to path: (status, the JSON body or None when empty, headers)."""
    async with http.session.post(http.base + path, data=data, headers=headers or {}) as response:
        text = await response.text()
        body = await response.json() if text else None
        return response.status, body, response.headers


def basic(client_id: str, secret: str) -> dict[str, str]:
    """The HTTP Basic header of client_secret_basic."""
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def token(http, **fields: str) -> dict[str, Any]:
    """A successful token response for the form fields."""
    status, body, _ = await form(http, "/oauth2/token", fields)
    assert status == 200, body
    return body


@pytest.fixture
async def world(http, admin) -> SimpleNamespace:
    """Org `default` with two projects; alice a member of `web` (and viewer of the org, so that only
    the session rule stops a refresh from widening); a service account `ci` bound in `web` only."""
    _, orgs, _ = await http.call("GET", "/api/v1/orgs", admin.token, params={"name": "default"})
    org = orgs["data"]["items"][0]["id"]
    projects = {}
    for name in ("web", "db"):
        status, made, _ = await http.call("POST", "/api/v1/projects", admin.token, json={"org_id": org, "name": name})
        assert status == 200, made
        projects[name] = made["data"]["id"]
    status, user, _ = await http.call("POST", "/api/v1/users", admin.token,
                                      json={"name": "alice", "password": PASSWORD})
    assert status == 200, user
    alice = f"user:{user['data']['id']}"
    status, made, _ = await http.call("POST", "/api/v1/service-accounts", admin.token,
                                      json={"org_id": org, "name": "ci"})
    assert status == 200, made
    ci = SimpleNamespace(id=made["data"]["client_id"], secret=made["data"]["client_secret"])
    for principal, role, scope in [
        (alice, "member", {"type": "project", "project_id": projects["web"]}),
        (alice, "viewer", {"type": "org", "org_id": org}),
        (f"serviceaccount:{ci.id}", "member", {"type": "project", "project_id": projects["web"]}),
    ]:
        status, reply, _ = await http.call("POST", "/api/v1/bindings", admin.token,
                                           json={"principal": principal, "role": role, "scope": scope})
        assert status == 200, reply
    return SimpleNamespace(org=org, web=projects["web"], db=projects["db"], ci=ci)


async def test_the_password_grant_answers_rfc_6749_json_that_is_not_cached(server, http):
    status, body, headers = await form(http, "/oauth2/token", {"grant_type": "password", "username": "admin",
                                                               "password": ADMIN_PASSWORD})
    assert status == 200, body
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "system")
    assert (headers["Cache-Control"], headers["Pragma"]) == ("no-store", "no-cache")
    assert headers["Content-Type"].startswith("application/json")
    claims = jwt.decode(body["access_token"], options={"verify_signature": False}, audience=AUDIENCE)
    assert claims["iss"] == server.iam.settings.issuer and claims["scope"]["type"] == "system"


async def test_a_project_scope_and_the_refresh_that_keeps_it(http, world):
    first = await token(http, grant_type="password", username="alice", password=PASSWORD,
                        scope=f"project:{world.web}")
    assert first["scope"] == f"project:{world.web}"
    refreshed = await token(http, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refreshed["scope"] == f"project:{world.web}" and refreshed["refresh_token"] != first["refresh_token"]
    status, body, _ = await form(http, "/oauth2/token", {"grant_type": "refresh_token",
                                                         "refresh_token": first["refresh_token"]})
    assert (status, body["error"]) == (400, "invalid_grant")  # a refresh token works once


@pytest.mark.parametrize("fields, error", [
    ({"username": "admin", "password": ADMIN_PASSWORD}, "invalid_request"),  # no grant_type
    ({"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"}, "unsupported_grant_type"),
    ({"grant_type": "authorization_code", "code": "x"}, "invalid_request"),  # no redirect_uri
    ({"grant_type": "authorization_code", "code": "x", "redirect_uri": "https://app.example/cb", "client_id": "x"},
     "invalid_grant"),
    ({"grant_type": "password", "username": "admin"}, "invalid_request"),  # no password
    ({"grant_type": "refresh_token"}, "invalid_request"),
    ({"grant_type": "password", "username": "admin", "password": "not the password"}, "invalid_grant"),
    ({"grant_type": "password", "username": "nobody", "password": "not the password"}, "invalid_grant"),
    ({"grant_type": "refresh_token", "refresh_token": "not-a-refresh-token"}, "invalid_grant"),
    ({"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD, "scope": "admin"}, "invalid_scope"),
    ({"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD, "scope": "system org:x"},
     "invalid_scope"),
    ({"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD, "scope": "project:proj-none"},
     "invalid_scope"),
])
async def test_form_errors_are_rfc_6749_section_5_2(server, http, fields, error):
    status, body, headers = await form(http, "/oauth2/token", fields)
    assert (status, body["error"]) == (400, error), body
    assert set(body) == {"error", "error_description"} and body["error_description"]
    assert headers["Cache-Control"] == "no-store"


async def test_the_body_must_be_a_form_with_each_parameter_once(server, http):
    status, body, _ = await http.call("POST", "/oauth2/token", json={"grant_type": "password", "username": "admin",
                                                                     "password": ADMIN_PASSWORD})
    assert (status, body["error"]) == (400, "invalid_request")
    assert "application/x-www-form-urlencoded" in body["error_description"]
    twice = [("grant_type", "password"), ("username", "admin"), ("username", "alice"), ("password", ADMIN_PASSWORD)]
    status, body, _ = await form(http, "/oauth2/token", twice)
    assert (status, body["error"]) == (400, "invalid_request") and "username" in body["error_description"]
    for raw in (b"grant_type=password&username=\xff", b"grant_type=password&username=%FF", b"x" * 70_000):
        status, body, _ = await form(http, "/oauth2/token", raw,
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        assert (status, body["error"]) == (400, "invalid_request"), raw[:40]


async def test_client_credentials_by_basic_and_by_post(http, world):
    by_basic = await form(http, "/oauth2/token", {"grant_type": "client_credentials", "scope": f"project:{world.web}"},
                          basic(world.ci.id, world.ci.secret))
    by_post = await form(http, "/oauth2/token", {"grant_type": "client_credentials", "client_id": world.ci.id,
                                                 "client_secret": world.ci.secret, "scope": f"project:{world.web}"})
    for status, body, _ in (by_basic, by_post):
        assert status == 200, body
        assert body["scope"] == f"project:{world.web}" and "refresh_token" not in body  # it signs in again instead
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == f"serviceaccount:{world.ci.id}" and claims["roles"] == ["member"]


async def test_bad_client_credentials_are_invalid_client_with_401_and_www_authenticate(http, world):
    for fields, headers in [
        ({"grant_type": "client_credentials"}, basic(world.ci.id, "not-the-secret")),
        ({"grant_type": "client_credentials", "client_id": world.ci.id, "client_secret": "not-the-secret"}, {}),
        ({"grant_type": "client_credentials", "client_id": "sa-unknown", "client_secret": "x"}, {}),
        ({"grant_type": "client_credentials"}, {}),  # no client authentication at all
        ({"grant_type": "client_credentials"}, {"Authorization": "Basic !!not-base64"}),
    ]:
        status, body, answered = await form(http, "/oauth2/token", fields, headers)
        assert (status, body["error"]) == (401, "invalid_client"), body
        assert answered["WWW-Authenticate"].startswith("Basic ")
    both = {"grant_type": "client_credentials", "client_id": world.ci.id, "client_secret": world.ci.secret}
    status, body, _ = await form(http, "/oauth2/token", both, basic(world.ci.id, world.ci.secret))
    assert (status, body["error"]) == (400, "invalid_request")  # one way of authenticating, not two


async def test_a_service_account_cannot_ask_for_a_scope_its_bindings_do_not_grant(http, world):
    for scope in (f"project:{world.db}", f"org:{world.org}", "system", ""):
        status, body, _ = await form(http, "/oauth2/token", {"grant_type": "client_credentials", "scope": scope},
                                     basic(world.ci.id, world.ci.secret))
        assert (status, body["error"]) == (400, "invalid_scope"), (scope, body)


async def test_a_project_tokens_refresh_cannot_widen_its_scope(http, world):
    first = await token(http, grant_type="password", username="alice", password=PASSWORD,
                        scope=f"project:{world.web}")
    # alice holds a role on the org and could sign in there; her project session cannot become it.
    await token(http, grant_type="password", username="alice", password=PASSWORD, scope=f"org:{world.org}")
    for wider in (f"org:{world.org}", "system", f"project:{world.db}"):
        status, body, _ = await form(http, "/oauth2/token", {"grant_type": "refresh_token", "scope": wider,
                                                             "refresh_token": first["refresh_token"]})
        assert (status, body["error"]) == (400, "invalid_scope"), (wider, body)
    # The refused requests used nothing up: the refresh token still works, on its own scope.
    kept = await token(http, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert kept["scope"] == f"project:{world.web}"


async def test_a_refresh_may_narrow_its_session(http, world):
    org = await token(http, grant_type="password", username="alice", password=PASSWORD, scope=f"org:{world.org}")
    narrowed = await token(http, grant_type="refresh_token", refresh_token=org["refresh_token"],
                           scope=f"project:{world.web}")
    claims = jwt.decode(narrowed["access_token"], options={"verify_signature": False})
    assert narrowed["scope"] == f"project:{world.web}" and claims["roles"] == ["member", "viewer"]


async def test_openid_adds_an_id_token_for_the_client_that_no_service_takes_as_an_access_token(server, http, world):
    signed_in = await token(http, grant_type="password", username="alice", password=PASSWORD, client_id="a-cli",
                            scope=f"openid profile project:{world.web}")
    assert signed_in["scope"] == f"openid profile project:{world.web}"
    (jwk,) = server.iam.jwks()
    key = jwt.PyJWK.from_dict(jwk).key
    identity = jwt.decode(signed_in["id_token"], key, algorithms=["RS256"], audience="a-cli",
                          issuer=server.iam.settings.issuer)
    assert identity["name"] == "alice" and identity["sub"].startswith("user:")
    assert identity["auth_time"] <= identity["iat"] and "scope" not in identity and "permissions" not in identity
    assert await server.iam.verify_token(signed_in["id_token"]) is None
    refreshed = await token(http, grant_type="refresh_token", refresh_token=signed_in["refresh_token"],
                            client_id="a-cli", scope="openid")
    assert jwt.decode(refreshed["id_token"], key, algorithms=["RS256"], audience="a-cli")["sub"] == identity["sub"]
    without = await token(http, grant_type="password", username="alice", password=PASSWORD,
                          scope=f"project:{world.web}")
    assert "id_token" not in without
    for fields, status, error in [
        ({"grant_type": "password", "username": "alice", "password": PASSWORD, "scope": "openid"}, 400,
         "invalid_request"),  # no client_id: no audience for the ID token
        ({"grant_type": "password", "username": "alice", "password": PASSWORD, "client_id": "a-cli",
          "scope": f"email project:{world.web}"}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", "client_id": world.ci.id, "client_secret": world.ci.secret,
          "scope": f"openid project:{world.web}"}, 400, "invalid_scope"),
        ({"grant_type": "password", "username": "alice", "password": PASSWORD, "client_id": "a" * 300,
          "scope": "openid"}, 400, "invalid_request"),
    ]:
        answered, body, _ = await form(http, "/oauth2/token", fields)
        assert (answered, body["error"]) == (status, error), (fields, body)


async def test_revocation_ends_the_session_of_a_refresh_or_access_token(server, http, world):
    signed_in = await token(http, grant_type="password", username="alice", password=PASSWORD,
                            scope=f"project:{world.web}")
    status, body, headers = await form(http, "/oauth2/revoke", {"token": signed_in["refresh_token"],
                                                                "token_type_hint": "refresh_token"})
    assert (status, body, headers["Cache-Control"]) == (200, None, "no-store")
    status, body, _ = await form(http, "/oauth2/token", {"grant_type": "refresh_token",
                                                         "refresh_token": signed_in["refresh_token"]})
    assert (status, body["error"]) == (400, "invalid_grant")
    assert await server.iam.verify_token(signed_in["access_token"]) is None  # its access token went with it
    other = await token(http, grant_type="password", username="alice", password=PASSWORD, scope=f"org:{world.org}")
    assert (await form(http, "/oauth2/revoke", {"token": other["access_token"]}))[0] == 200
    assert await server.iam.verify_token(other["access_token"]) is None
    status, body, _ = await form(http, "/oauth2/token", {"grant_type": "refresh_token",
                                                         "refresh_token": other["refresh_token"]})
    assert (status, body["error"]) == (400, "invalid_grant")  # and the session's refresh token
    # An unknown token is no error (RFC 7009 section 2.2); no token at all is.
    assert (await form(http, "/oauth2/revoke", {"token": "whatever"}))[0] == 200
    status, body, _ = await form(http, "/oauth2/revoke", {"token_type_hint": "access_token"})
    assert (status, body["error"]) == (400, "invalid_request")


async def test_repeated_failures_are_throttled_with_retry_after(server, http):
    for _ in range(5):
        status, body, _ = await form(http, "/oauth2/token", {"grant_type": "password", "username": "admin",
                                                             "password": "not the password"})
        assert body["error"] == "invalid_grant"
    status, body, headers = await form(http, "/oauth2/token", {"grant_type": "password", "username": "admin",
                                                               "password": ADMIN_PASSWORD})
    assert (status, body["error"]) == (429, "temporarily_unavailable")
    assert 1 <= int(headers["Retry-After"]) <= 60
