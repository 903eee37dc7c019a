"""Tenant ranges never leave the host by its default route.

A packet for a VPC's range, or a range the operator names (cluster IPs, pods), that no more specific
route on the host carries (a pod's host link, a network the host is really on) is unreachable on the
host instead of going to the default gateway. It takes two policy rules, as WireGuard's tools set up
theirs: first the main table without its default route (`suppress_prefixlength 0`), then a table of
this agent's holding an `unreachable` route for each range; only then the main table as usual, with
its default route. So a range that overlaps a network the host is on costs the host nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from typing import Any

from photoncloud.common.netdev import DeviceNames

from .links import IPRoute, NetNS, NetlinkError

MAIN_TABLE = 254
RTN_UNREACHABLE = 7
FAMILIES = (2, 10)  # AF_INET, AF_INET6
EEXIST, ENOENT, ESRCH = 17, 2, 3


class Guard:
    """The unreachable routes for tenant ranges of one agent (a table and two rules per address family)."""

    def __init__(self, names: DeviceNames, namespace: str = ""):
        number = int(hashlib.sha256(names.prefix.encode()).hexdigest()[:4], 16)
        self.table = 0x70630000 + number  # "pc" and the prefix's hash: apart from every other agent's
        self.priority = 32000 + (number % 300) * 2  # before main (32766): the pair at priority, priority + 1
        self.namespace = namespace

    def _route(self) -> Any:
        return NetNS(self.namespace) if self.namespace else IPRoute()

    def ensure(self, ranges: Iterable[str]) -> None:
        """Exactly these ranges unreachable past the host's specific routes; the rules in place."""
        wanted = {str(ipaddress.ip_network(r, strict=False)) for r in ranges}
        with self._route() as ipr:
            for family in FAMILIES:
                self._rules(ipr, family)
                present = {f"{r.get_attr('RTA_DST')}/{r['dst_len']}"
                           for r in ipr.get_routes(family=family, table=self.table)
                           if r["type"] == RTN_UNREACHABLE}
                mine = {w for w in wanted if ipaddress.ip_network(w).version == (4 if family == 2 else 6)}
                for cidr in sorted(present - mine):
                    self._change(ipr, "del", family, cidr)
                for cidr in sorted(mine - present):
                    self._change(ipr, "add", family, cidr)

    def _rules(self, ipr: Any, family: int) -> None:
        existing = {(r.get_attr("FRA_TABLE"), r.get_attr("FRA_PRIORITY")) for r in ipr.get_rules(family=family)}
        if (MAIN_TABLE, self.priority) not in existing:
            ipr.rule("add", family=family, table=MAIN_TABLE, priority=self.priority, suppress_prefixlen=0)
        if (self.table, self.priority + 1) not in existing:
            ipr.rule("add", family=family, table=self.table, priority=self.priority + 1)

    def _change(self, ipr: Any, action: str, family: int, cidr: str) -> None:
        network = ipaddress.ip_network(cidr)
        try:
            ipr.route(action, family=family, dst=str(network.network_address), dst_len=network.prefixlen,
                      table=self.table, type=RTN_UNREACHABLE)
        except NetlinkError as exc:
            if exc.code not in (EEXIST, ENOENT, ESRCH):
                raise

    def remove(self) -> None:
        """Take the rules and the table's routes away."""
        with self._route() as ipr:
            for family in FAMILIES:
                for route in ipr.get_routes(family=family, table=self.table):
                    if route["type"] == RTN_UNREACHABLE:
                        self._change(ipr, "del", family, f"{route.get_attr('RTA_DST')}/{route['dst_len']}")
                for table, priority in ((MAIN_TABLE, self.priority), (self.table, self.priority + 1)):
                    rules = [r for r in ipr.get_rules(family=family) if r.get_attr("FRA_TABLE") == table
                             and r.get_attr("FRA_PRIORITY") == priority]
                    for _ in rules:
                        try:
                            ipr.rule("del", family=family, table=table, priority=priority)
                        except NetlinkError as exc:
                            if exc.code not in (ENOENT, ESRCH):
                                raise
