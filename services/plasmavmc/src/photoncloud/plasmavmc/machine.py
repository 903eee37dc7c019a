"""PlasmaVMC's deterministic state machine: it applies the commands (commands.py) to the store.

A VM's state changes only along TRANSITIONS. `Begin` checks here, in one step with recording the
transient state, that the action is allowed from the VM's current state, so that two concurrent
actions can never both pass; the hypervisor and the other services are driven outside, by the
core, which then proposes `Settle`. No clock, no randomness: the proposer puts ids and times into
the commands.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from photoncloud.common.errors import AlreadyExists, FailedPrecondition, NotFound
from photoncloud.common.sqlite import SqliteStateMachine

from .commands import (AddImage, Begin, Command, CreateFlavor, CreateVm, DeleteFlavor, DeleteImage, RemoveVm, Settle,
                       UpdateFlavor)
from .records import Flavor, Image, State, Vm

if TYPE_CHECKING:
    from .store import SqliteVmStore

R = TypeVar("R")

S = State
# action: (states it may start from, the state recorded while it runs (None: unchanged))
TRANSITIONS: dict[str, tuple[tuple[State, ...], State | None]] = {
    "start": ((S.STOPPED, S.ERROR), S.STARTING),
    "stop": ((S.RUNNING, S.PAUSED, S.ERROR), S.STOPPING),
    "reboot": ((S.RUNNING,), None),
    "pause": ((S.RUNNING,), None),
    "resume": ((S.PAUSED,), None),
    "delete": ((S.STOPPED, S.RUNNING, S.PAUSED, S.ERROR, S.DELETING), S.DELETING),
}


def found(record: R | None, what: str, id: str) -> R:
    """record, or NOT_FOUND naming what is missing."""
    if record is None:
        raise NotFound(f"{what} not found", {"id": id})
    return record


def refused(vm: Vm, action: str) -> FailedPrecondition:
    """The error of an action the VM's state does not allow."""
    allowed = [s.value for s in TRANSITIONS[action][0]]
    return FailedPrecondition(f"cannot {action} a VM that is {vm.state.value}",
                              {"reason": "INVALID_STATE", "state": vm.state.value, "action": action,
                               "allowed_states": allowed})


class VmStateMachine(SqliteStateMachine):
    """Applies PlasmaVMC's commands to the store. Deterministic: ids and times come in the commands."""

    store: SqliteVmStore
    snapshot_reads = True  # its whole state is the store's: nothing kept in Python while applying

    def execute(self, c: Command) -> object:
        """Apply one command, by its type's name (CreateFlavor runs `_create_flavor`)."""
        handler = getattr(self, "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", type(c).__name__).lower())
        return handler(c)

    def _create_flavor(self, c: CreateFlavor) -> Flavor:
        if self.store.flavor_named(c.flavor.name) is not None:
            raise AlreadyExists("a flavor with this name exists", {"name": c.flavor.name})
        self.store.save_flavor(c.flavor)
        return c.flavor

    def _update_flavor(self, c: UpdateFlavor) -> Flavor:
        flavor = found(self.store.flavor(c.id), "flavor", c.id)
        flavor = replace(flavor, price_per_hour=flavor.price_per_hour if c.price_per_hour is None
                         else c.price_per_hour,
                         description=flavor.description if c.description is None else c.description,
                         updated_at=c.now)
        self.store.save_flavor(flavor)
        return flavor

    def _delete_flavor(self, c: DeleteFlavor) -> Flavor:
        flavor = found(self.store.flavor(c.id), "flavor", c.id)
        self.store.delete_flavor(c.id)
        return flavor

    def _add_image(self, c: AddImage) -> Image:
        self.store.save_image(c.image)
        return c.image

    def _delete_image(self, c: DeleteImage) -> Image:
        image = found(self.store.image(c.id), "image", c.id)
        users = self.store.image_users(c.id)
        if users:
            raise FailedPrecondition(f"the image is used by {len(users)} VM(s); delete them first",
                                     {"reason": "IMAGE_IN_USE", "vm_ids": users})
        self.store.delete_image(c.id)
        return image

    def _create_vm(self, c: CreateVm) -> Vm:
        # Checked here, in one step with the insert, so that a concurrent image delete cannot win.
        found(self.store.image(c.vm.image_id), "image", c.vm.image_id)
        if self.store.vm(c.vm.id) is not None:
            raise AlreadyExists("a VM with this id exists", {"id": c.vm.id})
        self.store.save_vm(c.vm)
        return c.vm

    def _begin(self, c: Begin) -> Vm:
        vm = found(self.store.vm(c.id), "VM", c.id)
        allowed, during = TRANSITIONS[c.action]
        if vm.state not in allowed:
            raise refused(vm, c.action)
        if during is not None and during is not vm.state:
            vm = replace(vm, state=during, updated_at=c.now)
            self.store.save_vm(vm)
        return vm

    def _settle(self, c: Settle) -> Vm:
        vm = found(self.store.vm(c.id), "VM", c.id)
        if c.expect and vm.state not in c.expect:
            return vm
        vm = replace(vm, state=c.state, updated_at=c.now, charged=vm.charged + c.charged,
                     nics=vm.nics if c.nics is None else c.nics,
                     reservation_id=vm.reservation_id if c.reservation_id is None else c.reservation_id,
                     last_error=vm.last_error if c.last_error is None else c.last_error,
                     started_at=vm.started_at if c.started_at is None else c.started_at)
        self.store.save_vm(vm)
        return vm

    def _remove_vm(self, c: RemoveVm) -> Vm:
        vm = found(self.store.vm(c.id), "VM", c.id)
        self.store.delete_vm(c.id)
        return vm
