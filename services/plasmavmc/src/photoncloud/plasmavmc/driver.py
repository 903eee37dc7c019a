"""The hypervisor behind PlasmaVMC: what the core asks of it (QemuDriver, or FakeDriver in tests).

A driver runs the side effects the state machine cannot: processes, sockets, files. The core
records each VM transition as a command and calls the driver around it, so a driver holds no
state of its own that a restart would lose: everything it needs to find a VM again is in the VM's
directory (QEMU's pid file and QMP socket).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from photoncloud.common.errors import Code, ServiceError


class Power(str, enum.Enum):
    """What the hypervisor says about a VM's process."""

    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    SHUTDOWN = "SHUTDOWN"  # the guest powered off; the process waits to be told to quit
    ABSENT = "ABSENT"  # no process
    FAILED = "FAILED"  # the process is there but the guest cannot run (internal error, panic)


@dataclass(frozen=True)
class NicSpec:
    """A NIC: the MAC of its port, the address the guest gets by DHCP on it, and the port and its VPC
    (whose bridge the NIC's TAP is plugged into, with a dataplane)."""

    mac_address: str
    ip_address: str
    cidr_block: str
    gateway_ip: str
    port_id: str = ""
    vpc_id: str = ""


@dataclass(frozen=True)
class VmSpec:
    """Everything a driver needs to boot a VM."""

    id: str
    vcpus: int
    memory_mib: int
    kernel: Path | None = None
    initrd: Path | None = None
    cmdline: str = ""
    disk: Path | None = None
    disk_format: str = ""
    nics: tuple[NicSpec, ...] = field(default_factory=tuple)


class HypervisorError(ServiceError):
    """The hypervisor failed to do what it was asked (QEMU refused to start, QMP failed)."""

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message, {"reason": "HYPERVISOR_ERROR", **(details or {})}, code=Code.INTERNAL)


class Driver(Protocol):
    """A hypervisor: boots, stops and inspects VMs by id."""

    name: str

    def describe(self) -> dict[str, Any]:
        """What /health reports about the driver."""

    async def start(self, spec: VmSpec) -> None:
        """Boot a VM; returns once it runs (HypervisorError if it cannot)."""

    async def power(self, vm_id: str) -> Power:
        """The state of a VM's process."""

    async def stop(self, vm_id: str, timeout: float) -> bool:
        """Ask the guest to power off, wait up to timeout, then kill it; whether it powered off by itself."""

    async def kill(self, vm_id: str) -> None:
        """End a VM's process at once (nothing if there is none)."""

    async def reboot(self, vm_id: str) -> None:
        """Reset a running VM."""

    async def pause(self, vm_id: str) -> None:
        """Freeze a VM's vCPUs."""

    async def resume(self, vm_id: str) -> None:
        """Let a paused VM run again."""

    async def console(self, vm_id: str, tail_bytes: int) -> tuple[bytes, int]:
        """The last tail_bytes of the VM's serial console, and the console log's whole size."""

    async def remove(self, vm_id: str) -> None:
        """Kill the VM's process and delete its files."""

    async def close(self) -> None:
        """Let go of the VMs (their processes keep running)."""
