"""ChainFire's process: builds the core once and serves it over REST and gRPC."""

from __future__ import annotations

import os
import socket
import sys
from importlib.metadata import version
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import Any

from photoncloud.common.auth import iam_verifier
from photoncloud.common.config import ServerConfig
from photoncloud.common.raft import RaftLog
from photoncloud.common.replication import LocalLog, Log
from photoncloud.common.server import Service, run

from . import grpc_api, rest_api
from .core import KVCore, KVStateMachine
from .store import SqliteKVStore

NAME = "chainfire"
REST_PORT = 8081
PEER_PORT = 2380
MIN_SECRET_CHARS = 24  # pysyncobj derives the peer key with a fixed salt: the secret must be long and random
__version__ = version("photoncloud-chainfire")


def add_options(group: Any, default: Callable[[str, object], object]) -> None:
    """ChainFire's own flags: the cluster it belongs to (none: a single member)."""
    group.add_argument("--peer-address", default=default("peer_address", f"127.0.0.1:{PEER_PORT}"),
                       help="host:port where the other members reach this one (its id is derived from it)")
    group.add_argument("--peer-bind", default=default("peer_bind", ""),
                       help="host:port the peer port listens on (default: --peer-address)")
    group.add_argument("--initial-cluster", default=default("initial_cluster", ""),
                       help="every member's peer address, comma-separated (empty: run alone); a member joining "
                            "a running cluster lists the current members and itself")
    group.add_argument("--cluster-secret-file", default=default("cluster_secret_file", ""),
                       help=f"file holding the cluster secret (or set CHAINFIRE_CLUSTER_SECRET); at least "
                            f"{MIN_SECRET_CHARS} random characters, the same on every member")
    group.add_argument("--advertise-host", default=default("advertise_host", ""),
                       help="the host clients reach this member at (default: --bind, or this host's name)")
    group.add_argument("--raft-fsync", default=default("raft_fsync", "true"), choices=["true", "false"],
                       help="flush the Raft journal to disk before acknowledging entries")
    group.add_argument("--snapshot-entries", type=int, default=default("snapshot_entries", 10_000),
                       help="snapshot the state and drop the Raft journal up to it every this many entries")
    group.add_argument("--election-timeout-ms", type=int, default=default("election_timeout_ms", 1000),
                       help="a follower that hears no leader for 1 to 2.5 times this long calls an election")


def cluster_secret(options: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The cluster secret from --cluster-secret-file or CHAINFIRE_CLUSTER_SECRET (never from a flag)."""
    path = options.get("cluster_secret_file")
    secret = Path(path).read_text().strip() if path else environ.get("CHAINFIRE_CLUSTER_SECRET", "")
    if len(secret) < MIN_SECRET_CHARS:
        raise SystemExit(f"chainfire: a cluster needs a secret of at least {MIN_SECRET_CHARS} characters "
                         "in --cluster-secret-file or CHAINFIRE_CLUSTER_SECRET")
    return secret


def make_log(config: ServerConfig, machine: KVStateMachine, environ: Mapping[str, str]) -> Log:
    """The single-member log, or a Raft member when --initial-cluster names peers."""
    options = config.options
    host = options.get("advertise_host") or (config.bind if config.bind not in ("0.0.0.0", "::") else socket.getfqdn())
    client_urls = {"rest": f"http://{host}:{config.rest_port}", "grpc": f"{host}:{config.grpc_port}"}
    peer_address = options.get("peer_address", f"127.0.0.1:{PEER_PORT}")
    peers = [p.strip() for p in options.get("initial_cluster", "").split(",") if p.strip()]
    if not peers:
        return LocalLog(machine, peer_address, client_urls)
    election = options.get("election_timeout_ms", 1000) / 1000
    return RaftLog(machine, peer_address, peers, cluster_secret(options, environ), config.data_dir / "raft",
                   client_urls=client_urls, bind_address=options.get("peer_bind") or None,
                   fsync=options.get("raft_fsync", "true") == "true",
                   snapshot_entries=options.get("snapshot_entries", 10_000),
                   election_timeout=(election, 2.5 * election), heartbeat=election / 10)


async def build(config: ServerConfig, environ: Mapping[str, str] | None = None) -> Service:
    """The ChainFire service over the store in config.data_dir."""
    store = SqliteKVStore(config.data_dir / "kv.sqlite3")
    machine = KVStateMachine(store)
    kv = KVCore(machine, make_log(config, machine, os.environ if environ is None else environ), __version__)

    async def dependencies() -> dict[str, Any]:
        status = await kv.status()
        return {"store": {"revision": status.revision, "db_size_bytes": status.db_size_bytes},
                "raft": {"role": status.role, "leader": status.leader, "term": status.raft_term,
                         "members": len(kv.members())}}

    async def close() -> None:
        await kv.close()
        store.close()

    verifier = iam_verifier(config.iam_url, config.expected_issuer, config.revocation_poll_seconds)
    return Service(NAME, __version__, rest_api.routes(kv),
                   grpc_api.services(kv), dependencies, close, verifier,
                   draining=kv.end_watches)


def main(argv: list[str] | None = None) -> None:
    """Run ChainFire until SIGTERM or SIGINT."""
    run(NAME, REST_PORT, build, sys.argv[1:] if argv is None else argv, add_options)
