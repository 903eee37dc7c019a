"""`python -m photoncloud.k8shost.agent`: run a node agent (flags, or K8SHOST_AGENT_<FLAG> variables)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import socket
import sys
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from photoncloud.common import tls
from photoncloud.common.credentials import Tokens
from photoncloud.common.errors import ServiceError
from photoncloud.common.logs import setup_logging
from photoncloud.common.netdev import DeviceNames
from photoncloud.common.signals import on_stop_signals

from . import bootstrap
from .api import ApiServer
from . import limits, sandbox
from .docker import DockerRuntime
from .engine import DEFAULT_HOST, EngineError
from .node import Agent, NodeConfig
from .process import ProcessRuntime
from .runtime import Backoff, Runtime

PREFIX = "K8SHOST_AGENT_"
log = logging.getLogger("photoncloud.k8shost.agent")
T = TypeVar("T")


def _memory_bytes() -> int:
    """The machine's memory, from /proc/meminfo (or sysconf)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _node_name() -> str:
    """The host name as a node name (lower-case DNS subdomain)."""
    name = re.sub(r"[^a-z0-9.-]+", "-", socket.gethostname().lower()).strip("-.")
    return name or "node"


def _labels(text: str) -> dict[str, str]:
    pairs = [p.strip() for p in text.split(",") if p.strip()]
    if any("=" not in p for p in pairs):
        raise SystemExit("--labels takes key=value pairs separated by commas")
    return dict(p.split("=", 1) for p in pairs)


def parse(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> argparse.Namespace:
    """The agent's configuration: `--flag`, else K8SHOST_AGENT_FLAG, else the default."""
    env = os.environ if environ is None else environ

    def default(name: str, fallback: T) -> str | T:
        return env.get(PREFIX + name.upper(), fallback)

    base = Path(env.get("PHOTONCLOUD_DATA_DIR", ".data"))
    p = argparse.ArgumentParser(prog="k8shost-agent", description="Run a k8shost node agent.")
    p.add_argument("--api-url", default=default("api_url", "http://127.0.0.1:8085"), help="the API server's REST URL")
    p.add_argument("--node-name", default=default("node_name", _node_name()))
    p.add_argument("--data-dir", type=Path, default=default("data_dir", base / "k8shost-agent"),
                   help="pods' working directories and logs go here")
    p.add_argument("--token-file", type=Path, default=default("token_file", None),
                   help="a file holding the bearer token (read again on every call, so it can be rotated)")
    p.add_argument("--iam-url", default=default("iam_url", env.get("PHOTONCLOUD_IAM_URL", "http://127.0.0.1:8083")))
    p.add_argument("--tls-ca", type=Path, default=default("tls_ca", env.get("PHOTONCLOUD_TLS_CA")),
                   help="the CA bundle https API server and IAM URLs are verified with (default: the system's)")
    p.add_argument("--client-id", default=default("client_id", ""), help="an IAM service account's id")
    p.add_argument("--client-secret-file", type=Path, default=default("client_secret_file", None),
                   help="the service account's secret (or K8SHOST_AGENT_CLIENT_SECRET)")
    p.add_argument("--bootstrap-user", default=default("bootstrap_user", "admin"),
                   help="with --bootstrap-password-file: the IAM administrator who creates the agent's account")
    p.add_argument("--bootstrap-password-file", type=Path, default=default("bootstrap_password_file", None),
                   help="on the first start, create the agent's own IAM service account with this administrator's "
                        "password (or K8SHOST_AGENT_BOOTSTRAP_PASSWORD), and keep its credentials in the data "
                        "directory")
    p.add_argument("--bootstrap-timeout", type=float, default=float(default("bootstrap_timeout", 60)),
                   help="how long to wait for IAM (and its password file) when bootstrapping")
    p.add_argument("--bind", default=default("bind", "127.0.0.1"),
                   help="where the daemon port (logs, for the API server) listens")
    p.add_argument("--daemon-port", type=int, default=int(default("daemon_port", 10250)),
                   help="the port serving logs to the API server (0: any free port)")
    p.add_argument("--advertise-address", default=default("advertise_address", ""),
                   help="the node's address: the API server reaches the agent there, and NodePort services "
                        "listen on it (default: --bind)")
    p.add_argument("--cpu", default=default("cpu", str(os.cpu_count() or 1)), help="CPU capacity, e.g. 4 or 3500m")
    p.add_argument("--memory", default=default("memory", str(_memory_bytes())), help="memory capacity, e.g. 8Gi")
    p.add_argument("--max-pods", default=default("max_pods", "110"))
    p.add_argument("--labels", default=default("labels", ""), help="node labels: key=value,key2=value2")
    p.add_argument("--runtime", default=default("runtime", "process"), choices=["process", "docker"],
                   help="how pods run: as local processes, or as containers of a Docker engine (local images)")
    p.add_argument("--docker-host", default=default("docker_host", env.get("DOCKER_HOST", DEFAULT_HOST)),
                   help="with --runtime docker: the engine's API socket (default: DOCKER_HOST, else the usual socket)")
    p.add_argument("--default-cpu", default=default("default_cpu", "1"),
                   help="the CPU limit of a container that sets none (0: none)")
    p.add_argument("--default-memory", default=default("default_memory", "512Mi"),
                   help="the memory limit of a container that sets none (0: none)")
    p.add_argument("--default-pids", default=default("default_pids", "1024"),
                   help="the process limit of a container that sets none (0: none)")
    p.add_argument("--insecure-unsandboxed-pods", action="store_true",
                   default=str(default("insecure_unsandboxed_pods", "")).lower() in ("1", "true", "yes"),
                   help="on a host that cannot sandbox (neither root nor user namespaces), run the process "
                        "runtime's pods as plain processes of the agent's user: they can then read and signal "
                        "everything the agent can, its credentials included")
    p.add_argument("--dataplane-prefix",
                   default=default("dataplane_prefix", env.get("PHOTONCLOUD_DATAPLANE_PREFIX", "")),
                   help="the device-name prefix of this host's PrismNET dataplane (e.g. pc): the process runtime "
                        "then puts each pod with a PrismNET address on its VPC's bridge, which the dataplane agent "
                        "makes (empty, the default: such a pod's only link is a veth to the host)")
    p.add_argument("--heartbeat-seconds", type=float, default=float(default("heartbeat_seconds", 5)))
    p.add_argument("--sync-seconds", type=float, default=float(default("sync_seconds", 10)),
                   help="the resync period (watches wake the agent at every change in between)")
    p.add_argument("--backoff-seconds", type=float, default=float(default("backoff_seconds", 1)),
                   help="the first pause before restarting an exited container (doubling from there)")
    p.add_argument("--max-backoff-seconds", type=float, default=float(default("max_backoff_seconds", 60)))
    p.add_argument("--log-level", default=default("log_level", env.get("PHOTONCLOUD_LOG_LEVEL", "INFO")))
    args = p.parse_args(argv)
    try:
        args.dataplane = DeviceNames(args.dataplane_prefix) if args.dataplane_prefix else None
    except ValueError as exc:
        p.error(f"--dataplane-prefix: {exc}")
    try:
        args.default_limits = limits.parse_defaults(args.default_cpu, args.default_memory, args.default_pids)
    except ValueError as exc:
        p.error(f"default limits: {exc}")
    args.token = env.get(PREFIX + "TOKEN", "")
    args.client_secret = env.get(PREFIX + "CLIENT_SECRET", "")
    if args.client_secret_file is not None:
        args.client_secret = Path(args.client_secret_file).read_text().strip()
    return args


def _sandbox(insecure: bool) -> sandbox.Sandbox | None:
    """The process runtime's sandbox; without one, the agent stops, unless the operator said to run pods bare."""
    if insecure:
        log.warning("--insecure-unsandboxed-pods: pods run as plain processes of the agent's user, and can read and "
                    "signal everything the agent can")
        return None
    mode, why = sandbox.detect()
    if mode == sandbox.NONE:
        raise SystemExit(f"the process runtime runs every pod in a sandbox, and this host cannot make one: {why}. "
                         "Install bubblewrap and run the agent as root (or as a user who may make user namespaces), "
                         "or use --runtime docker; --insecure-unsandboxed-pods runs pods as plain processes of the "
                         "agent's user, which can reach everything the agent can")
    return sandbox.Sandbox(mode)


def main(argv: list[str] | None = None) -> None:
    """Run the agent until SIGTERM or SIGINT, then stop its pods."""
    args = parse(sys.argv[1:] if argv is None else argv)
    os.umask(0o077)  # the agent's files (credentials, pods' logs) are no one else's
    setup_logging("k8shost-agent", str(args.log_level).upper())
    tls.configure_clients(tls.TlsConfig(ca=args.tls_ca))  # https URLs: verified against --tls-ca
    bootstrap_password = os.environ.get(PREFIX + "BOOTSTRAP_PASSWORD", "")
    if not (args.token or args.token_file or args.client_id) and (args.bootstrap_password_file or bootstrap_password):
        saved = Path(args.data_dir) / "credentials.json"
        try:
            # A password given in the environment wins over the file (which then need not exist).
            password_file = None if bootstrap_password else args.bootstrap_password_file
            args.client_id, args.client_secret = asyncio.run(bootstrap.wait_for_credentials(
                args.iam_url, args.node_name, args.bootstrap_user, password_file, saved,
                args.bootstrap_timeout, bootstrap_password))
        except ServiceError as exc:
            raise SystemExit(f"cannot bootstrap the agent's IAM account: {exc.code.name}: {exc.message}") from None
    try:
        tokens = Tokens(args.token, args.token_file, args.iam_url, args.client_id, args.client_secret,
                        how="--client-id with a client secret, --token-file, or K8SHOST_AGENT_TOKEN")
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    address = args.advertise_address or (args.bind if args.bind not in ("0.0.0.0", "::") else socket.gethostname())
    config = NodeConfig(args.node_name, address, args.bind, args.daemon_port,
                        {"cpu": args.cpu, "memory": args.memory, "pods": args.max_pods},
                        {"kubernetes.io/hostname": args.node_name, **_labels(args.labels)},  # as the kubelet labels it
                        args.heartbeat_seconds, args.sync_seconds, version("photoncloud-k8shost"))
    backoff = Backoff(args.backoff_seconds, args.max_backoff_seconds)
    runtime: Runtime
    if args.runtime == "docker":
        try:
            runtime = DockerRuntime(args.docker_host, Path(args.data_dir) / "pods", backoff, node_name=args.node_name,
                                    default_limits=args.default_limits)
        except ValueError as exc:
            raise SystemExit(f"--docker-host: {exc}") from None
    else:
        runtime = ProcessRuntime(Path(args.data_dir) / "pods", _sandbox(args.insecure_unsandboxed_pods), backoff,
                                 default_limits=args.default_limits, dataplane=args.dataplane)
    if args.runtime == "docker" and args.dataplane is not None:
        log.warning("--dataplane-prefix applies to the process runtime only: the docker runtime keeps pods with a "
                    "PrismNET address on the engine's bridge networks")
    log.info("pods' networks: %s", runtime.pod_network)
    agent = Agent(config, ApiServer(args.api_url, tokens), runtime)
    runtime.on_change = agent.changed

    async def run() -> None:
        await runtime.open()
        try:
            task = asyncio.create_task(agent.run())
            on_stop_signals(task.cancel)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            await runtime.close()

    try:
        asyncio.run(run())
    except EngineError as exc:
        raise SystemExit(f"the docker runtime needs a Docker engine: {exc}") from None


if __name__ == "__main__":
    main()
