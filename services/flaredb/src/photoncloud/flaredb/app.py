"""FlareDB's process: builds the core once and serves it over REST and gRPC."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any

from photoncloud.common.auth import iam_verifier
from photoncloud.common.cluster import add_cluster_options, make_log
from photoncloud.common.config import ServerConfig
from photoncloud.common.gateway import rest_routes
from photoncloud.common.projects import Projects
from photoncloud.common.server import Service, run

from . import grpc_api, metrics, rest_api
from .core import FlareDBCore
from .limits import Limits, add_limit_options, check_limits
from .machine import FlareDBStateMachine
from .store import ProjectFiles

NAME = "flaredb"
REST_PORT = 8082
PEER_PORT = 2480  # the platform design's peer port for FlareDB
__version__ = version("photoncloud-flaredb")


def add_options(group: Any, default: Callable[[str, object], object]) -> None:
    """FlareDB's own flags: the cluster it belongs to (none: a single member), and what one request may cost."""
    add_cluster_options(group, default, PEER_PORT)
    add_limit_options(group, default)


async def build(config: ServerConfig, environ: Mapping[str, str] | None = None) -> Service:
    """The FlareDB service over the project databases in config.data_dir."""
    limits = check_limits(Limits.from_options(config.options))
    machine = FlareDBStateMachine(ProjectFiles(config.data_dir))
    log = make_log(config, machine, os.environ if environ is None else environ, PEER_PORT)
    db = FlareDBCore(machine, log, __version__, Projects(config.iam_url), limits)

    async def dependencies() -> dict[str, Any]:
        status = await db.status()
        return {"store": {"projects": status.projects, "db_size_bytes": status.db_size_bytes},
                "raft": {"role": status.role, "leader": status.leader, "term": status.raft_term,
                         "index": status.raft_index, "members": len(db.members())}}

    async def close() -> None:
        await db.close()
        machine.close()

    verifier = iam_verifier(config.iam_url, config.expected_issuer, config.revocation_poll_seconds)
    services = grpc_api.services(db)
    routes = rest_routes(services, rest_api.routes(db))
    return Service(NAME, __version__, routes, services, dependencies, close, verifier,
                   domain_metrics=metrics.reader(NAME, db, machine))


def main(argv: list[str] | None = None) -> None:
    """Run FlareDB until SIGTERM or SIGINT."""
    run(NAME, REST_PORT, build, sys.argv[1:] if argv is None else argv, add_options)
