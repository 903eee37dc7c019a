"""PlasmaVMC's process: builds the core once, reattaches to running VMs, serves REST and gRPC."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from photoncloud.common.auth import iam_verifier
from photoncloud.common.config import ServerConfig
from photoncloud.common.gateway import rest_routes
from photoncloud.common.projects import Projects
from photoncloud.common.replication import LocalLog, Scan
from photoncloud.common.server import Service, run

from . import grpc_api, metrics
from .core import Pricing, Settings, VmCore
from .machine import VmStateMachine
from photoncloud.common.prismnet import PrismNetNetwork

from .dependencies import CreditServiceBilling
from .driver import Driver
from .fake import FakeDriver
from .qemu import QemuDriver
from .taps import Taps, network_mode, why_not
from .store import SqliteVmStore

NAME = "plasmavmc"
REST_PORT = 8084
__version__ = version("photoncloud-plasmavmc")


def add_options(group: Any, default: Callable[[str, object], object]) -> None:
    """PlasmaVMC's own flags: the hypervisor, the services it calls, the prices."""
    group.add_argument("--driver", choices=("qemu", "fake"), default=default("driver", "qemu"),
                       help="the hypervisor: qemu, or fake (no guest runs; for tests)")
    group.add_argument("--accel", choices=("auto", "kvm", "tcg"), default=default("accel", "auto"),
                       help="auto: KVM when a test guest runs on it, else TCG (emulation), /health saying why")
    group.add_argument("--qemu-binary", default=default("qemu_binary", "qemu-system-x86_64"))
    group.add_argument("--creditservice-grpc", default=default("creditservice_grpc", "127.0.0.1:50056"),
                       help="CreditService's gRPC address (empty: VMs are free)")
    group.add_argument("--prismnet-grpc", default=default("prismnet_grpc", "127.0.0.1:50057"),
                       help="PrismNET's gRPC address (empty: VMs have no NICs)")
    group.add_argument("--reservation-ttl-seconds", type=int, default=default("reservation_ttl_seconds", 3600),
                       help="how long a created VM's first hour stays reserved before it expires")
    group.add_argument("--vcpu-hour-price", type=int, default=default("vcpu_hour_price", 10),
                       help="credits per vCPU-hour of a VM sized without a flavor")
    group.add_argument("--memory-gib-hour-price", type=int, default=default("memory_gib_hour_price", 5),
                       help="credits per GiB-hour of memory of a VM sized without a flavor")
    group.add_argument("--dataplane-prefix",
                       default=default("dataplane_prefix", os.environ.get("PHOTONCLOUD_DATAPLANE_PREFIX", "")),
                       help="the device-name prefix of PrismNET's dataplane on this host (its agent's, e.g. pc): "
                            "each NIC is a TAP on its VPC's bridge (needs root); empty: QEMU user-mode networking")
    group.add_argument("--monitor-seconds", type=float, default=default("monitor_seconds", 1.0),
                       help="how often VM processes are checked (a guest that powered off becomes STOPPED)")


def dataplane(prefix: str) -> Taps | None:
    """The TAPs VMs' NICs get on PrismNET's bridges under prefix (None for "": user-mode networking);
    SystemExit when the prefix is malformed or this process cannot make TAPs (a start would only fail)."""
    if not prefix:
        return None
    try:
        taps = Taps(prefix)
    except ValueError as exc:
        raise SystemExit(f"plasmavmc: --dataplane-prefix: {exc}") from None
    reason = why_not()
    if reason:
        raise SystemExit(f"plasmavmc: --dataplane-prefix {prefix} puts VMs on PrismNET's bridges, and {reason}; "
                         f"leave it empty for QEMU's user-mode networking")
    return taps


async def build(config: ServerConfig) -> Service:
    """PlasmaVMC over the VMs in config.data_dir, reattached to the QEMU processes still running."""
    options = {"driver": "qemu", "accel": "auto", "qemu_binary": "qemu-system-x86_64",
               "creditservice_grpc": "127.0.0.1:50056", "prismnet_grpc": "127.0.0.1:50057",
               "reservation_ttl_seconds": 3600, "vcpu_hour_price": 10, "memory_gib_hour_price": 5,
               "monitor_seconds": 1.0, "dataplane_prefix": "", **config.options}
    prefix = str(options["dataplane_prefix"] or "")
    taps = dataplane(prefix) if options["driver"] == "qemu" else None
    store = SqliteVmStore(config.data_dir / "vms.sqlite3")
    machine = VmStateMachine(store)
    driver: Driver = (FakeDriver() if options["driver"] == "fake"
                      else QemuDriver(config.data_dir / "vms", str(options["qemu_binary"]), str(options["accel"]),
                                      taps))
    billing = CreditServiceBilling(str(options["creditservice_grpc"])) if options["creditservice_grpc"] else None
    network = PrismNetNetwork(str(options["prismnet_grpc"]), "VM") if options["prismnet_grpc"] else None
    settings = Settings(Pricing(int(options["vcpu_hour_price"]), int(options["memory_gib_hour_price"])),
                        int(options["reservation_ttl_seconds"]), float(options["monitor_seconds"]))
    vmc = VmCore(machine, LocalLog(machine), driver, config.data_dir / "images", billing, network,
                 Projects(config.iam_url) if config.iam_url else None, settings)
    await vmc.start_monitor()

    async def dependencies() -> dict[str, Any]:
        index = await vmc.log.read(store.applied_index)
        states = Counter(vm.state.value for vm in await vmc.log.read(Scan(store.vms)))
        return {"hypervisor": driver.describe(), "network": {"mode": network_mode(prefix)},
                "store": {"applied_index": index}, "vms": dict(sorted(states.items())),
                "creditservice": {"grpc": billing.target if billing else "none: VMs are free"},
                "prismnet": {"grpc": network.target if network else "none: VMs have no NICs"}}

    async def close() -> None:
        await vmc.close()
        for client in (billing, network):
            if client is not None:
                await client.close()
        store.close()

    verifier = iam_verifier(config.iam_url, config.expected_issuer, config.revocation_poll_seconds)
    services = grpc_api.services(vmc)
    return Service(NAME, __version__, rest_routes(services), services, dependencies, close, verifier,
                   domain_metrics=metrics.reader(NAME, vmc, store))


def main(argv: list[str] | None = None) -> None:
    """Run PlasmaVMC until SIGTERM or SIGINT (its VMs keep running)."""
    run(NAME, REST_PORT, build, sys.argv[1:] if argv is None else argv, add_options)
