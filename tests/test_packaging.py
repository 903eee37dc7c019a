"""Packaging checks: the compose file is valid, and scripts/health.py reports what it sees."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from photoncloud.common.testing import free_ports

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker" / "docker-compose.yml"
HEALTH_SCRIPT = ROOT / "scripts" / "health.py"
SERVICES = ("chainfire", "flaredb", "iam", "plasmavmc", "k8shost", "creditservice", "prismnet")


def compose_command() -> list[str]:
    """Return the compose CLI available here: docker-compose (v1) or `docker compose` (v2)."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            return ["docker", "compose"]
    pytest.fail("neither `docker-compose` nor the `docker compose` plugin is installed; "
                "install one (Debian: apt-get install docker-compose) to validate "
                "docker/docker-compose.yml")


def run_health(ports: dict[str, int], *args: str) -> subprocess.CompletedProcess:
    """Run scripts/health.py on 127.0.0.1 with every service's REST port overridden."""
    env = {key: value for key, value in os.environ.items()
           if not key.endswith("_REST_PORT") and key != "PHOTONCLOUD_HOST"}
    env.update({f"{name.upper()}_REST_PORT": str(port) for name, port in ports.items()})
    # -I -S: no site-packages and no PYTHON* variables, so the script must be stdlib-only.
    return subprocess.run([sys.executable, "-I", "-S", str(HEALTH_SCRIPT), "--timeout", "5", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def report(result: subprocess.CompletedProcess) -> dict[str, dict]:
    """Parse the --json output into {service: entry}."""
    document = json.loads(result.stdout)
    return {entry["service"]: entry for entry in document["services"]}


@pytest.fixture
def health_server():
    """Start stub health servers on 127.0.0.1:0; yields a factory returning the port."""
    servers = []

    def start(status: int, body: bytes) -> int:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                code, payload = (status, body) if self.path == "/health" else (404, b"{}")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def health_body(service: str, status: str) -> bytes:
    """Return a /health response body in the platform's envelope."""
    return json.dumps({
        "data": {"status": status, "service": service, "version": "0.1.0", "dependencies": {}},
        "meta": {"request_id": "test", "timestamp": "2024-01-01T00:00:00Z"},
    }).encode()


def test_compose_config_is_valid_and_names_every_running_service():
    cmd = compose_command()
    base = [*cmd, "-f", str(COMPOSE_FILE)]
    config = subprocess.run([*base, "config"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert config.returncode == 0, f"{' '.join(cmd)} config failed:\n{config.stderr}"
    services = subprocess.run([*base, "config", "--services"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert services.returncode == 0, services.stderr
    assert {"iam", "chainfire"} <= set(services.stdout.split())
    for port in (8081, 50051, 8083, 50053):
        assert re.search(rf"target:\s*{port}\b", config.stdout), config.stdout
        assert re.search(rf"published:\s*[\"']?{port}\b", config.stdout), config.stdout


def test_health_reports_not_running_and_exits_zero():
    ports = dict(zip(SERVICES, free_ports(len(SERVICES))))

    result = run_health(ports, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    entries = report(result)
    assert set(entries) == set(SERVICES)
    for name, entry in entries.items():
        assert entry["status"] == "not running", entry
        assert entry["port"] == ports[name]

    text = run_health(ports)
    assert text.returncode == 0, text.stdout + text.stderr
    lines = text.stdout.splitlines()
    for name in SERVICES:
        assert any(re.fullmatch(rf"{name}\s+{ports[name]}\s+not running", line) for line in lines), lines
    assert "no PhotonCloud service is running" in text.stdout


def test_health_reports_healthy_and_unhealthy_and_exits_one(health_server):
    ports = dict(zip(SERVICES, free_ports(len(SERVICES))))
    ports["chainfire"] = health_server(200, health_body("chainfire", "SERVING"))
    ports["flaredb"] = health_server(503, health_body("flaredb", "NOT_SERVING"))
    ports["iam"] = health_server(200, b"this is not json")

    result = run_health(ports, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    entries = report(result)
    assert entries["chainfire"]["status"] == "healthy"
    assert entries["chainfire"]["version"] == "0.1.0"
    assert entries["flaredb"]["status"] == "unhealthy"
    assert "503" in entries["flaredb"]["reason"]
    assert entries["iam"]["status"] == "unhealthy"
    for name in ("plasmavmc", "k8shost", "creditservice", "prismnet"):
        assert entries[name]["status"] == "not running"
    assert json.loads(result.stdout)["healthy"] is False

    text = run_health(ports)
    assert text.returncode == 1, text.stdout + text.stderr
    lines = text.stdout.splitlines()
    assert any(re.fullmatch(rf"chainfire\s+{ports['chainfire']}\s+healthy", line) for line in lines), lines
    assert any(re.fullmatch(rf"flaredb\s+{ports['flaredb']}\s+unhealthy \(.*NOT_SERVING.*\)", line)
               for line in lines), lines
    assert "no PhotonCloud service is running" not in text.stdout
