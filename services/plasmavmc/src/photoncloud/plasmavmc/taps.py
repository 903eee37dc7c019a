"""VMs' NICs on PrismNET's bridges: one TAP device per NIC, plugged into its VPC's bridge.

With a dataplane prefix set (`--dataplane-prefix`), a NIC is no user-mode network of QEMU's own but
a persistent TAP device named for its port (`DeviceNames(prefix).port(port_id)`), enslaved to the
bridge of the port's VPC (`DeviceNames(prefix).bridge(vpc_id)`), which QEMU opens by name. The
bridge, and behind it the subnets' gateways, DHCP and security groups, are PrismNET's dataplane
agent's: PlasmaVMC never makes a bridge, it waits a bounded time for one and refuses the start
(FAILED_PRECONDITION, reason DATAPLANE_NOT_READY) when none appears.

The TAP has IPv6 off (the host has no address in a tenant network, not even a link-local one); it
takes the bridge's MTU, so that plugging it never lowers the bridge's; and its MAC is the port's with
its first byte made 0xfe (as libvirt does): the guest's own MAC, on the virtio-net device, must not
be the host end's, or the bridge would take the guest's frames for its own, and a 0xfe MAC never
becomes the bridge's address (a bridge takes its ports' lowest). Making TAPs takes
CAP_NET_ADMIN, /dev/net/tun and pyroute2: without them, PlasmaVMC refuses to start with a prefix.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path

from photoncloud.common.errors import FailedPrecondition
from photoncloud.common.netdev import BRIDGE_WAIT, DeviceNames, appears, ipv6_off

from .driver import HypervisorError

try:
    # pyroute2 ships no type information (no py.typed, no stub package): its names are Any here.
    from pyroute2 import IPRoute  # type: ignore[import-untyped]
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - pyroute2 is a dependency, but only Linux has netlink
    IPRoute = None
    NetlinkError = OSError

CAP_NET_ADMIN = 12  # the capability's bit in /proc/self/status's CapEff
TUN = Path("/dev/net/tun")
USER_MODE = "user-mode (QEMU slirp, restricted)"


def network_mode(prefix: str) -> str:
    """What /health says of VMs' networking under a dataplane prefix ("" is user-mode)."""
    return f"dataplane (bridges, prefix {prefix})" if prefix else USER_MODE


def _cap_net_admin() -> bool:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


def why_not() -> str:
    """Why PlasmaVMC cannot plug VMs into bridges here ("": it can)."""
    if IPRoute is None:
        return "pyroute2 (netlink, Linux only) is not installed"
    if not _cap_net_admin():
        return "PlasmaVMC lacks CAP_NET_ADMIN (run it as root) to make TAP devices"
    if not TUN.exists():
        return f"{TUN} is missing (load the tun module)"
    return ""


def host_mac(mac: str) -> str:
    """The MAC of the host's end (the TAP) of a NIC whose guest has mac: its first byte made 0xfe."""
    return "fe" + mac[2:]


def _kind(ipr: object, index: int) -> str:
    link = ipr.get_links(index)[0]  # type: ignore[attr-defined]
    info = link.get_attr("IFLA_LINKINFO")
    return str(info.get_attr("IFLA_INFO_KIND")) if info is not None else ""


def _delete_taps(names: Iterable[str]) -> None:
    with IPRoute() as ipr:
        for name in names:
            for index in ipr.link_lookup(ifname=name):
                if _kind(ipr, index) != "tun":
                    continue  # never ours: a TAP is all PlasmaVMC makes
                try:
                    ipr.link("del", index=index)
                except NetlinkError as exc:
                    if exc.code != 19:  # ENODEV: gone meanwhile
                        raise


async def delete_taps(names: Iterable[str]) -> None:
    """Delete the TAP devices of these names (those that are gone already are fine)."""
    names = list(names)
    if names and IPRoute is not None:
        await asyncio.to_thread(_delete_taps, names)


class Taps:
    """The TAP devices of VMs' NICs under one dataplane prefix."""

    def __init__(self, prefix: str, bridge_wait: float = BRIDGE_WAIT):
        self.names = DeviceNames(prefix)  # ValueError for a prefix the naming rule refuses
        self.prefix = prefix
        self.bridge_wait = bridge_wait

    def describe(self) -> str:
        """The network mode, for /health."""
        return network_mode(self.prefix)

    def name(self, port_id: str) -> str:
        """The TAP of a port's NIC."""
        return self.names.port(port_id)

    async def plug(self, port_id: str, vpc_id: str, mac: str) -> str:
        """Wait for the VPC's bridge, then make the port's TAP on it (replacing a leftover); its name."""
        if not port_id or not vpc_id:
            raise FailedPrecondition("the NIC's port has no VPC recorded (made before the dataplane): "
                                     "recreate the VM to plug it into its VPC's bridge",
                                     {"reason": "NIC_WITHOUT_VPC", "port_id": port_id})
        bridge = self.names.bridge(vpc_id)
        if not await appears(lambda: self._bridge_exists(bridge), self.bridge_wait):
            raise FailedPrecondition(
                f"the bridge {bridge} of VPC {vpc_id} did not appear within {self.bridge_wait:g}s: "
                f"is PrismNET's dataplane agent running on this host with prefix {self.prefix!r}?",
                {"reason": "DATAPLANE_NOT_READY", "bridge": bridge, "vpc_id": vpc_id})
        tap = self.name(port_id)
        await asyncio.to_thread(self._make, tap, bridge, mac)
        return tap

    @staticmethod
    def _bridge_exists(bridge: str) -> bool:
        with IPRoute() as ipr:
            return any(_kind(ipr, index) == "bridge" for index in ipr.link_lookup(ifname=bridge))

    @staticmethod
    def _make(tap: str, bridge: str, mac: str) -> None:
        with IPRoute() as ipr:
            for index in ipr.link_lookup(ifname=tap):
                if _kind(ipr, index) != "tun":
                    raise HypervisorError(f"a device named {tap} exists and is no TAP", {"device": tap})
                ipr.link("del", index=index)  # a leftover (a crash between start and stop): made anew
            found = ipr.link_lookup(ifname=bridge)
            if not found:
                raise FailedPrecondition(f"the bridge {bridge} went away", {"reason": "DATAPLANE_NOT_READY",
                                                                           "bridge": bridge})
            mtu = ipr.get_links(found[0])[0].get_attr("IFLA_MTU")
            try:
                # Persistent, owned by PlasmaVMC's user: QEMU (run by that user) opens it by name.
                ipr.link("add", ifname=tap, kind="tuntap", mode="tap", uid=os.geteuid(), gid=os.getegid())
                (index,) = ipr.link_lookup(ifname=tap)
                ipv6_off(tap)
                ipr.link("set", index=index, address=host_mac(mac), mtu=mtu, master=found[0], state="up")
            except (NetlinkError, OSError, ValueError) as exc:
                _delete_taps([tap])
                raise HypervisorError(f"cannot make the TAP {tap} on {bridge}: {exc}", {"device": tap}) from None
