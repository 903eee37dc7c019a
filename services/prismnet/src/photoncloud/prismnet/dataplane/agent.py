"""The dataplane agent: makes a host carry PrismNET's networks, and keeps it so.

Each round it reads the whole network state from PrismNET (an operator's read) and reconciles the
host to it: per VPC a bridge, router namespace, DHCP and VXLAN (links.py, dhcp.py), security groups
and anti-spoofing (firewall.py), unreachable routes for tenant ranges (guard.py). Every step is
idempotent, so a restarted agent changes nothing that is right already and duplicates nothing; what
the agent owns (by its name prefix) and the state no longer has is removed: a deleted VPC's devices,
namespace, DHCP and rules, and a port device whose port is gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from photoncloud.common import envelope, tls
from photoncloud.common.credentials import Tokens
from photoncloud.common.errors import Code, ServiceError, Unavailable
from photoncloud.common.netdev import DeviceNames

from . import firewall
from .dhcp import Dhcp, dnsmasq_binary
from .guard import Guard
from .links import GATEWAY_INSIDE, IPRoute, Links
from .state import NetworkState, parse

log = logging.getLogger("photoncloud.prismnet.dataplane")

STATE_PATH = "/api/v1/dataplane/state"
TIMEOUT = aiohttp.ClientTimeout(total=30)
BRIDGE_NETFILTER = Path("/proc/sys/net/bridge")
NOTHING = "-"  # the rules last applied when there was nothing to carry
STALE_ROUNDS = 2  # a port device is removed once its port has been missing from this many rounds' states


def unsupported() -> str:
    """Why this host cannot run the dataplane ("": it can): root, netlink, nft, ip, dnsmasq, br_netfilter."""
    if IPRoute is None:
        return "pyroute2 (netlink, Linux only) is not available"
    if os.geteuid() != 0:
        return "the agent is not root (bridges, namespaces and nftables take CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    for tool, package in (("nft", "nftables"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian's {package})"
    if dnsmasq_binary() is None:
        return "dnsmasq is not installed (Debian's dnsmasq-base)"
    if not (BRIDGE_NETFILTER / "bridge-nf-call-iptables").exists():
        return "the kernel has no br_netfilter (security groups on bridged ports need it): modprobe br_netfilter"
    return ""


@dataclass
class Report:
    """What one round did."""

    vpcs: int = 0
    ports: int = 0
    removed: list[str] = field(default_factory=list)
    rules_changed: bool = False


class Dataplane:
    """One host's share of PrismNET's networks, under one name prefix."""

    def __init__(self, names: DeviceNames, state_dir: Path, underlay: str = "", peers: Sequence[str] = (),
                 guard_ranges: Sequence[str] = ()):
        self.names = names
        self.state_dir = Path(state_dir)
        self.underlay, self.peers, self.guard_ranges = underlay, tuple(peers), tuple(guard_ranges)
        self.links = Links(names)
        self.dhcp = Dhcp(self.state_dir / "dhcp", GATEWAY_INSIDE)
        self.guard = Guard(names)
        self._rules = ""  # the nft script last applied ("" : none yet, so the first round applies it)
        self._stale: dict[str, int] = {}

    def reconcile(self, state: NetworkState) -> Report:
        """Make the host carry state (blocking: run it in a thread)."""
        report = Report(len(state.vpcs), len(state.ports))
        for name in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
            (BRIDGE_NETFILTER / name).write_text("1")  # bridged IP traffic through the inet table (firewall.py)
        wanted = {self.links.digest(v.id): v for v in state.vpcs.values()}
        for _, vpc in sorted(wanted.items()):
            subnets = state.subnets_of(vpc.id)
            self.links.ensure(vpc, subnets, self.underlay, self.peers)
            self.dhcp.ensure(self.names.router(vpc.id), subnets, state.ports_of(vpc.id))
        for digest in sorted(self.links.present() - set(wanted)):
            self.dhcp.stop(f"{self.names.prefix}r-{digest}")
            self.links.remove(digest)
            report.removed.append(f"VPC {digest}")
        for router in self.dhcp.held():
            if router.removeprefix(f"{self.names.prefix}r-") not in wanted:
                self.dhcp.stop(router)
        report.removed += self._ports(state)
        if not state.vpcs and not self.guard_ranges:  # nothing to carry: no table, rule or route of ours either
            if self._rules != NOTHING:
                self._withdraw()
                self._rules, report.rules_changed = NOTHING, True
            return report
        script = firewall.render(self.names, state)
        if script != self._rules:
            firewall.apply(script)
            self._rules, report.rules_changed = script, True
        firewall.allow_past_docker(self.names)
        self.guard.ensure([v.cidr_block for v in state.vpcs.values()] + list(self.guard_ranges))
        return report

    def _withdraw(self) -> None:
        """Take the rules, the Docker exception and the guard away."""
        firewall.remove(self.names)
        firewall.withdraw_from_docker(self.names)
        self.guard.remove()

    def _ports(self, state: NetworkState) -> list[str]:
        """Tidy the port devices of live ports; remove those whose port has been gone for STALE_ROUNDS rounds (a
        device made just after the state was read must not go)."""
        live = {self.names.port(p) for p in state.ports}
        removed = []
        for device in self.links.port_devices():
            if device in live:
                self._stale.pop(device, None)
                self.links.tidy_port(device)
                continue
            self._stale[device] = self._stale.get(device, 0) + 1
            if self._stale[device] >= STALE_ROUNDS:
                self.links.remove_port(device)
                del self._stale[device]
                removed.append(f"port device {device}")
        return removed

    def teardown(self) -> None:
        """Remove everything under this agent's prefix: every VPC's network, DHCP, port devices, the rules, the guard,
        and its state directory."""
        for digest in sorted(self.links.present()):
            self.dhcp.stop(f"{self.names.prefix}r-{digest}")
            self.links.remove(digest)
        for router in self.dhcp.held():
            self.dhcp.stop(router)
        for device in self.links.port_devices():  # left by a VM or pod that went without cleaning up
            self.links.remove_port(device)
        self._withdraw()
        self._rules = ""
        shutil.rmtree(self.state_dir, ignore_errors=True)


class StateSource:
    """PrismNET's network state over REST, with the agent's token."""

    def __init__(self, url: str, tokens: Tokens):
        self.url = url.rstrip("/")
        self.tokens = tokens
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self) -> NetworkState:
        """The whole state now (UNAVAILABLE when PrismNET cannot be reached)."""
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=TIMEOUT, trust_env=False,
                                                 connector=tls.clients().connector())
        try:
            headers = {"Authorization": f"Bearer {await self.tokens.get(self.session)}"}
            async with self.session.get(self.url + STATE_PATH, headers=headers) as response:
                reply = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise Unavailable(f"cannot reach PrismNET at {self.url}: {type(exc).__name__}: {exc}") from None
        if "data" not in reply:
            error = envelope.error_from_body(response.status, reply)
            if error.code is Code.UNAUTHENTICATED:
                self.tokens.forget()
            raise error
        return parse(reply["data"])

    async def close(self) -> None:
        """Close the HTTP session."""
        if self.session is not None:
            await self.session.close()


class Agent:
    """Reconcile every `interval` seconds; a round that fails is logged and the next one tries again."""

    def __init__(self, dataplane: Dataplane, source: Callable[[], Awaitable[NetworkState]], interval: float = 1.0):
        self.dataplane = dataplane
        self.source = source
        self.interval = interval
        self.rounds = 0
        self.last_error = ""

    async def round(self) -> Report:
        """One round: read the state, reconcile, write status.json."""
        state = await self.source()
        report = await asyncio.to_thread(self.dataplane.reconcile, state)
        self.rounds += 1
        if report.removed or report.rules_changed:
            log.info("reconciled %d VPCs and %d ports%s", report.vpcs, report.ports,
                     f"; removed {', '.join(report.removed)}" if report.removed else "")
        self._status({"rounds": self.rounds, "vpcs": report.vpcs, "ports": report.ports, "error": ""})
        return report

    async def run(self) -> None:
        """Reconcile until cancelled."""
        while True:
            try:
                await self.round()
                self.last_error = ""
            except (ServiceError, OSError, firewall.FirewallError, RuntimeError) as exc:
                message = f"{type(exc).__name__}: {exc}"
                if message != self.last_error:
                    log.warning("reconciling failed (trying again every %.1fs): %s", self.interval, message)
                self.last_error = message
                self._status({"rounds": self.rounds, "error": message})
            await asyncio.sleep(self.interval)

    def _status(self, fields: dict[str, Any]) -> None:
        """The agent's last round, for operators and health checks (state_dir/status.json)."""
        path = self.dataplane.state_dir / "status.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".new")
        temporary.write_text(json.dumps({"prefix": self.dataplane.names.prefix, "at": time.time(), **fields}))
        temporary.replace(path)
