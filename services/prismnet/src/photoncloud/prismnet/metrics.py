"""PrismNET's domain metrics, read when /metrics is scraped: VPCs, subnets, ports, security groups,
and IPAM's addresses used and free, totalled by IP version (never per subnet: subnets are many)."""

from __future__ import annotations

from collections import Counter

from prometheus_client.core import Metric

from photoncloud.common.metrics import DomainRead, gauge, gauge_by
from photoncloud.common.replication import Scan

from . import addressing
from .core import NetworkCore
from .store import SqliteNetworkStore

VERSIONS = ("4", "6")
# A port's device type is the tenant's word: any but these is counted as OTHER, so a tenant can
# neither add series nor show its words on the public /metrics.
DEVICE_KINDS = ("VM", "POD", "NONE", "OTHER")


def device_kinds(ports: dict[str, int]) -> Counter[str]:
    """Port counts by device type, folded into DEVICE_KINDS ("" is NONE: the port is not attached)."""
    kinds: Counter[str] = Counter()
    for kind, n in ports.items():
        kinds[kind if kind in ("VM", "POD") else "OTHER" if kind else "NONE"] += n
    return kinds


def reader(service: str, net: NetworkCore, store: SqliteNetworkStore) -> DomainRead:
    """The read /metrics awaits: counts in the store, and every subnet's pool capacity (one row per
    subnet, no address read), on the log's thread."""

    def counts() -> tuple[dict[str, int], Counter[str], Counter[str], dict[str, int]]:
        db = store.db
        tables = {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                  for table in ("vpcs", "subnets", "ports", "security_groups")}
        capacity: Counter[str] = Counter()
        for subnet in store.all_subnets():
            capacity[str(subnet.ip_version)] += addressing.capacity(subnet.allocation_pools, subnet.gateway_ip)
        used: Counter[str] = Counter(dict(db.execute(
            "SELECT s.ip_version, COUNT(*) FROM addresses a JOIN subnets s ON s.id = a.subnet_id"
            " WHERE a.port_id != '' GROUP BY s.ip_version").fetchall()))
        ports = dict(db.execute("SELECT device_type, COUNT(*) FROM ports GROUP BY device_type").fetchall())
        return tables, capacity, Counter({str(k): v for k, v in used.items()}), ports

    async def read() -> list[Metric]:
        tables, capacity, used, ports = await net.log.read(Scan(counts))
        free = {version: capacity[version] - used[version] for version in capacity}
        return [
            gauge("photoncloud_prismnet_vpcs", "VPCs.", tables["vpcs"], service),
            gauge("photoncloud_prismnet_subnets", "Subnets.", tables["subnets"], service),
            gauge("photoncloud_prismnet_ports", "Ports.", tables["ports"], service),
            gauge_by("photoncloud_prismnet_ports_by_device", "Ports by the kind of device they are for.", service,
                     "device_type", device_kinds(ports), DEVICE_KINDS),
            gauge("photoncloud_prismnet_security_groups", "Security groups.", tables["security_groups"], service),
            gauge_by("photoncloud_prismnet_addresses_used", "Addresses held by ports, all subnets.", service,
                     "ip_version", used, VERSIONS),
            gauge_by("photoncloud_prismnet_addresses_free", "Addresses the subnets' pools can still give.", service,
                     "ip_version", free, VERSIONS),
            gauge_by("photoncloud_prismnet_addresses_capacity", "Addresses the subnets' pools hold.", service,
                     "ip_version", capacity, VERSIONS),
        ]

    return read
