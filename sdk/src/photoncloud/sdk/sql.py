"""FlareDB: SQL on the project's database, its tables, backups, and key-value namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .service import Json, Service, fields, seg
from .transport import key_path

Params = list[Any] | dict[str, Any]


class SQL(Service):
    """FlareDB's REST API (port 8082)."""

    def execute(self, sql: str, params: Params | None = None, consistency: str | None = None) -> Json:
        """Run one statement (positional `?` or named `:name` params): {"results": [...]}."""
        return self._post("/api/v1/sql", fields(sql=sql, params=params, consistency=consistency))

    def execute_many(self, statements: list[Json], consistency: str | None = None) -> Json:
        """Run statements ({"sql", "params"}) as one transaction: all of them, or nothing."""
        return self._post("/api/v1/sql", fields(statements=statements, consistency=consistency))

    def query(self, sql: str, params: Params | None = None, consistency: str | None = None) -> list[Json]:
        """One query's rows as dicts of column name to value."""
        [result] = self.execute(sql, params, consistency)["results"]
        return [dict(zip(result["columns"], row)) for row in result.get("rows", [])]

    def tables(self) -> Iterator[Json]:
        """The project's tables with their columns, indexes and row counts."""
        return self._pages("/api/v1/tables")

    def table(self, name: str) -> Json:
        """One table."""
        return self._get(f"/api/v1/tables/{seg(name)}")

    def backup(self, project_id: str | None = None) -> bytes:
        """The project's whole database (tables and namespaces) as one SQLite file."""
        return self.transport.download("/api/v1/backup", fields(project_id=project_id))

    def restore(self, database: bytes, project_id: str | None = None) -> Json:
        """Replace the project's database with a SQLite file (flaredb:sql:manage)."""
        return self.transport.upload("/api/v1/restore", database, "application/vnd.sqlite3",
                                     fields(project_id=project_id))

    def create_namespace(self, name: str, mode: str = "strong") -> Json:
        """A key-value namespace, `strong` (through the Raft log) or `eventual`."""
        return self._post("/api/v1/namespaces", {"name": name, "mode": mode})

    def namespaces(self) -> Iterator[Json]:
        """The project's key-value namespaces."""
        return self._pages("/api/v1/namespaces")

    def namespace(self, name: str) -> Json:
        """One key-value namespace."""
        return self._get(f"/api/v1/namespaces/{seg(name)}")

    def kv_get(self, namespace: str, key: str) -> Json:
        """A key of a namespace."""
        return self._get(f"/api/v1/kv/{key_path(key)}", namespace=namespace)

    def kv_put(self, namespace: str, key: str, value: str, **more: Any) -> Json:
        """Write a key of a namespace."""
        return self._put(f"/api/v1/kv/{key_path(key)}", {"namespace": namespace, "value": value, **more})

    def kv_delete(self, namespace: str, key: str) -> Json:
        """Delete a key of a namespace."""
        return self._delete(f"/api/v1/kv/{key_path(key)}", namespace=namespace)

    def kv_cas(self, namespace: str, key: str, expected_version: int, value: str | None = None,
               delete: bool | None = None) -> Json:
        """Write (or delete) a key of a strong namespace if its version is expected_version (0: absent):
        succeeded, and the key's version and value afterwards."""
        return self._post("/api/v1/cas", fields(namespace=namespace, key=key, expected_version=expected_version,
                                                value=value, delete=delete))

    def kv_scan(self, namespace: str, start: str | None = None, end: str | None = None,
                limit: int | None = None) -> Json:
        """The keys of a namespace in [start, end), at most limit of them."""
        return self._get("/api/v1/scan", namespace=namespace, start=start, end=end, limit=limit)
