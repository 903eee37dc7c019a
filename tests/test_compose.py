"""The platform as docker-compose brings it up, on a real engine: `make images` builds the images with
no image registry, `docker-compose up -d` (a project of its own, ports of its own on 127.0.0.1) starts
the seven services and a node agent, they turn healthy, a user's flow runs through the published
ports (sign in, ChainFire, FlareDB, a wallet, a PrismNET port, a pod Running on the node agent), and
`docker-compose down -v` leaves no container, network or volume behind. Then the clustered profile
(docker-compose.cluster.yml): ChainFire and FlareDB as three-member clusters, whose leader's container
is killed while writes go on; every acknowledged write is read back from the survivors, and from the
killed member once it runs again. Without an engine (or a compose CLI) the tests are skipped, unless
CI (CI=true, PHOTONCLOUD_REQUIRE_TOOLS=1) or PHOTONCLOUD_REQUIRE_DOCKER=1 makes them fail.

The tests of this module run in order: the platform's project first (its last test takes it down),
then the cluster's."""

from __future__ import annotations

import http.client
import json
import os
import random
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from photoncloud.common import needs
from photoncloud.common.testing import free_ports

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker" / "docker-compose.yml"
CLUSTER_FILE = ROOT / "docker" / "docker-compose.cluster.yml"
HEALTH_SCRIPT = ROOT / "scripts" / "health.py"
SERVICES = ("chainfire", "flaredb", "iam", "plasmavmc", "k8shost", "creditservice", "prismnet")
CONTAINERS = (*SERVICES, "k8shost-agent")
NODE_PORTS = 101  # the node agent publishes 30000-30100
PROJECT_LABEL = "com.docker.compose.project"


def unavailable(reason: str) -> None:
    """Skip for want of reason, or fail when the environment requires the engine (CI, PHOTONCLOUD_REQUIRE_DOCKER=1)."""
    needs.missing(reason, docker=True)


def compose_cli() -> list[str]:
    """docker-compose (v1), or the `docker compose` plugin (v2)."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60)
    if probe.returncode == 0:
        return ["docker", "compose"]
    unavailable("neither docker-compose nor the `docker compose` plugin is installed")
    raise AssertionError("unreachable")


def node_port_range() -> str:
    """NODE_PORTS consecutive ports free on 127.0.0.1, below the ephemeral range, as "first-last"."""
    for _ in range(50):
        first = random.randrange(20000, 28000)
        sockets = []
        try:
            for port in range(first, first + NODE_PORTS):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return f"{first}-{first + NODE_PORTS - 1}"
    raise AssertionError(f"found no {NODE_PORTS} consecutive free ports")


@dataclass
class Project:
    """One compose project: its name, the environment compose and health.py run with, its ports."""

    cli: list[str]
    name: str
    env: dict[str, str]
    rest: dict[str, int]
    password: str
    workdir: Path  # the test's own files (the CA copied out of the platform)
    down: bool = False
    files: tuple[Path, ...] = (COMPOSE_FILE,)

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        files = [arg for path in self.files for arg in ("-f", str(path))]
        return subprocess.run([*self.cli, *files, "-p", self.name, *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def logs(self) -> str:
        """The last lines each container logged, for a failure's message."""
        return self.compose("logs", "--no-color", "--tail", "30", timeout=120).stdout

    def containers(self) -> dict[str, str]:
        """{service: container id} of the project's containers."""
        found = subprocess.run(["docker", "ps", "-a", "--filter", f"label={PROJECT_LABEL}={self.name}", "--format",
                                '{{.ID}} {{.Label "com.docker.compose.service"}}'],
                               capture_output=True, text=True, timeout=60, check=True).stdout.split("\n")
        return {line.split()[1]: line.split()[0] for line in found if line.strip()}

    def url(self, service: str, path: str) -> str:
        return f"https://127.0.0.1:{self.rest[service]}{path}"

    def ca(self) -> Path:
        """The platform's CA, which the services made in their shared volume on their first start
        (copied out of the IAM container once it is there)."""
        path = self.workdir / "ca.crt"
        deadline = time.monotonic() + 90
        while not path.exists():
            copied = subprocess.run(["docker", "cp", f"{self.containers()['iam']}:/var/lib/photoncloud-tls/ca.crt",
                                     str(path)], capture_output=True, text=True, timeout=60)
            if copied.returncode != 0:
                assert time.monotonic() < deadline, f"no CA in the tls volume: {copied.stderr}\n{self.logs()}"
                time.sleep(1)
        return path

    def call(self, method: str, service: str, path: str, body: Any = None, token: str = "") -> tuple[int, dict]:
        """One REST call to a service over HTTPS, verified against the platform's CA: (status, JSON)."""
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        request = urllib.request.Request(self.url(service, path), method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        context = ssl.create_default_context(cafile=str(self.ca()))
        try:
            with urllib.request.urlopen(request, timeout=15, context=context) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def leftovers(name: str) -> dict[str, list[str]]:
    """The containers, networks and volumes the engine still holds for a compose project."""
    found = {}
    for kind, command in (("containers", ["ps", "-a"]), ("networks", ["network", "ls"]),
                          ("volumes", ["volume", "ls"])):
        listed = subprocess.run(["docker", *command, "-q", "--filter", f"label={PROJECT_LABEL}={name}"],
                                capture_output=True, text=True, timeout=60, check=True).stdout.split()
        found[kind] = listed
    return found


@pytest.fixture(scope="module")
def images() -> list[str]:
    """The compose CLI, once `make images` has made the images (on a real engine)."""
    if shutil.which("docker") is None:
        unavailable("the docker CLI is not installed")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        unavailable(f"no Docker engine answers: {info.stderr.strip()[:200]}")
    cli = compose_cli()
    built = subprocess.run(["make", "-C", str(ROOT), "images"], capture_output=True, text=True, timeout=1500)
    assert built.returncode == 0, f"make images failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    return cli


def project_env(names: list[str], password: str) -> tuple[dict[str, str], dict[str, int]]:
    """The environment compose runs with: a free host port for each name's REST and gRPC port."""
    ports = free_ports(2 * len(names))
    rest = dict(zip(names, ports[:len(names)]))
    grpc = dict(zip(names, ports[len(names):]))
    env = {key: value for key, value in os.environ.items()
           if not key.endswith(("_REST_PORT", "_GRPC_PORT")) and key not in ("PHOTONCLOUD_HOST", "PHOTONCLOUD_TLS_CA")}
    env.update({f"{name.upper().replace('-', '_')}_REST_PORT": str(port) for name, port in rest.items()})
    env.update({f"{name.upper().replace('-', '_')}_GRPC_PORT": str(port) for name, port in grpc.items()})
    env.update({"PHOTONCLOUD_ADMIN_PASSWORD": password, "PHOTONCLOUD_PUBLISH_ADDRESS": "127.0.0.1",
                "K8SHOST_NODE_PORTS": node_port_range()})
    return env, rest


@pytest.fixture(scope="module")
def project(images, tmp_path_factory):
    """The platform up in a compose project of its own."""
    password = secrets.token_urlsafe(18)
    env, rest = project_env(list(SERVICES), password)
    running = Project(images, f"photoncloud-test-{secrets.token_hex(4)}", env, rest, password,
                      tmp_path_factory.mktemp("compose"))
    up = running.compose("up", "-d")
    try:
        assert up.returncode == 0, f"docker-compose up failed:\n{up.stderr[-3000:]}\n{running.logs()}"
        yield running
    finally:
        if not running.down:
            running.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180)


def test_seven_healthy_and_the_agent_too(project):
    # health.py as a user runs it (standard library only), with the project's ports.
    health = subprocess.run([sys.executable, "-I", "-S", str(HEALTH_SCRIPT), "--wait", "90", "--json",
                             "--cacert", str(project.ca())],
                            env=project.env, capture_output=True, text=True, timeout=150)
    assert health.returncode == 0, f"{health.stdout}\n{health.stderr}\n{project.logs()}"
    report = json.loads(health.stdout)
    assert {entry["service"]: entry["status"] for entry in report["services"]} == dict.fromkeys(SERVICES, "healthy")
    assert {entry["service"]: entry["port"] for entry in report["services"]} == project.rest

    # Every container, the node agent's too, turns healthy by its compose health check.
    containers = project.containers()
    assert set(containers) == set(CONTAINERS), containers
    deadline = time.monotonic() + 90
    while True:
        states = {service: subprocess.run(["docker", "inspect", "--format", "{{.State.Health.Status}}", cid],
                                          capture_output=True, text=True, timeout=60).stdout.strip()
                  for service, cid in containers.items()}
        if set(states.values()) == {"healthy"} or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(states.values()) == {"healthy"}, f"{states}\n{project.logs()}"


def test_every_rest_port_speaks_tls_with_the_platforms_ca(project):
    project.ca()
    for service, port in project.rest.items():
        with pytest.raises((OSError, http.client.HTTPException)):  # plaintext: no answer
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):  # not a public CA's
            urllib.request.urlopen(f"https://127.0.0.1:{port}/health", timeout=5, context=ssl.create_default_context())
        assert project.call("GET", service, "/health")[0] == 200, service


def test_ports_are_published_on_loopback_only(project):
    for service, cid in project.containers().items():
        published = subprocess.run(["docker", "port", cid], capture_output=True, text=True, timeout=60,
                                   check=True).stdout.split("\n")
        addresses = [line.split(" -> ")[1] for line in published if " -> " in line]
        assert addresses, service
        assert all(address.startswith("127.0.0.1:") for address in addresses), (service, addresses)
    assert f"127.0.0.1:{project.rest['iam']}" in subprocess.run(
        ["docker", "port", project.containers()["iam"], "8083"], capture_output=True, text=True, timeout=60).stdout


def test_a_users_flow_through_the_published_ports(project):
    status, body = project.call("POST", "iam", "/api/v1/auth/token",
                        {"grant_type": "password", "username": "admin", "password": project.password})
    assert status == 200, body
    token = body["data"]["access_token"]
    assert project.call("GET", "chainfire", "/api/v1/kv/a")[0] == 401

    # ChainFire: a put, and the get that reads it back.
    status, body = project.call("PUT", "chainfire", "/api/v1/kv/compose/hello", {"value": "world"}, token)
    assert status == 200, body
    status, body = project.call("GET", "chainfire", "/api/v1/kv/compose/hello", token=token)
    assert (status, body["data"]["value"]) == (200, "world"), body

    # A project of the default org, for what follows.
    status, body = project.call("GET", "iam", "/api/v1/orgs?name=default", token=token)
    assert status == 200, body
    org_id = body["data"]["items"][0]["id"]
    status, body = project.call("POST", "iam", "/api/v1/projects", {"org_id": org_id, "name": "compose"}, token)
    assert status == 200, body
    project_id = body["data"]["id"]

    # FlareDB: statements in the project's database.
    status, body = project.call("POST", "flaredb", "/api/v1/sql", {"project_id": project_id, "statements": [
        {"sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"},
        {"sql": "INSERT INTO t (name) VALUES (?)", "params": ["ann"]}]}, token)
    assert status == 200, body
    status, body = project.call("POST", "flaredb", "/api/v1/sql",
                        {"project_id": project_id, "sql": "SELECT name FROM t"}, token)
    assert (status, body["data"]["results"][0]["rows"]) == (200, [["ann"]]), body

    # CreditService: the project's wallet.
    status, body = project.call("POST", "creditservice", "/api/v1/wallets",
                        {"project_id": project_id, "initial_balance": 1000}, token)
    assert (status, body["data"]["balance"]) == (201, 1000), body

    # PrismNET: a VPC, a subnet in it, a port with an address from the subnet.
    status, body = project.call("POST", "prismnet", "/api/v1/vpcs",
                        {"name": "net", "project_id": project_id, "cidr_block": "10.0.0.0/16"}, token)
    assert status == 201, body
    status, body = project.call("POST", "prismnet", "/api/v1/subnets",
                        {"vpc_id": body["data"]["id"], "name": "web", "cidr_block": "10.0.1.0/24"}, token)
    assert status == 201, body
    status, body = project.call("POST", "prismnet", "/api/v1/ports",
                        {"subnet_id": body["data"]["id"], "name": "web-1"}, token)
    assert status == 201 and body["data"]["ip_address"].startswith("10.0.1."), body

    # k8shost: a namespace in the project, and a pod the node agent runs.
    status, body = project.call("POST", "k8shost", "/api/v1/namespaces",
                        {"name": "shop", "project_id": project_id}, token)
    assert status == 201, body
    status, body = project.call("POST", "k8shost", "/api/v1/pods", {
        "namespace": "shop", "name": "hello",
        "spec": {"containers": [{"name": "main", "command": ["sh", "-c", "echo hello from $POD_NAME; sleep 3600"]}]}},
        token)
    assert status == 201, body
    deadline = time.monotonic() + 60
    while True:
        status, body = project.call("GET", "k8shost", "/api/v1/pods/shop/hello", token=token)
        logs = project.call("GET", "k8shost", "/api/v1/pods/shop/hello/logs", token=token)[1]
        if (body["data"]["status"]["phase"] == "Running" and "hello from hello" in logs.get("data", {}).get("text", "")
                or time.monotonic() > deadline):
            break
        time.sleep(0.5)
    assert body["data"]["status"]["phase"] == "Running", f"{body}\n{project.logs()}"
    assert body["data"]["spec"]["node_name"] == "node-1", body
    assert "hello from hello" in logs["data"]["text"], logs


def test_down_leaves_nothing_behind(project):
    assert any(leftovers(project.name).values())
    down = project.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180)
    project.down = True
    assert down.returncode == 0, down.stderr
    assert leftovers(project.name) == {"containers": [], "networks": [], "volumes": []}


# --- the clustered profile -----------------------------------------------------------------

MEMBERS = {"chainfire": ("chainfire", "chainfire-2", "chainfire-3"), "flaredb": ("flaredb", "flaredb-2", "flaredb-3")}
WRITES = 40  # before the kill, and again after it


@pytest.fixture(scope="module")
def cluster(images, tmp_path_factory):
    """IAM, and ChainFire and FlareDB as three-member clusters, up in a compose project of their own."""
    password = secrets.token_urlsafe(18)
    env, rest = project_env(["iam", *MEMBERS["chainfire"], *MEMBERS["flaredb"]], password)
    env["PHOTONCLOUD_CLUSTER_SECRET"] = secrets.token_urlsafe(32)
    running = Project(images, f"photoncloud-cluster-{secrets.token_hex(4)}", env, rest, password,
                      tmp_path_factory.mktemp("cluster"), files=(COMPOSE_FILE, CLUSTER_FILE))
    up = running.compose("up", "-d", "iam", *MEMBERS["chainfire"], *MEMBERS["flaredb"])
    try:
        assert up.returncode == 0, f"docker-compose up failed:\n{up.stderr[-3000:]}\n{running.logs()}"
        yield running
    finally:
        running.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180)
        assert leftovers(running.name) == {"containers": [], "networks": [], "volumes": []}


def admin_token(project: Project, timeout: float = 90) -> str:
    """The admin's token, once IAM answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = project.call("POST", "iam", "/api/v1/auth/token",
                                {"grant_type": "password", "username": "admin", "password": project.password})
            if status == 200:
                return body["data"]["access_token"]
        except OSError:
            status, body = 0, {}
        assert time.monotonic() < deadline, (status, body, project.logs())
        time.sleep(0.5)


def raft_role(project: Project, member: str) -> dict | None:
    """The member's Raft state from its /health (role, leader id), None if it does not answer."""
    try:
        status, body = project.call("GET", member, "/health")
        return body["data"]["dependencies"]["raft"] if status == 200 else None
    except (OSError, KeyError, ValueError):
        return None


def leader_of(project: Project, members: tuple[str, ...], timeout: float = 60) -> str:
    """The member the live members all follow, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        roles = {member: raft_role(project, member) for member in members}
        answering = {member: role for member, role in roles.items() if role}
        leaders = [member for member, role in answering.items() if role["role"] == "LEADER"]
        if len(leaders) == 1 and len({role["leader"] for role in answering.values()}) == 1 and len(answering) >= 2:
            return leaders[0]
        assert time.monotonic() < deadline, f"no leader among {members}: {roles}\n{project.logs()}"
        time.sleep(0.2)


class Writes:
    """Writes through members in turn, each of a key of its own. A write counts once a member acknowledged
    it (HTTP 200); one whose answer was lost or said the outcome is unknown (the leader changed under it)
    may or may not have happened, and is never written again."""

    def __init__(self, project: Project, token: str, write: Any):
        self.project, self.token, self.write = project, token, write
        self.acknowledged: dict[str, str] = {}
        self.unknown: dict[str, str] = {}
        self.refused: list[tuple[str, int, dict]] = []

    def check(self, found: dict[str, str], member: str) -> None:
        """found (what a member reads) holds every acknowledged write, and nothing never written."""
        lost = {key: value for key, value in self.acknowledged.items() if found.get(key) != value}
        assert not lost, f"{member} lost {len(lost)} acknowledged writes: {sorted(lost)[:10]}"
        extra = {key: value for key, value in found.items() if key not in self.acknowledged}
        assert all(self.unknown.get(key) == value for key, value in extra.items()), (member, extra)

    def run(self, members: tuple[str, ...], prefix: str, count: int, timeout: float = 60) -> None:
        """count acknowledged writes, spread over members; refusals (an election under way) are retried."""
        deadline = time.monotonic() + timeout
        i = 0
        while sum(key.startswith(prefix) for key in self.acknowledged) < count:
            assert time.monotonic() < deadline, (f"{len(self.acknowledged)} writes acknowledged; refused: "
                                                 f"{self.refused[-5:]}\n{self.project.logs()}")
            member = members[i % len(members)]
            key, value = f"{prefix}{i:04d}", secrets.token_hex(8)
            i += 1
            try:
                status, body = self.write(self.project, self.token, member, key, value)
            except OSError as exc:  # the member is gone, or cut off mid-answer: not acknowledged
                self.unknown[key] = value
                self.refused.append((member, 0, {"error": str(exc)}))
                time.sleep(0.2)
                continue
            if status == 200:
                self.acknowledged[key] = value
            else:
                if status >= 500:  # UNAVAILABLE "the outcome of the command is unknown", and the like
                    self.unknown[key] = value
                self.refused.append((member, status, body))
                time.sleep(0.2)


def chainfire_put(project: Project, token: str, member: str, key: str, value: str) -> tuple[int, dict]:
    return project.call("PUT", member, f"/api/v1/kv/{key}", {"value": value}, token)


def chainfire_read(project: Project, token: str, member: str, serializable: bool = False) -> dict[str, str]:
    found, page = {}, ""
    while True:
        query = (f"prefix=k/&page_size=500&serializable={str(serializable).lower()}"
                 + (f"&page_token={page}" if page else ""))
        status, body = project.call("GET", member, f"/api/v1/kv?{query}", token=token)
        assert status == 200, body
        found.update({kv["key"]: kv["value"] for kv in body["data"]["items"]})
        page = body["data"]["next_page_token"]
        if not page:
            return found


FLAREDB_PROJECT = "proj-compose-cluster"


def flaredb_insert(project: Project, token: str, member: str, key: str, value: str) -> tuple[int, dict]:
    return project.call("POST", member, "/api/v1/sql", {"project_id": FLAREDB_PROJECT, "statements": [
        {"sql": "INSERT INTO acks (key, value) VALUES (?, ?)", "params": [key, value]}]}, token)


def flaredb_read(project: Project, token: str, member: str, consistency: str = "strong") -> dict[str, str]:
    status, body = project.call("POST", member, "/api/v1/sql", {
        "project_id": FLAREDB_PROJECT, "sql": "SELECT key, value FROM acks", "consistency": consistency}, token)
    assert status == 200, body
    return {key: value for key, value in body["data"]["results"][0]["rows"]}


def killed_leader_loses_nothing(project: Project, members: tuple[str, ...], write: Any, read: Any) -> None:
    """Write, kill the leader's container, write through the survivors, read every acknowledged write back."""
    token = admin_token(project)
    leader = leader_of(project, members)
    writes = Writes(project, token, write)
    writes.run(members, "k/before-", WRITES)

    container = project.containers()[leader]
    subprocess.run(["docker", "kill", container], capture_output=True, timeout=60, check=True)
    survivors = tuple(member for member in members if member != leader)
    writes.run(survivors, "k/after-", WRITES)
    assert leader_of(project, survivors) != leader

    for member in survivors:
        writes.check(read(project, token, member), member)

    # The killed member, started again (or restarted by its policy), catches up with every write.
    subprocess.run(["docker", "start", container], capture_output=True, timeout=60, check=True)
    deadline = time.monotonic() + 60
    local = {"serializable": True} if read is chainfire_read else {"consistency": "none"}
    expected = read(project, token, survivors[0])  # what the cluster holds: the acknowledged writes, and maybe more
    while True:
        try:
            found = read(project, token, leader, **local)
        except (OSError, AssertionError, KeyError):
            found = None
        if found == expected:
            break
        assert time.monotonic() < deadline, f"{leader} did not catch up: {found}\n{project.logs()}"
        time.sleep(0.5)
    writes.check(found, leader)


def test_cluster_chainfire_keeps_every_acknowledged_write_when_its_leader_is_killed(cluster):
    killed_leader_loses_nothing(cluster, MEMBERS["chainfire"], chainfire_put, chainfire_read)


def test_cluster_flaredb_keeps_every_acknowledged_write_when_its_leader_is_killed(cluster):
    token = admin_token(cluster)
    leader = leader_of(cluster, MEMBERS["flaredb"])
    status, body = cluster.call("POST", leader, "/api/v1/sql", {
        "project_id": FLAREDB_PROJECT, "sql": "CREATE TABLE acks (key TEXT PRIMARY KEY, value TEXT NOT NULL)"}, token)
    assert status == 200, body
    killed_leader_loses_nothing(cluster, MEMBERS["flaredb"], flaredb_insert, flaredb_read)
