#!/usr/bin/env python3
"""Run PhotonCloud locally in the foreground: one process per service, Ctrl-C stops them all.

Usage: run_platform.py SERVICE [SERVICE ...]   (as `make run` does, with every service there is)
Each service reads its own flags' environment variables (CHAINFIRE_REST_PORT, ...); data goes
under $PHOTONCLOUD_DATA_DIR (default ./.data). With k8shost comes one node agent for this machine,
which makes its own IAM service account with the admin's password (PHOTONCLOUD_ADMIN_PASSWORD, or
the one IAM generated and keeps in the data directory) on its first start; it runs pods in bubblewrap
sandboxes, so it starts only where the machine can make them (root, or user namespaces, and bwrap).
With PHOTONCLOUD_TLS=auto every port serves TLS from one CA made in $PHOTONCLOUD_DATA_DIR/tls, and the
services (and the agent) reach IAM and k8shost over https, verified against it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from photoncloud.k8shost.agent import sandbox

PORTS = {"chainfire": 8081, "flaredb": 8082, "iam": 8083, "plasmavmc": 8084,
         "k8shost": 8085, "creditservice": 8086, "prismnet": 8087}


def commands(services: list[str]) -> dict[str, list[str]]:
    """The command of each process to run: the services, and k8shost's node agent."""
    found = {name: [sys.executable, "-m", f"photoncloud.{name}"] for name in services}
    if "k8shost" in services:
        mode, why = sandbox.detect()
        if mode == sandbox.NONE:  # the agent would refuse to start; the rest of the platform still runs
            print(f"k8shost-agent  not started: it runs every pod in a sandbox, and this machine cannot make one "
                  f"({why}); pods stay Pending until an agent runs", file=sys.stderr)
            return found
        iam_data = os.environ.get("IAM_DATA_DIR") or Path(os.environ.get("PHOTONCLOUD_DATA_DIR", ".data")) / "iam"
        found["k8shost-agent"] = [sys.executable, "-m", "photoncloud.k8shost.agent",
                                  "--bootstrap-password-file", str(Path(iam_data) / "admin-password")]
    return found


def main(services: list[str]) -> int:
    """Start every service, wait until one exits or a signal comes, then stop them all."""
    unknown = [s for s in services if s not in PORTS]
    if not services or unknown:
        print(f"usage: run_platform.py SERVICE... (known: {', '.join(PORTS)})", file=sys.stderr)
        return 2
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # The admin's password, when given, is also the agent's (IAM then keeps no password file).
    env = {"K8SHOST_AGENT_BOOTSTRAP_PASSWORD": os.environ.get("PHOTONCLOUD_ADMIN_PASSWORD", ""), **os.environ}
    scheme = "http"
    if env.get("PHOTONCLOUD_TLS", "off") != "off":
        scheme = "https"
        tls_dir = env.get("PHOTONCLOUD_TLS_DIR") or str(Path(env.get("PHOTONCLOUD_DATA_DIR", ".data")) / "tls")
        if env["PHOTONCLOUD_TLS"] == "auto":  # what the agent verifies with (the services know it already)
            env.setdefault("PHOTONCLOUD_TLS_CA", str(Path(tls_dir) / "ca.crt"))
        iam_url = f"https://127.0.0.1:{env.get('IAM_REST_PORT', PORTS['iam'])}"
        env.setdefault("PHOTONCLOUD_IAM_URL", iam_url)
        env.setdefault("IAM_ISSUER", env.get("PHOTONCLOUD_IAM_ISSUER") or env["PHOTONCLOUD_IAM_URL"])
        env.setdefault("K8SHOST_AGENT_API_URL", f"https://127.0.0.1:{env.get('K8SHOST_REST_PORT', PORTS['k8shost'])}")
    children = {name: subprocess.Popen(command, env=env) for name, command in commands(services).items()}
    for name in services:
        print(f"{name:<14} REST {scheme}://127.0.0.1:{PORTS[name]}  gRPC 127.0.0.1:{50050 + PORTS[name] % 10}",
              file=sys.stderr)
    if scheme == "https" and env.get("PHOTONCLOUD_TLS_CA"):
        print(f"TLS on: curl --cacert {env['PHOTONCLOUD_TLS_CA']} https://127.0.0.1:{PORTS['iam']}/health",
              file=sys.stderr)
    print("Ctrl-C stops them all.", file=sys.stderr)
    failed = None
    while not stopping and failed is None:
        failed = next((name for name, child in children.items() if child.poll() is not None), None)
        time.sleep(0.2)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
    if failed is not None:
        print(f"{failed} exited with code {children[failed].returncode}; stopped the others.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
