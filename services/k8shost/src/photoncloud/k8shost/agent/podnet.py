"""Pods' own network namespaces, for the process runtime: a pod whose address k8shost assigned (a
PrismNET port's) gets a network namespace of its own holding that address, so the address lives in
the pod, not on a host interface, and the pod sees none of the host's interfaces or sockets.

Each namespace (`<prefix><pod uid>`, under /run/netns) has a veth pair to the host, as Calico wires
pods: on the host, its end holds 169.254.1.1 and a route to the pod's address; inside, one route to
169.254.1.1. So the host (the service proxy, a NodePort) reaches the pod, and the pod answers it.

Without a PrismNET dataplane, that link is the pod's `eth0`, with the pod's address (/32) and the
port's MAC, and the pod has no route to anything else: not to another pod, another tenant, or off
the machine. With one (a device-name prefix, netdev.DeviceNames), the pod is on its VPC's network:
`eth0` is a second veth whose host end, named for the port, is enslaved to the VPC's bridge (which
PrismNET's dataplane agent makes; a pod waits a bounded time for it), with the pod's address on the
subnet's prefix length, the port's MAC and the default route via the subnet's gateway; the link to
the host is then `host0`, with nothing on it but the route to 169.254.1.1.

IPv4 only. This takes root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and pyroute2. A namespace the agent
finds at start that no pod of its own holds is a leftover and is deleted, and with it its veths;
so is a port device of one of its pods that outlived the namespace (each carries the namespace's
name as its alias).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photoncloud.common.netdev import BRIDGE_WAIT, DeviceNames, appears

log = logging.getLogger("photoncloud.k8shost.agent")

NETNS_DIR = Path("/run/netns")
HOST_END = "169.254.1.1"  # the host's end of every pod's veth: the one address a pod can reach on the host link
ESRCH, ENODEV = 3, 19
SCOPE_LINK = 253

try:
    # pyroute2 ships no type information (no py.typed, no stub package): its names are Any here.
    from pyroute2 import IPRoute, NetNS, netns  # type: ignore[import-untyped]
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - pyroute2 is a dependency, but only Linux has netlink
    IPRoute = NetNS = netns = None
    NetlinkError = OSError


def can_make_namespaces() -> str:
    """Why pods cannot get network namespaces here ("": they can): pyroute2 on Linux, and root."""
    if IPRoute is None:
        return "pyroute2 (netlink, Linux only) is not available to the agent"
    if os.geteuid() != 0:
        return "the agent is not root (making network namespaces takes CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    return ""


@dataclass(frozen=True)
class VpcPort:
    """A pod's PrismNET port as its VPC's network needs it: the VPC (its bridge), the port (its device's
    name), the subnet's range (the prefix length) and gateway (the default route)."""

    vpc_id: str
    port_id: str
    cidr_block: str
    gateway_ip: str

    @classmethod
    def of(cls, network: dict[str, Any]) -> VpcPort:
        """The port of a pod's status.network (as the API server sends it)."""
        return cls(network.get("vpc_id", ""), network.get("port_id", ""), network.get("cidr_block", ""),
                   network.get("gateway_ip", ""))


class PodNetworks:
    """The network namespaces of one agent's pods, named `<prefix><pod uid>`; with a PrismNET dataplane's
    device names, each pod also on its VPC's bridge."""

    def __init__(self, prefix: str = "k8shost-", why_not: str | None = None, dataplane: DeviceNames | None = None,
                 bridge_wait: float = BRIDGE_WAIT):
        self.prefix = prefix
        self.dataplane = dataplane
        self.bridge_wait = bridge_wait
        self._why_not = can_make_namespaces() if why_not is None else why_not

    def unsupported(self) -> str:
        """Why pods cannot get namespaces of their own here ("": they can)."""
        return self._why_not

    def mode(self) -> str:
        """How pods with a PrismNET address are wired, as the agent reports it."""
        if self.dataplane is None:
            return "host-routed: a veth to the host only (no PrismNET dataplane)"
        return (f"prismnet-dataplane (device prefix {self.dataplane.prefix}): eth0 on the VPC's bridge, "
                "a veth to the host for the service proxy")

    def path(self, pod_uid: str) -> Path:
        """Where the pod's namespace is (a process joins it with setns)."""
        return NETNS_DIR / (self.prefix + pod_uid)

    @staticmethod
    def host_end(pod_uid: str) -> str:
        """The name of the host's end of the pod's veth to the host (at most 15 characters)."""
        return "kh" + hashlib.sha256(pod_uid.encode()).hexdigest()[:12]

    async def add(self, pod_uid: str, address: str, mac: str = "", port: VpcPort | None = None) -> None:
        """Make the pod's namespace with its address (and MAC), wired to the host, and with a dataplane to its
        VPC's bridge (waiting for the bridge a bounded time); replaces one left over."""
        if ipaddress.ip_address(address).version != 4:
            raise ValueError(f"the process runtime gives pods IPv4 addresses of their own only, not {address}")
        if self.dataplane is None:
            port = None
        else:
            if port is None or not port.vpc_id:
                raise ValueError("the pod's network names no VPC, so it has no bridge to join on this node's "
                                 "PrismNET dataplane (a pod created before its port carried its VPC: create it again)")
            await self._wait_for_bridge(port.vpc_id)
        await asyncio.to_thread(self._add, pod_uid, address, mac, port)

    async def remove(self, pod_uid: str) -> None:
        """Delete the pod's namespace and its veths (gone already is fine)."""
        await asyncio.to_thread(self._remove, pod_uid)

    async def prune(self, keep: Set[str] = frozenset()) -> list[str]:
        """Delete every namespace (and port device) of this agent's but the kept pods'; the pod uids whose went."""
        return await asyncio.to_thread(self._prune, keep)

    def held(self) -> list[str]:
        """The pod uids that have a namespace now."""
        if netns is None:
            return []
        return sorted(n[len(self.prefix):] for n in netns.listnetns() if n.startswith(self.prefix))

    async def _wait_for_bridge(self, vpc_id: str) -> None:
        assert self.dataplane is not None
        bridge = self.dataplane.bridge(vpc_id)
        if not await appears(lambda: _link_exists(bridge), self.bridge_wait):
            raise RuntimeError(
                f"the bridge {bridge} of VPC {vpc_id} did not appear within {self.bridge_wait:g} s: PrismNET's "
                f"dataplane agent makes it (device prefix {self.dataplane.prefix!r}); is it running on this node?")

    def _add(self, pod_uid: str, address: str, mac: str, port: VpcPort | None) -> None:
        self._remove(pod_uid)
        name, host_end = self.prefix + pod_uid, self.host_end(pod_uid)
        # With a dataplane the link to the host is host0 (eth0 is the VPC's); without, it is the pod's eth0.
        host_link = "host0" if port is not None else "eth0"
        netns.create(name)
        try:
            with IPRoute() as ipr:
                ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": host_link, "net_ns_fd": name})
                (index,) = ipr.link_lookup(ifname=host_end)
                ipr.addr("add", index=index, address=HOST_END, prefixlen=32)
                ipr.link("set", index=index, state="up")
                ipr.route("add", dst=f"{address}/32", oif=index, prefsrc=HOST_END)
                mtu = self._plug(ipr, name, port) if port is not None else 0
            with NetNS(name) as ns:
                (loopback,) = ns.link_lookup(ifname="lo")
                ns.link("set", index=loopback, state="up")
                (index,) = ns.link_lookup(ifname=host_link)
                if port is None:
                    ns.link("set", index=index, **({"address": mac} if mac else {}))
                    ns.addr("add", index=index, address=address, prefixlen=32)
                ns.link("set", index=index, state="up")
                ns.route("add", dst=f"{HOST_END}/32", oif=index, scope=SCOPE_LINK)
                if port is not None:
                    (index,) = ns.link_lookup(ifname="eth0")
                    ns.link("set", index=index, mtu=mtu, **({"address": mac} if mac else {}))
                    ns.addr("add", index=index, address=address,
                            prefixlen=ipaddress.ip_network(port.cidr_block, strict=False).prefixlen)
                    ns.link("set", index=index, state="up")
                    ns.route("add", dst="0.0.0.0/0", gateway=port.gateway_ip, oif=index)
        except BaseException:
            self._remove(pod_uid)
            raise
        if port is None:
            log.info("pod %s has network namespace %s at %s", pod_uid, name, address)
        else:
            log.info("pod %s has network namespace %s at %s on VPC %s", pod_uid, name, address, port.vpc_id)

    def _plug(self, ipr: Any, name: str, port: VpcPort) -> int:
        """Make the pod's veth on the VPC's bridge (its eth0 inside the namespace); the bridge's MTU."""
        assert self.dataplane is not None
        bridge, device = self.dataplane.bridge(port.vpc_id), self.dataplane.port(port.port_id)
        found = ipr.link_lookup(ifname=bridge)
        if not found:  # it was there a moment ago: the dataplane agent removed it meanwhile
            raise RuntimeError(f"the bridge {bridge} of VPC {port.vpc_id} is gone")
        mtu = int(ipr.get_links(found[0])[0].get_attr("IFLA_MTU"))  # a VXLAN on the bridge lowers it
        _delete(ipr, device)  # one that outlived its namespace (a process still held it)
        ipr.link("add", ifname=device, kind="veth", peer={"ifname": "eth0", "net_ns_fd": name})
        (index,) = ipr.link_lookup(ifname=device)
        # The alias names the namespace: what this agent prunes as its own if the namespace ever goes first.
        ipr.link("set", index=index, ifalias=name, mtu=mtu, master=found[0])
        ipr.link("set", index=index, state="up")
        return mtu

    def _remove(self, pod_uid: str) -> None:
        name = self.prefix + pod_uid
        if name in netns.listnetns():
            netns.remove(name)  # the veths inside go with it, and so do their host ends
        with IPRoute() as ipr:  # host ends whose namespace went some other way, or is still held by a process
            _delete(ipr, self.host_end(pod_uid))
            for device in self._port_devices(ipr).get(pod_uid, ()):
                _delete(ipr, device)

    def _port_devices(self, ipr: Any) -> dict[str, list[str]]:
        """The host ends on a VPC's bridge of this agent's pods (by their alias), by pod uid."""
        found: dict[str, list[str]] = {}
        for link in ipr.get_links():
            alias = link.get_attr("IFLA_IFALIAS") or ""
            if alias.startswith(self.prefix) and len(alias) > len(self.prefix):
                found.setdefault(alias[len(self.prefix):], []).append(link.get_attr("IFLA_IFNAME"))
        return found

    def _prune(self, keep: Set[str]) -> list[str]:
        with IPRoute() as ipr:
            leftover = set(self._port_devices(ipr))
        stale = sorted(uid for uid in set(self.held()) | leftover if uid not in keep)
        for uid in stale:
            self._remove(uid)
        return stale


def _link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def _delete(ipr: Any, name: str) -> None:
    """Delete a device by name (gone already, or meanwhile, is fine)."""
    for index in ipr.link_lookup(ifname=name):
        try:
            ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code not in (ESRCH, ENODEV):
                raise
