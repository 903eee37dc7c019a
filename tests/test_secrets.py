"""No password, secret or token appears in a log line or in a response that does not need it."""

from __future__ import annotations

import json
import os
import re
import secrets

FORBIDDEN_FIELDS = re.compile(r'"(password|password_hash|secret_hash|client_secret|hash)"\s*:')


def test_secrets_stay_out_of_logs_and_listings(platform):
    iam, chainfire = platform.iam.url, platform.services["chainfire"].url
    admin = platform.admin_token()
    name, password = platform.user_with_role("member")
    user_token = platform.token(name, password)

    # A wrong password is a secret too (often a typo of the right one).
    wrong = secrets.token_urlsafe(18)
    platform.secrets.add(wrong)
    status, _ = platform.request("POST", f"{iam}/api/v1/auth/token",
                                 {"grant_type": "password", "username": name, "password": wrong})
    assert status == 401

    status, account = platform.request("POST", f"{iam}/api/v1/service-accounts",
                                       {"name": "ci-bot", "org_id": _default_org(platform, admin)}, admin)
    assert status in (200, 201), account
    account_id, secret = account["data"]["client_id"], account["data"]["client_secret"]
    platform.secrets.add(secret)
    status, issued = platform.request("POST", f"{iam}/api/v1/auth/token", {
        "grant_type": "client_credentials", "client_id": account_id, "client_secret": secret,
        "scope": {"org_id": account["data"]["service_account"]["org_id"]}})
    # The account has no binding yet, so it may not get a token; either way nothing may leak.
    assert status in (200, 403), issued
    if status == 200:
        platform.secrets.add(issued["data"]["access_token"])

    status, issued = platform.request("POST", f"{iam}/api/v1/auth/token",
                                      {"grant_type": "password", "username": name, "password": password})
    platform.secrets.update({issued["data"]["access_token"], issued["data"]["refresh_token"]})
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["data"]["refresh_token"]}
    status, refreshed = platform.request("POST", f"{iam}/api/v1/auth/token", refresh)
    assert status == 200, refreshed
    platform.secrets.update({refreshed["data"]["access_token"], refreshed["data"]["refresh_token"]})
    status, _ = platform.request("PUT", f"{chainfire}/api/v1/kv/secret-test", {"value": "x"}, user_token)
    assert status == 200
    status, _ = platform.request("POST", f"{iam}/api/v1/auth/revoke", {}, user_token)
    assert status == 200

    listings = ["/api/v1/users", "/api/v1/service-accounts", "/api/v1/bindings", "/api/v1/audit",
                "/api/v1/auth/keys", f"/api/v1/users/{_user_id(platform, admin, name)}"]
    for path in listings:
        status, body = platform.request("GET", iam + path, token=admin)
        assert status == 200, (path, body)
        text = json.dumps(body)
        assert not FORBIDDEN_FIELDS.search(text), (path, text)
        assert not [s for s in platform.secrets if s in text], path

    logs = platform.logs()
    assert "POST /api/v1/auth/token" in logs  # the logs did record the requests
    leaked = [s[:6] + "..." for s in platform.secrets if s in logs]
    assert not leaked, f"secrets found in the logs: {leaked}"


def _default_org(platform, admin: str) -> str:
    status, orgs = platform.request("GET", f"{platform.iam.url}/api/v1/orgs?name=default", token=admin)
    assert status == 200, orgs
    return orgs["data"]["items"][0]["id"]


def _user_id(platform, admin: str, name: str) -> str:
    status, users = platform.request("GET", f"{platform.iam.url}/api/v1/users?name={name}", token=admin)
    assert status == 200, users
    return users["data"]["items"][0]["id"]


def test_every_services_data_files_are_its_own(platform):
    """Data files 0600 and directories 0700, in every service's data directory (written once the services ran)."""
    platform.admin_token()  # IAM has written its keys and tokens
    found = {}
    for process in [platform.iam, *platform.services.values()]:
        for path in [process.data_dir, *process.data_dir.rglob("*")]:
            if path.is_symlink():
                continue
            found[str(path)] = oct(path.stat().st_mode & 0o777)
    assert len(found) > 2 * (1 + len(platform.services)), found  # the databases and their journals are there
    wrong = {path: mode for path, mode in found.items() if mode != ("0o700" if os.path.isdir(path) else "0o600")}
    assert wrong == {}, wrong
