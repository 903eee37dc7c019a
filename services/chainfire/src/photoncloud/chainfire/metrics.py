"""ChainFire's domain metrics, read when /metrics is scraped: Raft, keys, leases, revision."""

from __future__ import annotations

from prometheus_client.core import Metric

from photoncloud.common.metrics import DomainRead, gauge, log_metrics
from photoncloud.common.replication import Scan

from .core import KVCore
from .store import SqliteKVStore


def reader(service: str, kv: KVCore, store: SqliteKVStore) -> DomainRead:
    """The read /metrics awaits: counts from the store (on the log's thread, never the loop's), and
    the log's own figures."""

    def counts() -> tuple[int, int, int, int]:
        # COUNT(*) walks the smallest index (live_by_lease), not the values.
        keys = store.db.execute("SELECT COUNT(*) FROM live").fetchone()[0]
        leases = store.db.execute("SELECT COUNT(*) FROM leases").fetchone()[0]
        return keys, leases, store.revision(), store.size_bytes()

    async def read() -> list[Metric]:
        keys, leases, revision, size = await kv.log.read(Scan(counts))
        return [
            *log_metrics(service, kv.log),
            gauge("photoncloud_chainfire_keys", "Live keys, all keyspaces together.", keys, service),
            gauge("photoncloud_chainfire_leases", "Leases granted and not yet expired or revoked.", leases, service),
            gauge("photoncloud_chainfire_revision", "The store's current revision.", revision, service),
            gauge("photoncloud_chainfire_db_size_bytes", "The store's file size in use.", size, service),
        ]

    return read
