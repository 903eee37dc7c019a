"""IAM's store: its records in SQLite, in its data directory, under the state machine.

One table per record class; uniqueness rules are constraints, so that a conflict is refused by the
database even if a check above it were missed. Only the state machine writes (machine.py, on the
log's thread); the core reads through the log (`Records`), from the last commit, so that a read
never sees a command half-applied.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from photoncloud.common.replication import Log, Scan
from photoncloud.common.sqlite import SqliteState

from .commands import Change, Cmp, Delete, Insert, Where
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

R = TypeVar("R")

SCHEMA = """
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
    redirect_uris TEXT NOT NULL DEFAULT '[]',  -- JSON list
    public_client INTEGER NOT NULL DEFAULT 0,
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
    revoked_at REAL NOT NULL,
    client_id TEXT NOT NULL DEFAULT ''
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

    def __init__(self, kind: type[Any]):
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


class Duplicate(Exception):
    """A change would break a uniqueness rule (a name taken, a binding that exists)."""

    def __init__(self, kind: type, fields: tuple[str, ...]):
        super().__init__(f"{kind.__name__}: duplicate {', '.join(fields)}")
        self.kind = kind
        self.fields = fields


def _duplicate(kind: type, error: sqlite3.IntegrityError) -> Duplicate | None:
    message = str(error)
    prefix = "UNIQUE constraint failed: "
    if not message.startswith(prefix):
        return None
    return Duplicate(kind, tuple(part.strip().split(".")[-1] for part in message[len(prefix):].split(",")))


class SqliteIamStore(SqliteState):
    """IAM's records on one SQLite file (":memory:" for tests), written by the log's thread and read
    by it or inside reading() (see photoncloud.common.sqlite)."""

    SCHEMA = SCHEMA

    def __init__(self, path: Path | str):
        self._tables = {kind: _Table(kind) for kind in TABLES}
        super().__init__(path)

    def _open(self) -> None:
        if str(self.path) != ":memory:":  # mode 0600 from the start: it holds password hashes and private keys
            path = Path(self.path)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(path, 0o600)  # SQLite gives its -wal and -shm files the database file's mode
        super()._open()
        self.db.row_factory = sqlite3.Row

    def migrate(self) -> None:
        """Add the columns an older store lacks (service accounts as OAuth2 clients, and the client
        of a session)."""
        for table, column, declaration in (("service_accounts", "redirect_uris", "TEXT NOT NULL DEFAULT '[]'"),
                                           ("service_accounts", "public_client", "INTEGER NOT NULL DEFAULT 0"),
                                           ("token_families", "client_id", "TEXT NOT NULL DEFAULT ''")):
            columns = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def meta(self, name: str) -> int:
        """A number kept in the meta table (a file from before the log keeps its values as text)."""
        return int(super().meta(name))

    async def open(self) -> SqliteIamStore:
        """The store, ready (the file is opened when the store is made; kept for callers that open
        stores before use)."""
        return self

    async def close(self) -> None:  # type: ignore[override]
        """Close the database and its read connections (after the log that applies commands to it
        has stopped)."""
        SqliteState.close(self)

    def get(self, kind: type[R], key: Any) -> R | None:
        """The record of kind with this key, or None."""
        table = self._tables[kind]
        row = self.db.execute(f"SELECT * FROM {table.name} WHERE {table.key} = ?", (key,)).fetchone()
        return table.record(row) if row is not None else None

    def find(self, kind: type[R], where: Where = (), *, limit: int = 0, descending: bool = False) -> list[R]:
        """Records matching where, in key order (limit 0: all)."""
        table = self._tables[kind]
        clause, params = table.where(where)
        sql = f"SELECT * FROM {table.name}{clause} ORDER BY {table.key} {'DESC' if descending else 'ASC'}"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        return [table.record(row) for row in self.db.execute(sql, params).fetchall()]

    def count(self, kind: type, where: Where = ()) -> int:
        """How many records match where."""
        table = self._tables[kind]
        clause, params = table.where(where)
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table.name}{clause}", params).fetchone()[0])

    def change(self, change: Change) -> int:
        """Apply one change inside the caller's transaction (Duplicate on a uniqueness conflict);
        the rows it affected."""
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
            return self.db.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            duplicate = _duplicate(table.kind, exc)
            if duplicate is None:
                raise
            raise duplicate from None


def _scan(where: Where, limit: int) -> bool:
    """Whether a read may go through a whole table: no limit, and some condition that pins no value
    (none at all, a range, a prefix). One that pins values reads what belongs to them (a principal's
    bindings, an org's projects), as a page would."""
    return not limit and (not where or any(isinstance(condition, Cmp) for _, condition in where))


class Records:
    """The core's view of the store: every read runs through the log, after the commands applied
    before it; from a snapshot on the loop, or on the log's thread if it may scan a whole table."""

    def __init__(self, log: Log, store: SqliteIamStore):
        self.log = log
        self.state = store

    async def _read(self, query: Callable[[], R], scan: bool = False) -> R:
        return await self.log.read(Scan(query) if scan else query)

    async def get(self, kind: type[R], key: Any) -> R | None:
        """The record of kind with this key, or None."""
        return await self._read(lambda: self.state.get(kind, key))

    async def find(self, kind: type[R], where: Where = (), *, limit: int = 0, descending: bool = False) -> list[R]:
        """Records matching where, in key order (limit 0: all)."""
        return await self._read(lambda: self.state.find(kind, where, limit=limit, descending=descending),
                                _scan(where, limit))

    async def count(self, kind: type, where: Where = ()) -> int:
        """How many records match where."""
        return await self._read(lambda: self.state.count(kind, where), _scan(where, 0))
