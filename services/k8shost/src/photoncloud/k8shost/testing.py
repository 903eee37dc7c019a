"""Test support for k8shost: node agents as real processes against an API server, HTTP answers, polling."""

from __future__ import annotations

import asyncio
import http.client
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from photoncloud.common import needs
from photoncloud.common.testing import DIRECT, Platform, ServiceProcess, free_ports
from photoncloud.k8shost.agent.sandbox import NONE, Sandbox, detect


def sandbox() -> Sandbox:
    """The process runtime's sandbox on this host; without one the test is skipped, naming what is missing
    (CI, which runs them as root with bubblewrap, fails it instead)."""
    mode, why = detect()
    if mode == NONE:
        needs.missing(f"needs a sandbox for the process runtime: {why} (Debian: apt-get install bubblewrap)")
    return Sandbox(mode)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """check()'s first truthy result, polled for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (in a running loop) until check() holds, at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def answers(host: str, port: int, tries: int = 8) -> set[str]:
    """The distinct bodies of `tries` HTTP GETs of http://host:port/ (failed or empty answers left out)."""
    seen = set()
    for _ in range(tries):
        try:
            with DIRECT.open(f"http://{host}:{port}/", timeout=5) as response:
                body = response.read().decode()
        except (OSError, http.client.HTTPException):
            # refused, reset, or cut off mid-answer (IncompleteRead) by a pod being deleted
            continue
        if body:
            seen.add(body)
    return seen


_ACCOUNTS: dict[str, tuple[str, str]] = {}


def agent_account(platform: Platform) -> tuple[str, str]:
    """A service account holding only what an agent needs, on the system scope: (client_id, secret)."""
    if platform.iam.url in _ACCOUNTS:
        return _ACCOUNTS[platform.iam.url]
    admin = platform.admin_token()
    iam = platform.iam.url
    status, orgs = platform.request("GET", f"{iam}/api/v1/orgs?name=default", token=admin)
    org_id = orgs["data"]["items"][0]["id"]
    status, role = platform.request("POST", f"{iam}/api/v1/roles", {
        "name": "k8shost-agent", "permissions": ["k8shost:nodes:write", "k8shost:nodes:read", "k8shost:pods:read",
                                                 "k8shost:services:read"]},
        admin)
    assert status in (200, 201), role
    status, account = platform.request("POST", f"{iam}/api/v1/service-accounts", {"org_id": org_id,
                                                                                  "name": "node-agent"}, admin)
    assert status in (200, 201), account
    client_id, secret = account["data"]["client_id"], account["data"]["client_secret"]
    status, binding = platform.request("POST", f"{iam}/api/v1/bindings", {
        "principal": f"serviceaccount:{account['data']['service_account']['id']}", "role": "k8shost-agent",
        "scope": {"type": "system"}}, admin)
    assert status in (200, 201), binding
    platform.secrets.add(secret)
    _ACCOUNTS[platform.iam.url] = client_id, secret
    return client_id, secret


def start_agent(kube: ServiceProcess, platform: Platform, root: Path, name: str,
                *flags: str) -> subprocess.Popen[bytes]:
    """An agent process for node `name`, with these flags (credentials, runtime, ...)."""
    (daemon_port,) = free_ports(1)
    with open(root / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "photoncloud.k8shost.agent", "--api-url", kube.url, "--node-name", name,
             "--data-dir", str(root / name), "--iam-url", platform.iam.url, *flags,
             "--daemon-port", str(daemon_port),
             "--heartbeat-seconds", "0.5", "--sync-seconds", "30", "--cpu", "2", "--memory", "2Gi",
             "--labels", "disk=ssd", "--backoff-seconds", "0.2"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def start_node_agent(platform: Platform, root: Path, timeout: float = 30) -> subprocess.Popen[bytes]:
    """A k8shost node agent, as `make run` starts one: it makes its own IAM service account from
    the admin's password file on its first start; returned once its node is registered and Ready."""
    password_file = root / "admin-password"  # as IAM keeps a password it made up: mode 0600
    with os.fdopen(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(platform.admin_password + "\n")
    kube = platform.services["k8shost"]
    with open(root / "k8shost-agent.log", "ab") as log:  # the child keeps its own copy of the descriptor
        agent = subprocess.Popen(
            [sys.executable, "-m", "photoncloud.k8shost.agent", "--api-url", kube.url, "--iam-url", platform.iam.url,
             "--data-dir", str(root / "k8shost-agent"), "--bootstrap-password-file", str(password_file),
             "--daemon-port", "0"],  # any free port: the default, 10250, may be taken where tests run
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        token, deadline = platform.admin_token(), time.monotonic() + timeout
        while True:
            assert agent.poll() is None, f"the node agent exited:\n{(root / 'k8shost-agent.log').read_text()}"
            _, nodes = platform.request("GET", f"{kube.url}/api/v1/nodes", token=token)
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for node in nodes.get("data", {}).get("items", ()) for c in node["status"]["conditions"]):
                return agent
            assert time.monotonic() < deadline, \
                f"no node registered in {timeout}s:\n{(root / 'k8shost-agent.log').read_text()}"
            time.sleep(0.2)
    except BaseException:
        agent.kill()
        agent.wait()
        raise


def stop_node_agent(agent: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a node agent stops its pods), then SIGKILL if it lingers."""
    if agent.poll() is None:
        agent.terminate()
        try:
            agent.wait(20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
