"""PlasmaVMC: how long a VM takes from create to running and booted, and what an idle VM costs in memory.

Starts IAM, CreditService, PrismNET and PlasmaVMC on free 127.0.0.1 ports over a temporary data
directory (PlasmaVMC on TCG, as in the tests), makes a project with a subnet, a wallet and a
flavor of 128 MiB and one vCPU, registers an image (the host's Linux kernel and a busybox
initramfs that prints a line when its init runs), then for each of --vms VMs, one after the other:

- create: POST /api/v1/vms (the hour reserved in CreditService, a PrismNET port made);
- start: POST /api/v1/vms/{id}/start, which answers once QEMU runs the guest (RUNNING);
- boot: from that answer until the guest's init has printed its line on the serial console.

Once every VM has booted and idled for --idle seconds, it reads each QEMU process's memory from
/proc: RSS and PSS (the proportional share, which counts pages shared between the QEMU processes
once). Then it deletes the VMs.

    .venv/bin/python bench/plasmavmc_bench.py              # 5 VMs; about two minutes on TCG
    .venv/bin/python bench/plasmavmc_bench.py --vms 3 --json

A benchmark, not a test: it asserts nothing, it reports numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from photoncloud.common.testing import Platform, start_platform
from photoncloud.plasmavmc.testing import build_initramfs, guest_kernel

BOOT_TIMEOUT = 300.0


def call(running: Platform, method: str, service: str, path: str, token: str, body: dict | None = None) -> dict:
    """One REST call; its data, or an error if it failed."""
    status, reply = running.request(method, running.services[service].url + path, body, token)
    if status >= 300:
        raise RuntimeError(f"{method} {path}: HTTP {status}: {reply}")
    return reply["data"]


def qemu_pid(vm_id: str) -> int:
    """The live QEMU process of a VM."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"guest={vm_id}".encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                    return int(entry.name)
            except OSError:
                continue
    raise RuntimeError(f"no QEMU process for {vm_id}")


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return int(fields["Rss"].split()[0]), int(fields["Pss"].split()[0])


def bench(running: Platform, args: argparse.Namespace, scratch: Path) -> dict:
    """Create, start and boot the VMs; measure; delete them."""
    token = running.admin_token()
    _, project = running.project("bench")
    vpc = call(running, "POST", "prismnet", "/api/v1/vpcs", token,
               {"name": "bench", "project_id": project, "cidr_block": "10.50.0.0/16"})
    subnet = call(running, "POST", "prismnet", "/api/v1/subnets", token,
                  {"vpc_id": vpc["id"], "name": "bench", "cidr_block": "10.50.1.0/24"})
    call(running, "POST", "creditservice", "/api/v1/wallets", token, {"project_id": project, "initial_balance": 10**9})
    call(running, "POST", "plasmavmc", "/api/v1/flavors", token,
         {"name": "bench", "vcpus": 1, "memory_mib": 128, "disk_gib": 1, "price_per_hour": 1})
    marker = f"BENCH-{uuid.uuid4().hex[:8]}"
    image = call(running, "POST", "plasmavmc", "/api/v1/images", token,
                 {"name": "busybox", "kernel_path": str(guest_kernel()),
                  "initrd_path": str(build_initramfs(scratch / "initrd.cpio", marker))})
    vms = []
    for i in range(args.vms):
        began = time.monotonic()
        vm = call(running, "POST", "plasmavmc", "/api/v1/vms", token,
                  {"name": f"vm-{i}", "project_id": project, "flavor_id": "bench", "image_id": image["id"],
                   "subnet_ids": [subnet["id"]]})
        created = time.monotonic()
        call(running, "POST", "plasmavmc", f"/api/v1/vms/{vm['id']}/start", token)
        started = time.monotonic()
        while marker not in call(running, "GET", "plasmavmc", f"/api/v1/vms/{vm['id']}/console", token)["output"]:
            if time.monotonic() - started > BOOT_TIMEOUT:
                raise RuntimeError(f"{vm['id']} did not boot in {BOOT_TIMEOUT}s")
            time.sleep(0.05)
        booted = time.monotonic()
        vms.append({"id": vm["id"], "create_s": created - began, "start_s": started - created,
                    "boot_s": booted - started, "create_to_running_s": started - began,
                    "create_to_booted_s": booted - began})
        print(f"  vm-{i}: running after {started - began:.2f} s, booted after {booted - began:.2f} s",
              file=sys.stderr, flush=True)
    time.sleep(args.idle)
    for vm in vms:
        vm["rss_kib"], vm["pss_kib"] = memory_kib(qemu_pid(vm["id"]))
    service_rss = memory_kib(running.services["plasmavmc"].process.pid)[0]
    for vm in vms:
        call(running, "POST", "plasmavmc", f"/api/v1/vms/{vm['id']}/stop?force=true", token)
        call(running, "DELETE", "plasmavmc", f"/api/v1/vms/{vm['id']}", token)
    return {"vms": vms, "plasmavmc_rss_kib": service_rss}


def summary(result: dict) -> list[tuple[str, str, str, str]]:
    """(measure, median, min, max) rows."""
    rows = []
    for key, label, unit, scale in (("create_s", "create (POST /vms)", "ms", 1000),
                                    ("start_s", "start (POST /start, until RUNNING)", "ms", 1000),
                                    ("create_to_running_s", "create to RUNNING", "ms", 1000),
                                    ("boot_s", "RUNNING to the guest's init on the console", "s", 1),
                                    ("create_to_booted_s", "create to booted", "s", 1),
                                    ("rss_kib", "QEMU RSS per idle VM", "MiB", 1 / 1024),
                                    ("pss_kib", "QEMU PSS per idle VM", "MiB", 1 / 1024)):
        values = [vm[key] * scale for vm in result["vms"]]
        rows.append((f"{label} ({unit})", *(f"{v:.1f}" for v in (statistics.median(values), min(values),
                                                                   max(values)))))
    return rows


def main() -> None:
    """Parse the options, run, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=5, help="how many VMs, created one after the other")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds the booted VMs idle before memory is read")
    parser.add_argument("--log-level", default="WARNING", help="the services' log level")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plasmavmc-bench-") as data_dir:
        running = start_platform(Path(data_dir), "creditservice", "prismnet", "plasmavmc", log_level=args.log_level)
        try:
            result = bench(running, args, Path(data_dir))
        finally:
            running.stop()
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "python": platform.python_version(), **result}, indent=2))
        return
    print("| measure | median | min | max |\n|---|---:|---:|---:|")
    for row in summary(result):
        print("| " + " | ".join(row) + " |")
    print(f"\nPlasmaVMC's own RSS: {result['plasmavmc_rss_kib'] / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
