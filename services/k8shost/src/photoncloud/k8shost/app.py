"""k8shost's API server process: builds the core once, serves it over REST and gRPC, and runs the
scheduler and the node monitor beside them. Node agents are processes of their own (agent/)."""

from __future__ import annotations

import sys
from importlib.metadata import version
from typing import Any

from photoncloud.common.auth import iam_verifier
from photoncloud.common.config import ServerConfig
from photoncloud.common.gateway import rest_routes
from photoncloud.common.prismnet import PrismNetNetwork
from photoncloud.common.projects import Projects
from photoncloud.common.replication import LocalLog, Scan
from photoncloud.common.server import Service, run
from photoncloud.common.streams import add_watch_options, watch_guard

from . import grpc_api, rest_api
from . import metrics as domain_metrics
from .core import (
    CLUSTER_CIDR,
    MONITOR_SECONDS,
    NODE_CIDR_PREFIX,
    NODE_GRACE_SECONDS,
    SERVICE_CLUSTER_IP_RANGE,
    KubeCore,
)
from .daemon_client import AgentClient
from .kube.api import PREFIX as KUBE_PREFIX
from .kube.api import KubeApi
from .machine import HISTORY_KEPT, ObjectStateMachine
from .records import Node
from .store import SqliteObjectStore

NAME = "k8shost"
REST_PORT = 8085
__version__ = version("photoncloud-k8shost")
PRISMNET_GRPC = "127.0.0.1:50057"


def add_options(group: Any, default: Any) -> None:
    """k8shost's own flags."""
    group.add_argument("--node-grace-seconds", type=float, default=default("node_grace_seconds", NODE_GRACE_SECONDS),
                       help="a node whose agent is silent this long becomes NotReady, and its pods Unknown")
    group.add_argument("--node-monitor-seconds", type=float,
                       default=default("node_monitor_seconds", MONITOR_SECONDS),
                       help="how often silent nodes are looked for")
    group.add_argument("--service-cluster-ip-range", default=default("service_cluster_ip_range",
                                                                     SERVICE_CLUSTER_IP_RANGE),
                       help="where services' cluster IPs come from (loopback: node agents serve them locally)")
    group.add_argument("--service-node-port-range", default=default("service_node_port_range", "30000-32767"),
                       help="where NodePort services' node ports come from")
    group.add_argument("--cluster-cidr", default=default("cluster_cidr", CLUSTER_CIDR),
                       help="where nodes' pod CIDRs come from, one block per node (loopback: no network setup)")
    group.add_argument("--node-cidr-mask-size", type=int, default=default("node_cidr_mask_size", NODE_CIDR_PREFIX),
                       help="the prefix length of each node's pod CIDR")
    group.add_argument("--disable-scheduler", action="store_true",
                       default=str(default("disable_scheduler", "")).lower() in ("1", "true", "yes"),
                       help="do not bind pods to nodes in this process (as k3s's flag: another scheduler does)")
    group.add_argument("--prismnet-grpc", default=default("prismnet_grpc", PRISMNET_GRPC),
                       help="PrismNET's gRPC address, for namespaces whose pods get addresses from a subnet "
                            "(empty: namespaces cannot name a subnet)")
    group.add_argument("--history-kept", type=int, default=default("history_kept", HISTORY_KEPT),
                       help="changes kept for watches; a watch from an older resource_version is OUT_OF_RANGE")
    add_watch_options(group, default)


async def build(config: ServerConfig) -> Service:
    """k8shost over the objects in config.data_dir."""
    store = SqliteObjectStore(config.data_dir / "objects.sqlite3")
    options = config.options
    machine = ObjectStateMachine(store, int(options.get("history_kept", HISTORY_KEPT)))
    target = str(options.get("prismnet_grpc", PRISMNET_GRPC))
    network = PrismNetNetwork(target, "POD") if target else None
    kube = KubeCore(machine, LocalLog(machine), projects=Projects(config.iam_url) if config.iam_url else None,
                    daemons=AgentClient(),
                    node_grace_seconds=float(options.get("node_grace_seconds", NODE_GRACE_SECONDS)),
                    monitor_seconds=float(options.get("node_monitor_seconds", MONITOR_SECONDS)),
                    cluster_ip_range=str(options.get("service_cluster_ip_range", SERVICE_CLUSTER_IP_RANGE)),
                    node_ports=port_range(str(options.get("service_node_port_range", "30000-32767"))),
                    cluster_cidr=str(options.get("cluster_cidr", CLUSTER_CIDR)),
                    node_cidr_prefix=int(options.get("node_cidr_mask_size", NODE_CIDR_PREFIX)), network=network)
    kube.start(scheduler=not options.get("disable_scheduler", False))

    def unsandboxed() -> list[str]:
        return sorted(n.metadata.name for n in store.scan("nodes")
                      if isinstance(n, Node) and n.status.sandbox == "none")

    async def dependencies() -> dict[str, Any]:
        index, revision, bare = await kube.log.read(
            Scan(lambda: (store.applied_index(), store.revision(), unsandboxed())))
        return {"store": {"applied_index": index, "resource_version": str(revision)},
                "nodes": {"unsandboxed": bare},  # nodes whose pods can reach the node (--insecure-unsandboxed-pods)
                "prismnet": {"grpc": network.target if network else "none: namespaces cannot name a subnet"}}

    async def close() -> None:
        await kube.close()
        if network is not None:
            await network.close()
        store.close()

    verifier = iam_verifier(config.iam_url, config.expected_issuer, config.revocation_poll_seconds)
    streams = watch_guard(options)
    services = grpc_api.services(kube, streams)
    routes = rest_routes(services, rest_api.routes(kube, streams=streams))
    # The Kubernetes API (kubectl, the official clients) over the same core, beside the platform's own.
    kube_api = KubeApi(kube, verifier, streams, __version__)
    return Service(NAME, __version__, routes, services, dependencies, close, verifier, draining=kube.end_watches,
                   domain_metrics=domain_metrics.reader(NAME, kube, store), mounts={KUBE_PREFIX: kube_api.app()})


def port_range(text: str) -> tuple[int, int]:
    """A port range written low-high."""
    low, _, high = text.partition("-")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise ValueError(f"a port range is written low-high, e.g. 30000-32767, not {text!r}") from None


def main(argv: list[str] | None = None) -> None:
    """Run k8shost's API server until SIGTERM or SIGINT."""
    run(NAME, REST_PORT, build, sys.argv[1:] if argv is None else argv, add_options=add_options)
