"""Fixtures: a PlasmaVMC core on an in-memory store and on a file, with the fake hypervisor, in-memory stand-ins
for CreditService and PrismNET (with the errors the real ones give), and a bootable guest."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from photoncloud.common import needs
from photoncloud.common.errors import FailedPrecondition, NotFound, Unavailable
from photoncloud.common.replication import LocalLog
from photoncloud.common.testing import FakeNetwork
from photoncloud.plasmavmc.core import VmCore
from photoncloud.plasmavmc.machine import VmStateMachine
from photoncloud.plasmavmc.fake import FakeDriver
from photoncloud.plasmavmc.store import SqliteVmStore
from photoncloud.plasmavmc.testing import build_initramfs, guest_kernel


@dataclass
class Ledger:
    """CreditService's reservations, in memory: balances, PENDING/COMMITTED/RELEASED reservations."""

    balances: dict[str, int] = field(default_factory=dict)
    reservations: dict[str, dict] = field(default_factory=dict)
    down: bool = False

    def _up(self) -> None:
        if self.down:
            raise Unavailable("creditservice cannot be reached", {"dependency": "creditservice"})

    def available(self, project_id: str) -> int:
        """A project's balance less what its pending reservations hold."""
        held = sum(r["amount"] for r in self.reservations.values()
                   if r["project_id"] == project_id and r["status"] == "PENDING")
        return self.balances.get(project_id, 0) - held

    def pending(self) -> list[dict]:
        """The reservations neither committed nor released."""
        return [r for r in self.reservations.values() if r["status"] == "PENDING"]

    async def reserve(self, project_id: str, amount: int, description: str, ttl_seconds: int) -> str:
        """Hold amount, or INSUFFICIENT_CREDITS as the ledger says it."""
        self._up()
        if amount > self.available(project_id):
            raise FailedPrecondition("insufficient credits", {"reason": "INSUFFICIENT_CREDITS",
                                                              "available": self.available(project_id),
                                                              "requested": amount})
        id = uuid.uuid4().hex
        self.reservations[id] = {"project_id": project_id, "amount": amount, "status": "PENDING"}
        return id

    def _pending(self, id: str) -> dict:
        if id not in self.reservations:
            raise NotFound("reservation not found", {"id": id})
        if self.reservations[id]["status"] != "PENDING":
            raise FailedPrecondition("resolved already", {"reason": "ALREADY_RESOLVED"})
        return self.reservations[id]

    async def commit(self, reservation_id: str, amount: int, resource_id: str) -> None:
        """Charge a pending reservation."""
        self._up()
        reservation = self._pending(reservation_id)
        reservation["status"] = "COMMITTED"
        self.balances[reservation["project_id"]] -= amount

    async def release(self, reservation_id: str, reason: str) -> None:
        """Free a pending reservation."""
        self._up()
        self._pending(reservation_id)["status"] = "RELEASED"


@pytest.fixture
def ledger():
    """Project p1 holds 1000 credits."""
    return Ledger(balances={"p1": 1000})


@pytest.fixture
def network():
    """Subnets s1 and s2 of p1, and one of p2."""
    return FakeNetwork({"s1": ("p1", "10.0.1.0/24"), "s2": ("p1", "10.0.2.0/24"), "other": ("p2", "10.9.0.0/24")})


@pytest.fixture(params=["memory", "file"])
async def vmc(request, tmp_path, ledger, network):
    """A VmCore over an in-memory store (reads run on the applying thread) and over a file
    (reads run on the loop, from a snapshot of the last commit), the fake hypervisor, the in-memory ledger and ports."""
    store = SqliteVmStore(":memory:" if request.param == "memory" else tmp_path / "vms.sqlite3")
    machine = VmStateMachine(store)
    core = VmCore(machine, LocalLog(machine), FakeDriver(), tmp_path / "images", ledger, network)
    yield core
    await core.close()
    store.close()


@pytest.fixture(scope="session")
def guest(tmp_path_factory):
    """(kernel, initramfs, marker): a guest that prints marker on its console once booted, and powers
    off when its power button is pressed."""
    marker = f"PLASMAVMC-GUEST-UP-{uuid.uuid4().hex[:8]}"
    needs.tool("qemu-system-x86_64", "qemu-system-x86")
    try:
        initrd = build_initramfs(tmp_path_factory.mktemp("guest") / "initramfs.cpio", marker, power_button=True)
        return guest_kernel(), initrd, marker
    except FileNotFoundError as missing:  # no kernel or no static busybox: the message names the package
        needs.missing(str(missing))
