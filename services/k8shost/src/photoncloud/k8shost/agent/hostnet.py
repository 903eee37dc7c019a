"""Pod addresses on the host, for the process runtime: an address k8shost assigned a pod (a PrismNET
port's) is added to an interface the agent owns, as a /32 (IPv4) or /128 (IPv6), so that the pod's
processes can bind it (POD_IP) and the service proxy can connect to it.

The interface (`k8shost0`) is a dummy one, made and brought up on demand; on a kernel without the
dummy driver an empty bridge stands in (an address on it is as local). Every address the agent finds
there at start is a leftover of an earlier run and is removed, and each pod's is removed when it stops.
This takes the privilege to configure interfaces (CAP_NET_ADMIN, which root has) and pyroute2.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable

log = logging.getLogger("photoncloud.k8shost.agent")

INTERFACE = "k8shost0"
CAP_NET_ADMIN = 12
EEXIST, EADDRNOTAVAIL, EOPNOTSUPP = 17, 99, 95

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
except ImportError:  # pragma: no cover - pyroute2 is a dependency, but only Linux has netlink
    IPRoute = None
    NetlinkError = OSError


def can_configure_interfaces() -> bool:
    """Whether this process holds CAP_NET_ADMIN (Linux: its effective capabilities)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            effective = next(line.split()[1] for line in status if line.startswith("CapEff:"))
    except (OSError, StopIteration):
        return False
    return bool(int(effective, 16) >> CAP_NET_ADMIN & 1)


class HostAddresses:
    """Pods' addresses on the agent's own interface of the host."""

    def __init__(self, interface: str = INTERFACE, privileged: bool | None = None):
        self.interface = interface
        self.privileged = can_configure_interfaces() if privileged is None else privileged

    def unsupported(self) -> str:
        """Why pods' addresses cannot be added here ("": they can)."""
        if IPRoute is None:
            return "pyroute2 (netlink, Linux only) is not available to the agent"
        if not self.privileged:
            return "the agent lacks the privilege to configure network interfaces (root or CAP_NET_ADMIN)"
        return ""

    async def add(self, address: str) -> None:
        """Add a pod's address (the interface made and brought up first if need be)."""
        await asyncio.to_thread(self._add, address)

    async def remove(self, address: str) -> None:
        """Remove a pod's address (gone already is fine)."""
        await asyncio.to_thread(self._remove, address)

    async def prune(self, keep: Iterable[str] = ()) -> list[str]:
        """Remove every pod address on the interface but those kept; the ones removed."""
        return await asyncio.to_thread(self._prune, {str(ipaddress.ip_address(a)) for a in keep})

    async def held(self) -> list[str]:
        """The pod addresses on the interface now."""
        return await asyncio.to_thread(self._held)

    async def delete_interface(self) -> None:
        """Delete the interface, addresses and all (gone already is fine)."""
        await asyncio.to_thread(self._delete_interface)

    def _index(self, ipr: IPRoute, create: bool) -> int | None:
        found = ipr.link_lookup(ifname=self.interface)
        if found or not create:
            return found[0] if found else None
        try:
            ipr.link("add", ifname=self.interface, kind="dummy")
        except NetlinkError as exc:
            if exc.code == EOPNOTSUPP:  # no dummy driver in this kernel: an empty bridge holds local addresses too
                ipr.link("add", ifname=self.interface, kind="bridge")
            elif exc.code != EEXIST:
                raise
        (index,) = ipr.link_lookup(ifname=self.interface)
        ipr.link("set", index=index, state="up")
        return index

    def _add(self, address: str) -> None:
        ip = ipaddress.ip_address(address)
        with IPRoute() as ipr:
            index = self._index(ipr, create=True)
            try:
                # IPv6: no duplicate address detection, so the address can be bound at once.
                ipr.addr("add", index=index, address=str(ip), prefixlen=ip.max_prefixlen,
                         **({"flags": 0x02} if ip.version == 6 else {}))  # IFA_F_NODAD
            except NetlinkError as exc:
                if exc.code != EEXIST:
                    raise
        log.info("pod address %s added to %s", ip, self.interface)

    def _remove(self, address: str) -> None:
        ip = ipaddress.ip_address(address)
        with IPRoute() as ipr:
            index = self._index(ipr, create=False)
            if index is None:
                return
            try:
                ipr.addr("del", index=index, address=str(ip), prefixlen=ip.max_prefixlen)
            except NetlinkError as exc:
                if exc.code != EADDRNOTAVAIL:
                    raise
        log.info("pod address %s removed from %s", ip, self.interface)

    def _held(self) -> list[str]:
        with IPRoute() as ipr:
            index = self._index(ipr, create=False)
            if index is None:
                return []
            held = [ipaddress.ip_address(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr(index=index)]
        # Pods' addresses only: a bridge's own link-local IPv6 address (a /64) is none of them.
        return [str(ip) for ip in held if not ip.is_link_local]

    def _prune(self, keep: set[str]) -> list[str]:
        stale = [address for address in self._held() if address not in keep]
        for address in stale:
            self._remove(address)
        return stale

    def _delete_interface(self) -> None:
        with IPRoute() as ipr:
            index = self._index(ipr, create=False)
            if index is not None:
                ipr.link("del", index=index)
