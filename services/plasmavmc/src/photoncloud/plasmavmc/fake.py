"""FakeDriver: VMs as entries in a dict, for tests of everything around the hypervisor.

Selected only explicitly (`--driver fake`); /health then says so. It keeps the QEMU driver's
contract (power states, console, errors) so that the core's rules are tested the same way.
"""

from __future__ import annotations

from typing import Any

from .driver import HypervisorError, Power, VmSpec


class FakeDriver:
    """An in-memory hypervisor; `fail_next_start` makes the next start fail as QEMU would."""

    name = "fake"

    def __init__(self) -> None:
        self.vms: dict[str, Power] = {}
        self.consoles: dict[str, bytes] = {}
        self.specs: dict[str, VmSpec] = {}
        self.fail_next_start = False
        self.graceful = True  # whether guests power off when asked

    def describe(self) -> dict[str, Any]:
        """The driver, and that no guest really runs."""
        return {"driver": self.name, "accel": "none", "kvm": False}

    async def start(self, spec: VmSpec) -> None:
        """Mark the VM running and write a boot line to its console."""
        if self.vms.get(spec.id) in (Power.RUNNING, Power.PAUSED):
            raise HypervisorError("the VM's process is running already", {"vm_id": spec.id})
        if self.fail_next_start:
            self.fail_next_start = False
            raise HypervisorError("QEMU failed to start: injected failure")
        self.specs[spec.id] = spec
        self.vms[spec.id] = Power.RUNNING
        self.consoles[spec.id] = self.consoles.get(spec.id, b"") + f"fake boot of {spec.id}\n".encode()

    async def power(self, vm_id: str) -> Power:
        """The recorded state."""
        return self.vms.get(vm_id, Power.ABSENT)

    async def stop(self, vm_id: str, timeout: float) -> bool:
        """Power off; graceful unless told otherwise or timeout is 0."""
        graceful = self.graceful and timeout > 0 and vm_id in self.vms
        await self.kill(vm_id)
        return graceful

    async def kill(self, vm_id: str) -> None:
        """Forget the process."""
        self.vms.pop(vm_id, None)

    def _running(self, vm_id: str) -> None:
        if self.vms.get(vm_id) not in (Power.RUNNING, Power.PAUSED):
            raise HypervisorError("the VM has no process", {"vm_id": vm_id})

    async def reboot(self, vm_id: str) -> None:
        """Write a reboot line."""
        self._running(vm_id)
        self.consoles[vm_id] += b"fake reboot\n"

    async def pause(self, vm_id: str) -> None:
        """PAUSED."""
        self._running(vm_id)
        self.vms[vm_id] = Power.PAUSED

    async def resume(self, vm_id: str) -> None:
        """RUNNING."""
        self._running(vm_id)
        self.vms[vm_id] = Power.RUNNING

    async def console(self, vm_id: str, tail_bytes: int) -> tuple[bytes, int]:
        """The console lines written so far."""
        data = self.consoles.get(vm_id, b"")
        return data[-tail_bytes:], len(data)

    async def remove(self, vm_id: str) -> None:
        """Forget the VM."""
        self.vms.pop(vm_id, None)
        self.consoles.pop(vm_id, None)

    async def close(self) -> None:
        """Nothing to let go of."""
