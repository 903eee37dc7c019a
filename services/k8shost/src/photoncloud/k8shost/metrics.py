"""k8shost's domain metrics, read when /metrics is scraped: pods by phase, nodes by readiness,
objects by kind."""

from __future__ import annotations

from prometheus_client.core import Metric

from photoncloud.common.metrics import DomainRead, gauge_by
from photoncloud.common.replication import Scan

from .core import KubeCore
from .records import FAILED, FALSE, KINDS, PENDING, READY, RUNNING, SUCCEEDED, TRUE, UNKNOWN
from .store import SqliteObjectStore

PHASES = (PENDING, RUNNING, SUCCEEDED, FAILED, UNKNOWN)
READINESS = (TRUE, FALSE, UNKNOWN)
# A node's Ready condition's status, read in SQLite from the stored JSON (no object is decoded).
_NODES = """
SELECT COALESCE((SELECT json_extract(c.value, '$.status') FROM json_each(data, '$.status.conditions') c
                 WHERE json_extract(c.value, '$.type') = :ready), :unknown) AS ready, COUNT(*)
FROM objects WHERE kind = 'nodes' GROUP BY ready
"""


def reader(service: str, kube: KubeCore, store: SqliteObjectStore) -> DomainRead:
    """The read /metrics awaits: grouped counts in the store, on the log's thread."""

    def counts() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        db = store.db
        phases = dict(db.execute("SELECT json_extract(data, '$.status.phase') AS phase, COUNT(*) FROM objects"
                                 " WHERE kind = 'pods' GROUP BY phase").fetchall())
        nodes = dict(db.execute(_NODES, {"ready": READY, "unknown": UNKNOWN}).fetchall())
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM objects GROUP BY kind").fetchall())
        return phases, nodes, kinds

    async def read() -> list[Metric]:
        phases, nodes, kinds = await kube.log.read(Scan(counts))
        return [
            gauge_by("photoncloud_k8shost_pods", "Pods by phase.", service, "phase", phases, PHASES),
            gauge_by("photoncloud_k8shost_nodes", "Nodes by the status of their Ready condition.", service, "ready",
                     nodes, READINESS),
            gauge_by("photoncloud_k8shost_objects", "Objects by kind.", service, "kind", kinds, tuple(KINDS)),
        ]

    return read
