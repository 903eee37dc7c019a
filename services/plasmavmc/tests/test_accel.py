"""`auto` chooses KVM only once a test guest has really run on it, and otherwise falls back to TCG saying
why, in the log and in what /health shows (the driver's description); the answer is kept per process."""

from __future__ import annotations

import json
import logging
import subprocess
import time

import pytest

from photoncloud.common import needs
from photoncloud.common.testing import DIRECT, ServiceProcess
from photoncloud.plasmavmc import accel
from photoncloud.plasmavmc.driver import VmSpec
from photoncloud.plasmavmc.qemu import QemuDriver


def fake_qemu(tmp_path, name: str, body: str) -> str:
    """An executable standing in for qemu-system-x86_64, running the shell body."""
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def device_works(monkeypatch):
    """/dev/kvm opens and creates VMs (as under nested virtualisation, where guests may still hang)."""
    monkeypatch.setattr(accel, "kvm_device_usable", lambda device: None)


def test_without_the_device_auto_is_tcg_and_says_why(tmp_path, caplog):
    device = str(tmp_path / "kvm")  # absent
    with caplog.at_level(logging.WARNING, logger="photoncloud.plasmavmc.accel"):
        driver = QemuDriver(tmp_path / "vms", accel="auto", kvm_device=device)
    described = driver.describe()
    assert described["accel"] == "tcg" and described["kvm"] is False
    assert described["accel_reason"] == f"{device} cannot be opened (No such file or directory)"
    command = driver.command(VmSpec("vm1", 1, 128), qmp_fd=3)
    assert command[command.index("-accel") + 1] == "tcg"  # what the guests are started with
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"guests are emulated (TCG, much slower) because {device} cannot be opened "
                      "(No such file or directory)"]


def test_a_device_that_is_no_kvm_device_is_refused(tmp_path):
    device = tmp_path / "not-kvm"
    device.write_bytes(b"")
    choice = accel.choose("qemu-system-x86_64", str(device))
    assert choice.accel == "tcg"
    assert choice.reason.startswith(f"{device} ")  # the ioctls fail on a plain file


def test_a_guest_that_hangs_under_kvm_falls_back_within_the_bound(tmp_path, device_works, caplog):
    qemu = fake_qemu(tmp_path, "hanging-qemu", "exec sleep 60")
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="photoncloud.plasmavmc.accel"):
        choice = accel.choose(qemu, accel.KVM_DEVICE, 1.0)
    assert time.monotonic() - began < 10
    assert choice.accel == "tcg"
    assert choice.reason.startswith("a test guest under KVM did not finish within 1s")
    assert any("did not finish within 1s" in r.getMessage() for r in caplog.records)


def test_a_qemu_that_cannot_use_kvm_falls_back_with_its_words(tmp_path, device_works):
    said = "qemu-system-x86_64: -accel kvm: Could not access KVM kernel module: Permission denied"
    qemu = fake_qemu(tmp_path, "refusing-qemu", f'echo "{said}" >&2\nexit 1')
    choice = accel.choose(qemu)
    assert choice.accel == "tcg"
    assert choice.reason == ("a test guest under KVM failed (qemu-system-x86_64: -accel kvm: Could not access KVM "
                             "kernel module: Permission denied)")


def test_a_guest_that_ends_otherwise_than_the_probe_says_is_not_trusted(tmp_path, device_works):
    """QEMU exiting 0 (the guest never reached its exit device) is no proof that KVM ran it."""
    choice = accel.choose(fake_qemu(tmp_path, "quiet-qemu", "exit 0"))
    assert choice.accel == "tcg" and choice.reason == "a test guest under KVM failed (exit status 0)"


def test_a_qemu_that_ran_the_guest_chooses_kvm_once_per_process(tmp_path, device_works):
    calls = tmp_path / "calls"
    # Counts the guests it runs (not `--version`, which the driver asks too).
    qemu = fake_qemu(tmp_path, "good-qemu", f'case "$*" in *-accel*) echo run >> "{calls}";; esac\n'
                                            f"exit {accel.EXIT_STATUS}")
    first = accel.choose(qemu)
    assert first.accel == "kvm" and first.kvm
    assert accel.choose(qemu) is first
    QemuDriver(tmp_path / "vms", binary=qemu, accel="auto")
    assert calls.read_text() == "run\n"  # one test guest for the whole process


def test_a_configured_accelerator_is_used_as_it_is(tmp_path):
    driver = QemuDriver(tmp_path / "vms", accel="tcg", kvm_device=str(tmp_path / "absent"))
    assert driver.describe()["accel"] == "tcg" and driver.describe()["accel_reason"] == "chosen by --accel"
    with pytest.raises(ValueError, match="'hvf' is not one of auto, kvm, tcg"):
        accel.configured("hvf", "qemu-system-x86_64")


def test_the_test_guest_really_ends_qemu_with_the_probe_status(tmp_path):
    """The firmware the probe boots, run by the real QEMU under TCG (which runs anywhere): it reaches
    its exit device, so under KVM only a guest KVM really ran gives this status."""
    qemu = needs.tool("qemu-system-x86_64", "qemu-system-x86")
    (tmp_path / "probe.bin").write_bytes(accel.firmware())
    done = subprocess.run([qemu, "-machine", "pc", "-accel", "tcg", "-m", "16", "-nodefaults", "-no-user-config",
                           "-display", "none", "-bios", str(tmp_path / "probe.bin"),
                           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x01"],
                          capture_output=True, timeout=60)
    assert done.returncode == (0x2A << 1) | 1, done.stderr


def test_on_this_machine_auto_agrees_with_the_device(tmp_path):
    """With the real QEMU: KVM is chosen exactly when /dev/kvm can make a VM (a host whose KVM guests hang
    would fail here, as it should: that is what the probe is for)."""
    qemu = needs.tool("qemu-system-x86_64", "qemu-system-x86")
    device_problem = accel.kvm_device_usable()
    choice = accel.choose(qemu)
    if device_problem is None:
        assert choice.accel == "kvm", choice.reason
    else:
        assert choice.accel == "tcg" and choice.reason == device_problem


def test_plasmavmcs_health_and_log_say_why_guests_are_emulated(tmp_path):
    """The service as it runs: auto, with a QEMU that cannot use KVM; /health and the log give the reason."""
    said = "Could not access KVM kernel module: No such file or directory"
    qemu = fake_qemu(tmp_path, "no-kvm-qemu", f'case "$*" in *-accel*) echo "{said}" >&2; exit 1;; esac\necho QEMU 9')
    device_problem = accel.kvm_device_usable()  # where /dev/kvm itself is unusable, that is the reason given
    reason = device_problem or f"a test guest under KVM failed ({said})"
    service = ServiceProcess("plasmavmc", tmp_path / "plasmavmc", "--accel", "auto", "--qemu-binary", qemu,
                             "--log-format", "json")
    service.start()
    try:
        with DIRECT.open(f"{service.url}/health", timeout=10) as response:  # no proxy of the environment
            hypervisor = json.load(response)["data"]["dependencies"]["hypervisor"]
    finally:
        service.stop()
    assert hypervisor["accel"] == "tcg" and hypervisor["kvm"] is False
    assert hypervisor["accel_reason"] == reason
    warnings = [json.loads(line) for line in service.log().splitlines() if line.startswith("{")]
    assert any(w["level"] == "WARNING" and w.get("reason") == reason and w.get("accel") == "tcg" for w in warnings)
