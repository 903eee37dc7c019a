"""A VPC's devices on the host, with pyroute2: its bridge, its router namespace wired to the bridge by
a veth (the subnets' gateway addresses on `gw0` inside), and its VXLAN device to other hosts.

The host gets no address on any of them, and no IPv6 link-local either, so neither a tenant nor the
host can reach the other through them. The router namespace has only the routes of its own subnets
(and forwards between them): a packet for anywhere else is unreachable there, never sent on.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from photoncloud.common.netdev import DeviceNames, ipv6_off

from .state import NetSubnet, NetVpc

log = logging.getLogger("photoncloud.prismnet.dataplane")

try:
    # pyroute2 ships no type information (no py.typed, no stub package): its names are Any here.
    from pyroute2 import IPRoute, NetNS, netns  # type: ignore[import-untyped]
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - a dependency, but netlink is Linux's only
    IPRoute = NetNS = netns = None
    NetlinkError = OSError

GATEWAY_INSIDE = "gw0"  # the router namespace's end of its veth to the bridge
VXLAN_PORT = 4789  # IANA's
ZERO_MAC = "00:00:00:00:00:00"  # an FDB entry for it floods unknown destinations to that peer
ENOENT, ESRCH, ENODEV = 2, 3, 19


def _in_namespace(namespace: str, *command: str) -> None:
    subprocess.run(["ip", "netns", "exec", namespace, *command], check=True, capture_output=True, timeout=30)


def _delete(ipr: object, name: str) -> None:
    """Delete a device by name (gone already is fine)."""
    for index in ipr.link_lookup(ifname=name):  # type: ignore[attr-defined]
        try:
            ipr.link("del", index=index)  # type: ignore[attr-defined]
        except NetlinkError as exc:
            if exc.code not in (ESRCH, ENODEV):
                raise


class Links:
    """The devices and router namespaces of one agent's VPCs (names from DeviceNames)."""

    def __init__(self, names: DeviceNames):
        self.names = names
        # The gateway addresses last set in each router: entering a namespace forks a helper (pyroute2), which is
        # worth doing only when they change (or once after a start).
        self._gateways_set: dict[str, frozenset[str]] = {}

    def ensure(self, vpc: NetVpc, subnets: Sequence[NetSubnet], underlay: str = "", peers: Sequence[str] = ()) -> None:
        """Make (or correct) the VPC's bridge, router namespace with its gateways, and VXLAN; idempotent."""
        bridge, router, gateway = self.names.bridge(vpc.id), self.names.router(vpc.id), self.names.gateway(vpc.id)
        with IPRoute() as ipr:
            if not ipr.link_lookup(ifname=bridge):
                ipr.link("add", ifname=bridge, kind="bridge", br_forward_delay=0)
                log.info("made bridge %s for VPC %s", bridge, vpc.id)
            (bridge_index,) = ipr.link_lookup(ifname=bridge)
            ipv6_off(bridge)
            ipr.link("set", index=bridge_index, state="up")
            if router not in netns.listnetns():
                netns.create(router)
                self._gateways_set.pop(router, None)
                # Forwarding between the VPC's subnets, which share gw0: no ICMP redirects, which would send a
                # port straight to the other subnet on the bridge, so every such packet takes the one path.
                _in_namespace(router, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
                              "net.ipv4.conf.default.send_redirects=0", "net.ipv6.conf.all.disable_ipv6=1",
                              "net.ipv6.conf.default.disable_ipv6=1")
            if not ipr.link_lookup(ifname=gateway):
                ipr.link("add", ifname=gateway, kind="veth", peer={"ifname": GATEWAY_INSIDE, "net_ns_fd": router})
                self._gateways_set.pop(router, None)
            (gateway_index,) = ipr.link_lookup(ifname=gateway)
            ipv6_off(gateway)
            ipr.link("set", index=gateway_index, master=bridge_index, state="up")
            self._vxlan(ipr, vpc, bridge_index, underlay, peers)
        # IPv4 subnets only: the router is IPv4.
        wanted = frozenset(s.gateway_interface for s in subnets if s.gateway_ip and ":" not in s.gateway_ip)
        if self._gateways_set.get(router) != wanted:
            self._gateways(router, wanted)
            self._gateways_set[router] = wanted

    def _gateways(self, router: str, wanted: frozenset[str]) -> None:
        """Exactly these gateway addresses (with their prefix lengths) on the router's gw0."""
        with NetNS(router) as ns:
            (loopback,) = ns.link_lookup(ifname="lo")
            ns.link("set", index=loopback, state="up")
            (index,) = ns.link_lookup(ifname=GATEWAY_INSIDE)
            ns.link("set", index=index, state="up")
            present = {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ns.get_addr(index=index, family=2)}
            for address in sorted(present - wanted):
                ip, length = address.split("/")
                ns.addr("del", index=index, address=ip, prefixlen=int(length))
            for address in sorted(wanted - present):
                ip, length = address.split("/")
                ns.addr("add", index=index, address=ip, prefixlen=int(length))

    def _vxlan(self, ipr: object, vpc: NetVpc, bridge_index: int, underlay: str, peers: Sequence[str]) -> None:
        """The VPC's VXLAN device on its bridge, flooding to every peer host, when this host has an underlay."""
        name = self.names.vxlan(vpc.id)
        found = ipr.link_lookup(ifname=name)  # type: ignore[attr-defined]
        if found:
            (link,) = ipr.get_links(found[0])  # type: ignore[attr-defined]
            data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
            if not underlay or data.get_attr("IFLA_VXLAN_ID") != vpc.vni \
                    or data.get_attr("IFLA_VXLAN_LOCAL") != underlay:
                _delete(ipr, name)
                found = []
        if not underlay:
            return
        if not found:
            ipr.link("add", ifname=name, kind="vxlan", vxlan_id=vpc.vni, vxlan_local=underlay,  # type: ignore[attr-defined]
                     vxlan_port=VXLAN_PORT, vxlan_learning=1)
        (index,) = ipr.link_lookup(ifname=name)  # type: ignore[attr-defined]
        ipv6_off(name)
        ipr.link("set", index=index, master=bridge_index, state="up")  # type: ignore[attr-defined]
        present = {entry.get_attr("NDA_DST") for entry in ipr.fdb("dump", ifindex=index)  # type: ignore[attr-defined]
                   if entry.get_attr("NDA_LLADDR") == ZERO_MAC}
        for peer in sorted(set(peers) - present):
            ipr.fdb("append", ifindex=index, lladdr=ZERO_MAC, dst=peer)  # type: ignore[attr-defined]
        for peer in sorted(p for p in present - set(peers) if p):
            ipr.fdb("del", ifindex=index, lladdr=ZERO_MAC, dst=peer)  # type: ignore[attr-defined]

    def digest(self, vpc_id: str) -> str:
        """What the names of a VPC's devices end in (present() lists them)."""
        return self.names.bridge(vpc_id)[len(self.names.prefix) + 1:]

    def remove(self, digest: str) -> None:
        """Delete one VPC's router namespace, bridge and VXLAN, given the digest its names end in."""
        prefix = self.names.prefix
        router = f"{prefix}r-{digest}"
        self._gateways_set.pop(router, None)
        if router in netns.listnetns():
            netns.remove(router)  # gw0 goes with it, and with it the gateway veth's bridge end
        with IPRoute() as ipr:
            for kind in "gxb":
                _delete(ipr, f"{prefix}{kind}{digest}")
        log.info("removed the network of VPC digest %s", digest)

    def present(self) -> set[str]:
        """The digests of the VPCs that have a bridge or a router namespace here."""
        prefix = self.names.prefix
        found = {n[len(prefix) + 2:] for n in netns.listnetns() if n.startswith(f"{prefix}r-")}
        with IPRoute() as ipr:
            for link in ipr.get_links():
                name = link.get_attr("IFLA_IFNAME")
                if name.startswith(prefix) and name[len(prefix):len(prefix) + 1] in ("b", "g", "x"):
                    found.add(name[len(prefix) + 1:])
        return found

    def port_devices(self) -> list[str]:
        """The names of the port devices (a VM's TAP, a pod veth's host end) on the host."""
        with IPRoute() as ipr:
            return sorted(n for n in (link.get_attr("IFLA_IFNAME") for link in ipr.get_links())
                          if n.startswith(f"{self.names.prefix}p"))

    def tidy_port(self, device: str) -> None:
        """A port device gets no IPv6 on the host side either (whoever plugged it)."""
        ipv6_off(device)

    def remove_port(self, device: str) -> None:
        """Delete a port device whose port is gone (the VM or pod that held it went without cleaning up)."""
        with IPRoute() as ipr:
            _delete(ipr, device)
