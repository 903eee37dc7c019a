"""PlasmaVMC's rules on an in-memory store with the fake hypervisor: flavors, images, the VM state
machine, charging, and undoing what a failed request made."""

from __future__ import annotations

import hashlib

import pytest

from photoncloud.common.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ServiceError,
                                      Unavailable)
from photoncloud.plasmavmc.commands import Begin
from photoncloud.plasmavmc.machine import TRANSITIONS
from photoncloud.plasmavmc.driver import Power
from photoncloud.plasmavmc.records import State


@pytest.fixture
def kernel(tmp_path):
    """A file standing for a kernel (the fake hypervisor never reads it)."""
    path = tmp_path / "vmlinuz"
    path.write_bytes(b"not really a kernel" * 100)
    return path


async def make_image(vmc, kernel):
    """An image of the kernel."""
    return await vmc.register_image("tiny", kernel_path=str(kernel))


async def make_vm(vmc, kernel, **fields):
    """A VM of p1 on flavor small (100 an hour), with a NIC on s1."""
    image = await make_image(vmc, kernel)
    await vmc.create_flavor("small", 1, 128, 1, 100)
    args = {"flavor_id": "small", "subnet_ids": ["s1"], **fields}
    return await vmc.create_vm("web", "o1", "p1", image.id, **args)


async def test_flavors_are_validated_unique_and_found_by_name(vmc):
    with pytest.raises(InvalidArgument) as small:
        await vmc.create_flavor("tiny", 1, 64)
    assert small.value.details == {"field": "memory_mib"}
    with pytest.raises(InvalidArgument):
        await vmc.create_flavor("tiny", 0, 128)
    flavor = await vmc.create_flavor("tiny", 1, 128, 1, 50, "the smallest")
    with pytest.raises(AlreadyExists):
        await vmc.create_flavor("tiny", 2, 256)
    assert (await vmc.flavor("tiny")).id == flavor.id
    updated = await vmc.update_flavor(flavor.id, price_per_hour=70)
    assert (updated.price_per_hour, updated.description) == (70, "the smallest")
    await vmc.delete_flavor("tiny")
    with pytest.raises(NotFound):
        await vmc.flavor(flavor.id)


async def test_an_image_is_copied_with_its_digest_and_cannot_be_deleted_while_used(vmc, kernel, tmp_path):
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"an initrd")
    image = await vmc.register_image("linux", kernel_path=str(kernel), initrd_path=str(initrd))
    assert image.kind == "KERNEL" and image.cmdline == "console=ttyS0 panic=-1"
    assert image.kernel.sha256 == hashlib.sha256(kernel.read_bytes()).hexdigest()
    assert image.size_bytes == kernel.stat().st_size + initrd.stat().st_size
    copy = vmc.image_path(image.id, "kernel")
    assert copy.read_bytes() == kernel.read_bytes() and copy != kernel
    kernel.unlink()  # the image does not depend on the original any more
    vm = await vmc.create_vm("a", "o1", "p1", image.id, vcpus=1, memory_mib=128)
    with pytest.raises(FailedPrecondition) as in_use:
        await vmc.delete_image(image.id)
    assert in_use.value.details == {"reason": "IMAGE_IN_USE", "vm_ids": [vm.id]}
    await vmc.delete_vm(vm.id)
    await vmc.delete_image(image.id)
    assert not copy.parent.exists()


async def test_image_registration_checks_paths_kinds_and_digests(vmc, kernel, tmp_path):
    with pytest.raises(InvalidArgument, match="kernel_path .* or disk_path"):
        await vmc.register_image("x")
    with pytest.raises(InvalidArgument) as relative:
        await vmc.register_image("x", kernel_path="vmlinuz")
    assert relative.value.details == {"field": "kernel_path"}
    with pytest.raises(InvalidArgument):
        await vmc.register_image("x", kernel_path=str(tmp_path / "missing"))
    with pytest.raises(InvalidArgument) as mismatch:
        await vmc.register_image("x", kernel_path=str(kernel), kernel_sha256="0" * 64)
    assert mismatch.value.details["field"] == "kernel_sha256"
    assert [p for p in (tmp_path / "images").iterdir()] == []  # the refused copy was removed
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"QFI\xfb" + b"\0" * 100)
    image = await vmc.register_image("disk", disk_path=str(disk))
    assert (image.kind, image.disk_format, image.cmdline, image.kernel) == ("DISK", "qcow2", "", None)


async def test_create_reserves_the_first_hour_and_attaches_a_port_per_subnet(vmc, kernel, ledger, network):
    vm = await make_vm(vmc, kernel, subnet_ids=["s1", "s2"])
    assert vm.state is State.STOPPED and (vm.vcpus, vm.memory_mib, vm.price_per_hour) == (1, 128, 100)
    assert [n.subnet_id for n in vm.nics] == ["s1", "s2"] and set(network.ports) == {n.port_id for n in vm.nics}
    assert ledger.reservations[vm.reservation_id] == {"project_id": "p1", "amount": 100, "status": "PENDING"}
    started = await vmc.start_vm(vm.id)
    assert (started.state, started.charged, started.reservation_id) == (State.RUNNING, 100, "")
    assert ledger.reservations[vm.reservation_id]["status"] == "COMMITTED" and ledger.balances["p1"] == 900
    await vmc.stop_vm(vm.id)
    again = await vmc.start_vm(vm.id)  # each start is an hour
    assert again.charged == 200 and ledger.balances["p1"] == 800 and not ledger.pending()


async def test_short_credits_refuse_the_vm_with_the_ledgers_error_and_leave_nothing(vmc, kernel, ledger, network):
    ledger.balances["p1"] = 50
    with pytest.raises(FailedPrecondition) as short:
        await make_vm(vmc, kernel)
    assert short.value.details["reason"] == "INSUFFICIENT_CREDITS"
    assert (await vmc.vms()).items == [] and network.ports == {} and not ledger.pending()


@pytest.mark.parametrize("where", ["creditservice", "prismnet", "prismnet-second-port"])
async def test_a_dependency_down_is_unavailable_and_leaves_nothing_half_made(vmc, kernel, ledger, network, where):
    if where == "creditservice":
        ledger.down = True
    elif where == "prismnet":
        network.fail_after = 0
    else:
        network.fail_after = 1
    with pytest.raises(Unavailable) as down:
        await make_vm(vmc, kernel, subnet_ids=["s1", "s2"])
    assert down.value.details["dependency"] == where.split("-")[0]
    assert (await vmc.vms()).items == [] and not ledger.pending()
    if where == "prismnet-second-port":
        assert network.ports == {}  # the first port was deleted again


async def test_a_failed_undo_leaves_an_error_vm_that_delete_cleans(vmc, kernel, ledger, network):
    network.fail_after, network.stay_down = 1, True  # the second port fails; PrismNET stays down while undoing
    with pytest.raises(Unavailable):
        await make_vm(vmc, kernel, subnet_ids=["s1", "s2"])
    [vm] = (await vmc.vms()).items
    assert vm.state is State.ERROR and len(vm.nics) == 1 and "delete" in vm.last_error
    assert not ledger.pending()  # CreditService was up: the hour was released
    network.down = False
    await vmc.delete_vm(vm.id)
    assert network.ports == {} and (await vmc.vms()).items == []


async def test_subnets_of_another_project_are_refused(vmc, kernel):
    with pytest.raises(InvalidArgument) as other:
        await make_vm(vmc, kernel, subnet_ids=["other"])
    assert other.value.details["field"] == "subnet_ids"


async def test_impossible_transitions_are_failed_precondition(vmc, kernel):
    vm = await make_vm(vmc, kernel)
    for action in ("stop", "reboot", "pause", "resume"):
        with pytest.raises(FailedPrecondition) as refused:
            await getattr(vmc, f"{action}_vm")(vm.id)
        assert refused.value.details["reason"] == "INVALID_STATE" and refused.value.details["state"] == "STOPPED"
    await vmc.start_vm(vm.id)
    with pytest.raises(FailedPrecondition):
        await vmc.start_vm(vm.id)
    with pytest.raises(FailedPrecondition):
        await vmc.resume_vm(vm.id)
    assert (await vmc.pause_vm(vm.id)).state is State.PAUSED
    assert await vmc.driver.power(vm.id) is Power.PAUSED
    with pytest.raises(FailedPrecondition):
        await vmc.reboot_vm(vm.id)
    assert (await vmc.resume_vm(vm.id)).state is State.RUNNING
    assert (await vmc.reboot_vm(vm.id)).state is State.RUNNING
    assert b"fake reboot" in (await vmc.driver.console(vm.id, 1000))[0]
    stopped = await vmc.stop_vm(vm.id, force=True)
    assert stopped.state is State.STOPPED and await vmc.driver.power(vm.id) is Power.ABSENT
    assert set(TRANSITIONS) == {"start", "stop", "reboot", "pause", "resume", "delete"}


async def test_a_failed_start_releases_the_hour_and_leaves_error(vmc, kernel, ledger):
    vm = await make_vm(vmc, kernel)
    vmc.driver.fail_next_start = True
    with pytest.raises(ServiceError) as failed:
        await vmc.start_vm(vm.id)
    assert failed.value.details["reason"] == "HYPERVISOR_ERROR"
    vm = await vmc.vm(vm.id)
    assert vm.state is State.ERROR and "injected" in vm.last_error and vm.reservation_id == "" and vm.charged == 0
    assert not ledger.pending() and ledger.balances["p1"] == 1000
    started = await vmc.start_vm(vm.id)  # ERROR may be started again: a fresh hour is reserved and charged
    assert (started.state, started.charged, started.last_error) == (State.RUNNING, 100, "")


async def test_a_start_the_wallet_cannot_pay_for_is_refused_and_changes_nothing(vmc, kernel, ledger):
    vm = await make_vm(vmc, kernel)
    await vmc.start_vm(vm.id)
    await vmc.stop_vm(vm.id)
    ledger.balances["p1"] = 50  # an hour costs 100
    with pytest.raises(FailedPrecondition) as short:
        await vmc.start_vm(vm.id)
    assert short.value.details["reason"] == "INSUFFICIENT_CREDITS"
    vm = await vmc.vm(vm.id)
    assert vm.state is State.STOPPED and "INSUFFICIENT" not in vm.last_error and "start refused" in vm.last_error
    assert await vmc.driver.power(vm.id) is Power.ABSENT and not ledger.pending()


async def test_an_expired_reservation_is_replaced_at_start(vmc, kernel, ledger):
    vm = await make_vm(vmc, kernel)
    ledger.reservations[vm.reservation_id]["status"] = "EXPIRED"
    started = await vmc.start_vm(vm.id)
    assert started.charged == 100 and ledger.balances["p1"] == 900


async def test_delete_kills_frees_the_ports_and_releases_a_pending_hour(vmc, kernel, ledger, network):
    vm = await make_vm(vmc, kernel)
    network.down = True
    with pytest.raises(Unavailable):
        await vmc.delete_vm(vm.id)
    assert (await vmc.vm(vm.id)).state is State.DELETING
    network.down = False
    deleted = await vmc.delete_vm(vm.id)  # deleting again finishes the job
    assert deleted.nics == () and network.ports == {} and not ledger.pending()
    with pytest.raises(NotFound):
        await vmc.vm(vm.id)


async def test_reconcile_follows_the_processes(vmc, kernel):
    image = await make_image(vmc, kernel)
    a, b, c = [await vmc.create_vm(n, "o1", "p1", image.id, vcpus=1, memory_mib=128) for n in "abc"]
    for vm in (a, b, c):
        await vmc.start_vm(vm.id)
    vmc.driver.vms[a.id] = Power.SHUTDOWN  # the guest powered itself off
    del vmc.driver.vms[b.id]  # QEMU died
    await vmc.reconcile()
    assert (await vmc.vm(a.id)).state is State.STOPPED and await vmc.driver.power(a.id) is Power.ABSENT
    assert (await vmc.vm(b.id)).state is State.ERROR
    assert (await vmc.vm(c.id)).state is State.RUNNING  # reattached, not started again
    assert vmc.driver.consoles[c.id].count(b"fake boot") == 1


async def test_an_interrupted_start_becomes_error_and_its_process_is_killed(vmc, kernel):
    vm = await make_vm(vmc, kernel)
    await vmc.log.propose(Begin(vm.id, "start", 0.0))
    vmc.driver.vms[vm.id] = Power.RUNNING  # as if PlasmaVMC died between launching QEMU and recording it
    await vmc.reconcile()
    vm = await vmc.vm(vm.id)
    assert vm.state is State.ERROR and "interrupted" in vm.last_error and await vmc.driver.power(vm.id) is Power.ABSENT


async def test_listing_filters_by_state_and_project_and_pages(vmc, kernel, ledger):
    ledger.balances["p2"] = 1000
    image = await make_image(vmc, kernel)
    made = [await vmc.create_vm(f"vm{i}", "o1", "p1" if i % 2 else "p2", image.id, vcpus=1, memory_mib=128)
            for i in range(5)]
    await vmc.start_vm(made[1].id)
    assert [v.id for v in (await vmc.vms(state="RUNNING")).items] == [made[1].id]
    assert len((await vmc.vms(project_id="p1")).items) == 2
    first = await vmc.vms(page_size=2)
    rest = await vmc.vms(page_size=10, page_token=first.next_page_token)
    assert len(first.items) == 2 and len(rest.items) == 3 and rest.next_page_token == ""
    with pytest.raises(InvalidArgument):
        await vmc.vms(state="ASLEEP")
