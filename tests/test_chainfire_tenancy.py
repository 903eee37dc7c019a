"""ChainFire's keyspaces with IAM's real tokens: two projects' members, signed in with etcdctl as
`NAME/PROJECT_ID` and over REST, each see and change only their project's keys and leases; the
operator sees both projects under `/projects/`; an org's admin reaches a project's keys by signing
in for that project; and a watch ends once its token is revoked (IAM's list, polled every 0.5 s)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from photoncloud.common import needs
from photoncloud.common.testing import DIRECT

SECONDS = 10  # every wait is bounded by this


def etcdctl(platform, *args: str, user: str, input_text: str | None = None) -> subprocess.CompletedProcess:
    """etcdctl (API v3) against the platform's ChainFire, logged in as user ("name[/project]:password")."""
    endpoints = f"127.0.0.1:{platform.services['chainfire'].grpc_port}"
    binary = needs.tool("etcdctl", "etcd-client")  # skipped without it (failed in CI)
    return subprocess.run([binary, f"--endpoints={endpoints}", "--dial-timeout=5s", "--command-timeout=10s",
                           f"--user={user}", *args], env={**os.environ, "ETCDCTL_API": "3"}, input=input_text,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def projects(platform):
    """Two projects of the org `default`, a member of each (etcdctl logins), and the org's admin."""
    org_id, project_a = platform.project("keyspace-a")
    _, project_b = platform.project("keyspace-b")
    a_name, a_password = platform.user_with_role("member", {"type": "project", "project_id": project_a})
    b_name, b_password = platform.user_with_role("member", {"type": "project", "project_id": project_b})
    org_name, org_password = platform.user_with_role("admin", {"type": "org", "org_id": org_id})
    return {"a": project_a, "b": project_b, "org": org_id,
            "a_login": f"{a_name}/{project_a}:{a_password}", "b_login": f"{b_name}/{project_b}:{b_password}",
            "a_user": (a_name, a_password), "b_user": (b_name, b_password), "org_user": (org_name, org_password)}


def ok(run) -> str:
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_etcdctl_in_two_projects_and_as_the_operator(platform, projects):
    a, b = projects["a_login"], projects["b_login"]
    admin = f"admin:{platform.admin_password}"
    assert ok(etcdctl(platform, "put", "app/db", "a's", user=a)) == "OK\n"
    assert ok(etcdctl(platform, "put", "app/db", "b's", user=b)) == "OK\n"
    assert ok(etcdctl(platform, "put", "b/only", "b's", user=b)) == "OK\n"
    assert ok(etcdctl(platform, "put", "platform/setting", "on", user=admin)) == "OK\n"
    # `get --prefix ""`: every key the caller has, under its own names.
    assert ok(etcdctl(platform, "get", "--prefix", "", user=a)) == "app/db\na's\n"
    assert ok(etcdctl(platform, "get", "--prefix", "", "--keys-only", user=b)) == "app/db\n\nb/only\n\n"
    assert ok(etcdctl(platform, "get", "--from-key", "", "--keys-only", user=b)) == "app/db\n\nb/only\n\n"
    # B's "delete everything" deletes B's keys.
    assert ok(etcdctl(platform, "del", "--prefix", "", user=b)) == "2\n"
    assert ok(etcdctl(platform, "get", "app/db", "--print-value-only", user=a)) == "a's\n"
    # B's transaction compares with B's (missing) key, not A's.
    txn = etcdctl(platform, "txn", user=b,
                  input_text='value("app/db") = "a\'s"\n\nput app/db stolen\n\nput app/db mine\n\n')
    assert ok(txn).startswith("FAILURE")
    assert ok(etcdctl(platform, "get", "app/db", "--print-value-only", user=a)) == "a's\n"
    operator = ok(etcdctl(platform, "get", "--prefix", "/projects/", "--keys-only", user=admin)).split()
    assert f"/projects/{projects['a']}/app/db" in operator and f"/projects/{projects['b']}/app/db" in operator
    assert "platform/setting" not in ok(etcdctl(platform, "get", "--prefix", "", "--keys-only", user=a))
    # A bare name signs in for the system, which a project's member has no role on.
    bare = etcdctl(platform, "get", "app/db", user=f"{projects['a_user'][0]}:{projects['a_user'][1]}")
    assert bare.returncode != 0 and "authentication failed" in bare.stderr


def test_leases_stay_with_the_project_that_granted_them(platform, projects):
    a, b = projects["a_login"], projects["b_login"]
    lease = ok(etcdctl(platform, "lease", "grant", "60", user=a)).split()[1]
    assert ok(etcdctl(platform, "put", "--lease", lease, "session", "a's", user=a)) == "OK\n"
    assert lease in ok(etcdctl(platform, "lease", "list", user=a))
    assert lease not in ok(etcdctl(platform, "lease", "list", user=b))
    assert "already expired" in ok(etcdctl(platform, "lease", "timetolive", lease, user=b))
    assert etcdctl(platform, "lease", "revoke", lease, user=b).returncode != 0
    assert etcdctl(platform, "put", "--lease", lease, "mine", "b's", user=b).returncode != 0
    assert "session" in ok(etcdctl(platform, "lease", "timetolive", "--keys", lease, user=a))
    assert ok(etcdctl(platform, "get", "session", "--print-value-only", user=a)) == "a's\n"


def test_rest_and_an_orgs_admin(platform, projects):
    chainfire = platform.services["chainfire"].url
    a_token = platform.token(*projects["a_user"], project_id=projects["a"])
    b_token = platform.token(*projects["b_user"], project_id=projects["b"])
    status, _ = platform.request("PUT", f"{chainfire}/api/v1/kv/rest/k", {"value": "a's"}, a_token)
    assert status == 200
    status, _ = platform.request("PUT", f"{chainfire}/api/v1/kv/rest/k", {"value": "b's"}, b_token)
    assert status == 200
    status, reply = platform.request("DELETE", f"{chainfire}/api/v1/kv/%00?range_end=%00", token=b_token)
    assert status == 200 and reply["data"]["deleted"] >= 1
    status, reply = platform.request("GET", f"{chainfire}/api/v1/kv?prefix=rest/", token=a_token)
    assert [item["value"] for item in reply["data"]["items"]] == ["a's"]
    # The org's admin: no keyspace with an org token; a project's with a token for the project.
    org_token = platform.token(*projects["org_user"], org_id=projects["org"])
    status, reply = platform.request("GET", f"{chainfire}/api/v1/kv", token=org_token)
    assert (status, reply["error"]["details"]["reason"]) == (403, "PROJECT_SCOPE_REQUIRED")
    org_in_a = platform.token(*projects["org_user"], project_id=projects["a"])
    status, reply = platform.request("GET", f"{chainfire}/api/v1/kv/rest/k", token=org_in_a)
    assert (status, reply["data"]["value"]) == (200, "a's")
    name, password = projects["org_user"]
    assert ok(etcdctl(platform, "get", "rest/k", "--print-value-only", user=f"{name}/{projects['a']}:{password}")) \
        == "a's\n"


def test_a_watch_ends_once_its_token_is_revoked(platform, projects):
    chainfire = platform.services["chainfire"].url
    token = platform.token(*projects["a_user"], project_id=projects["a"])
    lines: list[str] = []
    opened = threading.Event()

    def watch() -> None:
        url = f"{chainfire}/api/v1/watch?" + urllib.parse.urlencode({"key": "", "prefix": "true"})
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with DIRECT.open(request, timeout=SECONDS * 3) as response:
            for raw in response:
                lines.append(raw.decode().rstrip("\n"))
                opened.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    assert opened.wait(SECONDS)
    status, reply = platform.request("POST", f"{platform.iam.url}/api/v1/auth/revoke", token=token)
    assert status == 200, reply
    revoked_at = time.monotonic()
    reader.join(SECONDS)
    assert not reader.is_alive(), "the watch did not end"
    assert time.monotonic() - revoked_at < 3  # ChainFire polls IAM every 0.5 s here
    error = json.loads(next(line for line in reversed(lines) if line.startswith("data: ")).removeprefix("data: "))
    assert (error["error"]["code"], error["error"]["details"]["reason"]) == ("UNAUTHENTICATED", "REVOKED")
