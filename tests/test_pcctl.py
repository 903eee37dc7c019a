"""pcctl as a user runs it: the console script against a whole platform (IAM, ChainFire, FlareDB,
CreditService, PrismNET, PlasmaVMC, k8shost and a node agent as processes), through the REST guide's
main flows: signing in, keys, SQL, projects and users, networks, a VM created (not booted), a pod run
and its log followed; output formats that parse; errors from their envelope; the token file's mode;
and a tenant kept to its own project."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from photoncloud.common import needs
from photoncloud.common.testing import Platform, start_platform
from photoncloud.k8shost.testing import start_node_agent, stop_node_agent
from photoncloud.plasmavmc.testing import guest_kernel

PCCTL = Path(sys.executable).parent / "pcctl"  # the console script the package installs
SERVICES = ("chainfire", "flaredb", "creditservice", "prismnet", "plasmavmc", "k8shost")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """The platform and a node agent, for this module's tests."""
    needs.root("k8shost's node agent runs pods in a sandbox")
    needs.tool("bwrap", "bubblewrap")
    root = tmp_path_factory.mktemp("pcctl")
    running = start_platform(root, *SERVICES)
    try:
        agent = start_node_agent(running, root)
    except BaseException:
        running.stop()
        raise
    yield running
    stop_node_agent(agent)
    running.stop()


class User:
    """One person's pcctl: their own home (so their own ~/.config/photoncloud), the platform's URLs."""

    def __init__(self, cloud: Platform, home: Path):
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.name = ""
        processes = {"iam": cloud.iam, **cloud.services}
        self.env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
                    **{f"PHOTONCLOUD_{name.upper()}_URL": p.url for name, p in processes.items()}}

    @property
    def credentials(self) -> Path:
        """Where pcctl keeps the sign-in by default."""
        return self.home / ".config" / "photoncloud" / "credentials.json"

    def run(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`pcctl args...`, whatever its exit status."""
        return subprocess.run([str(PCCTL), *args], env={**self.env, **(env or {})}, input=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: str, **kwargs: Any) -> str:
        """pcctl's stdout; the command must succeed."""
        done = self.run(*args, **kwargs)
        assert done.returncode == 0, f"pcctl {' '.join(args)} exited {done.returncode}:\n{done.stderr}{done.stdout}"
        return done.stdout

    def json(self, *args: str, **kwargs: Any) -> Any:
        """pcctl's output with -o json, parsed."""
        return json.loads(self.ok(*args, "-o", "json", **kwargs))

    def login(self, username: str, password: str, *args: str) -> None:
        """Sign in (the password from the environment, as a script would)."""
        self.ok("login", "-u", username, *args, env={"PHOTONCLOUD_PASSWORD": password})
        self.name = username


@pytest.fixture(scope="module")
def admin(cloud, tmp_path_factory):
    """The operator, signed in with pcctl."""
    user = User(cloud, tmp_path_factory.mktemp("admin-home"))
    user.login("admin", cloud.admin_password)
    return user


@pytest.fixture(scope="module")
def tenant(cloud, admin, tmp_path_factory):
    """A project made with pcctl, and a member of it (made with pcctl) signed in for that project:
    (the member's pcctl, the project's ID)."""
    project = admin.json("project", "create", f"shop-{os.urandom(3).hex()}", "--display-name", "Shop")
    password = "correct-horse-battery"
    name = f"alice-{os.urandom(3).hex()}"
    alice = admin.json("user", "create", name, "--email", f"{name}@example.com",
                       env={"PHOTONCLOUD_NEW_PASSWORD": password})
    admin.json("binding", "create", "--user", alice["id"], "--role", "member", "--project", project["id"])
    user = User(cloud, tmp_path_factory.mktemp("alice-home"))
    user.login(name, password, "--project", project["id"])
    return user, project["id"]


def test_login_keeps_the_tokens_readable_by_their_owner_only(cloud, admin):
    creds = admin.credentials
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert stat.S_IMODE(creds.parent.stat().st_mode) == 0o700
    stored = json.loads(creds.read_text())
    assert stored["tokens"]["access_token"] and stored["tokens"]["refresh_token"]
    assert cloud.admin_password not in creds.read_text()  # the password is never kept
    me = admin.json("whoami")
    assert me["name"] == "admin" and me["scope"]["type"] == "system"


def test_a_wrong_password_prints_the_envelopes_message_and_keeps_no_token(cloud, tmp_path):
    user = User(cloud, tmp_path / "home")
    done = user.run("login", "-u", "admin", env={"PHOTONCLOUD_PASSWORD": "not-the-password"})
    assert done.returncode == 1
    assert "UNAUTHENTICATED" in done.stderr and "invalid" in done.stderr.lower()
    assert not user.credentials.exists()


def test_keys_of_the_project(tenant):
    alice, _ = tenant
    put = alice.json("kv", "put", "config/db/host", "10.0.0.5")
    assert put["revision"] > 0
    got = alice.json("kv", "get", "config/db/host")
    assert got["key"] == "config/db/host" and got["value"] == "10.0.0.5" and got["version"] == 1
    assert alice.ok("kv", "get", "config/db/host", "--value-only") == "10.0.0.5"
    alice.ok("kv", "put", "blob", "-", stdin="two\nlines")
    assert alice.ok("kv", "get", "blob", "--value-only") == "two\nlines"
    listed = yaml.safe_load(alice.ok("kv", "ls", "config/", "-o", "yaml"))
    assert [item["key"] for item in listed] == ["config/db/host"]
    table = alice.ok("kv", "ls", "config/").splitlines()
    assert table[0].split() == ["KEY", "VALUE", "VERSION", "MOD_REVISION", "LEASE"]
    assert table[1].split()[:3] == ["config/db/host", "10.0.0.5", "1"]
    assert alice.json("kv", "del", "config/", "--prefix")["deleted"] == 1
    done = alice.run("kv", "get", "config/db/host")
    assert done.returncode == 1 and "key 'config/db/host' not found" in done.stderr and "NOT_FOUND" in done.stderr


def test_leases_and_the_cluster(admin, tenant):
    alice, _ = tenant
    lease = alice.json("lease", "grant", "60")
    alice.ok("kv", "put", "session/1", "s", "--lease", str(lease["id"]))
    assert alice.json("lease", "get", str(lease["id"]))["keys"] == ["session/1"]
    assert str(lease["id"]) in [str(item["id"]) for item in alice.json("lease", "ls")]
    alice.ok("lease", "revoke", str(lease["id"]))
    assert alice.run("kv", "get", "session/1").returncode == 1  # went with its lease
    # The cluster is the operator's: a tenant is refused whatever its roles.
    assert admin.json("cluster", "status")["role"] == "LEADER"
    assert [m["is_leader"] for m in admin.json("cluster", "members")] == [True]
    done = alice.run("cluster", "status")
    assert done.returncode == 1 and "OPERATOR_ONLY" in done.stderr


def test_flaredb_namespaces_and_backups(admin, tenant, tmp_path):
    alice, project_id = tenant
    alice.ok("db", "ns-create", "sessions", "--mode", "eventual")
    alice.ok("db", "ns-create", "config")
    assert sorted(n["name"] for n in alice.json("db", "ns-ls")) == ["config", "sessions"]
    alice.ok("db", "put", "sessions", "user/ann", "s-1")
    assert alice.json("db", "get", "sessions", "user/ann")["value"] == "s-1"
    assert [i["key"] for i in alice.json("db", "scan", "sessions")] == ["user/ann"]
    swapped = alice.json("db", "cas", "config", "flag", "on", "--expected-version", "0")
    assert swapped["succeeded"] is True
    done = alice.run("db", "cas", "config", "flag", "off", "--expected-version", "0", "-o", "json")
    assert done.returncode == 3 and json.loads(done.stdout)["succeeded"] is False  # a lost race is not an error
    # A backup is the project's database as a SQLite file, readable by its owner only.
    alice.ok("sql", "CREATE TABLE IF NOT EXISTS notes (body TEXT)")
    backup = tmp_path / "shop.sqlite3"
    alice.ok("db", "backup", str(backup))
    assert backup.read_bytes().startswith(b"SQLite format 3\0") and stat.S_IMODE(backup.stat().st_mode) == 0o600
    # Restoring is an administrator's: Alice (a member) may not; the operator may, naming the project.
    done = alice.run("db", "restore", str(backup))
    assert done.returncode == 1 and "PERMISSION_DENIED" in done.stderr
    assert admin.json("db", "restore", str(backup), "--project", project_id)["tables"] >= 1


def test_an_error_in_json_is_the_envelope(tenant):
    alice, _ = tenant
    done = alice.run("kv", "get", "no/such/key", "-o", "json")
    assert done.returncode == 1 and done.stdout == ""
    envelope = json.loads(done.stderr)
    assert envelope["error"]["code"] == "NOT_FOUND"
    assert envelope["error"]["message"] == "key 'no/such/key' not found"
    assert envelope["error"]["details"] == {"key": "no/such/key"}
    assert envelope["meta"]["request_id"]


def test_sql(tenant):
    alice, _ = tenant
    alice.ok("sql", "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total REAL)")
    wrote = alice.json("sql", "INSERT INTO orders (customer, total) VALUES (?, ?)", "-a", "ann", "-a", "12.5")
    assert wrote["results"] == [{"rows_affected": 1, "last_insert_id": 1}]
    alice.ok("sql", "INSERT INTO orders (customer, total) VALUES (?, ?)", "-a", "bob", "-a", "30")
    query = alice.json("sql", "SELECT customer, total FROM orders WHERE total > ? ORDER BY id", "-a", "10")
    assert query["results"][0]["rows"] == [["ann", 12.5], ["bob", 30.0]]
    lines = alice.ok("sql", "SELECT customer, total FROM orders ORDER BY id").splitlines()
    assert [line.split() for line in lines] == [["CUSTOMER", "TOTAL"], ["ann", "12.5"], ["bob", "30.0"]]
    assert "orders" in [t["name"] for t in alice.json("table", "ls")]
    done = alice.run("sql", "INSERT INTO orders (total) VALUES (1)")
    assert done.returncode == 1 and "NOT NULL constraint failed: orders.customer" in done.stderr


def test_a_tenant_cannot_reach_another_projects_keys(cloud, admin, tenant, tmp_path):
    alice, alice_project = tenant
    other = admin.json("project", "create", f"other-{os.urandom(3).hex()}")
    bob = User(cloud, tmp_path / "bob")
    name, password = cloud.user_with_role("member", {"type": "project", "project_id": other["id"]})
    bob.login(name, password, "--project", other["id"])
    bob.ok("kv", "put", "secret", "bob's")
    # Alice's keys are her project's: the same name is not Bob's key, and no listing shows his.
    done = alice.run("kv", "get", "secret")
    assert done.returncode == 1 and "NOT_FOUND" in done.stderr and "bob's" not in done.stdout + done.stderr
    assert "bob's" not in alice.ok("kv", "ls", "-o", "json")
    # Nor can she sign in for his project, or read it by naming it; her sign-in stays as it was.
    before = alice.credentials.read_text()
    done = alice.run("login", "-u", alice.name, "--project", other["id"],
                     env={"PHOTONCLOUD_PASSWORD": "correct-horse-battery"})
    assert done.returncode == 1
    assert alice.credentials.read_text() == before
    done = alice.run("kv", "get", f"/projects/{other['id']}/secret")
    assert done.returncode == 1 and "bob's" not in done.stdout
    done = alice.run("project", "get", other["id"])
    assert done.returncode == 1 and "PERMISSION_DENIED" in done.stderr
    # Nor his database, by naming his project as an operator's token does.
    bob.ok("sql", "CREATE TABLE secrets (v TEXT)")
    done = alice.run("sql", "SELECT * FROM secrets", "--project", other["id"])
    assert done.returncode == 1 and "PERMISSION_DENIED" in done.stderr
    assert admin.json("sql", "SELECT count(*) AS n FROM secrets", "--project", other["id"])["results"][0]["rows"] \
        == [[0]]
    # The operator sees the raw keyspace, Bob's key under his project's prefix.
    assert admin.json("kv", "get", f"/projects/{other['id']}/secret")["value"] == "bob's"
    assert alice_project != other["id"]


def test_a_tenant_is_refused_the_operators_actions(tenant):
    alice, project_id = tenant
    done = alice.run("wallet", "topup", project_id, "1000")
    assert done.returncode == 1 and "PERMISSION_DENIED" in done.stderr and "OPERATOR_ONLY" in done.stderr
    done = alice.run("user", "create", "mallory", env={"PHOTONCLOUD_NEW_PASSWORD": "correct-horse-battery"})
    assert done.returncode == 1 and "PERMISSION_DENIED" in done.stderr
    # What she may list of IAM's users is herself only.
    assert [u["name"] for u in alice.json("user", "ls")] == [alice.name]


def test_the_token_is_refreshed_before_it_expires(tenant):
    alice, _ = tenant
    stored = json.loads(alice.credentials.read_text())
    stored["tokens"]["expires_at"] = time.time() + 5  # inside the refresh margin
    alice.credentials.write_text(json.dumps(stored))
    alice.ok("kv", "ls")
    fresh = json.loads(alice.credentials.read_text())
    assert fresh["tokens"]["access_token"] != stored["tokens"]["access_token"]
    assert fresh["tokens"]["refresh_token"] != stored["tokens"]["refresh_token"]
    assert fresh["tokens"]["expires_at"] > time.time() + 600
    assert stat.S_IMODE(alice.credentials.stat().st_mode) == 0o600
    assert fresh["tokens"]["scope"] == stored["tokens"]["scope"]  # still the project's


def test_commands_running_at_once_refresh_the_token_once(tenant):
    # A refresh token works once, and IAM revokes the session when one is used twice: commands that find
    # the token stale at the same moment take turns, and those after the first use its new tokens.
    alice, _ = tenant
    stored = json.loads(alice.credentials.read_text())
    stored["tokens"]["expires_at"] = time.time() + 5
    alice.credentials.write_text(json.dumps(stored))
    commands = [subprocess.Popen([str(PCCTL), "kv", "ls"], env=alice.env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(c.wait(60), c.stderr.read() if c.stderr else "") for c in commands]
    for c in commands:
        for stream in (c.stdout, c.stderr):
            if stream:
                stream.close()
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    alice.ok("kv", "ls")  # the session is still live


def test_networks(cloud, admin, tenant, tmp_path):
    alice, project_id = tenant
    vpc = alice.json("vpc", "create", "web", "--cidr", "10.0.0.0/16")
    assert vpc["project_id"] == project_id and vpc["cidr_block"] == "10.0.0.0/16"
    subnet = alice.json("subnet", "create", "front", "--vpc", vpc["id"], "--cidr", "10.0.1.0/24")
    port = alice.json("port", "create", "--subnet", subnet["id"], "--name", "p1")
    assert port["ip_address"].startswith("10.0.1.")
    assert [p["id"] for p in yaml.safe_load(alice.ok("port", "ls", "--subnet", subnet["id"], "-o", "yaml"))] \
        == [port["id"]]
    assert [v["id"] for v in alice.json("vpc", "ls")] == [vpc["id"]]
    done = alice.run("subnet", "create", "bad", "--vpc", vpc["id"], "--cidr", "192.168.0.0/24")
    assert done.returncode == 1 and "INVALID_ARGUMENT" in done.stderr
    group = alice.json("sg", "create", "ssh")
    rule = alice.json("sg", "rule-add", group["id"], "--protocol", "TCP", "--port", "22", "--remote-cidr",
                      "192.0.2.0/24")["rule"]
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"], rule["remote_cidr"]) \
        == ("TCP", 22, 22, "192.0.2.0/24")
    [listed] = [g for g in alice.json("sg", "ls") if g["id"] == group["id"]]
    assert rule["id"] in [r["id"] for r in listed["rules"]]
    done = alice.run("sg", "rule-add", group["id"], "--port", "22-x")
    assert done.returncode == 2 and "22-x" in done.stderr
    # A script with a token and no sign-in (PHOTONCLOUD_TOKEN): the token's project is the default too.
    script = User(cloud, tmp_path / "ci")
    token = alice.ok("token").strip()
    made = script.json("vpc", "create", "ci", "--cidr", "10.9.0.0/16", env={"PHOTONCLOUD_TOKEN": token})
    assert made["project_id"] == project_id and not script.credentials.exists()


def test_a_vm_is_created_and_deleted(cloud, admin, tenant):
    alice, project_id = tenant
    flavor = admin.json("flavor", "create", f"t-{os.urandom(2).hex()}", "--vcpus", "1", "--memory", "128",
                        "--price", "10")
    assert flavor["id"] in [f["id"] for f in admin.json("flavor", "ls")]
    image = admin.json("image", "create", "kernel-only", "--kernel", str(guest_kernel()))
    admin.ok("wallet", "create", project_id, "--balance", "100")
    assert alice.json("wallet", "get")["available"] == 100
    made = alice.json("vm", "create", "web-1", "--image", image["id"], "--flavor", flavor["id"], "--wait")
    assert made["state"] == "STOPPED" and made["project_id"] == project_id
    assert [v["id"] for v in alice.json("vm", "ls")] == [made["id"]]
    assert alice.json("wallet", "get")["reserved"] == 10
    alice.ok("vm", "delete", made["id"], "--wait")
    done = alice.run("vm", "get", made["id"])
    assert done.returncode == 1 and "NOT_FOUND" in done.stderr


def test_a_pod_runs_and_its_log_is_followed(admin, tenant):
    alice, project_id = tenant
    namespace = f"ns-{os.urandom(3).hex()}"
    made = alice.json("ns", "create", namespace)
    assert made["metadata"]["name"] == namespace
    pod = json.loads(alice.ok("pod", "create", "hello", "-n", namespace, "--wait", "-o", "json", "--",
                              "sh", "-c", "echo one; sleep 1; echo two; sleep 3600"))
    assert pod["status"]["phase"] == "Running"
    assert [p["metadata"]["name"] for p in alice.json("pod", "ls", "-n", namespace)] == ["hello"]
    alice.ok("pod", "create", "web", "-n", namespace, "-l", "app=web", "--", "sh", "-c", "sleep 3600")
    service = alice.json("svc", "create", "web", "-n", namespace, "--port", "80", "--target-port", "8080",
                         "--selector", "app=web")
    assert service["spec"]["cluster_ip"]
    endpoints = alice.json("svc", "endpoints", "web", "-n", namespace)
    assert "web" in json.dumps(endpoints) and "hello" not in json.dumps(endpoints)
    follow = subprocess.Popen([str(PCCTL), "pod", "logs", "hello", "-n", namespace, "-f", "--interval", "0.2"],
                              env=alice.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follow.stdout is not None
        lines = [follow.stdout.readline(), follow.stdout.readline()]
        assert lines == ["one\n", "two\n"]
        alice.ok("pod", "delete", "hello", "-n", namespace, "--wait")
        assert follow.wait(30) == 0  # the pod went: following ends
    finally:
        follow.kill()
        follow.wait()
    done = alice.run("pod", "get", "hello", "-n", namespace)
    assert done.returncode == 1 and "NOT_FOUND" in done.stderr


def test_completion_a_broken_credentials_file_and_logout(cloud, tmp_path):
    user = User(cloud, tmp_path / "home")
    script = user.ok("completion", "bash")
    assert "_PCCTL_COMPLETE" in script and "complete " in script
    user.credentials.parent.mkdir(parents=True)
    user.credentials.write_text("{cut short")
    done = user.run("kv", "ls")
    assert done.returncode == 1 and "not valid JSON" in done.stderr and "pcctl login" in done.stderr
    name, password = cloud.user_with_role("viewer")
    user.login(name, password)  # signing in again mends it
    assert user.json("whoami")["name"] == name
    user.ok("logout")
    assert "tokens" not in json.loads(user.credentials.read_text())
    done = user.run("kv", "ls")
    assert done.returncode == 1 and "UNAUTHENTICATED" in done.stderr


def test_reservations_roles_and_the_audit_log(admin, tenant):
    alice, _ = tenant
    project = admin.json("project", "create", f"ledger-{os.urandom(3).hex()}")
    admin.ok("wallet", "create", project["id"], "--balance", "1000")
    held = admin.json("reservation", "create", "300", "--project", project["id"], "--description", "batch job")
    reservation = held.get("reservation", held)
    assert reservation["status"] == "PENDING" and reservation["amount"] == 300
    assert [r["id"] for r in admin.json("reservation", "ls", project["id"], "--status", "PENDING")] == \
        [reservation["id"]]
    assert admin.json("wallet", "get", project["id"])["available"] == 700
    committed = admin.json("reservation", "commit", reservation["id"], "--actual", "120")
    assert committed.get("reservation", committed)["actual_amount"] == 120
    assert admin.json("wallet", "get", project["id"])["balance"] == 880
    second = admin.json("reservation", "create", "50", "--project", project["id"])
    admin.ok("reservation", "release", second.get("reservation", second)["id"])
    assert admin.json("wallet", "get", project["id"])["available"] == 880

    name = f"auditor-{os.urandom(2).hex()}"
    role = admin.json("role", "create", name, "--permission", "iam:audit:read", "--description", "reads the audit log")
    assert role["permissions"] == ["iam:audit:read"]
    assert name in [r["name"] for r in admin.json("role", "ls")]
    events = admin.json("audit", "--action", "iam.roles.create")
    assert events and events[0]["action"] == "iam.roles.create" and name in events[0]["target"]
    admin.ok("role", "delete", name)
    assert name not in [r["name"] for r in admin.json("role", "ls")]
    # A tenant can do none of it outside its project: other wallets, roles and the audit log are not its own.
    for args in (("reservation", "create", "1", "--project", project["id"]), ("role", "create", "mine", "--permission",
                 "*"), ("audit",)):
        done = alice.run(*args)
        assert done.returncode == 1 and "PERMISSION_DENIED" in done.stderr, (args, done.stderr)
