"""Pods' own network namespaces, for the process runtime: a pod whose address k8shost assigned (a
PrismNET port's) gets a network namespace of its own holding that address, so the address lives in
the pod, not on a host interface, and the pod sees none of the host's interfaces or sockets.

Each namespace (`<prefix><pod uid>`, under /run/netns) has a veth pair to the host, as Calico wires
pods: inside, `eth0` with the pod's address (/32) and the port's MAC, and one route, to the host end
at 169.254.1.1; on the host, a route to the pod's address through the host end. So the host (the
service proxy, a NodePort) reaches the pod, and the pod answers it, but the pod has no route to
anything else: not to another pod, another tenant, or off the machine (the PrismNET dataplane, with
a network per VPC, is what connects pods to each other). IPv4 only. This takes root (CAP_NET_ADMIN
and CAP_SYS_ADMIN) and pyroute2. A namespace the agent finds at start that no pod of its own holds
is a leftover and is deleted, and with it its veth pair.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
from collections.abc import Set
from pathlib import Path

log = logging.getLogger("photoncloud.k8shost.agent")

NETNS_DIR = Path("/run/netns")
HOST_END = "169.254.1.1"  # the host's end of every pod's veth: the one address a pod can reach
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


class PodNetworks:
    """The network namespaces of one agent's pods, named `<prefix><pod uid>`."""

    def __init__(self, prefix: str = "k8shost-", why_not: str | None = None):
        self.prefix = prefix
        self._why_not = can_make_namespaces() if why_not is None else why_not

    def unsupported(self) -> str:
        """Why pods cannot get namespaces of their own here ("": they can)."""
        return self._why_not

    def path(self, pod_uid: str) -> Path:
        """Where the pod's namespace is (a process joins it with setns)."""
        return NETNS_DIR / (self.prefix + pod_uid)

    @staticmethod
    def host_end(pod_uid: str) -> str:
        """The name of the host's end of the pod's veth (at most 15 characters)."""
        return "kh" + hashlib.sha256(pod_uid.encode()).hexdigest()[:12]

    async def add(self, pod_uid: str, address: str, mac: str = "") -> None:
        """Make the pod's namespace with its address (and MAC), wired to the host; replaces one left over."""
        if ipaddress.ip_address(address).version != 4:
            raise ValueError(f"the process runtime gives pods IPv4 addresses of their own only, not {address}")
        await asyncio.to_thread(self._add, pod_uid, address, mac)

    async def remove(self, pod_uid: str) -> None:
        """Delete the pod's namespace and its veth pair (gone already is fine)."""
        await asyncio.to_thread(self._remove, pod_uid)

    async def prune(self, keep: Set[str] = frozenset()) -> list[str]:
        """Delete every namespace of this agent's but the kept pods'; the pod uids whose namespace went."""
        return await asyncio.to_thread(self._prune, keep)

    def held(self) -> list[str]:
        """The pod uids that have a namespace now."""
        if netns is None:
            return []
        return sorted(n[len(self.prefix):] for n in netns.listnetns() if n.startswith(self.prefix))

    def _add(self, pod_uid: str, address: str, mac: str) -> None:
        self._remove(pod_uid)
        name, host_end, inside = self.prefix + pod_uid, self.host_end(pod_uid), "kp" + self.host_end(pod_uid)[2:]
        netns.create(name)
        try:
            with IPRoute() as ipr:
                ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": inside, "net_ns_fd": name})
                (index,) = ipr.link_lookup(ifname=host_end)
                ipr.addr("add", index=index, address=HOST_END, prefixlen=32)
                ipr.link("set", index=index, state="up")
                ipr.route("add", dst=f"{address}/32", oif=index, prefsrc=HOST_END)
            with NetNS(name) as ns:
                (loopback,) = ns.link_lookup(ifname="lo")
                ns.link("set", index=loopback, state="up")
                (index,) = ns.link_lookup(ifname=inside)
                ns.link("set", index=index, ifname="eth0", **({"address": mac} if mac else {}))
                ns.addr("add", index=index, address=address, prefixlen=32)
                ns.link("set", index=index, state="up")
                ns.route("add", dst=f"{HOST_END}/32", oif=index, scope=SCOPE_LINK)
        except BaseException:
            self._remove(pod_uid)
            raise
        log.info("pod %s has network namespace %s at %s", pod_uid, name, address)

    def _remove(self, pod_uid: str) -> None:
        name = self.prefix + pod_uid
        if name in netns.listnetns():
            netns.remove(name)  # the veth inside goes with it, and so does its host end
        with IPRoute() as ipr:  # a host end whose namespace went some other way
            for index in ipr.link_lookup(ifname=self.host_end(pod_uid)):
                try:
                    ipr.link("del", index=index)
                except NetlinkError as exc:
                    if exc.code not in (ESRCH, ENODEV):  # gone meanwhile
                        raise

    def _prune(self, keep: Set[str]) -> list[str]:
        stale = [uid for uid in self.held() if uid not in keep]
        for uid in stale:
            self._remove(uid)
        return stale
