"""OAuth2 as a client of the field signs in: authlib's OAuth2Session finds IAM's endpoints in its
discovery document, signs a user in through a browser's authorization code flow with PKCE, signs in
with the password and client_credentials grants, refreshes, and calls another service with the token.
IAM runs on a port that is not its default and is given no issuer: its tokens name the address it
serves at, which the service expects; a service expecting another issuer refuses them, saying both."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.discovery import OpenIDProviderMetadata

from photoncloud.common.testing import Platform, ServiceProcess

DEFAULT_IAM_PORT = 8083


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    """IAM on a free port without --issuer, and CreditService pointed at it (its issuer: --iam-url's)."""
    root = tmp_path_factory.mktemp("oauth2")
    password = secrets.token_urlsafe(18)
    iam = ServiceProcess("iam", root / "iam", env={"PHOTONCLOUD_ADMIN_PASSWORD": password})
    assert iam.rest_port != DEFAULT_IAM_PORT
    iam.start()
    services: dict[str, ServiceProcess] = {}
    try:
        services["creditservice"] = ServiceProcess("creditservice", root / "creditservice", "--iam-url", iam.url,
                                                   "--revocation-poll-seconds", "0.5").start()
        yield Platform(iam, services, password, {password})
    finally:
        for process in [*services.values(), iam]:
            process.stop()


def direct() -> requests.Session:
    """A session that reaches loopback directly, whatever proxy the environment names."""
    session = requests.Session()
    session.trust_env = False
    return session


def discovery(platform: Platform) -> dict[str, Any]:
    """IAM's discovery document, as a client fetches it."""
    response = direct().get(f"{platform.iam.url}/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def client(platform: Platform, **options: Any) -> OAuth2Session:
    """authlib's client, configured from the discovery document alone."""
    session = OAuth2Session(**options, **discovery(platform))
    session.trust_env = False
    return session


def wallets(platform: Platform, session: requests.Session) -> requests.Response:
    """CreditService's wallets, read with the session's token."""
    return session.get(f"{platform.services['creditservice'].url}/api/v1/wallets", timeout=10)


def test_the_discovery_document_is_complete_and_names_the_address_iam_serves_at(platform):
    document = discovery(platform)
    OpenIDProviderMetadata(document).validate()
    assert document["issuer"] == platform.iam.url
    assert document["authorization_endpoint"] == f"{platform.iam.url}/oauth2/authorize"
    assert document["token_endpoint"] == f"{platform.iam.url}/oauth2/token"
    assert document["jwks_uri"] == f"{platform.iam.url}/.well-known/jwks.json"


def test_a_user_signs_in_refreshes_and_calls_a_service(platform):
    org_id, project_id = platform.project("oauth2-web")
    name, password = platform.user_with_role("member", {"type": "project", "project_id": project_id})
    session = client(platform, client_id="a-cli", scope=f"openid project:{project_id}")
    token = session.fetch_token(username=name, password=password, grant_type="password")
    assert (token["token_type"], token["scope"]) == ("Bearer", f"openid project:{project_id}")
    # The ID token, checked as an OpenID Connect client does: against the published keys, for this client.
    keys = jwt.PyJWKSet.from_dict(direct().get(discovery(platform)["jwks_uri"], timeout=10).json())
    kid = jwt.get_unverified_header(token["id_token"])["kid"]
    identity = jwt.decode(token["id_token"], keys[kid].key, algorithms=["RS256"], audience="a-cli",
                          issuer=platform.iam.url)
    assert identity["name"] == name
    assert requests.get(f"{platform.services['creditservice'].url}/api/v1/wallets", timeout=10).status_code == 401
    answer = wallets(platform, session)
    assert answer.status_code == 200, answer.text
    refreshed = session.refresh_token()
    assert refreshed["access_token"] != token["access_token"] and refreshed["scope"] == f"openid project:{project_id}"
    assert session.token["access_token"] == refreshed["access_token"]
    assert wallets(platform, session).status_code == 200
    status, claims = platform.request("POST", f"{platform.iam.url}/api/v1/auth/verify",
                                      {"token": refreshed["access_token"]})
    assert status == 200 and claims["data"]["claims"]["iss"] == platform.iam.url


def test_a_browser_signs_a_user_in_with_the_authorization_code_flow_and_pkce(platform):
    org_id, project_id = platform.project("oauth2-browser")
    name, password = platform.user_with_role("member", {"type": "project", "project_id": project_id})
    callback = "http://127.0.0.1:3000/login/generic_oauth"  # never reached: the browser below stops at the redirect
    status, made = platform.request("POST", f"{platform.iam.url}/api/v1/service-accounts", {
        "project_id": project_id, "name": "grafana", "redirect_uris": [callback]}, platform.admin_token())
    assert status == 200, made
    app_id, app_secret = made["data"]["client_id"], made["data"]["client_secret"]
    session = client(platform, client_id=app_id, client_secret=app_secret, scope="openid email",
                     redirect_uri=callback, code_challenge_method="S256")
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = session.create_authorization_url(session.metadata["authorization_endpoint"],
                                                  code_verifier=verifier, nonce=nonce)
    # The browser: the sign-in page, its form sent back with the user's name and password.
    browser = direct()
    page = browser.get(url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    fields = {k: unescape(v) for k, v in re.findall(r'<input[^>]* name="([^"]+)" value="([^"]*)"', page.text)}
    answer = browser.post(f"{platform.iam.url}/oauth2/authorize", allow_redirects=False, timeout=10,
                          data={**fields, "username": name, "password": password})
    assert answer.status_code == 303, answer.text
    location = answer.headers["Location"]
    assert location.startswith(callback) and parse_qs(urlsplit(location).query)["state"] == [state]
    token = session.fetch_token(authorization_response=location, code_verifier=verifier)
    assert token["scope"] == f"openid email project:{project_id}"  # the client's project, its default
    keys = jwt.PyJWKSet.from_dict(direct().get(discovery(platform)["jwks_uri"], timeout=10).json())
    kid = jwt.get_unverified_header(token["id_token"])["kid"]
    identity = jwt.decode(token["id_token"], keys[kid].key, algorithms=["RS256"], audience=app_id,
                          issuer=platform.iam.url)
    assert (identity["name"], identity["nonce"], identity["email"]) == (name, nonce, f"{name}@example.com")
    answer = wallets(platform, session)
    assert answer.status_code == 200, answer.text
    # The code worked once: presented again, it is refused, and the tokens it gave are revoked.
    with pytest.raises(OAuthError) as refused:
        session.fetch_token(authorization_response=location, code_verifier=verifier)
    assert refused.value.error == "invalid_grant"
    status, verified = platform.request("POST", f"{platform.iam.url}/api/v1/auth/verify",
                                        {"token": token["access_token"]})
    assert (status, verified["data"]["active"]) == (200, False)


def test_a_wrong_password_is_invalid_grant_to_the_client(platform):
    session = client(platform, client_id="a-cli")
    with pytest.raises(OAuthError) as refused:
        session.fetch_token(username="admin", password="not the password", grant_type="password")
    assert refused.value.error == "invalid_grant"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_service_account_signs_in_with_client_credentials_and_calls_a_service(platform, method):
    org_id, project_id = platform.project(f"oauth2-ci-{method[-4:]}")
    admin = platform.admin_token()
    status, made = platform.request("POST", f"{platform.iam.url}/api/v1/service-accounts",
                                    {"org_id": org_id, "name": f"ci-{method[-4:]}"}, admin)
    assert status == 200, made
    account = made["data"]
    status, bound = platform.request("POST", f"{platform.iam.url}/api/v1/bindings", {
        "principal": f"serviceaccount:{account['client_id']}", "role": "viewer",
        "scope": {"type": "project", "project_id": project_id}}, admin)
    assert status == 200, bound
    session = client(platform, client_id=account["client_id"], client_secret=account["client_secret"],
                     token_endpoint_auth_method=method, scope=f"project:{project_id}")
    token = session.fetch_token(grant_type="client_credentials")
    assert token["scope"] == f"project:{project_id}" and "refresh_token" not in token
    assert wallets(platform, session).status_code == 200
    # Its bindings grant nothing on the system: asking for it is refused, not narrowed in silence.
    wider = client(platform, client_id=account["client_id"], client_secret=account["client_secret"],
                   token_endpoint_auth_method=method, scope="system")
    with pytest.raises(OAuthError) as refused:
        wider.fetch_token(grant_type="client_credentials")
    assert refused.value.error == "invalid_scope"
    wrong = client(platform, client_id=account["client_id"], client_secret="not-the-secret",
                   token_endpoint_auth_method=method)
    with pytest.raises(OAuthError) as refused:
        wrong.fetch_token(grant_type="client_credentials")
    assert refused.value.error == "invalid_client"


def test_a_service_expecting_another_issuer_refuses_the_token_naming_both(platform, tmp_path):
    expected = f"http://127.0.0.1:{DEFAULT_IAM_PORT}"
    other = ServiceProcess("creditservice", tmp_path / "creditservice", "--iam-url", platform.iam.url,
                           "--iam-issuer", expected).start()
    try:
        token = platform.admin_token()
        status, reply = platform.request("GET", f"{other.url}/api/v1/wallets", token=token)
        assert (status, reply["error"]["code"]) == (401, "UNAUTHENTICATED")
        message = reply["error"]["message"]
        assert f"token issuer '{platform.iam.url}'" in message and f"expected '{expected}'" in message
        assert (reply["error"]["details"]["issuer"], reply["error"]["details"]["expected_issuer"]) == \
            (platform.iam.url, expected)
    finally:
        other.stop()
