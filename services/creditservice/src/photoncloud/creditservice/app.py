"""CreditService's process: builds the core once and serves it over REST and gRPC."""

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
from .core import CreditCore
from .machine import CreditStateMachine
from .store import SqliteCreditStore

NAME = "creditservice"
REST_PORT = 8086
__version__ = version("photoncloud-creditservice")


async def build(config: ServerConfig) -> Service:
    """CreditService over the ledger in config.data_dir."""
    store = SqliteCreditStore(config.data_dir / "credits.sqlite3")
    machine = CreditStateMachine(store)
    credits = CreditCore(machine, LocalLog(machine), projects=Projects(config.iam_url) if config.iam_url else None)

    async def dependencies() -> dict[str, Any]:
        index = await credits.log.read(store.applied_index)
        return {"store": {"applied_index": index}}

    async def close() -> None:
        await credits.close()
        store.close()

    verifier = iam_verifier(config.iam_url, config.expected_issuer, config.revocation_poll_seconds)
    services = grpc_api.services(credits)
    return Service(NAME, __version__, rest_routes(services), services, dependencies, close, verifier,
                   domain_metrics=metrics.reader(NAME, credits, store))


def main(argv: list[str] | None = None) -> None:
    """Run CreditService until SIGTERM or SIGINT."""
    run(NAME, REST_PORT, build, sys.argv[1:] if argv is None else argv)
