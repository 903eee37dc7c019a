"""The names of the host devices that carry PrismNET's networks, which PrismNET's dataplane agent
makes and PlasmaVMC (a VM's TAP) and k8shost's node agent (a pod's veth) plug into.

Per VPC, one Linux bridge is its network on the host (every subnet of the VPC on it, its VXLAN to
other hosts too), and a router namespace of its own holds the subnets' gateway addresses and DHCP,
wired to the bridge by a veth. A port's device (a VM's TAP, the host end of a pod's veth) is
named for the port, so the agent can write a port's security group rules before, or without ever,
knowing which of the two plugs it. Every name starts with a prefix (the platform's is "pc"), so
that an agent prunes only what is its own, and tests can run their own beside it; a device name
may not exceed 15 characters, so each is the prefix, a letter for its kind and 10 hex digits of a
hash of the id.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PREFIX = "pc"
IFNAMSIZ = 15  # the longest name of a Linux network device
BRIDGE_WAIT = 15.0  # seconds what plugs into a VPC's bridge waits for the dataplane agent to make it
POLL = 0.2
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,3}$")


def _digest(id: str) -> str:
    return hashlib.sha256(id.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class DeviceNames:
    """Device and namespace names under one prefix (a letter, then up to three letters or digits)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"a dataplane prefix is a lower-case letter and up to 3 more letters or digits, "
                             f"not {self.prefix!r}")

    def bridge(self, vpc_id: str) -> str:
        """The VPC's bridge."""
        return f"{self.prefix}b{_digest(vpc_id)}"

    def vxlan(self, vpc_id: str) -> str:
        """The VPC's VXLAN device (on its bridge), to the same VPC on other hosts."""
        return f"{self.prefix}x{_digest(vpc_id)}"

    def gateway(self, vpc_id: str) -> str:
        """The bridge's end of the veth to the VPC's router namespace."""
        return f"{self.prefix}g{_digest(vpc_id)}"

    def router(self, vpc_id: str) -> str:
        """The VPC's router namespace (under /run/netns): gateway addresses and DHCP."""
        return f"{self.prefix}r-{_digest(vpc_id)}"

    def port(self, port_id: str) -> str:
        """A port's device on its VPC's bridge: a VM's TAP or the host end of a pod's veth."""
        return f"{self.prefix}p{_digest(port_id)}"

    def owns(self, name: str) -> bool:
        """Whether a device or namespace name is one of these (for pruning what is left over)."""
        return name.startswith(self.prefix) and len(name) > len(self.prefix) and name[len(self.prefix)] in "bxgpr"


async def appears(exists: Callable[[], bool], timeout: float = BRIDGE_WAIT) -> bool:
    """Whether exists() (blocking: it runs in a thread) holds within timeout seconds, asked every POLL seconds."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(exists):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL)
    return True


def ipv6_off(device: str) -> None:
    """No IPv6 on a host device of a tenant network: the host gets no address in it, not even a link-local one."""
    switch = Path("/proc/sys/net/ipv6/conf") / device / "disable_ipv6"
    if switch.exists():  # absent when the host has IPv6 off altogether
        switch.write_text("1")
