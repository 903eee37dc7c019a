"""ChainFire's process: builds the core once and serves it over REST and gRPC."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any

from photoncloud.common.auth import iam_verifier
from photoncloud.common.config import ServerConfig
from photoncloud.common.cluster import add_cluster_options, make_log
from photoncloud.common.gateway import rest_routes
from photoncloud.common.server import Service, run
from photoncloud.common.streams import add_watch_options, watch_guard

from . import etcd_api, grpc_api, metrics, rest_api
from .core import KVCore, KVStateMachine
from .store import SqliteKVStore

NAME = "chainfire"
REST_PORT = 8081
PEER_PORT = 2380
__version__ = version("photoncloud-chainfire")


def add_options(group: Any, default: Callable[[str, object], object]) -> None:
    """ChainFire's own flags: the cluster it belongs to (none: a single member), the watch limit."""
    add_cluster_options(group, default, PEER_PORT)
    add_watch_options(group, default)


async def build(config: ServerConfig, environ: Mapping[str, str] | None = None) -> Service:
    """The ChainFire service over the store in config.data_dir."""
    store = SqliteKVStore(config.data_dir / "kv.sqlite3")
    machine = KVStateMachine(store)
    kv = KVCore(machine, make_log(config, machine, os.environ if environ is None else environ, PEER_PORT), __version__)

    async def dependencies() -> dict[str, Any]:
        status = await kv.status()
        return {"store": {"revision": status.revision, "db_size_bytes": status.db_size_bytes},
                "raft": {"role": status.role, "leader": status.leader, "term": status.raft_term,
                         "members": len(kv.members())}}

    async def close() -> None:
        await kv.close()
        store.close()

    streams = watch_guard(config.options)
    verifier = iam_verifier(config.iam_url, config.expected_issuer, config.revocation_poll_seconds)
    services = grpc_api.services(kv, streams)
    routes = rest_routes(services, rest_api.routes(kv, streams=streams))
    return Service(NAME, __version__, routes, services + etcd_api.services(kv, config.iam_url, streams), dependencies,
                   close, verifier, draining=kv.end_watches, domain_metrics=metrics.reader(NAME, kv, store))


def main(argv: list[str] | None = None) -> None:
    """Run ChainFire until SIGTERM or SIGINT."""
    run(NAME, REST_PORT, build, sys.argv[1:] if argv is None else argv, add_options)
