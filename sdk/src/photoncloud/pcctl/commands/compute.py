"""PlasmaVMC: `pcctl vm`, `flavor` and `image`."""

from __future__ import annotations

from typing import Any

import click

from photoncloud.sdk.vms import TRANSITIONAL

from .. import wait
from ..context import output_option, project_option, state

VM_COLUMNS = [("ID", "id"), ("NAME", "name"), ("STATE", "state"), ("VCPUS", "vcpus"), ("MEMORY_MIB", "memory_mib"),
              ("IP", "nics.0.ip_address"), ("PROJECT", "project_id")]
FLAVOR_COLUMNS = [("ID", "id"), ("NAME", "name"), ("VCPUS", "vcpus"), ("MEMORY_MIB", "memory_mib"),
                  ("PRICE_PER_HOUR", "price_per_hour")]
IMAGE_COLUMNS = [("ID", "id"), ("NAME", "name"), ("KERNEL", "kernel_path")]


def wait_settled(vm: dict[str, Any], timeout: float) -> dict[str, Any]:
    """The VM once it is in no transitional state (CREATING, STARTING, STOPPING, DELETING)."""
    vms = state().client.vms
    return wait.until(f"vm {vm['name']}", lambda: vms.get(vm["id"]), lambda v: str(v["state"]),
                      lambda v: v["state"] not in TRANSITIONAL, timeout)


@click.group()
def vm() -> None:
    """PlasmaVMC's virtual machines."""


@vm.command("create")
@click.argument("name")
@click.option("--image", "image_id", required=True, help="The image's ID.")
@click.option("--flavor", "flavor_id", default=None, help="A flavor's ID or name (or --vcpus and --memory).")
@click.option("--vcpus", type=int, default=None)
@click.option("--memory", "memory_mib", type=int, default=None, help="Memory in MiB.")
@click.option("--subnet", "subnet_ids", multiple=True, help="A NIC on this subnet; repeatable.")
@click.option("--description", default=None)
@click.option("--start", is_flag=True, help="Start it once created.")
@click.option("--wait", "wait_", is_flag=True, help="Wait until it settles (RUNNING with --start), showing its state.")
@click.option("--timeout", type=float, default=600, help="Seconds --wait waits.")
@project_option
@output_option
def vm_create(name: str, image_id: str, flavor_id: str | None, vcpus: int | None, memory_mib: int | None,
              subnet_ids: tuple[str, ...], description: str | None, start: bool, wait_: bool, timeout: float,
              project: str | None) -> None:
    """Create a VM (STOPPED, with a NIC per subnet and its first hour reserved)."""
    st = state()
    made = st.client.vms.create(name, st.project(project), image_id, flavor_id, vcpus, memory_mib,
                                list(subnet_ids) or None, description=description)
    if wait_:
        made = wait_settled(made, timeout)
    if start:
        made = st.client.vms.start(made["id"])
        if wait_:
            made = wait_settled(made, timeout)
    st.emit(made)


@vm.command("ls")
@click.option("--state", "state_", default=None, help="Only VMs in this state.")
@click.option("-p", "--project", "project", default=None, help="Only this project's.")
@output_option
def vm_ls(state_: str | None, project: str | None) -> None:
    """The VMs the token sees."""
    state().emit(list(state().client.vms.list(project_id=project, state=state_)), VM_COLUMNS)


@vm.command("get")
@click.argument("vm_id")
@output_option
def vm_get(vm_id: str) -> None:
    """One VM."""
    state().emit(state().client.vms.get(vm_id))


@vm.command("delete")
@click.argument("vm_id")
@click.option("--wait", "wait_", is_flag=True, help="Wait until it is gone, showing its state.")
@click.option("--timeout", type=float, default=300)
@output_option
def vm_delete(vm_id: str, wait_: bool, timeout: float) -> None:
    """Delete a VM (its ports and reservation go with it)."""
    vms = state().client.vms
    result = vms.delete(vm_id)
    if wait_:
        wait.until(f"vm {vm_id}", wait.gone(lambda: vms.get(vm_id)), lambda v: "gone" if v is None else v["state"],
                   lambda v: v is None, timeout)
    state().emit(result)


def action_command(action: str, summary: str, settles: bool = True) -> click.Command:
    """`pcctl vm <action> ID [--wait]`."""
    @click.argument("vm_id")
    @click.option("--wait", "wait_", is_flag=True, help="Wait until it settles, showing its state.")
    @click.option("--timeout", type=float, default=600)
    @output_option
    def command(vm_id: str, wait_: bool, timeout: float) -> None:
        result = state().client.vms.action(vm_id, action)
        if wait_ and settles:
            result = wait_settled(result, timeout)
        state().emit(result)
    command.__doc__ = summary
    return click.command(action)(command)


for _action, _summary in (("start", "Boot a VM."), ("stop", "Stop a VM (ACPI, then forced)."),
                          ("reboot", "Reboot a VM."), ("pause", "Pause a VM."), ("resume", "Resume a paused VM.")):
    vm.add_command(action_command(_action, _summary))


@vm.command("console")
@click.argument("vm_id")
@click.option("--tail-bytes", type=int, default=None, help="Only the last N bytes (default: the service's 64 KiB).")
def vm_console(vm_id: str, tail_bytes: int | None) -> None:
    """Print the serial console's log."""
    click.echo(state().client.vms.console(vm_id, tail_bytes).get("output", ""), nl=False)


@click.group()
def flavor() -> None:
    """PlasmaVMC's flavors (creating one is the operator's)."""


@flavor.command("ls")
@output_option
def flavor_ls() -> None:
    """The flavors."""
    state().emit(list(state().client.vms.flavors()), FLAVOR_COLUMNS)


@flavor.command("create")
@click.argument("name")
@click.option("--vcpus", type=int, required=True)
@click.option("--memory", "memory_mib", type=int, required=True, help="Memory in MiB.")
@click.option("--disk", "disk_gib", type=int, default=None, help="Disk in GiB.")
@click.option("--price", "price_per_hour", type=int, default=None, help="Credits per hour.")
@output_option
def flavor_create(name: str, vcpus: int, memory_mib: int, disk_gib: int | None, price_per_hour: int | None) -> None:
    """Create a flavor."""
    more = {k: v for k, v in (("disk_gib", disk_gib), ("price_per_hour", price_per_hour)) if v is not None}
    state().emit(state().client.vms.create_flavor(name, vcpus, memory_mib, **more))


@click.group()
def image() -> None:
    """PlasmaVMC's images (creating one is the operator's)."""


@image.command("ls")
@output_option
def image_ls() -> None:
    """The images."""
    state().emit(list(state().client.vms.images()), IMAGE_COLUMNS)


@image.command("create")
@click.argument("name")
@click.option("--kernel", "kernel_path", required=True, help="The kernel's path on the host.")
@click.option("--initrd", "initrd_path", default=None, help="The initrd's path on the host.")
@output_option
def image_create(name: str, kernel_path: str, initrd_path: str | None) -> None:
    """Create an image from files on the host."""
    state().emit(state().client.vms.create_image(name, kernel_path, initrd_path))


def register(root: click.Group) -> None:
    """Add vm, flavor and image to root."""
    for command in (vm, flavor, image):
        root.add_command(command)
