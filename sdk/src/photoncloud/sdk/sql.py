"""FlareDB: SQL on the project's database, its tables, backups, and key-value namespaces. A project
token works in its project; a system token names the project (project_id) on every call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .service import Json, Service, fields, seg
from .transport import key_path

Params = list[Any] | dict[str, Any]


class SQL(Service):
    """FlareDB's REST API (port 8082)."""

    def execute(self, sql: str, params: Params | None = None, consistency: str | None = None,
                project_id: str | None = None) -> Json:
        """Run one statement (positional `?` or named `:name` params): {"results": [...]}."""
        return self._post("/api/v1/sql", fields(sql=sql, params=params, consistency=consistency,
                                                project_id=project_id))

    def execute_many(self, statements: list[Json], consistency: str | None = None,
                     project_id: str | None = None) -> Json:
        """Run statements ({"sql", "params"}) as one transaction: all of them, or nothing."""
        return self._post("/api/v1/sql", fields(statements=statements, consistency=consistency,
                                                project_id=project_id))

    def query(self, sql: str, params: Params | None = None, consistency: str | None = None,
              project_id: str | None = None) -> list[Json]:
        """One query's rows as dicts of column name to value."""
        [result] = self.execute(sql, params, consistency, project_id)["results"]
        return [dict(zip(result["columns"], row)) for row in result.get("rows", [])]

    def tables(self, project_id: str | None = None) -> Iterator[Json]:
        """The project's tables with their columns, indexes and row counts."""
        return self._pages("/api/v1/tables", project_id=project_id)

    def table(self, name: str, project_id: str | None = None) -> Json:
        """One table."""
        return self._get(f"/api/v1/tables/{seg(name)}", project_id=project_id)

    def backup(self, project_id: str | None = None) -> bytes:
        """The project's whole database (tables and namespaces) as one SQLite file."""
        return self.transport.download("/api/v1/backup", fields(project_id=project_id))

    def restore(self, database: bytes, project_id: str | None = None) -> Json:
        """Replace the project's database with a SQLite file (flaredb:sql:manage)."""
        return self.transport.upload("/api/v1/restore", database, "application/vnd.sqlite3",
                                     fields(project_id=project_id))

    def create_namespace(self, name: str, mode: str = "strong", project_id: str | None = None) -> Json:
        """A key-value namespace, `strong` (compare-and-swap, linearizable reads) or `eventual`."""
        return self._post("/api/v1/namespaces", fields(name=name, mode=mode, project_id=project_id))

    def namespaces(self, project_id: str | None = None) -> Iterator[Json]:
        """The project's key-value namespaces."""
        return self._pages("/api/v1/namespaces", project_id=project_id)

    def namespace(self, name: str, project_id: str | None = None) -> Json:
        """One key-value namespace."""
        return self._get(f"/api/v1/namespaces/{seg(name)}", project_id=project_id)

    def kv_get(self, namespace: str, key: str, project_id: str | None = None) -> Json:
        """A key of a namespace."""
        return self._get(f"/api/v1/kv/{key_path(key)}", namespace=namespace, project_id=project_id)

    def kv_put(self, namespace: str, key: str, value: str, project_id: str | None = None) -> Json:
        """Write a key of an eventual namespace."""
        return self.transport.request("PUT", f"/api/v1/kv/{key_path(key)}", json={"value": value},
                                      params=fields(namespace=namespace, project_id=project_id))

    def kv_delete(self, namespace: str, key: str, project_id: str | None = None) -> Json:
        """Delete a key of an eventual namespace."""
        return self._delete(f"/api/v1/kv/{key_path(key)}", namespace=namespace, project_id=project_id)

    def kv_cas(self, namespace: str, key: str, expected_version: int, value: str | None = None,
               delete: bool | None = None, project_id: str | None = None) -> Json:
        """Write (or delete) a key of a strong namespace if its version is expected_version (0: absent):
        succeeded, and the key's version and value afterwards."""
        return self._post("/api/v1/cas", fields(namespace=namespace, key=key, expected_version=expected_version,
                                                value=value, delete=delete, project_id=project_id))

    def kv_scan(self, namespace: str, start: str | None = None, end: str | None = None,
                limit: int | None = None, project_id: str | None = None) -> Json:
        """The keys of a namespace in [start, end), at most limit of them."""
        return self._get("/api/v1/scan", namespace=namespace, start=start, end=end, limit=limit,
                         project_id=project_id)
