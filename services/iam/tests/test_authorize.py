"""The authorization code flow with PKCE against a real IAM server: authlib's OAuth2Session is the
client (discovery, S256 challenge, state, nonce, the code exchange), and a plain HTTP client fills the
sign-in form as a browser does. Then every refusal the standards ask for, and tenants trying to get a
wider token through the flow than their password would give them."""

from __future__ import annotations

import asyncio
import re
import secrets
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import jwt
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from photoncloud.common.auth import AUDIENCE
from photoncloud.iam.records import ServiceAccount, TokenFamily
from photoncloud.iam.store import SqliteIamStore

from .conftest import ADMIN_PASSWORD

PASSWORD = "a long enough password"
CALLBACK = "http://127.0.0.1:9999/callback"  # never reached: the tests read the redirect's Location
OTHER_CALLBACK = "https://app.example/oauth/callback"


class Inputs(HTMLParser):
    """The named inputs of a page's form, their values unescaped as a browser reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""


def inputs(page: str) -> dict[str, str]:
    """The form's fields of page."""
    parser = Inputs()
    parser.feed(page)
    return parser.fields


class Browser:
    """What a browser does with the endpoint: GET a URL, POST the form back, never follow redirects."""

    def __init__(self, session: aiohttp.ClientSession, base: str):
        self.session, self.base = session, base

    async def get(self, url: str) -> tuple[int, str, Any]:
        async with self.session.get(url, allow_redirects=False) as response:
            return response.status, await response.text(), response.headers

    async def submit(self, fields: dict[str, str], **changes: str) -> tuple[int, str, Any]:
        async with self.session.post(f"{self.base}/oauth2/authorize", data={**fields, **changes},
                                     allow_redirects=False) as response:
            return response.status, await response.text(), response.headers

    async def sign_in(self, url: str, username: str, password: str) -> tuple[int, str, Any]:
        """Open the sign-in page at url and send it with username and password."""
        status, page, _ = await self.get(url)
        assert status == 200, page
        return await self.submit(inputs(page), username=username, password=password)


def query(location: str) -> dict[str, str]:
    """The parameters of a redirect's Location."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def oauth_client(discovery: dict[str, Any], client_id: str, scope: str, secret: str | None = None,
                 redirect_uri: str = CALLBACK) -> OAuth2Session:
    """authlib's client for client_id, S256 PKCE, configured from the discovery document."""
    session = OAuth2Session(client_id, secret, scope=scope, redirect_uri=redirect_uri, code_challenge_method="S256",
                            token_endpoint_auth_method="client_secret_basic" if secret else "none")
    session.trust_env = False
    session.metadata.update(discovery)
    return session


@pytest.fixture
async def world(server, http, admin) -> SimpleNamespace:
    """Org `default` with projects web and db; alice a member of web; clients: `cli` (public, of the org),
    `portal` (confidential, of the org) and `web-app` (public, of project web); the discovery document;
    a browser."""
    _, orgs, _ = await http.call("GET", "/api/v1/orgs", admin.token, params={"name": "default"})
    org = orgs["data"]["items"][0]["id"]
    projects = {}
    for name in ("web", "db"):
        _, made, _ = await http.call("POST", "/api/v1/projects", admin.token, json={"org_id": org, "name": name})
        projects[name] = made["data"]["id"]
    status, user, _ = await http.call("POST", "/api/v1/users", admin.token,
                                      json={"name": "alice", "password": PASSWORD, "email": "alice@example.com"})
    assert status == 200, user
    alice = f"user:{user['data']['id']}"
    status, reply, _ = await http.call("POST", "/api/v1/bindings", admin.token, json={
        "principal": alice, "role": "member", "scope": {"type": "project", "project_id": projects["web"]}})
    assert status == 200, reply
    clients = {}
    for name, fields in {"cli": {"org_id": org, "public_client": True},
                         "portal": {"org_id": org, "redirect_uris": [CALLBACK, OTHER_CALLBACK]},
                         "web-app": {"project_id": projects["web"], "public_client": True}}.items():
        fields.setdefault("redirect_uris", [CALLBACK])
        status, made, _ = await http.call("POST", "/api/v1/service-accounts", admin.token,
                                          json={"name": name, **fields})
        assert status == 200, made
        clients[name] = SimpleNamespace(id=made["data"]["client_id"], secret=made["data"]["client_secret"])
    _, discovery, _ = await http.call("GET", "/.well-known/openid-configuration")
    issuer = server.iam.settings.issuer
    assert discovery["authorization_endpoint"] == f"{issuer}/oauth2/authorize"
    # This server's port was picked when it bound, after its issuer was set: its endpoints are reached here.
    discovery = {k: v.replace(issuer, http.base) if k.endswith("endpoint") else v for k, v in discovery.items()}
    return SimpleNamespace(org=org, web=projects["web"], db=projects["db"], alice=alice, clients=clients,
                           discovery=discovery, issuer=issuer,
                           browser=Browser(http.session, http.base))


def authorization(world: SimpleNamespace, client: str, scope: str, secret: str | None = None,
                  **extra: str) -> tuple[OAuth2Session, str, str, str]:
    """(authlib's session, the authorization URL it made, its state, its code verifier)."""
    session = oauth_client(world.discovery, world.clients[client].id, scope, secret)
    verifier = generate_token(48)
    url, state = session.create_authorization_url(world.discovery["authorization_endpoint"], code_verifier=verifier,
                                                  **extra)
    return session, url, state, verifier


async def code_for(world: SimpleNamespace, client: str = "cli", scope: str = "", username: str = "alice",
                   password: str = PASSWORD, secret: str | None = None) -> tuple[OAuth2Session, str, str]:
    """(the session, the redirect's Location with a code, the code verifier) for a sign-in."""
    session, url, state, verifier = authorization(world, client, scope or f"project:{world.web}", secret)
    status, _, headers = await world.browser.sign_in(url, username, password)
    assert status == 303, status
    assert query(headers["Location"])["state"] == state
    return session, headers["Location"], verifier


def exchange(session: OAuth2Session, location: str, verifier: str, **kw: Any) -> dict[str, Any]:
    """The token response for a redirect's code, as authlib asks for it."""
    return dict(session.fetch_token(session.metadata["token_endpoint"], authorization_response=location,
                                    code_verifier=verifier, **kw))


async def test_a_public_client_signs_a_user_in_with_pkce_and_calls_with_the_token(world, http):
    nonce = secrets.token_urlsafe(16)
    session, url, state, verifier = authorization(world, "cli", f"openid email project:{world.web}", nonce=nonce)
    sent = query(url)
    assert (sent["code_challenge_method"], sent["code_challenge"]) == ("S256", create_s256_code_challenge(verifier))
    status, page, headers = await world.browser.get(url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
    assert not re.search(r"(src|href)=", page)  # nothing loaded from anywhere
    fields = inputs(page)
    assert set(fields) >= {"username", "password", "form_token", "client_id", "redirect_uri", "state"}
    status, _, headers = await world.browser.submit(fields, username="alice", password=PASSWORD)
    assert status == 303
    location = headers["Location"]
    assert location.startswith(CALLBACK + "?")
    answer = query(location)
    assert (answer["state"], answer["iss"]) == (state, world.issuer) and answer["code"]
    token = await asyncio.to_thread(exchange, session, location, verifier)
    assert token["token_type"] == "Bearer" and token["refresh_token"] and token["expires_in"] == 3600
    assert token["scope"] == f"openid email project:{world.web}"
    # The ID token, as an OpenID Connect client checks it: signature, issuer, audience, and its nonce.
    _, jwks, _ = await http.call("GET", "/.well-known/jwks.json")
    keys = jwt.PyJWKSet.from_dict(jwks)
    kid = jwt.get_unverified_header(token["id_token"])["kid"]
    identity = jwt.decode(token["id_token"], keys[kid].key, algorithms=["RS256"], audience=world.clients["cli"].id,
                          issuer=world.issuer)
    assert (identity["sub"], identity["nonce"], identity["email"]) == (world.alice, nonce, "alice@example.com")
    claims = jwt.decode(token["access_token"], keys[kid].key, algorithms=["RS256"], audience=AUDIENCE)
    assert claims["scope"] == {"type": "project", "org_id": world.org, "project_id": world.web}
    assert claims["roles"] == ["member"] and claims["sub"] == world.alice
    status, me, _ = await http.call("GET", "/api/v1/users/me", token["access_token"])
    assert (status, me["data"]["name"]) == (200, "alice")
    status, refreshed, _ = await http.call("POST", "/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": world.clients["cli"].id})
    assert status == 200 and refreshed["scope"] == f"project:{world.web}"


async def test_a_confidential_client_authenticates_and_without_openid_gets_no_id_token(world):
    portal = world.clients["portal"]
    session, location, verifier = await code_for(world, "portal", secret=portal.secret)
    token = await asyncio.to_thread(exchange, session, location, verifier)
    assert "id_token" not in token and token["scope"] == f"project:{world.web}"
    # Its refresh token is its own: refreshed with its secret, refused without (RFC 6749 section 6).
    refreshed = await asyncio.to_thread(session.refresh_token, session.metadata["token_endpoint"])
    assert refreshed["scope"] == f"project:{world.web}"
    async with world.browser.session.post(f"{world.browser.base}/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"],
            "client_id": portal.id}) as response:
        assert (response.status, (await response.json())["error"]) == (400, "invalid_grant")
    # Without its secret, the confidential client's code is refused: PKCE alone is for public clients.
    session, location, verifier = await code_for(world, "portal")
    with pytest.raises(OAuthError) as refused:
        await asyncio.to_thread(exchange, session, location, verifier)
    assert refused.value.error == "invalid_client"


async def test_an_unknown_client_or_redirect_uri_gets_an_error_page_never_a_redirect(world):
    endpoint = world.discovery["authorization_endpoint"]
    cli = world.clients["cli"].id
    base = {"response_type": "code", "state": "s", "code_challenge": create_s256_code_challenge(generate_token(48)),
            "code_challenge_method": "S256"}
    for params in ({**base, "client_id": "sa-unknown", "redirect_uri": CALLBACK},
                   {**base, "client_id": cli, "redirect_uri": "https://evil.example/steal"},
                   {**base, "client_id": cli, "redirect_uri": CALLBACK + "/"},  # exact match only
                   {**base, "client_id": cli},
                   {**base, "client_id": world.clients["portal"].id, "redirect_uri": "https://app.example/oauth"}):
        status, page, headers = await world.browser.get(f"{endpoint}?{urlencode(params)}")
        assert status == 400 and "Location" not in headers, params
        assert headers["Content-Type"].startswith("text/html") and "cannot be served" in page
    # A form posted with a client's fields changed is no better.
    _, url, _, _ = authorization(world, "cli", f"project:{world.web}")
    _, page, _ = await world.browser.get(url)
    status, _, headers = await world.browser.submit(inputs(page), redirect_uri="https://evil.example/steal",
                                                    username="alice", password=PASSWORD)
    assert status == 400 and "Location" not in headers


async def test_a_wrong_password_shows_the_form_again_with_no_code(world, server, http, admin):
    _, url, _, _ = authorization(world, "cli", f"project:{world.web}")
    status, page, headers = await world.browser.sign_in(url, "alice", "not the password at all")
    assert status == 401 and "Location" not in headers
    assert "Invalid user name or password" in page and inputs(page)["username"] == "alice"
    assert len(server.iam.codes) == 0
    status, page, headers = await world.browser.submit(inputs(page), username="alice", password=PASSWORD)
    assert status == 303 and query(headers["Location"])["code"]  # the form shown again works
    # The sign-in was audited like the password grant's.
    status, events, _ = await http.call("GET", "/api/v1/audit", admin.token, params={"action": "iam.oauth2.authorize"})
    assert status == 200, events
    assert [(e["outcome"], e["details"].get("reason")) for e in events["data"]["items"]] == [
        ("SUCCESS", None), ("FAILURE", "WRONG_SECRET")]


async def test_a_code_is_used_once_and_its_replay_revokes_what_it_gave(world, http):
    session, location, verifier = await code_for(world)
    token = await asyncio.to_thread(exchange, session, location, verifier)
    status, _, _ = await http.call("GET", "/api/v1/users/me", token["access_token"])
    assert status == 200
    with pytest.raises(OAuthError) as refused:
        await asyncio.to_thread(exchange, session, location, verifier)
    assert refused.value.error == "invalid_grant"
    status, reply, _ = await http.call("GET", "/api/v1/users/me", token["access_token"])
    assert (status, reply["error"]["code"]) == (401, "UNAUTHENTICATED")
    status, reply, _ = await http.call("POST", "/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert (status, reply["error"]) == (400, "invalid_grant")


async def test_a_code_is_refused_to_another_client_a_wrong_verifier_or_redirect_uri(world, http):
    code = query((await code_for(world))[1])["code"]
    # Another public client presents it with the right verifier's shape: not its code.
    status, reply, _ = await http.call("POST", "/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
        "client_id": world.clients["web-app"].id, "code_verifier": generate_token(48)})
    assert (status, reply["error"]) == (400, "invalid_grant")
    # A code is single-use even when its use failed: the rightful client cannot use it after that.
    session, location, verifier = await code_for(world)
    with pytest.raises(OAuthError) as refused:
        await asyncio.to_thread(exchange, session, location, generate_token(48))
    assert refused.value.error == "invalid_grant"
    session, location, verifier = await code_for(world)
    status, reply, _ = await http.call("POST", "/oauth2/token", data={
        "grant_type": "authorization_code", "code": query(location)["code"], "redirect_uri": OTHER_CALLBACK,
        "client_id": world.clients["cli"].id, "code_verifier": verifier})
    assert (status, reply["error"]) == (400, "invalid_grant")
    # No verifier at all, for a code issued with a challenge.
    session, location, verifier = await code_for(world)
    status, reply, _ = await http.call("POST", "/oauth2/token", data={
        "grant_type": "authorization_code", "code": query(location)["code"], "redirect_uri": CALLBACK,
        "client_id": world.clients["cli"].id})
    assert (status, reply["error"]) == (400, "invalid_grant")


async def test_an_expired_code_is_refused(tmp_path, start):
    server = await start(tmp_path / "iam", authorization_code_ttl=1)
    try:
        async with aiohttp.ClientSession() as http_session:
            base = f"http://127.0.0.1:{server.rest_port}"
            async with http_session.post(f"{base}/oauth2/token", data={
                    "grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD}) as response:
                admin = (await response.json())["access_token"]
            async with http_session.get(f"{base}/api/v1/orgs", headers={"Authorization": f"Bearer {admin}"}) as r:
                org = (await r.json())["data"]["items"][0]["id"]
            async with http_session.post(f"{base}/api/v1/service-accounts", headers={
                    "Authorization": f"Bearer {admin}"}, json={"org_id": org, "name": "cli", "public_client": True,
                                                                "redirect_uris": [CALLBACK]}) as response:
                cli = (await response.json())["data"]["client_id"]
            discovery = {"authorization_endpoint": f"{base}/oauth2/authorize", "token_endpoint": f"{base}/oauth2/token"}
            world = SimpleNamespace(discovery=discovery, clients={"cli": SimpleNamespace(id=cli)},
                                    browser=Browser(http_session, base))
            session, location, verifier = await code_for(world, scope=f"org:{org}", username="admin",
                                                         password=ADMIN_PASSWORD)
            await asyncio.sleep(1.2)
            with pytest.raises(OAuthError) as refused:
                await asyncio.to_thread(exchange, session, location, verifier)
            assert refused.value.error == "invalid_grant"
    finally:
        await server.stop()


async def test_a_public_client_must_use_pkce_with_s256(world):
    endpoint = world.discovery["authorization_endpoint"]
    base = {"response_type": "code", "client_id": world.clients["cli"].id, "redirect_uri": CALLBACK, "state": "xyz"}
    for extra, error in [({}, "invalid_request"),
                         ({"code_challenge": "a" * 43, "code_challenge_method": "plain"}, "invalid_request"),
                         ({"code_challenge": "a" * 43}, "invalid_request"),  # the default method is plain
                         ({"code_challenge": "a" * 43, "code_challenge_method": "S256", "response_type": "token"},
                          "unsupported_response_type"),
                         ({"code_challenge": "a" * 43, "code_challenge_method": "S256", "scope": "admin"},
                          "invalid_scope"),
                         ({"code_challenge": "a" * 43, "code_challenge_method": "S256", "prompt": "none"},
                          "login_required")]:  # IAM keeps no browser session to sign in from
        status, _, headers = await world.browser.get(f"{endpoint}?{urlencode({**base, **extra})}")
        assert status == 302, extra
        answer = query(headers["Location"])
        assert headers["Location"].startswith(CALLBACK)
        assert (answer["error"], answer["state"]) == (error, "xyz") and "code" not in answer, extra


async def test_a_form_token_of_another_request_is_refused(world, server):
    _, first, _, _ = authorization(world, "cli", f"project:{world.web}")
    _, second, _, _ = authorization(world, "cli", f"project:{world.web}")
    _, page_one, _ = await world.browser.get(first)
    _, page_two, _ = await world.browser.get(second)
    forged = {**inputs(page_two), "form_token": inputs(page_one)["form_token"]}
    status, page, headers = await world.browser.submit(forged, username="alice", password=PASSWORD)
    assert status == 400 and "Location" not in headers and "not shown for this request" in page
    status, _, headers = await world.browser.submit(inputs(page_two), form_token="", username="alice",
                                                    password=PASSWORD)
    assert status == 400 and "Location" not in headers
    assert len(server.iam.codes) == 0


async def test_parameters_are_escaped_in_the_page(world):
    _, url, _, _ = authorization(world, "cli", f"project:{world.web}", state='"><script>alert(1)</script>',
                                 nonce="</p><img src=x onerror=alert(2)>")
    status, page, _ = await world.browser.get(url)
    assert status == 200
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x" in page
    fields = inputs(page)
    assert fields["state"] == '"><script>alert(1)</script>'  # the browser reads back what was sent
    status, _, headers = await world.browser.submit(fields, username="alice", password=PASSWORD)
    assert status == 303 and query(headers["Location"])["state"] == '"><script>alert(1)</script>'


async def test_a_tenant_gets_no_wider_token_through_the_code_flow(world, http):
    # alice holds a role in web only: db is refused, as her password grant refuses it.
    status, reply, _ = await http.call("POST", "/oauth2/token", data={
        "grant_type": "password", "username": "alice", "password": PASSWORD, "scope": f"project:{world.db}"})
    assert (status, reply["error"]) == (400, "invalid_scope")
    for scope in (f"project:{world.db}", f"org:{world.org}"):
        _, url, _, _ = authorization(world, "cli", scope)
        status, _, headers = await world.browser.sign_in(url, "alice", PASSWORD)
        assert status == 303 and query(headers["Location"])["error"] == "invalid_scope", scope
        assert "code" not in query(headers["Location"])
    # The system is beyond every client (each is an org's or a project's): refused before any sign-in.
    _, url, _, _ = authorization(world, "cli", "system")
    status, _, headers = await world.browser.get(url)
    assert status == 302 and query(headers["Location"])["error"] == "invalid_scope"
    # web's own client signs users in on web only: the operator gets a web token through it, never the
    # system, nor another project.
    for scope in ("system", f"project:{world.db}", f"org:{world.org}"):
        _, url, _, _ = authorization(world, "web-app", scope)
        status, _, headers = await world.browser.get(url)
        assert status == 302 and query(headers["Location"])["error"] == "invalid_scope", scope
    session, url, _, verifier = authorization(world, "web-app", "openid")
    status, _, headers = await world.browser.sign_in(url, "admin", ADMIN_PASSWORD)
    assert status == 303
    token = await asyncio.to_thread(exchange, session, headers["Location"], verifier)
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["scope"] == {"type": "project", "org_id": world.org, "project_id": world.web}
    status, reply, _ = await http.call("GET", "/api/v1/orgs", token["access_token"])
    assert status == 200 and [o["id"] for o in reply["data"]["items"]] == [world.org]
    status, reply, _ = await http.call("POST", "/api/v1/users", token["access_token"],
                                       json={"name": "mallory", "password": PASSWORD})
    assert (status, reply["error"]["code"]) == (403, "PERMISSION_DENIED")
    # Nor does its refresh token widen later, on either token endpoint, or serve another client.
    web_app, refresh = world.clients["web-app"].id, token["refresh_token"]
    status, reply, _ = await http.call("POST", "/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": web_app, "scope": "system"})
    assert (status, reply["error"]) == (400, "invalid_scope")
    status, reply, _ = await http.call("POST", "/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": world.clients["cli"].id})
    assert (status, reply["error"]) == (400, "invalid_grant")
    for body, code in (({}, "UNAUTHENTICATED"), ({"client_id": web_app, "scope": {"org_id": world.org}},
                                                  "PERMISSION_DENIED"),
                       ({"client_id": web_app, "scope": {"project_id": world.db}}, "PERMISSION_DENIED")):
        status, reply, _ = await http.call("POST", "/api/v1/auth/token", json={
            "grant_type": "refresh_token", "refresh_token": refresh, **body})
        assert (status, reply["error"]["code"]) == ({"UNAUTHENTICATED": 401}.get(code, 403), code), body
    status, reply, _ = await http.call("POST", "/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": web_app})
    assert status == 200 and reply["scope"] == f"project:{world.web}"


async def test_a_disabled_user_cannot_sign_in_through_the_form(world, http, admin):
    user_id = world.alice.partition(":")[2]
    status, _, _ = await http.call("PATCH", f"/api/v1/users/{user_id}", admin.token, json={"enabled": False})
    assert status == 200
    _, url, _, _ = authorization(world, "cli", f"project:{world.web}")
    status, page, headers = await world.browser.sign_in(url, "alice", PASSWORD)
    assert status == 401 and "Location" not in headers and "Invalid user name or password" in page


async def test_a_store_from_before_clients_opens_with_its_service_accounts_as_no_clients(tmp_path):
    path = tmp_path / "old.sqlite3"
    store = SqliteIamStore(path)
    store.db.execute("INSERT INTO orgs VALUES ('org-1', 'acme', '', '', 0, 0)")
    store.db.execute("ALTER TABLE service_accounts DROP COLUMN redirect_uris")
    store.db.execute("ALTER TABLE service_accounts DROP COLUMN public_client")
    store.db.execute("INSERT INTO service_accounts VALUES ('sa-1', 'org-1', '', 'ci', '', '', 1, 'hash', 0, 0, 0)")
    store.db.execute("ALTER TABLE token_families DROP COLUMN client_id")
    store.db.execute("INSERT INTO token_families VALUES ('fam-1', 'user:u', 'system', '', '', 0, 1, 0)")
    await store.close()
    store = SqliteIamStore(path)  # as a newer IAM opens the file an older one left
    try:
        account = store.get(ServiceAccount, "sa-1")
        assert account is not None and (account.name, account.redirect_uris, account.public_client) == ("ci", (), False)
        family = store.get(TokenFamily, "fam-1")
        assert family is not None and (family.principal, family.client_id) == ("user:u", "")
    finally:
        await store.close()
