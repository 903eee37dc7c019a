"""IAM's store: its records in SQLite (through aiosqlite), in its data directory, every commit
fsynced. One table per record class of the core; uniqueness rules are constraints, so that a
conflict is refused by the database even if a check above it were missed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import typing
from pathlib import Path
from typing import Any

import aiosqlite

from .core import (
    Change,
    Cmp,
    Delete,
    Duplicate,
    Insert,
    Where,
)
from .records import (
    AccessToken,
    AuditEvent,
    Binding,
    Meta,
    Organization,
    Project,
    RefreshToken,
    Revocation,
    Role,
    ServiceAccount,
    SigningKey,
    TokenFamily,
    User,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email TEXT NOT NULL,
    display_name TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    password_changed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS service_accounts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    secret_rotated_at REAL NOT NULL,
    UNIQUE (org_id, project_id, name)
);
CREATE INDEX IF NOT EXISTS service_accounts_by_project ON service_accounts (project_id);
CREATE TABLE IF NOT EXISTS roles (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    permissions TEXT NOT NULL,          -- JSON list
    builtin INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS bindings (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    role TEXT NOT NULL REFERENCES roles (name),
    scope_type TEXT NOT NULL,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (principal, role, scope_type, org_id, project_id)
);
CREATE INDEX IF NOT EXISTS bindings_by_org ON bindings (org_id);
CREATE INDEX IF NOT EXISTS bindings_by_project ON bindings (project_id);
CREATE INDEX IF NOT EXISTS bindings_by_role ON bindings (role);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    public_jwk TEXT NOT NULL,          -- JSON object
    created_at REAL NOT NULL,
    retired_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS token_families (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    scope_type TEXT NOT NULL,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS token_families_by_principal ON token_families (principal);
CREATE INDEX IF NOT EXISTS token_families_by_org ON token_families (org_id);
CREATE INDEX IF NOT EXISTS token_families_by_project ON token_families (project_id);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE TABLE IF NOT EXISTS access_tokens (
    jti TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS access_tokens_by_family ON access_tokens (family_id);
CREATE TABLE IF NOT EXISTS revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    revoked_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    request_id TEXT NOT NULL,
    client_address TEXT NOT NULL,
    details TEXT NOT NULL              -- JSON object
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time);
CREATE INDEX IF NOT EXISTS audit_by_principal ON audit (principal, seq);
"""

TABLES: dict[type, str] = {
    Meta: "meta", Organization: "orgs", Project: "projects", User: "users", ServiceAccount: "service_accounts",
    Role: "roles", Binding: "bindings", SigningKey: "signing_keys", TokenFamily: "token_families",
    RefreshToken: "refresh_tokens", AccessToken: "access_tokens", Revocation: "revocations", AuditEvent: "audit",
}
AUTO_KEYS = {Revocation, AuditEvent}  # seq is assigned by the database
_COMPARISONS = {"<", "<=", ">", ">=", "!="}


class _Table:
    """How one record class maps to its table."""

    def __init__(self, kind: type):
        self.kind = kind
        self.name = TABLES[kind]
        self.key = kind.KEY
        hints = typing.get_type_hints(kind)
        self.columns = [f.name for f in dataclasses.fields(kind)]
        self.json = {c for c in self.columns if (typing.get_origin(hints[c]) or hints[c]) in (tuple, dict)}
        self.tuples = {c for c in self.json if typing.get_origin(hints[c]) is tuple}
        self.bools = {c for c in self.columns if hints[c] is bool}

    def row(self, record: Any) -> dict[str, Any]:
        values = {}
        for column in self.columns:
            value = getattr(record, column)
            if column in self.json:
                value = json.dumps(list(value) if column in self.tuples else value)
            values[column] = value
        if self.kind in AUTO_KEYS and not values[self.key]:
            del values[self.key]
        return values

    def record(self, row: sqlite3.Row) -> Any:
        values = {}
        for column in self.columns:
            value = row[column]
            if column in self.json:
                value = json.loads(value)
                if column in self.tuples:
                    value = tuple(value)
            elif column in self.bools:
                value = bool(value)
            values[column] = value
        return self.kind(**values)

    def where(self, where: Where) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for column, condition in where:
            if column not in self.columns:
                raise ValueError(f"{self.name} has no column {column!r}")
            if isinstance(condition, Cmp):
                if condition.op in _COMPARISONS:
                    clauses.append(f"{column} {condition.op} ?")
                    params.append(condition.value)
                elif condition.op == "prefix":
                    clauses.append(f"substr({column}, 1, ?) = ?")
                    params += [len(condition.value), condition.value]
                elif condition.op == "under":
                    clauses.append(f"({column} = ? OR substr({column}, 1, ?) = ?)")
                    params += [condition.value, len(condition.value) + 1, condition.value + "."]
                else:
                    raise ValueError(f"unknown comparison {condition.op!r}")
            elif isinstance(condition, (list, tuple, set, frozenset)):
                values = list(condition)
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0")
                params += values
            else:
                clauses.append(f"{column} = ?")
                params.append(condition)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _duplicate(kind: type, error: sqlite3.IntegrityError) -> Duplicate | None:
    message = str(error)
    prefix = "UNIQUE constraint failed: "
    if not message.startswith(prefix):
        return None
    return Duplicate(kind, tuple(part.strip().split(".")[-1] for part in message[len(prefix):].split(",")))


class SqliteIamStore:
    """The IamStore of the core on one SQLite file (":memory:" for tests). Open it with open()."""

    def __init__(self, path: Path | str):
        self.path = path
        self._db: aiosqlite.Connection | None = None
        # One connection: statements of concurrent calls must not interleave with a transaction.
        self._lock = asyncio.Lock()
        self._tables = {kind: _Table(kind) for kind in TABLES}

    async def open(self) -> SqliteIamStore:
        """Create the file (mode 0600: it holds password hashes and private keys) and the schema."""
        if str(self.path) != ":memory:":
            path = Path(self.path)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(path, 0o600)  # SQLite gives its -wal and -shm files the database file's mode
        self._db = await aiosqlite.connect(str(self.path), isolation_level=None)
        self._db.row_factory = sqlite3.Row
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._db.executescript(SCHEMA)
        return self

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    async def get(self, kind: type, key: Any) -> Any:
        table = self._tables[kind]
        async with self._lock:
            async with self.db.execute(f"SELECT * FROM {table.name} WHERE {table.key} = ?", (key,)) as cursor:
                row = await cursor.fetchone()
        return table.record(row) if row is not None else None

    async def find(self, kind: type, where: Where = (), *, limit: int = 0, descending: bool = False) -> list[Any]:
        table = self._tables[kind]
        clause, params = table.where(where)
        sql = f"SELECT * FROM {table.name}{clause} ORDER BY {table.key} {'DESC' if descending else 'ASC'}"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        async with self._lock:
            async with self.db.execute(sql, params) as cursor:
                rows = await cursor.fetchall()
        return [table.record(row) for row in rows]

    async def count(self, kind: type, where: Where = ()) -> int:
        table = self._tables[kind]
        clause, params = table.where(where)
        async with self._lock:
            async with self.db.execute(f"SELECT COUNT(*) FROM {table.name}{clause}", params) as cursor:
                row = await cursor.fetchone()
        return int(row[0])

    async def write(self, *changes: Change) -> list[int]:
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                counts = [await self._apply(change) for change in changes]
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")
        return counts

    async def _apply(self, change: Change) -> int:
        if isinstance(change, Delete):
            table = self._tables[change.kind]
            clause, params = table.where(change.where)
            if not clause:
                raise ValueError("a delete needs conditions")
            sql = f"DELETE FROM {table.name}{clause}"
        else:
            table = self._tables[type(change.record)]
            values = table.row(change.record)
            if isinstance(change, Insert):
                sql = f"INSERT INTO {table.name} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})"
                params = list(values.values())
            else:
                key = values.pop(table.key)
                sql = f"UPDATE {table.name} SET {', '.join(f'{c} = ?' for c in values)} WHERE {table.key} = ?"
                params = [*values.values(), key]
        try:
            async with self.db.execute(sql, params) as cursor:
                return cursor.rowcount
        except sqlite3.IntegrityError as exc:
            duplicate = _duplicate(table.kind, exc)
            if duplicate is None:
                raise
            raise duplicate from None

    async def close(self) -> None:
        """Close the connection (and its thread)."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()
