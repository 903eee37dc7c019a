"""FlareDB's domain metrics, read when /metrics is scraped: Raft, databases, namespaces."""

from __future__ import annotations

import asyncio
import sqlite3

from prometheus_client.core import Metric

from photoncloud.common.metrics import DomainRead, gauge, log_metrics

from .core import FlareDBCore
from .machine import FlareDBStateMachine

# Namespaces live in each project's own file: a scrape opens at most this many to count them, and
# leaves photoncloud_flaredb_namespaces out beyond it rather than cost a file open per project.
NAMESPACE_COUNT_LIMIT = 256


def reader(service: str, db: FlareDBCore, machine: FlareDBStateMachine) -> DomainRead:
    """The read /metrics awaits: the project databases, counted on a thread of its own through
    read-only connections of its own (so neither the loop nor the log's applying waits on it), and
    the log's figures."""
    files = machine.files

    def namespaces(projects: list[str]) -> int:
        total = 0
        for project in projects:
            conn, found = files.open_reader(project)  # read-only and closed after: no change to the open LRU
            try:
                if found:
                    total += conn.execute("SELECT COUNT(*) FROM _flaredb_namespaces").fetchone()[0]
            except sqlite3.OperationalError:  # a file replaced while counting counts as empty
                pass
            finally:
                conn.close()
        return total

    def counts() -> tuple[int, int, int | None]:
        projects = files.projects()
        spaces = namespaces(projects) if len(projects) <= NAMESPACE_COUNT_LIMIT else None
        return len(projects), files.size_bytes(), spaces

    async def read() -> list[Metric]:
        projects, size, spaces = await asyncio.to_thread(counts)
        families = [
            *log_metrics(service, db.log),
            gauge("photoncloud_flaredb_databases", "Project databases (one per project that has written).",
                  projects, service),
            gauge("photoncloud_flaredb_db_size_bytes", "The project databases' files together.", size, service),
        ]
        if spaces is not None:
            families.append(gauge("photoncloud_flaredb_namespaces", "Key-value namespaces, all projects together.",
                                  spaces, service))
        return families

    return read
