"""A replicated service's cluster flags, and the log they choose: one member alone, or Raft.

A service whose state is a `replication.StateMachine` (ChainFire, FlareDB) adds these flags to its
own; without `--initial-cluster` it runs alone on a `LocalLog`, with it as a `raft.RaftLog` member.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .config import ServerConfig
from .raft import RaftLog
from .replication import LocalLog, Log, StateMachine

MIN_SECRET_CHARS = 24  # pysyncobj derives the peer key with a fixed salt: the secret must be long and random


def add_cluster_options(group: Any, default: Callable[[str, object], object], peer_port: int) -> None:
    """The cluster flags (`--flag`, else `<SERVICE>_FLAG`, else the default)."""
    group.add_argument("--peer-address", default=default("peer_address", f"127.0.0.1:{peer_port}"),
                       help="host:port where the other members reach this one (its id is derived from it)")
    group.add_argument("--peer-bind", default=default("peer_bind", ""),
                       help="host:port the peer port listens on (default: --peer-address)")
    group.add_argument("--initial-cluster", default=default("initial_cluster", ""),
                       help="every member's peer address, comma-separated (empty: run alone); a member joining "
                            "a running cluster lists the current members and itself")
    group.add_argument("--cluster-secret-file", default=default("cluster_secret_file", ""),
                       help=f"file holding the cluster secret (or set <SERVICE>_CLUSTER_SECRET); at least "
                            f"{MIN_SECRET_CHARS} random characters, the same on every member")
    group.add_argument("--advertise-host", default=default("advertise_host", ""),
                       help="the host clients reach this member at (default: --bind, or this host's name)")
    group.add_argument("--raft-fsync", default=default("raft_fsync", "true"), choices=["true", "false"],
                       help="flush the Raft journal to disk before acknowledging entries")
    group.add_argument("--snapshot-entries", type=int, default=default("snapshot_entries", 10_000),
                       help="snapshot the state and drop the Raft journal up to it every this many entries")
    group.add_argument("--election-timeout-ms", type=int, default=default("election_timeout_ms", 1000),
                       help="a follower that hears no leader for 1 to 2.5 times this long calls an election")


def cluster_secret(config: ServerConfig, environ: Mapping[str, str]) -> str:
    """The secret from --cluster-secret-file or <SERVICE>_CLUSTER_SECRET (never from a flag: ps shows flags)."""
    path = config.options.get("cluster_secret_file")
    variable = f"{config.service.upper()}_CLUSTER_SECRET"
    secret = Path(path).read_text().strip() if path else environ.get(variable, "")
    if len(secret) < MIN_SECRET_CHARS:
        raise SystemExit(f"{config.service}: a cluster needs a secret of at least {MIN_SECRET_CHARS} characters "
                         f"in --cluster-secret-file or {variable}")
    return secret


def make_log(config: ServerConfig, machine: StateMachine, environ: Mapping[str, str], peer_port: int) -> Log:
    """The single-member log, or a Raft member when --initial-cluster names the members."""
    options = config.options
    host = options.get("advertise_host") or (config.bind if config.bind not in ("0.0.0.0", "::") else socket.getfqdn())
    scheme = "https" if config.tls.enabled else "http"
    client_urls = {"rest": f"{scheme}://{host}:{config.rest_port}", "grpc": f"{host}:{config.grpc_port}"}
    peer_address = options.get("peer_address") or f"127.0.0.1:{peer_port}"
    peers = [p.strip() for p in options.get("initial_cluster", "").split(",") if p.strip()]
    if not peers:
        return LocalLog(machine, peer_address, client_urls)
    election = options.get("election_timeout_ms", 1000) / 1000
    return RaftLog(machine, peer_address, peers, cluster_secret(config, environ), config.data_dir / "raft",
                   client_urls=client_urls, bind_address=options.get("peer_bind") or None,
                   fsync=options.get("raft_fsync", "true") == "true",
                   snapshot_entries=options.get("snapshot_entries", 10_000),
                   election_timeout=(election, 2.5 * election), heartbeat=election / 10)
