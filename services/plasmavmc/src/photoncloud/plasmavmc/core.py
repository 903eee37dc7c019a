"""PlasmaVMC's domain: flavors, images and VMs, whose states change only along TRANSITIONS.

Anchors: OpenStack Nova (flavors, server actions, the vm_state machine, the console log) and
Firecracker/libvirt (one hypervisor process per VM, driven over a control socket).

The hypervisor, CreditService and PrismNET are side effects outside the state machine. Every VM
transition is a command (commands.py) applied by VmStateMachine (machine.py): `Begin` checks,
atomically, that the action is allowed in the VM's current state and records its transient state
(STARTING, STOPPING, DELETING); the core (here) then drives the driver and the other services,
and `Settle` records the outcome. Because the transient state is durable, a PlasmaVMC that
restarts finds every VM that was mid-action and settles it (`reconcile`), and one lock per VM
keeps two actions on a VM from interleaving.

The VM life cycle (the action, the states it is allowed from, its transient state, its result):

| action | from | while | to (failure) |
|---|---|---|---|
| create | - | CREATING | STOPPED (nothing left behind) |
| start | STOPPED, ERROR | STARTING | RUNNING (ERROR) |
| stop | RUNNING, PAUSED, ERROR | STOPPING | STOPPED (ERROR) |
| reboot | RUNNING | - | RUNNING |
| pause | RUNNING | - | PAUSED |
| resume | PAUSED | - | RUNNING |
| delete | any state but CREATING, STARTING, STOPPING | DELETING | gone (stays DELETING; delete again) |

A start whose hour cannot be reserved is refused and leaves the VM as it was. Without an action:
a RUNNING or PAUSED VM whose guest powers off becomes STOPPED; one whose QEMU process dies or
fails becomes ERROR.

Charging: a VM costs `price_per_hour` credits (its flavor's; for an explicit size, per vCPU and
per GiB of memory at the configured rates). Creating a VM reserves one hour with CreditService
(refused with the ledger's INSUFFICIENT_CREDITS when the wallet is short); a successful start
commits it (the charge); each later start reserves and commits another hour. A failed start
releases what it reserved; deleting a VM releases a reservation still pending. Metering beyond one
hour per start would need a credential of PlasmaVMC's own (calls carry the caller's token).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from photoncloud.common import auth, paging
from photoncloud.common.errors import FailedPrecondition, InvalidArgument, ServiceError
from photoncloud.common.network import Network
from photoncloud.common.projects import Projects
from photoncloud.common.replication import Log, Scan

from .commands import (AddImage, Begin, Command, CreateFlavor, CreateVm, DeleteFlavor, DeleteImage, RemoveVm, Settle,
                       UpdateFlavor)
from .dependencies import Billing
from .driver import Driver, HypervisorError, NicSpec, Power, VmSpec
from .machine import TRANSITIONS, VmStateMachine, found
from .records import Flavor, Image, ImageFile, Nic, State, Vm

log = logging.getLogger("photoncloud.plasmavmc")
R = TypeVar("R")

VMS_READ, VMS_WRITE = "plasmavmc:vms:read", "plasmavmc:vms:write"
IMAGES_READ, IMAGES_MANAGE = "plasmavmc:images:read", "plasmavmc:images:manage"
FLAVORS_READ, FLAVORS_MANAGE = "plasmavmc:flavors:read", "plasmavmc:flavors:manage"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,62}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_TEXT = 1024
MAX_VCPUS = 64
MIN_MEMORY_MIB, MAX_MEMORY_MIB = 128, 1024 * 1024  # below 128 MiB a Linux guest barely boots
MAX_DISK_GIB = 64 * 1024
MAX_PRICE = 10**12
MAX_NICS = 8
DEFAULT_CMDLINE = "console=ttyS0 panic=-1"
DEFAULT_STOP_TIMEOUT, MAX_STOP_TIMEOUT = 30, 600
DEFAULT_CONSOLE_BYTES, MAX_CONSOLE_BYTES = 64 * 1024, 1024 * 1024
QCOW2_MAGIC = b"QFI\xfb"
HOUR = "the first hour"


@dataclass(frozen=True)
class Page:
    """A page of a listing."""

    items: list[Any]
    next_page_token: str


@dataclass(frozen=True)
class Console:
    """The end of a VM's serial console log."""

    vm_id: str
    output: str
    size_bytes: int
    truncated: bool



# -- validation -----------------------------------------------------------------------------------

def check_name(value: str, field: str = "name") -> str:
    """A resource name: 1-63 letters, digits, spaces or . _ - (starting with a letter or digit)."""
    if not _NAME.match(value or ""):
        raise InvalidArgument(f"{field} must be 1-63 letters, digits, spaces or . _ - starting with a letter or digit",
                              {"field": field})
    return value


def check_tenant(value: str, field: str) -> str:
    """An org or project id."""
    if not _TENANT.match(value or ""):
        raise InvalidArgument(f"{field} must be 1-128 letters, digits or . _ : -", {"field": field})
    return value


def check_text(value: str, field: str = "description") -> str:
    """Free text of bounded length."""
    if len(value) > MAX_TEXT:
        raise InvalidArgument(f"{field} must be at most {MAX_TEXT} characters", {"field": field})
    return value


def check_range(value: int, low: int, high: int, field: str) -> int:
    """An integer within [low, high]."""
    if not low <= value <= high:
        raise InvalidArgument(f"{field} must be between {low} and {high}", {"field": field})
    return value


def check_sha256(value: str, field: str) -> str:
    """An expected digest: 64 hex digits (or empty: none expected)."""
    value = value.lower()
    if value and not _SHA256.match(value):
        raise InvalidArgument(f"{field} must be 64 hexadecimal digits", {"field": field})
    return value


def copy_hashed(source: Path, target: Path) -> ImageFile:
    """Copy source to target, returning its size and SHA-256 as copied (what is hashed is what boots)."""
    digest, size = hashlib.sha256(), 0
    # 0600 whatever the source's mode: a copy of a host file is PlasmaVMC's, not every local user's
    with open(source, "rb") as src, open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
    return ImageFile(size, digest.hexdigest())


@dataclass
class Pricing:
    """What an explicitly sized VM costs per hour (a flavor has its own price)."""

    vcpu_hour: int = 10
    memory_gib_hour: int = 5

    def price(self, vcpus: int, memory_mib: int) -> int:
        """Per vCPU, plus per started GiB of memory."""
        return vcpus * self.vcpu_hour + -(-memory_mib // 1024) * self.memory_gib_hour


# -- the core -------------------------------------------------------------------------------------

@dataclass
class Settings:
    """The core's knobs."""

    pricing: Pricing = field(default_factory=Pricing)
    reservation_ttl_seconds: int = 3600  # how long a created VM's first hour stays reserved
    monitor_seconds: float = 1.0  # how often VM processes are checked


class VmCore:
    """PlasmaVMC's operations: authorize, validate, propose commands, drive the hypervisor."""

    def __init__(self, machine: VmStateMachine, log: Log, driver: Driver, images_root: Path,
                 billing: Billing | None = None, network: Network | None = None, projects: Projects | None = None,
                 settings: Settings | None = None, clock: Callable[[], float] = time.time):
        self.machine = machine
        self.store = machine.store
        self.log = log
        self.driver = driver
        self.images_root = Path(images_root)
        self.billing = billing  # None: VMs are free (tests without CreditService)
        self.network = network  # None: VMs may not have NICs
        self.projects = projects  # IAM, to check that a project exists (None: trust the request)
        self.settings = settings or Settings()
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._monitor: asyncio.Task[None] | None = None

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _require(permission: str, org_id: str = "", project_id: str = "") -> None:
        principal = auth.current()
        if principal is not None:  # None: an in-process caller (tests), or a server without auth
            principal.require(permission, org_id, project_id)

    async def _owner(self, permission: str, org_id: str, project_id: str) -> str:
        """The org of the project a new VM goes to, once the caller may create it there."""
        check_tenant(project_id, "project_id")
        if org_id or self.projects is None:
            check_tenant(org_id, "org_id")
        self._require(permission)
        if self.projects is not None:
            org_id = await self.projects.resolve(project_id, org_id)
        self._require(permission, org_id, project_id)
        return org_id

    async def _read(self, query: Callable[[], R]) -> R:
        return await self.log.read(query)

    async def _propose(self, command: Command, result: type[R]) -> R:
        """Apply command through the log; its result is a result (as the state machine returns for it)."""
        return cast(R, await self.log.propose(command))

    def _network(self) -> Network:
        """The network service VMs with NICs need."""
        if self.network is None:
            raise FailedPrecondition("this PlasmaVMC has no network service", {"reason": "NO_NETWORK"})
        return self.network

    def _billing(self) -> Billing:
        """The billing service a VM with a reservation needs."""
        if self.billing is None:
            raise FailedPrecondition("this PlasmaVMC has no billing service", {"reason": "NO_BILLING"})
        return self.billing

    def _lock(self, vm_id: str) -> asyncio.Lock:
        return self._locks.setdefault(vm_id, asyncio.Lock())

    async def _vm(self, id: str, permission: str) -> Vm:
        vm = found(await self._read(lambda: self.store.vm(id)), "VM", id)
        self._require(permission, vm.org_id, vm.project_id)
        return vm

    @staticmethod
    def _after(page_token: str) -> str:
        if not page_token:
            return ""
        after = paging.decode_token(page_token).get("after")
        if not isinstance(after, str):
            raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
        return after

    async def _page(self, query: Callable[[str, int], list[Any]], page_size: int, page_token: str) -> Page:
        limit, after = paging.page_size(page_size), self._after(page_token)
        rows = await self._read(lambda: query(after, limit + 1))
        token = paging.encode_token({"after": rows[limit - 1].id}) if len(rows) > limit else ""
        return Page(rows[:limit], token)

    async def _settle(self, vm_id: str, state: State, **fields: Any) -> Vm:
        return await self._propose(Settle(vm_id, state, self.clock(), **fields), Vm)

    # -- flavors ---------------------------------------------------------------------------------

    async def create_flavor(self, name: str, vcpus: int, memory_mib: int, disk_gib: int = 0,
                            price_per_hour: int = 0, description: str = "") -> Flavor:
        """Add a flavor (operators); names are unique."""
        self._require(FLAVORS_MANAGE)
        check_name(name)
        check_range(vcpus, 1, MAX_VCPUS, "vcpus")
        check_range(memory_mib, MIN_MEMORY_MIB, MAX_MEMORY_MIB, "memory_mib")
        check_range(disk_gib, 0, MAX_DISK_GIB, "disk_gib")
        check_range(price_per_hour, 0, MAX_PRICE, "price_per_hour")
        check_text(description)
        now = self.clock()
        return await self._propose(CreateFlavor(Flavor(uuid.uuid4().hex, name, vcpus, memory_mib, disk_gib,
                                                       price_per_hour, description, now, now)), Flavor)

    async def _flavor(self, id_or_name: str) -> Flavor:
        flavor = await self._read(lambda: self.store.flavor(id_or_name) or self.store.flavor_named(id_or_name))
        return found(flavor, "flavor", id_or_name)

    async def flavor(self, id_or_name: str) -> Flavor:
        """A flavor, by id or name."""
        self._require(FLAVORS_READ)
        return await self._flavor(id_or_name)

    async def flavors(self, page_size: int = 0, page_token: str = "") -> Page:
        """Every flavor."""
        self._require(FLAVORS_READ)
        return await self._page(self.store.flavors, page_size, page_token)

    async def update_flavor(self, id: str, price_per_hour: int | None = None,
                            description: str | None = None) -> Flavor:
        """Change a flavor's price or description (operators); existing VMs keep their price."""
        self._require(FLAVORS_MANAGE)
        if price_per_hour is not None:
            check_range(price_per_hour, 0, MAX_PRICE, "price_per_hour")
        if description is not None:
            check_text(description)
        flavor = await self._flavor(id)
        return await self._propose(UpdateFlavor(flavor.id, price_per_hour, description, self.clock()), Flavor)

    async def delete_flavor(self, id: str) -> Flavor:
        """Delete a flavor (operators); VMs made with it keep their size and price."""
        self._require(FLAVORS_MANAGE)
        flavor = await self._flavor(id)
        return await self._propose(DeleteFlavor(flavor.id), Flavor)

    # -- images ----------------------------------------------------------------------------------

    def image_path(self, image_id: str, role: str) -> Path:
        """Where an image's file (kernel, initrd or disk) is kept."""
        return self.images_root / image_id / role

    async def register_image(self, name: str, kernel_path: str = "", initrd_path: str = "", disk_path: str = "",
                             cmdline: str = "", description: str = "", kernel_sha256: str = "",
                             initrd_sha256: str = "", disk_sha256: str = "") -> Image:
        """Copy a kernel (and initrd) or a disk image from host paths into PlasmaVMC (operators).

        The files are copied, not referenced: an image must not change or vanish under the VMs
        booting it. Each file's SHA-256 is computed on the copy, and checked when one is given.
        """
        self._require(IMAGES_MANAGE)
        check_name(name)
        check_text(description)
        check_text(cmdline, "cmdline")
        expected = {"kernel": check_sha256(kernel_sha256, "kernel_sha256"),
                    "initrd": check_sha256(initrd_sha256, "initrd_sha256"),
                    "disk": check_sha256(disk_sha256, "disk_sha256")}
        if bool(kernel_path) == bool(disk_path):
            raise InvalidArgument("give kernel_path (with initrd_path or not) or disk_path", {"field": "kernel_path"})
        if initrd_path and not kernel_path:
            raise InvalidArgument("initrd_path goes with kernel_path", {"field": "initrd_path"})
        sources = {role: Path(path) for role, path in
                   (("kernel", kernel_path), ("initrd", initrd_path), ("disk", disk_path)) if path}
        for role, path in sources.items():
            if not path.is_absolute():
                raise InvalidArgument(f"{role}_path must be an absolute path", {"field": f"{role}_path"})
            if not path.is_file():
                raise InvalidArgument(f"{role}_path is not a readable file on PlasmaVMC's host",
                                      {"field": f"{role}_path"})
        image_id = uuid.uuid4().hex
        directory = self.images_root / image_id
        files: dict[str, ImageFile] = {}
        try:
            directory.mkdir(parents=True, mode=0o700)
            for role, path in sources.items():
                try:
                    files[role] = await asyncio.to_thread(copy_hashed, path, directory / role)
                except OSError as exc:
                    raise InvalidArgument(f"{role}_path cannot be read: {exc.strerror}",
                                          {"field": f"{role}_path"}) from None
                if expected[role] and expected[role] != files[role].sha256:
                    raise InvalidArgument(f"the {role}'s SHA-256 is not {role}_sha256",
                                          {"field": f"{role}_sha256", "sha256": files[role].sha256})
            disk_format = ""
            if "disk" in files:
                with open(directory / "disk", "rb") as f:
                    disk_format = "qcow2" if f.read(4) == QCOW2_MAGIC else "raw"
            kind = "KERNEL" if "kernel" in files else "DISK"
            image = Image(image_id, name, kind, files.get("kernel"), files.get("initrd"), files.get("disk"),
                          disk_format, (cmdline or DEFAULT_CMDLINE) if kind == "KERNEL" else "", description,
                          self.clock())
            return await self._propose(AddImage(image), Image)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, directory, True)
            raise

    async def image(self, id: str) -> Image:
        """An image."""
        self._require(IMAGES_READ)
        return found(await self._read(lambda: self.store.image(id)), "image", id)

    async def images(self, page_size: int = 0, page_token: str = "") -> Page:
        """Every image."""
        self._require(IMAGES_READ)
        return await self._page(self.store.images, page_size, page_token)

    async def delete_image(self, id: str) -> Image:
        """Delete an image no VM uses (operators; FAILED_PRECONDITION IMAGE_IN_USE otherwise)."""
        self._require(IMAGES_MANAGE)
        image = await self._propose(DeleteImage(id), Image)
        await asyncio.to_thread(shutil.rmtree, self.images_root / id, True)
        return image

    # -- VMs -------------------------------------------------------------------------------------

    async def create_vm(self, name: str, org_id: str, project_id: str, image_id: str, flavor_id: str = "",
                        vcpus: int = 0, memory_mib: int = 0, subnet_ids: list[str] | None = None,
                        description: str = "") -> Vm:
        """Create a STOPPED VM: reserve its first hour, make one attached port per subnet.

        Any failure undoes what was made (the reservation released, the ports deleted) and
        answers with the original error; if the undoing itself fails (a dependency went down in
        between), the VM is left in ERROR holding what is left, for a delete to free.
        """
        check_name(name)
        check_text(description)
        subnets = list(subnet_ids or ())
        if len(subnets) > MAX_NICS:
            raise InvalidArgument(f"at most {MAX_NICS} subnets", {"field": "subnet_ids"})
        if len(set(subnets)) != len(subnets):
            raise InvalidArgument("a subnet is named twice", {"field": "subnet_ids"})
        if subnets and self.network is None:
            raise InvalidArgument("this PlasmaVMC has no network service", {"field": "subnet_ids"})
        if flavor_id and (vcpus or memory_mib):
            raise InvalidArgument("give flavor_id or vcpus and memory_mib, not both", {"field": "flavor_id"})
        if not image_id:
            raise InvalidArgument("image_id is required", {"field": "image_id"})
        org_id = await self._owner(VMS_WRITE, org_id, project_id)
        if flavor_id:
            flavor = await self._flavor(flavor_id)
            vcpus, memory_mib, price = flavor.vcpus, flavor.memory_mib, flavor.price_per_hour
            flavor_id = flavor.id
        else:
            check_range(vcpus, 1, MAX_VCPUS, "vcpus")
            check_range(memory_mib, MIN_MEMORY_MIB, MAX_MEMORY_MIB, "memory_mib")
            price = self.settings.pricing.price(vcpus, memory_mib)
        found(await self._read(lambda: self.store.image(image_id)), "image", image_id)
        for subnet_id in subnets:
            owner = await self._network().subnet_project(subnet_id)
            if owner != project_id:
                raise InvalidArgument("the subnet belongs to another project", {"field": "subnet_ids",
                                                                                 "subnet_id": subnet_id})
        now = self.clock()
        vm = Vm(uuid.uuid4().hex, name, org_id, project_id, State.CREATING, flavor_id, vcpus, memory_mib, image_id,
                (), price, "", 0, "", description, now, now, 0.0)
        # Locked before the record exists, so that the monitor never takes it for a crashed creation.
        async with self._lock(vm.id):
            vm = await self.log.propose(CreateVm(vm))
            try:
                if price and self.billing is not None:
                    reservation = await self.billing.reserve(project_id, price, f"VM {vm.id} ({name}): {HOUR}",
                                                             self.settings.reservation_ttl_seconds)
                    vm = await self._settle(vm.id, State.CREATING, reservation_id=reservation)
                for subnet_id in subnets:
                    port = await self._network().create_port(subnet_id, f"{name}-nic{len(vm.nics)}", vm.id)
                    nic = Nic(port.id, port.subnet_id, port.ip_address, port.mac_address, port.gateway_ip,
                              port.cidr_block, port.vpc_id)
                    vm = await self._settle(vm.id, State.CREATING, nics=vm.nics + (nic,))
                return await self._settle(vm.id, State.STOPPED)
            except BaseException as exc:
                await asyncio.shield(self._undo_create(vm.id, exc))
                raise

    async def _undo_create(self, vm_id: str, cause: BaseException) -> None:
        vm = found(await self._read(lambda: self.store.vm(vm_id)), "VM", vm_id)
        left = await self._free(vm, "the VM could not be created")
        if left:
            await self._settle(vm_id, State.ERROR, last_error=f"creation failed ({cause}); delete the VM to free "
                                                         f"what it still holds")
        else:
            await self.log.propose(RemoveVm(vm_id))

    async def _free(self, vm: Vm, reason: str) -> bool:
        """Delete a VM's ports and release its pending reservation, recording progress; whether some is left."""
        left = False
        nics = list(vm.nics)
        for nic in vm.nics:
            try:
                await self._network().delete_port(nic.port_id)
                nics.remove(nic)
                vm = await self._settle(vm.id, vm.state, nics=tuple(nics))
            except Exception:  # noqa: BLE001 - recorded, freed by a later delete
                log.warning("cannot delete port %s of VM %s", nic.port_id, vm.id, exc_info=True)
                left = True
        if vm.reservation_id and self.billing is not None:
            try:
                await self.billing.release(vm.reservation_id, reason)
            except ServiceError as exc:
                if exc.code.name not in ("NOT_FOUND", "FAILED_PRECONDITION"):  # else: resolved already
                    log.warning("cannot release reservation %s of VM %s: %s", vm.reservation_id, vm.id, exc)
                    return True
            vm = await self._settle(vm.id, vm.state, reservation_id="")
        return left

    async def vm(self, id: str) -> Vm:
        """A VM."""
        return await self._vm(id, VMS_READ)

    async def vms(self, org_id: str = "", project_id: str = "", state: str = "", page_size: int = 0,
                  page_token: str = "") -> Page:
        """The VMs the caller may see, filtered by org, project and state."""
        self._require(VMS_READ)
        if state and state not in State.__members__:
            raise InvalidArgument(f"state must be one of {', '.join(State.__members__)}", {"field": "state"})
        org_id, project_id = auth.listing_scope(org_id, project_id)
        return await self._page(lambda after, limit: self.store.vms(org_id, project_id, state, after, limit),
                                page_size, page_token)

    async def _spec(self, vm: Vm) -> VmSpec:
        image = found(await self._read(lambda: self.store.image(vm.image_id)), "image", vm.image_id)
        nics = tuple(NicSpec(n.mac_address, n.ip_address, n.cidr_block, n.gateway_ip, n.port_id, n.vpc_id)
                     for n in vm.nics)

        def path(role: str, f: ImageFile | None) -> Path | None:
            return self.image_path(image.id, role) if f is not None else None

        return VmSpec(vm.id, vm.vcpus, vm.memory_mib, path("kernel", image.kernel), path("initrd", image.initrd),
                      image.cmdline, path("disk", image.disk), image.disk_format, nics)

    async def start_vm(self, id: str) -> Vm:
        """Boot a STOPPED (or ERROR) VM and commit its hour.

        An hour that cannot be reserved (short credits, CreditService down) refuses the start and
        leaves the VM as it was; a failure once QEMU is launched releases the hour and leaves ERROR.
        """
        vm = await self._vm(id, VMS_WRITE)
        async with self._lock(vm.id):
            before = vm.state if vm.state in TRANSITIONS["start"][0] else None
            vm = await self.log.propose(Begin(vm.id, "start", self.clock()))
            reservation = vm.reservation_id
            if not reservation and vm.price_per_hour and self.billing is not None:
                try:
                    reservation = await self.billing.reserve(vm.project_id, vm.price_per_hour,
                                                             f"VM {vm.id} ({vm.name}): an hour",
                                                             self.settings.reservation_ttl_seconds)
                except BaseException as exc:
                    await asyncio.shield(self._settle(vm.id, before or State.ERROR,
                                                      last_error=f"start refused: {exc}"))
                    raise
            try:
                if reservation != vm.reservation_id:
                    vm = await self._settle(vm.id, State.STARTING, reservation_id=reservation)
                await self.driver.start(await self._spec(vm))
                if reservation:
                    await self._commit(vm, reservation)
            except BaseException as exc:
                await asyncio.shield(self._fail_start(vm, exc))
                raise
            return await self._settle(vm.id, State.RUNNING, reservation_id="", charged=vm.price_per_hour
                                      if reservation else 0, last_error="", started_at=self.clock())

    async def _commit(self, vm: Vm, reservation: str) -> None:
        try:
            await self._billing().commit(reservation, vm.price_per_hour, vm.id)
        except ServiceError as exc:
            if (exc.details or {}).get("reason") != "ALREADY_RESOLVED":
                raise
            # The reservation expired between create and start: hold and charge a fresh hour.
            fresh = await self._billing().reserve(vm.project_id, vm.price_per_hour, f"VM {vm.id} ({vm.name}): an hour",
                                               self.settings.reservation_ttl_seconds)
            await self._settle(vm.id, State.STARTING, reservation_id=fresh)
            await self._billing().commit(fresh, vm.price_per_hour, vm.id)

    async def _fail_start(self, vm: Vm, cause: BaseException) -> None:
        try:
            await self.driver.kill(vm.id)
        except HypervisorError:
            log.warning("cannot kill the QEMU of VM %s after a failed start", vm.id, exc_info=True)
        vm = found(await self._read(lambda: self.store.vm(vm.id)), "VM", vm.id)
        reservation = vm.reservation_id
        if reservation and self.billing is not None:
            try:
                await self.billing.release(reservation, "the VM failed to start")
                reservation = ""
            except ServiceError as exc:
                if exc.code.name in ("NOT_FOUND", "FAILED_PRECONDITION"):
                    reservation = ""
                else:  # kept: delete releases it, or it expires
                    log.warning("cannot release reservation %s of VM %s: %s", reservation, vm.id, exc)
        await self._settle(vm.id, State.ERROR, reservation_id=reservation, last_error=f"start failed: {cause}")

    async def stop_vm(self, id: str, force: bool = False, timeout_seconds: int = 0) -> Vm:
        """Power a VM off: ACPI power button, then forced after timeout_seconds (at once with force)."""
        timeout = check_range(timeout_seconds, 0, MAX_STOP_TIMEOUT, "timeout_seconds") or DEFAULT_STOP_TIMEOUT
        vm = await self._vm(id, VMS_WRITE)
        async with self._lock(vm.id):
            vm = await self.log.propose(Begin(vm.id, "stop", self.clock()))
            try:
                graceful = await self.driver.stop(vm.id, 0 if force else timeout)
            except BaseException as exc:
                await asyncio.shield(self._settle(vm.id, State.ERROR, last_error=f"stop failed: {exc}"))
                raise
            note = "" if force or graceful else f"the guest did not power off within {timeout}s: forced"
            return await self._settle(vm.id, State.STOPPED, last_error=note)

    async def _simple(self, id: str, action: str, run: Callable[[str], Any], to: State) -> Vm:
        vm = await self._vm(id, VMS_WRITE)
        async with self._lock(vm.id):
            vm = await self.log.propose(Begin(vm.id, action, self.clock()))
            await run(vm.id)
            return await self._settle(vm.id, to)

    async def reboot_vm(self, id: str) -> Vm:
        """Reset a RUNNING VM (a hard reset)."""
        return await self._simple(id, "reboot", self.driver.reboot, State.RUNNING)

    async def pause_vm(self, id: str) -> Vm:
        """Freeze a RUNNING VM."""
        return await self._simple(id, "pause", self.driver.pause, State.PAUSED)

    async def resume_vm(self, id: str) -> Vm:
        """Let a PAUSED VM run again."""
        return await self._simple(id, "resume", self.driver.resume, State.RUNNING)

    async def delete_vm(self, id: str) -> Vm:
        """Kill the VM's process, delete its ports, release its reservation, forget it.

        If a dependency is down, the VM stays DELETING with what is left recorded, and the
        request is UNAVAILABLE: deleting again finishes the job.
        """
        vm = await self._vm(id, VMS_WRITE)
        async with self._lock(vm.id):
            vm = await self.log.propose(Begin(vm.id, "delete", self.clock()))
            await self.driver.remove(vm.id)
            nics = list(vm.nics)
            for nic in vm.nics:
                await self._network().delete_port(nic.port_id)
                nics.remove(nic)
                vm = await self._settle(vm.id, State.DELETING, nics=tuple(nics))
            if vm.reservation_id and self.billing is not None:
                try:
                    await self.billing.release(vm.reservation_id, "the VM was deleted")
                except ServiceError as exc:
                    if exc.code.name not in ("NOT_FOUND", "FAILED_PRECONDITION"):  # else: resolved already
                        raise
                vm = await self._settle(vm.id, State.DELETING, reservation_id="")
            vm = await self._propose(RemoveVm(vm.id), Vm)
        self._locks.pop(vm.id, None)
        return vm

    async def console(self, id: str, tail_bytes: int = 0) -> Console:
        """The end of the VM's serial console log."""
        tail = check_range(tail_bytes, 0, MAX_CONSOLE_BYTES, "tail_bytes") or DEFAULT_CONSOLE_BYTES
        vm = await self._vm(id, VMS_READ)
        data, size = await self.driver.console(vm.id, tail)
        return Console(vm.id, data.decode(errors="replace"), size, size > len(data))

    # -- the hypervisor's view ---------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Make each VM's recorded state agree with its process (at start-up and then periodically).

        RUNNING/PAUSED: a guest that powered off is STOPPED, a process that is gone or failed is
        ERROR, a running process is reattached (never started again). A VM left mid-action by a
        crash is settled: CREATING and STARTING become ERROR (their process killed), STOPPING
        becomes STOPPED, DELETING stays for the user's next delete. STOPPED/ERROR VMs have no process.
        """
        for vm in await self._read(Scan(self.store.vms)):  # every VM: not on the event loop
            lock = self._lock(vm.id)
            if lock.locked():
                continue  # an action is running on it
            async with lock:
                try:
                    await self._reconcile(vm.id)
                except Exception:  # noqa: BLE001 - the next round retries
                    log.warning("cannot reconcile VM %s", vm.id, exc_info=True)

    async def _reconcile(self, vm_id: str) -> None:
        vm = await self._read(lambda: self.store.vm(vm_id))
        if vm is None:
            return
        power = await self.driver.power(vm.id)
        live = (State.RUNNING, State.PAUSED)
        if vm.state in live:
            if power is Power.SHUTDOWN:
                await self.driver.kill(vm.id)
                await self._settle(vm.id, State.STOPPED, expect=live, last_error="the guest powered off")
            elif power is Power.ABSENT:
                await self.driver.kill(vm.id)  # no process: frees what it held (its NICs' TAPs)
                await self._settle(vm.id, State.ERROR, expect=live, last_error="the QEMU process exited unexpectedly")
            elif power is Power.FAILED:
                await self.driver.kill(vm.id)
                await self._settle(vm.id, State.ERROR, expect=live, last_error="the guest failed (QEMU stopped it)")
            elif power is Power.PAUSED and vm.state is State.RUNNING:
                await self._settle(vm.id, State.PAUSED, expect=live)
            elif power is Power.RUNNING and vm.state is State.PAUSED:
                await self._settle(vm.id, State.RUNNING, expect=live)
        elif vm.state in (State.CREATING, State.STARTING):
            await self.driver.kill(vm.id)
            await self._settle(vm.id, State.ERROR, expect=(vm.state,),
                               last_error=f"interrupted while {vm.state.value.lower()}: start or delete it")
        elif vm.state is State.STOPPING:
            await self.driver.kill(vm.id)
            await self._settle(vm.id, State.STOPPED, expect=(State.STOPPING,))
        elif power is not Power.ABSENT:  # STOPPED, ERROR, DELETING: no process may be left
            await self.driver.kill(vm.id)

    async def start_monitor(self) -> None:
        """Reconcile once now, then every settings.monitor_seconds in the background."""
        await self.reconcile()

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.settings.monitor_seconds)
                await self.reconcile()

        self._monitor = asyncio.get_running_loop().create_task(loop())

    async def close(self) -> None:
        """Stop watching, let go of the VMs (they keep running), stop the log."""
        if self._monitor is not None:
            self._monitor.cancel()
            try:
                await self._monitor
            except asyncio.CancelledError:
                pass
        await self.driver.close()
        await self.log.close()
