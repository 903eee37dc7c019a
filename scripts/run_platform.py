#!/usr/bin/env python3
"""Run PhotonCloud locally in the foreground: one process per service, Ctrl-C stops them all.

Usage: run_platform.py [--log-format auto|text|json] [--ready-timeout SECONDS] SERVICE [SERVICE ...]
(as `make run` does, with every service there is). Each line a service writes comes out prefixed with
its name; on a terminal the services log readable text (`--log-format`, or PHOTONCLOUD_LOG_FORMAT),
elsewhere JSON lines, which pass through as they are (each names its service). Once every service
answers /health, a banner shows their REST and gRPC addresses and how to sign in as the admin.
If a service exits (a port taken, say), the others are stopped and this exits non-zero with its message.

Each service reads its own flags' environment variables (CHAINFIRE_REST_PORT, ...); data goes
under $PHOTONCLOUD_DATA_DIR (default ./.data). With k8shost comes one node agent for this machine,
which makes its own IAM service account with the admin's password (PHOTONCLOUD_ADMIN_PASSWORD, or
the one IAM generated and keeps in the data directory) on its first start; it runs pods in bubblewrap
sandboxes, so it starts only where the machine can make them (root, or user namespaces, and bwrap).
With PHOTONCLOUD_TLS=auto every port serves TLS from one CA made in $PHOTONCLOUD_DATA_DIR/tls, and the
services (and the agent) reach IAM and k8shost over https, verified against it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from photoncloud.k8shost.agent import sandbox

PORTS = {"chainfire": 8081, "flaredb": 8082, "iam": 8083, "plasmavmc": 8084,
         "k8shost": 8085, "creditservice": 8086, "prismnet": 8087}
ADMIN_PASSWORD_ENV = "PHOTONCLOUD_ADMIN_PASSWORD"
ADMIN_PASSWORD_FILE = "admin-password"  # in IAM's data directory, mode 0600, when IAM generated it
READY_TIMEOUT = 180.0  # seconds the services get to answer /health before the wait says who has not
WIDTH = len("k8shost-agent")


def _load_health() -> Any:
    """scripts/health.py, beside this file (it runs without the virtual environment, so it is no package)."""
    spec = importlib.util.spec_from_file_location("photoncloud_health_script", Path(__file__).with_name("health.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


health = _load_health()


@dataclass(frozen=True)
class Endpoint:
    """Where one service answers: its REST base URL and its gRPC address."""

    name: str
    host: str
    rest_port: int
    grpc_port: int
    scheme: str = "http"

    @property
    def rest_url(self) -> str:
        """The REST base URL."""
        return f"{self.scheme}://{self.host}:{self.rest_port}"

    @property
    def grpc_address(self) -> str:
        """The gRPC address (host:port)."""
        return f"{self.host}:{self.grpc_port}"


def endpoint(name: str, env: Mapping[str, str], scheme: str = "http") -> Endpoint:
    """Where the service listens, as its flags' environment variables say (the services' own defaults otherwise)."""
    prefix = name.upper()
    rest = _port(env, f"{prefix}_REST_PORT", PORTS[name])
    # The service's gRPC default follows its default REST port, not an overridden one.
    grpc = _port(env, f"{prefix}_GRPC_PORT", 50050 + PORTS[name] % 10)
    bind = env.get(f"{prefix}_BIND", "") or "127.0.0.1"
    host = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind  # a wildcard is reached through loopback
    return Endpoint(name, f"[{host}]" if ":" in host else host, rest, grpc, scheme)


def _port(env: Mapping[str, str], variable: str, default: int) -> int:
    value = env.get(variable, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{variable}={value!r} is not a port number")
    return int(value)


def iam_data_dir(env: Mapping[str, str]) -> Path:
    """IAM's data directory, as IAM reads it."""
    return Path(env.get("IAM_DATA_DIR") or Path(env.get("PHOTONCLOUD_DATA_DIR", ".data")) / "iam")


def commands(services: list[str], env: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The command of each process to run: the services, and k8shost's node agent."""
    env = os.environ if env is None else env
    found = {name: [sys.executable, "-m", f"photoncloud.{name}"] for name in services}
    if "k8shost" in services:
        mode, why = sandbox.detect()
        if mode == sandbox.NONE:  # the agent would refuse to start; the rest of the platform still runs
            print(f"{'k8shost-agent':<{WIDTH}} | not started: it runs every pod in a sandbox, and this machine cannot "
                  f"make one ({why}); pods stay Pending until an agent runs", file=sys.stderr)
            return found
        found["k8shost-agent"] = [sys.executable, "-m", "photoncloud.k8shost.agent",
                                  "--bootstrap-password-file", str(iam_data_dir(env) / ADMIN_PASSWORD_FILE)]
    return found


def admin_lines(env: Mapping[str, str], generated_now: str | None) -> list[str]:
    """How to sign in as the admin: the password's source, never the password itself unless IAM generated it
    during this run (and printed it once already)."""
    if env.get(ADMIN_PASSWORD_ENV):
        return ["admin user   admin (the operator); its password is the one in $" + ADMIN_PASSWORD_ENV]
    path = iam_data_dir(env) / ADMIN_PASSWORD_FILE
    if generated_now is not None:
        return ["admin user   admin (the operator); IAM generated its password on this first start: "
                f"{generated_now}", f"             it is kept in {path} (mode 0600) and not shown again"]
    if path.exists():
        return [f"admin user   admin (the operator); its password is in {path} (mode 0600)"]
    return ["admin user   admin (the operator); its password is the one IAM was first started with "
            f"(${ADMIN_PASSWORD_ENV} then; IAM keeps no copy in {path.parent})"]


def banner(endpoints: list[Endpoint], admin: list[str], ca: str | None = None) -> str:
    """The lines printed once every service answers /health."""
    rule = "=" * 78
    lines = [rule, f"PhotonCloud is ready: {len(endpoints)} service{'s' if len(endpoints) != 1 else ''} "
                   "answer /health"]
    for e in endpoints:
        lines.append(f"  {e.name:<14} REST {e.rest_url:<28} gRPC {e.grpc_address}")
    if any(e.name == "iam" for e in endpoints):
        lines += ["", *admin]
    if ca:
        lines.append(f"TLS on: verify with the CA {ca} (curl --cacert {ca} ...)")
    lines += ["health       make health;  API pages: <REST URL>/api/v1/openapi.json", "Ctrl-C stops them all.", rule]
    return "\n".join(lines)


class Output:
    """Copies each child's lines to stderr, prefixed with its name, and keeps its last lines."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.lock = threading.Lock()
        self.last: dict[str, deque[str]] = {}
        self.threads: dict[str, threading.Thread] = {}

    def write(self, text: str) -> None:
        """Write whole lines, not interleaved with a child's."""
        with self.lock:
            self.stream.write(text if text.endswith("\n") else text + "\n")
            self.stream.flush()

    def follow(self, name: str, pipe: IO[bytes]) -> threading.Thread:
        """Copy pipe's lines until it closes (on a thread of its own)."""
        self.last[name] = deque(maxlen=20)

        def copy() -> None:
            for raw in iter(pipe.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                self.last[name].append(line)
                # A JSON line names its service already, and stays a JSON line for whatever reads the output.
                self.write(line if line.startswith("{") else f"{name:<{WIDTH}} | {line}")
            pipe.close()

        thread = threading.Thread(target=copy, name=f"output-{name}", daemon=True)
        thread.start()
        self.threads[name] = thread
        return thread

    def why(self, name: str) -> str:
        """Why the child exited, as it said: its last error record, else its last line (a traceback's exception)."""
        lines = [line for line in self.last.get(name, ()) if line.strip()]
        for line in reversed(lines):
            message = _message(line)
            if message[1] in ("ERROR", "CRITICAL"):
                return message[0]
        return _message(lines[-1])[0] if lines else "(it printed nothing)"


def _message(line: str) -> tuple[str, str]:
    """(message, level) of a log line: a JSON record's fields, or the text as it is."""
    if line.startswith("{"):
        try:
            record = json.loads(line)
            return str(record.get("message", line)), str(record.get("level", ""))
        except ValueError:
            pass
    return line, "ERROR" if " ERROR " in line else ""


def check(endpoints: list[Endpoint], tls: ssl.SSLContext | None) -> list[dict[str, Any]]:
    """Each service's /health, asked at once (scripts/health.py's check), in order."""
    with ThreadPoolExecutor(max_workers=len(endpoints)) as pool:
        return list(pool.map(lambda e: {"service": e.name, **health.check(e.host.strip("[]"), e.rest_port, 1.0, tls)},
                             endpoints))


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="Run PhotonCloud's services in the foreground.")
    parser.add_argument("services", nargs="+", metavar="SERVICE", help=f"services to run ({', '.join(PORTS)})")
    parser.add_argument("--log-format", choices=("auto", "text", "json"),
                        default=os.environ.get("PHOTONCLOUD_LOG_FORMAT", "auto"),
                        help="how the services log: text (readable lines), json (one object per line), or auto "
                             "(default): text when stderr is a terminal, JSON otherwise")
    parser.add_argument("--ready-timeout", type=float, default=READY_TIMEOUT, metavar="SECONDS",
                        help="how long to wait for every service's /health before saying which have not answered")
    args = parser.parse_args(argv)
    unknown = [s for s in args.services if s not in PORTS]
    if unknown:
        parser.error(f"unknown service {', '.join(unknown)} (known: {', '.join(PORTS)})")
    return args


def main(argv: list[str]) -> int:
    """Start every service, show the banner once all answer, wait until one exits or a signal comes,
    then stop them all."""
    args = parse_args(argv)
    services: list[str] = args.services
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # The admin's password, when given, is also the agent's (IAM then keeps no password file).
    env = {"K8SHOST_AGENT_BOOTSTRAP_PASSWORD": os.environ.get(ADMIN_PASSWORD_ENV, ""), **os.environ}
    log_format = args.log_format
    if log_format == "auto":  # the services write to a pipe: decide for them what this terminal is
        log_format = "text" if sys.stderr.isatty() else "json"
    env["PHOTONCLOUD_LOG_FORMAT"] = log_format
    scheme = "http"
    try:
        iam = endpoint("iam", env)
    except ValueError as exc:
        print(f"run_platform: {exc}", file=sys.stderr)
        return 2
    if env.get("PHOTONCLOUD_TLS", "off") != "off":
        scheme = "https"
        tls_dir = env.get("PHOTONCLOUD_TLS_DIR") or str(Path(env.get("PHOTONCLOUD_DATA_DIR", ".data")) / "tls")
        if env["PHOTONCLOUD_TLS"] == "auto":  # what the agent verifies with (the services know it already)
            env.setdefault("PHOTONCLOUD_TLS_CA", str(Path(tls_dir) / "ca.crt"))
        env.setdefault("PHOTONCLOUD_IAM_URL", f"https://{iam.host}:{iam.rest_port}")
        env.setdefault("IAM_ISSUER", env.get("PHOTONCLOUD_IAM_ISSUER") or env["PHOTONCLOUD_IAM_URL"])
        k8s = endpoint("k8shost", env)
        env.setdefault("K8SHOST_AGENT_API_URL", f"https://{k8s.host}:{k8s.rest_port}")
    else:  # where the services find IAM: where this run starts it
        env.setdefault("PHOTONCLOUD_IAM_URL", f"http://{iam.host}:{iam.rest_port}")
    try:
        endpoints = [endpoint(name, env, scheme) for name in services]
    except ValueError as exc:  # a port variable that is no number
        print(f"run_platform: {exc}", file=sys.stderr)
        return 2
    password_file = iam_data_dir(env) / ADMIN_PASSWORD_FILE
    had_password_file = password_file.exists()

    output = Output(sys.stderr)
    output.write(f"starting {', '.join(services)}; the addresses follow once every one answers /health")
    children: dict[str, subprocess.Popen[bytes]] = {}
    for name, command in commands(services, env).items():
        children[name] = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT)
        assert children[name].stdout is not None
        output.follow(name, children[name].stdout)
    try:
        tls = ssl.create_default_context(cafile=env["PHOTONCLOUD_TLS_CA"]) if scheme == "https" else None
    except (KeyError, OSError):
        tls = None  # the CA is made by the first service to start; made again below once it is there
    started = time.monotonic()
    ready = told_late = False
    failed = None
    next_check = 0.0
    while not stopping and failed is None:
        failed = next((name for name, child in children.items() if child.poll() is not None), None)
        if failed is not None or ready or time.monotonic() < next_check:
            time.sleep(0.1)
            continue
        if scheme == "https" and tls is None and Path(env.get("PHOTONCLOUD_TLS_CA", "")).is_file():
            tls = ssl.create_default_context(cafile=env["PHOTONCLOUD_TLS_CA"])
        results = check(endpoints, tls) if scheme == "http" or tls is not None else []
        next_check = time.monotonic() + 0.5
        if results and all(r["status"] == health.HEALTHY for r in results):
            ready = True
            generated = None
            if not had_password_file and password_file.exists() and not env.get(ADMIN_PASSWORD_ENV):
                generated = password_file.read_text().strip()  # IAM printed it once already, on this start
            ca = env.get("PHOTONCLOUD_TLS_CA") if scheme == "https" else None
            output.write(banner(endpoints, admin_lines(env, generated), ca))
        elif not told_late and time.monotonic() - started > args.ready_timeout:
            told_late = True
            waiting = [f"{r['service']} ({r['status']}{': ' + r['reason'] if r['reason'] else ''})"
                       for r in results if r["status"] != health.HEALTHY]
            output.write(f"still waiting after {args.ready_timeout:g}s for /health of: "
                         f"{', '.join(waiting) or 'every service (TLS not set up yet)'}")
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if failed is not None:
        output.threads[failed].join(timeout=2)  # its last lines may still be on their way through the pipe
        output.write(f"{failed} exited with code {children[failed].returncode}: {output.why(failed)}; "
                     f"stopped the others.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
