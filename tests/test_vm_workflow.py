"""The VM workflow of the documents, as a new user runs it with curl, against IAM, CreditService,
PrismNET and PlasmaVMC as processes: get a token, create a VPC and a subnet, open and top up a
wallet, create a VM on the subnet, start it, see the guest kernel boot on its console, stop it,
delete it; the wallet shows the committed charge and the port is freed. Then what goes wrong:
short credits, PlasmaVMC killed while the VM runs, a dependency down."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from photoncloud.common import needs
from photoncloud.common.testing import start_platform
from photoncloud.plasmavmc.testing import build_initramfs, guest_kernel

BOOT_TIMEOUT = 180  # seconds: an emulated (TCG) boot takes seconds, a loaded CI machine more
PRICE = 120


def qemu_pids(vm_id: str) -> list[int]:
    """Live QEMU processes of a VM (zombies are dead)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if f"guest={vm_id}".encode() in cmdline and state != b"Z":
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    """(kernel, initramfs, marker): a guest that prints marker and obeys its power button."""
    marker = f"PLASMAVMC-WORKFLOW-{uuid.uuid4().hex[:8]}"
    needs.tool("qemu-system-x86_64", "qemu-system-x86")
    try:
        initrd = build_initramfs(tmp_path_factory.mktemp("guest") / "initramfs.cpio", marker, power_button=True)
        return guest_kernel(), initrd, marker
    except FileNotFoundError as missing:  # no kernel or no static busybox: the message names the package
        needs.missing(str(missing))


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """IAM, CreditService, PrismNET, and PlasmaVMC pointed at their gRPC ports (TCG: runs anywhere)."""
    running = start_platform(tmp_path_factory.mktemp("platform"), "creditservice", "prismnet", "plasmavmc")
    yield running
    running.stop()


def call(platform, method: str, service: str, path: str, body: dict | None = None, token: str = "",
         expect: int | None = None) -> dict:
    """One REST call to a service of the platform; the reply's body."""
    process = platform.iam if service == "iam" else platform.services[service]
    status, reply = platform.request(method, process.url + path, body, token)
    if expect is not None:
        assert status == expect, (method, path, status, reply)
    return reply


def wait_console(platform, token: str, vm_id: str, text: str) -> str:
    """The VM's console once text is on it."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        output = call(platform, "GET", "plasmavmc", f"/api/v1/vms/{vm_id}/console", token=token,
                      expect=200)["data"]["output"]
        if text in output:
            return output
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not on the console within {BOOT_TIMEOUT}s:\n{output[-3000:]}")


def test_a_user_runs_a_vm_on_a_subnet_and_pays_for_it(platform, guest):
    kernel, initrd, marker = guest
    admin = platform.admin_token()
    org_id, project_id = platform.project("vms")
    # The network: a VPC and a subnet.
    vpc = call(platform, "POST", "prismnet", "/api/v1/vpcs", {"name": "main", "project_id": project_id,
                                                                "cidr_block": "10.20.0.0/16"}, admin, 201)["data"]
    subnet = call(platform, "POST", "prismnet", "/api/v1/subnets", {"vpc_id": vpc["id"], "name": "web",
                                                                      "cidr_block": "10.20.1.0/24"}, admin, 201)["data"]
    # The money: a wallet, topped up.
    call(platform, "POST", "creditservice", "/api/v1/wallets", {"project_id": project_id, "initial_balance": 100},
         admin, 201)
    call(platform, "POST", "creditservice", f"/api/v1/wallets/{project_id}/topup", {"amount": 900}, admin, 200)
    # What VMs are made of: a flavor and an image (operators).
    call(platform, "POST", "plasmavmc", "/api/v1/flavors", {"name": "m1.tiny", "vcpus": 1, "memory_mib": 128,
                                                            "disk_gib": 1, "price_per_hour": PRICE}, admin, 201)
    image = call(platform, "POST", "plasmavmc", "/api/v1/images",
                 {"name": "busybox", "kernel_path": str(kernel), "initrd_path": str(initrd)}, admin, 201)["data"]

    vm = call(platform, "POST", "plasmavmc", "/api/v1/vms",
              {"name": "web-1", "project_id": project_id, "flavor_id": "m1.tiny", "image_id": image["id"],
               "subnet_ids": [subnet["id"]]}, admin, 201)["data"]
    assert vm["state"] == "STOPPED" and vm["org_id"] == org_id and vm["price_per_hour"] == PRICE
    [nic] = vm["nics"]
    assert nic["subnet_id"] == subnet["id"] and nic["ip_address"] == "10.20.1.2"
    port = call(platform, "GET", "prismnet", f"/api/v1/ports/{nic['port_id']}", token=admin, expect=200)["data"]
    assert (port["device_id"], port["device_type"], port["status"]) == (vm["id"], "VM", "ACTIVE")
    assert port["mac_address"] == nic["mac_address"]
    wallet = call(platform, "GET", "creditservice", f"/api/v1/wallets/{project_id}", token=admin, expect=200)["data"]
    assert (wallet["balance"], wallet["reserved"]) == (1000, PRICE)  # the first hour, held

    started = call(platform, "POST", "plasmavmc", f"/api/v1/vms/{vm['id']}/start", token=admin, expect=200)["data"]
    assert (started["state"], started["charged"], started["reservation_id"]) == ("RUNNING", PRICE, "")
    output = wait_console(platform, admin, vm["id"], marker)
    assert "Linux version" in output and "Run /init as init process" in output  # the guest kernel's own words
    wallet = call(platform, "GET", "creditservice", f"/api/v1/wallets/{project_id}", token=admin, expect=200)["data"]
    assert (wallet["balance"], wallet["reserved"]) == (1000 - PRICE, 0)  # committed at the start
    [pid] = qemu_pids(vm["id"])

    # PlasmaVMC dies hard and comes back: the VM is reattached, not booted again.
    vmc = platform.services["plasmavmc"]
    vmc.kill()
    assert qemu_pids(vm["id"]) == [pid]
    vmc.start()
    again = call(platform, "GET", "plasmavmc", f"/api/v1/vms/{vm['id']}", token=admin, expect=200)["data"]
    assert again["state"] == "RUNNING" and qemu_pids(vm["id"]) == [pid]
    console = call(platform, "GET", "plasmavmc", f"/api/v1/vms/{vm['id']}/console", token=admin, expect=200)
    assert console["data"]["output"].count(marker) == 1
    health = call(platform, "GET", "plasmavmc", "/health", expect=200)["data"]
    assert health["dependencies"]["hypervisor"]["driver"] == "qemu"
    assert health["dependencies"]["hypervisor"]["accel"] == "tcg"

    # A graceful stop: the ACPI power button, which this guest obeys.
    stopped = call(platform, "POST", "plasmavmc", f"/api/v1/vms/{vm['id']}/stop", token=admin, expect=200)["data"]
    assert (stopped["state"], stopped["last_error"]) == ("STOPPED", "") and qemu_pids(vm["id"]) == []
    assert "reboot: Power down" in call(platform, "GET", "plasmavmc", f"/api/v1/vms/{vm['id']}/console",
                                        token=admin, expect=200)["data"]["output"]
    # Every start is an hour: a second start charges a second one.
    again = call(platform, "POST", "plasmavmc", f"/api/v1/vms/{vm['id']}/start", token=admin, expect=200)["data"]
    assert (again["state"], again["charged"]) == ("RUNNING", 2 * PRICE)
    stopped = call(platform, "POST", "plasmavmc", f"/api/v1/vms/{vm['id']}/stop?force=true", token=admin,
                   expect=200)["data"]
    assert stopped["state"] == "STOPPED" and qemu_pids(vm["id"]) == []
    deleted = call(platform, "DELETE", "plasmavmc", f"/api/v1/vms/{vm['id']}", token=admin, expect=200)["data"]
    assert deleted["nics"] == []
    call(platform, "GET", "plasmavmc", f"/api/v1/vms/{vm['id']}", token=admin, expect=404)
    call(platform, "GET", "prismnet", f"/api/v1/ports/{nic['port_id']}", token=admin, expect=404)
    assert call(platform, "GET", "prismnet", f"/api/v1/subnets/{subnet['id']}", token=admin,
                expect=200)["data"]["used"] == 0
    wallet = call(platform, "GET", "creditservice", f"/api/v1/wallets/{project_id}", token=admin, expect=200)["data"]
    assert (wallet["balance"], wallet["reserved"]) == (1000 - 2 * PRICE, 0)  # the charges stay
    ledger = call(platform, "GET", "creditservice", f"/api/v1/wallets/{project_id}/transactions?type=COMMIT",
                  token=admin, expect=200)["data"]["items"]
    assert [t["amount"] for t in ledger] == [PRICE, PRICE]
    assert qemu_pids(vm["id"]) == []
    # The image is free again: it can be deleted.
    call(platform, "DELETE", "plasmavmc", f"/api/v1/images/{image['id']}", token=admin, expect=200)


def test_short_credits_and_a_dependency_down_leave_nothing_behind(platform, guest):
    kernel, initrd, _ = guest
    admin = platform.admin_token()
    _, project_id = platform.project("poor")
    vpc = call(platform, "POST", "prismnet", "/api/v1/vpcs", {"name": "v", "project_id": project_id,
                                                                "cidr_block": "10.30.0.0/16"}, admin, 201)["data"]
    subnet = call(platform, "POST", "prismnet", "/api/v1/subnets", {"vpc_id": vpc["id"], "name": "s",
                                                                      "cidr_block": "10.30.1.0/24"}, admin, 201)["data"]
    call(platform, "POST", "creditservice", "/api/v1/wallets", {"project_id": project_id, "initial_balance": 10},
         admin, 201)
    image = call(platform, "POST", "plasmavmc", "/api/v1/images", {"name": "busybox2", "kernel_path": str(kernel),
                                                                    "initrd_path": str(initrd)}, admin, 201)["data"]
    body = {"name": "big", "project_id": project_id, "vcpus": 2, "memory_mib": 256, "image_id": image["id"],
            "subnet_ids": [subnet["id"]]}
    refused = call(platform, "POST", "plasmavmc", "/api/v1/vms", body, admin, 400)["error"]
    assert refused["code"] == "FAILED_PRECONDITION" and refused["details"]["reason"] == "INSUFFICIENT_CREDITS"

    def nothing_left() -> None:
        vms = call(platform, "GET", "plasmavmc", f"/api/v1/vms?project_id={project_id}", token=admin, expect=200)
        assert vms["data"]["items"] == []
        assert call(platform, "GET", "prismnet", f"/api/v1/subnets/{subnet['id']}", token=admin,
                    expect=200)["data"]["used"] == 0
        wallet = call(platform, "GET", "creditservice", f"/api/v1/wallets/{project_id}", token=admin,
                      expect=200)["data"]
        assert (wallet["balance"], wallet["reserved"]) == (1000, 0)

    call(platform, "POST", "creditservice", f"/api/v1/wallets/{project_id}/topup", {"amount": 990}, admin, 200)
    network = platform.services["prismnet"]
    network.stop()  # PrismNET is down: the hour was reserved, then must be released again
    try:
        down = call(platform, "POST", "plasmavmc", "/api/v1/vms", body, admin, 503)["error"]
        assert down["code"] == "UNAVAILABLE" and down["details"]["dependency"] == "prismnet"
    finally:
        network.start()
    nothing_left()
    credits = platform.services["creditservice"]
    credits.stop()
    try:
        down = call(platform, "POST", "plasmavmc", "/api/v1/vms", body, admin, 503)["error"]
        assert down["code"] == "UNAVAILABLE" and down["details"]["dependency"] == "creditservice"
    finally:
        credits.start()
    nothing_left()
    vms_dir = str(platform.services["plasmavmc"].data_dir / "vms").encode()
    assert not [p for p in Path("/proc").glob("[0-9]*") if _runs_from(p, vms_dir)]  # no QEMU left behind
    call(platform, "DELETE", "plasmavmc", f"/api/v1/images/{image['id']}", token=admin, expect=200)


def _runs_from(proc: Path, directory: bytes) -> bool:
    """Whether a live process names a file under directory on its command line (a VM's QEMU does)."""
    try:
        state = (proc / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        return state != b"Z" and directory in (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
