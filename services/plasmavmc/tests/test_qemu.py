"""The QEMU driver for real: a Linux guest boots (TCG, so that it runs anywhere), prints its marker
on the serial console, pauses, resumes, resets, is stopped, survives a PlasmaVMC restart, and
leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from photoncloud.common.replication import LocalLog
from photoncloud.plasmavmc.core import VmCore
from photoncloud.plasmavmc.machine import VmStateMachine
from photoncloud.plasmavmc.driver import HypervisorError, NicSpec, Power, VmSpec
from photoncloud.plasmavmc.qemu import QemuDriver, alive
from photoncloud.plasmavmc.records import State
from photoncloud.plasmavmc.store import SqliteVmStore
from photoncloud.plasmavmc.testing import BOOT_TIMEOUT, POWER_OFF, build_initramfs, wait_for_console

def open_core(data_dir, driver=None) -> VmCore:
    """A VmCore over the store and VMs in data_dir (QEMU, TCG)."""
    store = SqliteVmStore(data_dir / "vms.sqlite3")
    machine = VmStateMachine(store)
    driver = driver or QemuDriver(data_dir / "vms", accel="tcg")
    core = VmCore(machine, LocalLog(machine), driver, data_dir / "images")
    core.closing_store = store
    return core


async def close_core(core: VmCore) -> None:
    """Close the core and its store (the VMs keep running)."""
    await core.close()
    core.closing_store.close()


async def test_a_guest_boots_pauses_resets_and_stops(tmp_path, guest):
    kernel, initrd, marker = guest
    driver = QemuDriver(tmp_path / "vms", accel="tcg")
    assert driver.describe()["accel"] == "tcg" and driver.describe()["qemu"].startswith("QEMU emulator")
    nic = NicSpec("fa:16:3e:12:34:56", "10.0.1.2", "10.0.1.0/24", "10.0.1.1")
    spec = VmSpec("guest1", 1, 128, kernel, initrd, "console=ttyS0 panic=-1", nics=(nic,))
    await driver.start(spec)
    try:
        pid = driver.pid("guest1")
        assert pid and alive(pid, "guest1")
        output = await wait_for_console(driver, "guest1", marker)
        assert "Linux version" in output  # the guest kernel's own boot messages
        # The NIC carries the port's MAC.
        qmp = await driver._client("guest1")  # noqa: SLF001 - QMP straight (the answer is a list)
        filters = await qmp.execute("query-rx-filter")
        assert [f["main-mac"] for f in filters] == ["fa:16:3e:12:34:56"]
        await driver.pause("guest1")
        assert await driver.power("guest1") is Power.PAUSED
        await driver.resume("guest1")
        assert await driver.power("guest1") is Power.RUNNING
        await driver.reboot("guest1")
        await wait_for_console(driver, "guest1", marker, after=1)  # booted a second time
        with pytest.raises(HypervisorError, match="running already"):
            await driver.start(spec)
        # The guest powers off when its ACPI power button is pressed: a graceful stop.
        assert await driver.stop("guest1", timeout=60) is True
        assert not alive(pid, "guest1") and await driver.power("guest1") is Power.ABSENT
        assert "reboot: Power down" in (await driver.console("guest1", 4096))[0].decode()
    finally:
        await driver.remove("guest1")
        await driver.close()
    assert not (tmp_path / "vms" / "guest1").exists()


async def test_a_guest_that_ignores_the_power_button_is_forced_after_the_timeout(tmp_path, guest):
    kernel, _, _ = guest
    initrd = build_initramfs(tmp_path / "deaf.cpio", "DEAF-GUEST-UP")  # no button driver in this guest
    driver = QemuDriver(tmp_path / "vms", accel="tcg")
    await driver.start(VmSpec("deaf", 1, 128, kernel, initrd, "console=ttyS0 panic=-1"))
    try:
        await wait_for_console(driver, "deaf", "DEAF-GUEST-UP")
        pid = driver.pid("deaf")
        started = time.monotonic()
        assert await driver.stop("deaf", timeout=2) is False
        assert 2 <= time.monotonic() - started < 15 and not alive(pid, "deaf")
    finally:
        await driver.remove("deaf")
        await driver.close()


async def test_a_bad_image_fails_the_start_with_qemus_reason(tmp_path):
    driver = QemuDriver(tmp_path / "vms", accel="tcg")
    with pytest.raises(HypervisorError) as failed:  # a kernel that went missing under the image
        await driver.start(VmSpec("bad", 1, 128, tmp_path / "vmlinuz", None, "console=ttyS0"))
    assert failed.value.details["reason"] == "HYPERVISOR_ERROR" and "vmlinuz" in failed.value.message
    assert driver.pid("bad") is None
    await driver.close()


async def test_vms_survive_a_restart_and_are_never_started_twice(tmp_path, guest):
    kernel, initrd, marker = guest
    core = open_core(tmp_path)
    image = await core.register_image("busybox", kernel_path=str(kernel), initrd_path=str(initrd))
    running = await core.create_vm("kept", "o1", "p1", image.id, vcpus=1, memory_mib=128)
    doomed = await core.create_vm("doomed", "o1", "p1", image.id, vcpus=1, memory_mib=128)
    await core.start_vm(running.id)
    await core.start_vm(doomed.id)
    await wait_for_console(core.driver, running.id, marker)
    pid, doomed_pid = core.driver.pid(running.id), core.driver.pid(doomed.id)
    await close_core(core)  # PlasmaVMC goes away; its VMs do not
    assert alive(pid, running.id) and alive(doomed_pid, doomed.id)
    os.kill(doomed_pid, signal.SIGKILL)  # one QEMU dies while PlasmaVMC is away
    deadline = time.monotonic() + 10
    while alive(doomed_pid, doomed.id) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)

    core = open_core(tmp_path)
    try:
        await core.reconcile()
        assert (await core.vm(running.id)).state is State.RUNNING
        assert core.driver.pid(running.id) == pid  # reattached, the same process
        failed = await core.vm(doomed.id)
        assert failed.state is State.ERROR and "exited" in failed.last_error
        console = await core.console(running.id)
        assert console.output.count(marker) == 1  # booted once only
        await core.pause_vm(running.id)  # QMP works through the new connection
        assert (await core.resume_vm(running.id)).state is State.RUNNING
        stopped = await core.stop_vm(running.id, force=True)
        assert stopped.state is State.STOPPED and not alive(pid, running.id)
        for vm in (running, doomed):
            await core.delete_vm(vm.id)
        assert not (tmp_path / "vms" / running.id).exists()
    finally:
        for vm_id in (running.id, doomed.id):
            await core.driver.remove(vm_id)
        await close_core(core)


async def test_a_guest_that_powers_itself_off_is_stopped(tmp_path, guest):
    kernel, _, _ = guest
    initrd = build_initramfs(tmp_path / "poweroff.cpio", "GOING-DOWN", then=POWER_OFF)
    core = open_core(tmp_path)
    try:
        image = await core.register_image("shortlived", kernel_path=str(kernel), initrd_path=str(initrd))
        vm = await core.create_vm("brief", "o1", "p1", image.id, vcpus=1, memory_mib=128)
        await core.start_vm(vm.id)
        pid = core.driver.pid(vm.id)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while await core.driver.power(vm.id) is not Power.SHUTDOWN:  # -no-shutdown: QEMU waits to be told
            assert time.monotonic() < deadline, (await core.console(vm.id)).output[-2000:]
            await asyncio.sleep(0.2)
        await core.reconcile()
        stopped = await core.vm(vm.id)
        assert stopped.state is State.STOPPED and stopped.last_error == "the guest powered off"
        assert not alive(pid, vm.id)
        assert (await core.start_vm(vm.id)).state is State.RUNNING  # and it boots again
        await core.delete_vm(vm.id)
    finally:
        await core.driver.remove(vm.id)
        await close_core(core)
