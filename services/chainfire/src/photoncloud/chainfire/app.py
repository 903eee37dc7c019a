"""ChainFire's process: builds the core once and serves it over REST and gRPC."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any

from photoncloud.common.auth import RevocationSource, iam_verifier
from photoncloud.common.config import ServerConfig
from photoncloud.common.cluster import add_cluster_options, make_log
from photoncloud.common.server import Service, run

from . import etcd_api, grpc_api, rest_api
from .core import KVCore, KVStateMachine
from .store import SqliteKVStore
from .watches import MAX_WATCHES_PER_CALLER, watch_guard

NAME = "chainfire"
REST_PORT = 8081
PEER_PORT = 2380
__version__ = version("photoncloud-chainfire")


def add_options(group: Any, default: Callable[[str, object], object]) -> None:
    """ChainFire's own flags: the cluster it belongs to (none: a single member), the watch limit."""
    add_cluster_options(group, default, PEER_PORT)
    group.add_argument("--max-watches-per-caller", type=int,
                       default=default("max_watches_per_caller", MAX_WATCHES_PER_CALLER),
                       help="open watches one caller (a user or service account) may hold on this member, over "
                            "REST, gRPC and etcd's API together; one more is RESOURCE_EXHAUSTED")


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

    # Streams end when their token is revoked: they ask the service's verifier, read when a stream
    # starts, since whoever runs the service may give it another verifier after it is built.
    service: Service | None = None

    def revocations() -> RevocationSource | None:
        return service.verifier.revocations if service is not None and service.verifier is not None else None

    streams = watch_guard(int(config.options.get("max_watches_per_caller", MAX_WATCHES_PER_CALLER)), revocations)
    verifier = iam_verifier(config.iam_url, config.expected_issuer, config.revocation_poll_seconds)
    service = Service(NAME, __version__, rest_api.routes(kv, streams=streams),
                      grpc_api.services(kv, streams) + etcd_api.services(kv, config.iam_url, streams), dependencies,
                      close, verifier, draining=kv.end_watches)
    return service


def main(argv: list[str] | None = None) -> None:
    """Run ChainFire until SIGTERM or SIGINT."""
    run(NAME, REST_PORT, build, sys.argv[1:] if argv is None else argv, add_options)
