"""The agent's service proxy: kube-proxy's userspace mode, in asyncio.

For every NodePort service the agent listens on its node's address at the node port, and for
every service on its cluster IP at the service port (cluster IPs are loopback by default, so this
needs no privileges on Linux); each accepted TCP connection goes to the next ready endpoint in
turn (round-robin), trying the following ones if an endpoint refuses, and bytes are copied both
ways until either side closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from typing import Any

log = logging.getLogger("photoncloud.k8shost.agent")

CONNECT_SECONDS = 3.0
CHUNK = 64 * 1024

Address = tuple[str, int]


def routes(services: list[dict[str, Any]], endpoints: list[dict[str, Any]], node_address: str) -> dict[Address,
                                                                                                       list[Address]]:
    """Where each listening address leads: (host, port) -> the ready endpoints' (ip, port)."""
    by_service = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints}
    table: dict[Address, list[Address]] = {}
    for service in services:
        meta, spec = service["metadata"], service["spec"]
        found = by_service.get((meta["namespace"], meta["name"]))
        for port in spec["ports"]:
            backends: list[Address] = []
            if found is not None:
                target = next((p["port"] for p in found["ports"] if p["name"] == port["name"]), 0)
                backends = [(a["ip"], target) for a in found["addresses"] if target]
            if spec.get("cluster_ip"):
                table[(spec["cluster_ip"], port["port"])] = backends
            if spec["type"] == "NodePort" and port.get("node_port"):
                table[(node_address, port["node_port"])] = backends
    return table


class ServiceProxy:
    """Listens where services are reached and spreads connections over their ready endpoints."""

    def __init__(self, node_address: str):
        self.node_address = node_address
        self.backends: dict[Address, list[Address]] = {}
        self.servers: dict[Address, asyncio.Server] = {}
        self.refused: set[Address] = set()  # addresses that cannot be bound here (logged once)
        self.turns: dict[Address, itertools.count[int]] = {}
        self.connections: set[asyncio.Task[None]] = set()

    async def update(self, services: list[dict[str, Any]], endpoints: list[dict[str, Any]]) -> None:
        """Listen where the services now are, stop where they no longer are, and route to their endpoints now."""
        self.backends = routes(services, endpoints, self.node_address)
        for address in [a for a in self.servers if a not in self.backends]:
            self.servers.pop(address).close()  # connections in flight finish on their own
        self.refused &= set(self.backends)
        for address in self.backends:
            if address in self.servers or address in self.refused:
                continue
            try:
                self.servers[address] = await asyncio.start_server(
                    functools.partial(self._accept, address), address[0], address[1])
            except OSError as exc:
                self.refused.add(address)
                log.warning("cannot serve service address %s:%d here: %s", address[0], address[1], exc)

    def _accept(self, address: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._relay(address, reader, writer))
        self.connections.add(task)
        task.add_done_callback(self.connections.discard)

    async def _connect(self, address: Address) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        backends = list(self.backends.get(address, ()))
        turn = self.turns.setdefault(address, itertools.count())
        for _ in range(len(backends)):
            target = backends[next(turn) % len(backends)]
            try:
                return await asyncio.wait_for(asyncio.open_connection(*target), CONNECT_SECONDS)
            except (TimeoutError, OSError):
                continue  # that endpoint refused: the next one in turn
        return None

    async def _relay(self, address: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect(address)
        if upstream is None:
            writer.close()  # no ready endpoint: the client sees the connection closed, as with kube-proxy
            return
        up_reader, up_writer = upstream

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(CHUNK):
                    sink.write(data)
                    await sink.drain()
                if sink.can_write_eof():
                    sink.write_eof()
            except (ConnectionError, OSError):
                pass

        try:
            await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await w.wait_closed()

    async def close(self) -> None:
        """Stop listening and end the connections in flight."""
        for server in self.servers.values():
            server.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
        self.servers.clear()
