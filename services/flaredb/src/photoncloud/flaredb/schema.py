"""The user tables of a project's database as declared: columns, indexes, row counts."""

from __future__ import annotations

import sqlite3

from .results import Column, Index, Table


def read_tables(conn: sqlite3.Connection, after: str, limit: int, name: str | None = None) -> list[Table]:
    """The database's user tables by name, after `after` (or the one named)."""
    where = "name = :name" if name is not None else "name > :after"
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND " + where +
        " AND name NOT LIKE '\\_flaredb\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        " ORDER BY name LIMIT :limit", {"name": name, "after": after, "limit": limit})]
    return [_table(conn, table) for table in names]


def _table(conn: sqlite3.Connection, name: str) -> Table:
    quoted = _quote(name)
    columns = [Column(c[1], c[2], bool(c[3]), c[4], c[5]) for c in conn.execute(f"PRAGMA table_info({quoted})")]
    indexes = []
    for _, index_name, unique, *_ in conn.execute(f"PRAGMA index_list({quoted})").fetchall():
        names = [c[2] for c in conn.execute(f"PRAGMA index_info({_quote(index_name)})")]
        indexes.append(Index(index_name, names, bool(unique)))
    indexes.sort(key=lambda i: i.name)
    count = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
    ddl = conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,)).fetchone()[0]
    return Table(name, columns, indexes, count, ddl or "")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
