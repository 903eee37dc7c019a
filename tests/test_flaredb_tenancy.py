"""FlareDB with IAM: an org-scoped token reaches the databases of its org's projects (IAM says which
org a project is in), and nothing else; a project's token reaches only its project."""

from __future__ import annotations

import secrets


def sql(platform, token, sql_text, project_id=""):
    url = f"{platform.services['flaredb'].url}/api/v1/sql"
    return platform.request("POST", url, {"sql": sql_text, "project_id": project_id}, token)


def org_member(platform, org_id: str) -> str:
    """A new user with the member role on an org, signed in for that org."""
    admin = platform.admin_token()
    name, password = f"org-user-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    status, user = platform.request("POST", f"{platform.iam.url}/api/v1/users",
                                    {"name": name, "email": f"{name}@example.com", "password": password}, admin)
    assert status in (200, 201), user
    status, binding = platform.request("POST", f"{platform.iam.url}/api/v1/bindings", {
        "principal": f"user:{user['data']['id']}", "role": "member", "scope": {"type": "org", "org_id": org_id}},
        admin)
    assert status in (200, 201), binding
    return platform.token(name, password, org_id=org_id)


def test_an_org_token_reaches_the_projects_of_its_org(platform):
    org_id, project_id = platform.project(f"shop-{secrets.token_hex(3)}")
    admin = platform.admin_token()
    status, other_org = platform.request("POST", f"{platform.iam.url}/api/v1/orgs",
                                         {"name": f"other-{secrets.token_hex(3)}"}, admin)
    assert status in (200, 201), other_org
    status, foreign = platform.request("POST", f"{platform.iam.url}/api/v1/projects",
                                       {"org_id": other_org["data"]["id"], "name": "foreign"}, admin)
    assert status in (200, 201), foreign

    token = org_member(platform, org_id)
    status, body = sql(platform, token, "CREATE TABLE t (a)", project_id)
    assert status == 200, body
    status, body = sql(platform, token, "SELECT count(*) FROM t", project_id)
    assert (status, body["data"]["results"][0]["rows"]) == (200, [[0]])
    status, body = sql(platform, token, "SELECT 1", foreign["data"]["id"])
    assert status in (403, 404), body  # IAM does not show the org's member another org's project
    status, body = sql(platform, token, "SELECT 1", "proj-that-does-not-exist")
    assert status in (403, 404), body
    status, body = sql(platform, token, "SELECT 1")
    assert (status, body["error"]["details"]["field"]) == (400, "project_id")
