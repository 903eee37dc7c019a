"""Key-value namespaces on a connection: their modes, their keys with values and versions.

Every project's database holds them in two tables of its own (_flaredb_namespaces, _flaredb_kv: store.SCHEMA).
"""

from __future__ import annotations

import sqlite3

from photoncloud.common.errors import NotFound

from .commands import Mode
from .results import Entry, Namespace, ScanResult


def read_namespace(conn: sqlite3.Connection, name: str) -> Namespace:
    """A namespace, with its number of keys."""
    mode = namespace_mode(conn, name)
    if mode is None:
        raise no_namespace(name)
    keys = conn.execute("SELECT count(*) FROM _flaredb_kv WHERE namespace = ?", (name,)).fetchone()[0]
    return Namespace(name, mode, keys)


def read_namespaces(conn: sqlite3.Connection, after: str, limit: int) -> list[Namespace]:
    """Namespaces by name after `after`."""
    rows = conn.execute(
        "SELECT n.name, n.mode, (SELECT count(*) FROM _flaredb_kv k WHERE k.namespace = n.name)"
        " FROM _flaredb_namespaces n WHERE n.name > ? ORDER BY n.name LIMIT ?", (after, limit)).fetchall()
    return [Namespace(name, Mode(mode), keys) for name, mode, keys in rows]


def read_get(conn: sqlite3.Connection, namespace: str, key: bytes) -> Entry | None:
    """A key of a namespace (NOT_FOUND if the namespace is not declared)."""
    if namespace_mode(conn, namespace) is None:
        raise no_namespace(namespace)
    return get_entry(conn, namespace, key)


def read_scan(conn: sqlite3.Connection, namespace: str, start: bytes, end: bytes, limit: int,
              max_bytes: int | None = None) -> ScanResult:
    """Keys in [start, end) (end empty: to the last key), at most limit, and (at least one key) at most
    max_bytes of keys and values: the page ends early rather than grow past it."""
    if namespace_mode(conn, namespace) is None:
        raise no_namespace(namespace)
    cursor = conn.execute(
        "SELECT key, value, version FROM _flaredb_kv WHERE namespace = :ns AND key >= :start"
        " AND (:end = x'' OR key < :end) ORDER BY key LIMIT :limit",
        {"ns": namespace, "start": start, "end": end, "limit": limit + 1})
    items: list[Entry] = []
    size, next_key = 0, None
    try:
        for key, value, version in cursor:
            size += len(key) + len(value)
            if len(items) == limit or (items and max_bytes is not None and size > max_bytes):
                next_key = bytes(key)
                break
            items.append(Entry(bytes(key), bytes(value), version))
    finally:
        cursor.close()
    return ScanResult(items, next_key is not None, next_key)


def namespace_mode(conn: sqlite3.Connection, name: str) -> Mode | None:
    """A namespace's mode (None: not declared)."""
    row = conn.execute("SELECT mode FROM _flaredb_namespaces WHERE name = ?", (name,)).fetchone()
    return Mode(row[0]) if row else None


def no_namespace(name: str) -> NotFound:
    """The NOT_FOUND of a namespace that is not declared."""
    return NotFound(f"namespace {name!r} not found; create it with POST /api/v1/namespaces", {"namespace": name})


def get_entry(conn: sqlite3.Connection, namespace: str, key: bytes) -> Entry | None:
    """A key of a namespace (None: absent), without checking the namespace is declared."""
    row = conn.execute("SELECT value, version FROM _flaredb_kv WHERE namespace = ? AND key = ?",
                       (namespace, key)).fetchone()
    return Entry(key, bytes(row[0]), row[1]) if row else None


def put_entry(conn: sqlite3.Connection, namespace: str, key: bytes, value: bytes, version: int) -> None:
    """Write a key with its new version."""
    conn.execute("INSERT OR REPLACE INTO _flaredb_kv (namespace, key, value, version) VALUES (?, ?, ?, ?)",
                 (namespace, key, value, version))


def delete_entry(conn: sqlite3.Connection, namespace: str, key: bytes) -> None:
    """Remove a key."""
    conn.execute("DELETE FROM _flaredb_kv WHERE namespace = ? AND key = ?", (namespace, key))
