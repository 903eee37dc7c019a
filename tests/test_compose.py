"""The platform as docker-compose brings it up, on a real engine: `make images` builds the images with
no image registry, `docker-compose up -d` (a project of its own, ports of its own on 127.0.0.1) starts
the seven services and a node agent, they turn healthy, a user's flow runs through the published
ports (sign in, ChainFire, FlareDB, a wallet, a PrismNET port, a pod Running on the node agent), and
`docker-compose down -v` leaves no container, network or volume behind. Without an engine (or a
compose CLI) the tests are skipped, unless PHOTONCLOUD_REQUIRE_DOCKER=1 makes them fail.

The tests of this module run in order, on one project; the last one takes it down."""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from photoncloud.common.testing import free_ports

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker" / "docker-compose.yml"
HEALTH_SCRIPT = ROOT / "scripts" / "health.py"
SERVICES = ("chainfire", "flaredb", "iam", "plasmavmc", "k8shost", "creditservice", "prismnet")
CONTAINERS = (*SERVICES, "k8shost-agent")
NODE_PORTS = 101  # the node agent publishes 30000-30100
PROJECT_LABEL = "com.docker.compose.project"


def unavailable(reason: str) -> None:
    """Skip for want of reason, or fail when the environment requires the engine."""
    if os.environ.get("PHOTONCLOUD_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{reason}, and PHOTONCLOUD_REQUIRE_DOCKER=1 requires it")
    pytest.skip(reason)


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
    down: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([*self.cli, "-f", str(COMPOSE_FILE), "-p", self.name, *args], cwd=ROOT, env=self.env,
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
        return f"http://127.0.0.1:{self.rest[service]}{path}"


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
def project():
    """The images made by `make images`, and the platform up in a compose project of its own."""
    if shutil.which("docker") is None:
        unavailable("the docker CLI is not installed")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        unavailable(f"no Docker engine answers: {info.stderr.strip()[:200]}")
    cli = compose_cli()

    started = time.monotonic()
    built = subprocess.run(["make", "-C", str(ROOT), "images"], capture_output=True, text=True, timeout=1500)
    assert built.returncode == 0, f"make images failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    timings = {"make images": time.monotonic() - started}

    ports = free_ports(2 * len(SERVICES))
    rest = dict(zip(SERVICES, ports[:len(SERVICES)]))
    grpc = dict(zip(SERVICES, ports[len(SERVICES):]))
    password = secrets.token_urlsafe(18)
    env = {key: value for key, value in os.environ.items()
           if not key.endswith(("_REST_PORT", "_GRPC_PORT")) and key not in ("PHOTONCLOUD_HOST", "PHOTONCLOUD_TLS_CA")}
    env.update({f"{name.upper()}_REST_PORT": str(port) for name, port in rest.items()})
    env.update({f"{name.upper()}_GRPC_PORT": str(port) for name, port in grpc.items()})
    env.update({"PHOTONCLOUD_ADMIN_PASSWORD": password, "PHOTONCLOUD_PUBLISH_ADDRESS": "127.0.0.1",
                "K8SHOST_NODE_PORTS": node_port_range()})
    running = Project(cli, f"photoncloud-test-{secrets.token_hex(4)}", env, rest, password, timings=timings)

    started = time.monotonic()
    up = running.compose("up", "-d")
    try:
        assert up.returncode == 0, f"docker-compose up failed:\n{up.stderr[-3000:]}\n{running.logs()}"
        yield running
    finally:
        if not running.down:
            running.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180)


def call(method: str, url: str, body: Any = None, token: str = "") -> tuple[int, dict]:
    """One REST call: (HTTP status, the JSON document answered)."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_seven_healthy_and_the_agent_too(project):
    started = time.monotonic()
    # health.py as a user runs it (standard library only), with the project's ports.
    health = subprocess.run([sys.executable, "-I", "-S", str(HEALTH_SCRIPT), "--wait", "90", "--json"],
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
    project.timings["up to healthy"] = time.monotonic() - started


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
    status, body = call("POST", project.url("iam", "/api/v1/auth/token"),
                        {"grant_type": "password", "username": "admin", "password": project.password})
    assert status == 200, body
    token = body["data"]["access_token"]
    assert call("GET", project.url("chainfire", "/api/v1/kv/a"))[0] == 401

    # ChainFire: a put, and the get that reads it back.
    status, body = call("PUT", project.url("chainfire", "/api/v1/kv/compose/hello"), {"value": "world"}, token)
    assert status == 200, body
    status, body = call("GET", project.url("chainfire", "/api/v1/kv/compose/hello"), token=token)
    assert (status, body["data"]["value"]) == (200, "world"), body

    # A project of the default org, for what follows.
    status, body = call("GET", project.url("iam", "/api/v1/orgs?name=default"), token=token)
    assert status == 200, body
    org_id = body["data"]["items"][0]["id"]
    status, body = call("POST", project.url("iam", "/api/v1/projects"), {"org_id": org_id, "name": "compose"}, token)
    assert status == 200, body
    project_id = body["data"]["id"]

    # FlareDB: statements in the project's database.
    status, body = call("POST", project.url("flaredb", "/api/v1/sql"), {"project_id": project_id, "statements": [
        {"sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"},
        {"sql": "INSERT INTO t (name) VALUES (?)", "params": ["ann"]}]}, token)
    assert status == 200, body
    status, body = call("POST", project.url("flaredb", "/api/v1/sql"),
                        {"project_id": project_id, "sql": "SELECT name FROM t"}, token)
    assert (status, body["data"]["results"][0]["rows"]) == (200, [["ann"]]), body

    # CreditService: the project's wallet.
    status, body = call("POST", project.url("creditservice", "/api/v1/wallets"),
                        {"project_id": project_id, "initial_balance": 1000}, token)
    assert (status, body["data"]["balance"]) == (201, 1000), body

    # PrismNET: a VPC, a subnet in it, a port with an address from the subnet.
    status, body = call("POST", project.url("prismnet", "/api/v1/vpcs"),
                        {"name": "net", "project_id": project_id, "cidr_block": "10.0.0.0/16"}, token)
    assert status == 201, body
    status, body = call("POST", project.url("prismnet", "/api/v1/subnets"),
                        {"vpc_id": body["data"]["id"], "name": "web", "cidr_block": "10.0.1.0/24"}, token)
    assert status == 201, body
    status, body = call("POST", project.url("prismnet", "/api/v1/ports"),
                        {"subnet_id": body["data"]["id"], "name": "web-1"}, token)
    assert status == 201 and body["data"]["ip_address"].startswith("10.0.1."), body

    # k8shost: a namespace in the project, and a pod the node agent runs.
    status, body = call("POST", project.url("k8shost", "/api/v1/namespaces"),
                        {"name": "shop", "project_id": project_id}, token)
    assert status == 201, body
    status, body = call("POST", project.url("k8shost", "/api/v1/pods"), {
        "namespace": "shop", "name": "hello",
        "spec": {"containers": [{"name": "main", "command": ["sh", "-c", "echo hello from $POD_NAME; sleep 3600"]}]}},
        token)
    assert status == 201, body
    deadline = time.monotonic() + 60
    while True:
        status, body = call("GET", project.url("k8shost", "/api/v1/pods/shop/hello"), token=token)
        logs = call("GET", project.url("k8shost", "/api/v1/pods/shop/hello/logs"), token=token)[1]
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
