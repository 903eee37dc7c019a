"""PlasmaVMC's domain metrics, read when /metrics is scraped: VMs, vCPUs and memory by state."""

from __future__ import annotations

from prometheus_client.core import Metric

from photoncloud.common.metrics import DomainRead, gauge, gauge_by
from photoncloud.common.replication import Scan

from .core import VmCore
from .records import State
from .store import SqliteVmStore

STATES = tuple(state.value for state in State)


def reader(service: str, vmc: VmCore, store: SqliteVmStore) -> DomainRead:
    """The read /metrics awaits: one grouped count of the VMs (on the log's thread), flavors, images."""

    def counts() -> tuple[list[tuple[str, int, int, int]], int, int]:
        rows = store.db.execute("SELECT state, COUNT(*), SUM(vcpus), SUM(memory_mib) FROM vms GROUP BY state")
        flavors = store.db.execute("SELECT COUNT(*) FROM flavors").fetchone()[0]
        images = store.db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        return rows.fetchall(), flavors, images

    async def read() -> list[Metric]:
        rows, flavors, images = await vmc.log.read(Scan(counts))
        return [
            gauge_by("photoncloud_plasmavmc_vms", "VMs by state.", service, "state",
                     {state: n for state, n, _, _ in rows}, STATES),
            gauge_by("photoncloud_plasmavmc_vcpus", "vCPUs of the VMs, by the VMs' state.", service, "state",
                     {state: vcpus for state, _, vcpus, _ in rows}, STATES),
            gauge_by("photoncloud_plasmavmc_memory_bytes", "Memory of the VMs, by the VMs' state.", service, "state",
                     {state: mib * 2**20 for state, _, _, mib in rows}, STATES),
            gauge("photoncloud_plasmavmc_flavors", "Flavors.", flavors, service),
            gauge("photoncloud_plasmavmc_images", "Images.", images, service),
        ]

    return read
