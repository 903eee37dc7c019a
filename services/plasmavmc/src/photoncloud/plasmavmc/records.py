"""PlasmaVMC's records: flavors, images, VMs and their states."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(str, enum.Enum):
    """Where a VM is in its life (the transitions are in machine.TRANSITIONS)."""

    CREATING = "CREATING"  # its reservation and ports are being made
    STOPPED = "STOPPED"  # created, no QEMU process
    STARTING = "STARTING"  # QEMU is being launched
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"  # vCPUs frozen, memory kept
    STOPPING = "STOPPING"  # the guest was asked to power off
    ERROR = "ERROR"  # a start failed or QEMU died unasked; start or delete it
    DELETING = "DELETING"  # its process, ports and reservation are being removed


@dataclass(frozen=True)
class Flavor:
    """A size VMs are created with, and its price."""

    id: str
    name: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    price_per_hour: int
    description: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ImageFile:
    """One file of an image, as copied into PlasmaVMC's data directory."""

    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class Image:
    """What a VM boots: a kernel (and initrd) or a disk image."""

    id: str
    name: str
    kind: str  # KERNEL or DISK
    kernel: ImageFile | None
    initrd: ImageFile | None
    disk: ImageFile | None
    disk_format: str  # raw or qcow2 ("" for KERNEL images)
    cmdline: str
    description: str
    created_at: float

    @property
    def size_bytes(self) -> int:
        """The files' total size."""
        return sum(f.size_bytes for f in (self.kernel, self.initrd, self.disk) if f is not None)


@dataclass(frozen=True)
class Nic:
    """A VM's network interface: a PrismNET port."""

    port_id: str
    subnet_id: str
    ip_address: str
    mac_address: str
    gateway_ip: str
    cidr_block: str
    vpc_id: str = ""  # the port's VPC, whose bridge the NIC plugs into ("" in VMs stored before it was kept)


@dataclass(frozen=True)
class Vm:
    """A virtual machine."""

    id: str
    name: str
    org_id: str
    project_id: str
    state: State
    flavor_id: str
    vcpus: int
    memory_mib: int
    image_id: str
    nics: tuple[Nic, ...]
    price_per_hour: int
    reservation_id: str  # the pending reservation the next start commits ("" when none)
    charged: int
    last_error: str  # why the VM is in ERROR, or what went wrong last ("" after a good start)
    description: str
    created_at: float
    updated_at: float
    started_at: float  # 0: never started
