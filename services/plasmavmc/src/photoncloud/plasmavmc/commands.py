"""PlasmaVMC's commands: what VmStateMachine (machine.py) applies, one at a time.

Frozen dataclasses of plain values, complete in themselves: the proposer (core.py) puts in the ids
and times, so that applying a command needs no clock and no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .records import Flavor, Image, Nic, State, Vm


@dataclass(frozen=True)
class CreateFlavor:
    """Add a flavor."""

    flavor: Flavor


@dataclass(frozen=True)
class UpdateFlavor:
    """Change a flavor's price or description."""

    id: str
    price_per_hour: int | None
    description: str | None
    now: float


@dataclass(frozen=True)
class DeleteFlavor:
    """Remove a flavor."""

    id: str


@dataclass(frozen=True)
class AddImage:
    """Record an image whose files are in place."""

    image: Image


@dataclass(frozen=True)
class DeleteImage:
    """Forget an image no VM uses."""

    id: str


@dataclass(frozen=True)
class CreateVm:
    """Record a new VM, in state CREATING."""

    vm: Vm  # in state CREATING


@dataclass(frozen=True)
class Begin:
    """Start an action on a VM: refused unless machine.TRANSITIONS allows it from the VM's state."""

    id: str
    action: str
    now: float


@dataclass(frozen=True)
class Settle:
    """Record where a VM stands (an action's outcome); unset fields keep their value."""

    id: str
    state: State
    now: float
    nics: tuple[Nic, ...] | None = None
    reservation_id: str | None = None
    charged: int = 0  # added to what the VM was charged
    last_error: str | None = None
    started_at: float | None = None
    expect: tuple[State, ...] = ()  # when set, only from these states (else nothing changes)


@dataclass(frozen=True)
class RemoveVm:
    """Forget a VM whose resources are gone."""

    id: str


Command = Union[CreateFlavor, UpdateFlavor, DeleteFlavor, AddImage, DeleteImage, CreateVm, Begin, Settle, RemoveVm]
