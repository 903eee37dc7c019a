"""PrismNET's process: builds the core once and serves it over REST and gRPC."""

from __future__ import annotations

import sys
from importlib.metadata import version
from typing import Any

from photoncloud.common.auth import iam_verifier
from photoncloud.common.config import ServerConfig
from photoncloud.common.gateway import rest_routes
from photoncloud.common.projects import Projects
from photoncloud.common.replication import LocalLog
from photoncloud.common.server import Service, run

from . import grpc_api, metrics
from .core import NetworkCore
from .machine import NetworkStateMachine
from .store import SqliteNetworkStore

NAME = "prismnet"
REST_PORT = 8087
__version__ = version("photoncloud-prismnet")


async def build(config: ServerConfig) -> Service:
    """PrismNET over the networks in config.data_dir."""
    store = SqliteNetworkStore(config.data_dir / "networks.sqlite3")
    machine = NetworkStateMachine(store)
    net = NetworkCore(machine, LocalLog(machine), projects=Projects(config.iam_url) if config.iam_url else None)

    async def dependencies() -> dict[str, Any]:
        index = await net.log.read(store.applied_index)
        return {"store": {"applied_index": index}}

    async def close() -> None:
        await net.close()
        store.close()

    verifier = iam_verifier(config.iam_url, config.expected_issuer, config.revocation_poll_seconds)
    services = grpc_api.services(net)
    return Service(NAME, __version__, rest_routes(services), services, dependencies, close, verifier,
                   domain_metrics=metrics.reader(NAME, net, store))


def main(argv: list[str] | None = None) -> None:
    """Run PrismNET until SIGTERM or SIGINT."""
    run(NAME, REST_PORT, build, sys.argv[1:] if argv is None else argv)
