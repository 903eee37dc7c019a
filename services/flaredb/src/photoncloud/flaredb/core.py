"""FlareDB's domain: SQL on one SQLite database per project, and key-value namespaces beside it,
as commands applied to a replicated state machine.

Writes (SQL that changes anything, namespace creation, KV puts, deletes and compare-and-swaps,
restores) are commands the core proposes to its log; the log applies them to FlareDBStateMachine on
every member, in log order. Read-only SQL and KV reads run on read-only connections beside the state
machine (readers.ReadPool), with the consistency the request asks for, as in rqlite: `none` (this
member's state as it stands), `weak` (the leader's state: a follower refuses with UNAVAILABLE naming
the leader), `strong` (after a barrier committed through the log: sees every write acknowledged
before the read began).

The state machine reads nothing but the command and its files: statements that would read the
clock are refused before they are proposed, and random() / randomblob() are seeded from the index.
A write runs under a budget of SQLite steps that travels with it in the log, a read under a deadline
(limits.py): one tenant's statement cannot hold a thread for long.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, Union

from photoncloud.common import auth, paging
from photoncloud.common.auth import ORG, PROJECT, SYSTEM, Principal
from photoncloud.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
    Unavailable,
)
from photoncloud.common.projects import Projects
from photoncloud.common.replication import LocalLog, Log, LogStatus, Member

from . import sql
from .limits import (
    UNLIMITED_LENGTH,
    Deadline,
    Guard,
    HeavyWriters,
    Limits,
    ResultMeter,
    StatementLimits,
    StepBudget,
    install,
    too_big,
    value_too_large,
)
from .readers import ReadPool

T = TypeVar("T")
log = logging.getLogger("photoncloud.flaredb")

SQL_READ, SQL_WRITE, SQL_MANAGE = "flaredb:sql:read", "flaredb:sql:write", "flaredb:sql:manage"
KV_READ, KV_WRITE = "flaredb:kv:read", "flaredb:kv:write"
MAX_STATEMENTS = 1000  # per request
MAX_SQL_BYTES = 1024 * 1024  # per statement
MAX_KEY_BYTES = 4 * 1024
DEFAULT_SCAN_LIMIT, MAX_SCAN_LIMIT = 100, 1000
DEFAULT_NAMESPACE = "default"  # the namespace of KV calls that name none
NAMESPACE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SQLITE_HEADER = b"SQLite format 3\x00"
PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")  # also a safe file name: no dots, no slashes

Value = Union[None, int, float, str, bytes]


class Consistency(enum.Enum):
    """How fresh a read must be (rqlite's levels)."""

    NONE = "none"
    WEAK = "weak"
    STRONG = "strong"


class Mode(enum.Enum):
    """How a namespace is written and read."""

    STRONG = "strong"  # written only by compare-and-swap, read linearizably
    EVENTUAL = "eventual"  # raw puts and deletes, reads from the member's own state


# -- commands (pickled between members: frozen dataclasses of plain values) ---------------------


@dataclass(frozen=True)
class Statement:
    """One SQL statement with positional or named parameters (not both)."""

    sql: str
    params: tuple[Value, ...] = ()
    named: tuple[tuple[str, Value], ...] = ()

    def bindings(self) -> tuple[Value, ...] | dict[str, Value]:
        """The parameters as sqlite3 takes them."""
        return dict(self.named) if self.named else self.params


@dataclass(frozen=True)
class ExecuteSql:
    """Run statements in one transaction on a project's database: all of them or none."""

    project_id: str
    statements: tuple[Statement, ...]
    limits: StatementLimits | None = None  # None: an entry logged before limits existed, applied without


@dataclass(frozen=True)
class RestoreDatabase:
    """Replace a project's database with a SQLite file."""

    project_id: str
    data: bytes
    limits: StatementLimits | None = None  # the budget of checking the file


@dataclass(frozen=True)
class CreateNamespace:
    """Declare a KV namespace with its mode."""

    project_id: str
    name: str
    mode: Mode


@dataclass(frozen=True)
class KvPut:
    """Write a key of an eventual namespace."""

    project_id: str
    namespace: str
    key: bytes
    value: bytes


@dataclass(frozen=True)
class KvDelete:
    """Delete a key of an eventual namespace."""

    project_id: str
    namespace: str
    key: bytes


@dataclass(frozen=True)
class KvCas:
    """Write (or delete) a key of a strong namespace if its version is expected_version (0: absent)."""

    project_id: str
    namespace: str
    key: bytes
    value: bytes
    expected_version: int
    delete: bool = False


Command = Union[ExecuteSql, RestoreDatabase, CreateNamespace, KvPut, KvDelete, KvCas]


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementResult:
    """A query's columns, their types and rows; or a write's rows affected and last rowid."""

    columns: list[str] | None = None  # None: the statement returned no rows (a write)
    types: list[str] = field(default_factory=list)
    rows: list[list[Value]] = field(default_factory=list)
    rows_affected: int = 0
    last_insert_id: int = 0


@dataclass(frozen=True)
class Column:
    """A table's column as declared."""

    name: str
    type: str
    not_null: bool
    default: str | None
    primary_key: int  # position in the primary key (0: not part of it)


@dataclass(frozen=True)
class Index:
    """An index of a table."""

    name: str
    columns: list[str]
    unique: bool


@dataclass(frozen=True)
class Table:
    """A user table: its columns, indexes and row count."""

    name: str
    columns: list[Column]
    indexes: list[Index]
    row_count: int
    sql: str


@dataclass(frozen=True)
class TablePage:
    """A page of tables, by name."""

    items: list[Table]
    next_page_token: str


@dataclass(frozen=True)
class RestoreResult:
    """What a restore brought."""

    tables: int
    bytes: int


@dataclass(frozen=True)
class Namespace:
    """A KV namespace."""

    name: str
    mode: Mode
    keys: int = 0


@dataclass(frozen=True)
class NamespacePage:
    """A page of namespaces, by name."""

    items: list[Namespace]
    next_page_token: str


@dataclass(frozen=True)
class Entry:
    """A key, its value and its version (1 on create, +1 per change)."""

    key: bytes
    value: bytes
    version: int


@dataclass(frozen=True)
class PutResult:
    """The version a put gave the key."""

    key: bytes
    version: int


@dataclass(frozen=True)
class DeleteResult:
    """How many keys a delete removed (0 or 1: deleting a missing key is not an error)."""

    key: bytes
    deleted: int


@dataclass(frozen=True)
class CasResult:
    """Whether the swap happened, and the key's version and value afterwards (0 and None: absent)."""

    succeeded: bool
    key: bytes
    version: int
    value: bytes | None


@dataclass(frozen=True)
class ScanResult:
    """Keys in [start, end), by key; next_key is where the next page starts."""

    items: list[Entry]
    has_more: bool
    next_key: bytes | None


@dataclass(frozen=True)
class Status:
    """This member and its log."""

    member_id: int
    leader: int
    role: str
    raft_term: int
    raft_index: int
    projects: int
    db_size_bytes: int


# -- the state machine -------------------------------------------------------------------------------


def check_project_id(project_id: str) -> str:
    """project_id if it is a valid project ID (letters, digits, `-`, `_`), else INVALID_ARGUMENT."""
    if not isinstance(project_id, str) or not PROJECT_ID.match(project_id):
        raise InvalidArgument("project_id must be 1 to 128 letters, digits, '-' or '_'", {"field": "project_id"})
    return project_id


class ProjectStore(Protocol):
    """The project databases the state machine works on (store.ProjectFiles)."""

    on_open: Callable[[sqlite3.Connection], None] | None  # called with each connection it opens
    open_files: int  # connections kept open at most

    def applied_index(self) -> int:
        """The highest index applied to any project's database."""

    def index(self, project_id: str) -> int:
        """The last index applied to the project's database (0: none)."""

    def applied_to(self, project_id: str, index: int) -> None:
        """Note that index was committed to the project's database."""

    def set_index(self, conn: sqlite3.Connection, index: int) -> None:
        """Record index as applied, inside the command's transaction (also sets last_insert_rowid() to 0)."""

    def connection(self, project_id: str) -> sqlite3.Connection:
        """The project's connection, creating its database if it has none."""

    def reader(self, project_id: str) -> sqlite3.Connection:
        """The project's connection, or an empty database's if it has none."""

    def generation(self, project_id: str) -> Any:
        """A value that changes whenever the project's file is replaced."""

    def open_reader(self, project_id: str) -> tuple[sqlite3.Connection, bool]:
        """A new read-only connection to the project's database (or an empty one's, and False)."""

    def check(self, project_id: str, data: bytes, limits: StatementLimits | None) -> None:
        """INVALID_ARGUMENT unless data is a SQLite file a restore would take."""

    def load(self, project_id: str, data: bytes, index: int, limits: StatementLimits | None = None) -> int:
        """Replace the project's database with the SQLite file data, applied up to index; its table count."""

    def backup(self, project_id: str, source: sqlite3.Connection | None = None) -> bytes:
        """A consistent copy of the project's database as a SQLite file (from source, if given)."""

    def projects(self) -> list[str]:
        """Every project with a database."""

    def size_bytes(self) -> int:
        """The size of every project's database."""

    def snapshot(self, path: str) -> None:
        """Every project's database in one archive at path."""

    def restore(self, path: str) -> None:
        """Replace every project's database with the archive's."""

    def close(self) -> None:
        """Close every open connection."""


def _storage_class(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, (bool, int)):
        return "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, bytes):
        return "blob"
    return "text"


def _column_types(rows: list[list[Value]], width: int) -> list[str]:
    """Per column, the storage class of its first non-NULL value ("null" if every value is NULL)."""
    types = []
    for i in range(width):
        found = next((row[i] for row in rows if row[i] is not None), None)
        types.append(_storage_class(found))
    return types


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class FlareDBStateMachine:
    """Applies FlareDB's commands to the project databases. Deterministic: no clocks, no randomness."""

    def __init__(self, files: ProjectStore):
        self.determinism = sql.Determinism()
        self.files = files
        files.on_open = self.determinism.install
        self.authorizer = sql.Authorizer()

    # -- the StateMachine protocol --

    def applied_index(self) -> int:
        """The highest log index applied to any project's database."""
        return self.files.applied_index()

    def apply(self, index: int, command: Command) -> Any:
        """Apply one command in one transaction of its project's database; a rejected command changes
        nothing but the database's applied index. Returns the result, or the ServiceError it raised."""
        return self.apply_batch([(index, command)])[0]

    def apply_batch(self, entries: list[tuple[int, Command]]) -> list[Any]:
        """Apply (index, command) entries in order, each in its own savepoint, committing each
        project's database once at the end (group commit: one fsync per file, not per command)."""
        results: list[Any] = [None] * len(entries)
        # project -> (the last index in its open transaction, the positions of the commands that
        # changed something in it)
        pending: dict[str, tuple[int, list[int]]] = {}

        def commit() -> None:
            for project_id, (last, _) in pending.items():
                self.files.connection(project_id).execute("COMMIT")
                self.files.applied_to(project_id, last)
            pending.clear()

        try:
            for position, (index, command) in enumerate(entries):
                project_id = command.project_id
                if index <= self.files.index(project_id):
                    continue  # replayed: this database has it already
                if isinstance(command, RestoreDatabase):  # replaces the file: not inside a transaction
                    commit()
                    results[position] = self._restore(index, command)
                    continue
                if project_id not in pending:
                    if len(pending) >= self.files.open_files // 2:  # keep the files with open transactions open
                        commit()
                    self.files.connection(project_id).execute("BEGIN IMMEDIATE")
                    pending[project_id] = (0, [])
                conn = self.files.connection(project_id)
                results[position] = self._apply_one(conn, index, command)
                changed = pending[project_id][1]
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (RAISE(ROLLBACK) in a trigger, ON CONFLICT
                    # ROLLBACK): apply this file's earlier commands of the batch again (they give the
                    # same results: the machine is deterministic), then record the failed one's index.
                    conn.execute("BEGIN IMMEDIATE")
                    for earlier in changed:
                        results[earlier] = self._apply_one(conn, *entries[earlier])
                    self.files.set_index(conn, index)
                elif not isinstance(results[position], ServiceError):
                    changed.append(position)
                pending[project_id] = (index, changed)
            commit()
        except BaseException:
            for project_id in pending:
                conn = self.files.connection(project_id)
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise
        return results

    def _apply_one(self, conn: sqlite3.Connection, index: int, command: Command) -> Any:
        """Apply a command inside the open transaction, in a savepoint undone if it is rejected."""
        self.determinism.seed(index)
        conn.execute("SAVEPOINT command")
        try:
            # First: recording the index also resets last_insert_rowid() to 0, the same everywhere.
            self.files.set_index(conn, index)
            result = self._execute(conn, index, command)
        except ServiceError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO command")
                conn.execute("RELEASE command")
                self.files.set_index(conn, index)
            return exc
        conn.execute("RELEASE command")
        return result

    def snapshot(self, path: str) -> None:
        """Every project's database in one archive at path."""
        self.files.snapshot(path)

    def restore(self, path: str) -> None:
        """Replace every project's database with the snapshot's."""
        self.files.restore(path)

    def close(self) -> None:
        """Close the databases."""
        self.files.close()

    # -- commands --

    def _execute(self, conn: sqlite3.Connection, index: int, command: Command) -> Any:
        if isinstance(command, ExecuteSql):
            return self._execute_sql(conn, command)
        if isinstance(command, CreateNamespace):
            if _mode(conn, command.name) is not None:
                raise AlreadyExists(f"namespace {command.name!r} exists", {"namespace": command.name})
            conn.execute("INSERT INTO _flaredb_namespaces (name, mode, created_index) VALUES (?, ?, ?)",
                         (command.name, command.mode.value, index))
            return Namespace(command.name, command.mode)
        mode = _mode(conn, command.namespace)
        if mode is None:
            raise _no_namespace(command.namespace)
        if isinstance(command, (KvPut, KvDelete)) and mode is Mode.STRONG:
            raise FailedPrecondition(
                f"namespace {command.namespace!r} is strong: write it with compare-and-swap",
                {"namespace": command.namespace, "mode": mode.value})
        if isinstance(command, KvCas) and mode is Mode.EVENTUAL:
            raise FailedPrecondition(
                f"namespace {command.namespace!r} is eventual: compare-and-swap needs a strong namespace",
                {"namespace": command.namespace, "mode": mode.value})
        current = _get(conn, command.namespace, command.key)
        if isinstance(command, KvPut):
            version = current.version + 1 if current else 1
            _put(conn, command.namespace, command.key, command.value, version)
            return PutResult(command.key, version)
        if isinstance(command, KvDelete):
            if current is None:
                return DeleteResult(command.key, 0)
            _delete(conn, command.namespace, command.key)
            return DeleteResult(command.key, 1)
        version = current.version if current else 0
        if version != command.expected_version or (command.delete and current is None):
            return CasResult(False, command.key, version, current.value if current else None)
        if command.delete:
            _delete(conn, command.namespace, command.key)
            return CasResult(True, command.key, 0, None)
        _put(conn, command.namespace, command.key, command.value, version + 1)
        return CasResult(True, command.key, version + 1, command.value)

    def _execute_sql(self, conn: sqlite3.Connection, command: ExecuteSql) -> list[StatementResult]:
        """The statements under the limits they were logged with: a budget of steps, not of time, so
        that the statement that runs out runs out on every member, and fails alike everywhere."""
        limits = command.limits
        budget = StepBudget(limits.steps) if limits is not None else None
        install(conn, budget, limits.length if limits is not None else UNLIMITED_LENGTH)
        meter = ResultMeter(limits.rows, limits.result_bytes) if limits is not None else None
        self.determinism.applying = True
        try:
            return run_statements(conn, command.statements, self.authorizer, self.authorizer.write, budget, meter,
                                  self.determinism)
        finally:
            self.determinism.applying = False
            install(conn, None, UNLIMITED_LENGTH)  # FlareDB's own statements run unguarded

    def _restore(self, index: int, command: RestoreDatabase) -> Any:
        try:
            tables = self.files.load(command.project_id, command.data, index, command.limits)
        except ServiceError as exc:  # rejected: the project's database records the index and stays as it was
            conn = self.files.connection(command.project_id)
            conn.execute("BEGIN IMMEDIATE")
            self.files.set_index(conn, index)
            conn.execute("COMMIT")
            self.files.applied_to(command.project_id, index)
            return exc
        self.files.applied_to(command.project_id, index)
        return RestoreResult(tables, len(command.data))

    # -- reads on the state machine's own connections (tools and tests, on its thread; the core
    #    reads through readers.ReadPool) --

    def query(self, project_id: str, statements: Sequence[Statement]) -> list[StatementResult]:
        """Run read-only statements on the project's database as it stands on this member."""
        authorizer = sql.Authorizer()
        return run_statements(self.files.reader(project_id), statements, authorizer, authorizer.read)

    def scan(self, project_id: str, namespace: str, start: bytes, end: bytes, limit: int) -> ScanResult:
        """Keys in [start, end) (end empty: to the last key), at most limit."""
        return read_scan(self.files.reader(project_id), namespace, start, end, limit)

    def get(self, project_id: str, namespace: str, key: bytes) -> Entry | None:
        """A key of a namespace."""
        return read_get(self.files.reader(project_id), namespace, key)


# -- statements and reads on a connection ---------------------------------------------------------------


def run_statements(conn: sqlite3.Connection, statements: Sequence[Statement], authorizer: sql.Authorizer,
                   check: Callable[..., int], guard: Guard | None = None, meter: ResultMeter | None = None,
                   determinism: sql.Determinism | None = None) -> list[StatementResult]:
    """Run user statements under check (one of authorizer's callbacks), with the guard installed on
    conn stopping them and meter counting their rows; SQLite's errors become INVALID_ARGUMENT, a
    guard's or a limit's RESOURCE_EXHAUSTED (or DEADLINE_EXCEEDED)."""
    results = []
    conn.set_authorizer(check)
    try:
        for i, statement in enumerate(statements):
            authorizer.reason = ""
            cursor = None
            try:
                cursor = conn.execute(statement.sql, statement.bindings())
                if cursor.description is not None:
                    rows = []
                    for row in cursor:
                        if meter is not None:
                            meter.add(row, i)
                        rows.append(list(row))
                    columns = [d[0] for d in cursor.description]
                    results.append(StatementResult(columns, _column_types(rows, len(columns)),
                                                   [[_json_safe(v) for v in row] for row in rows]))
                else:
                    results.append(StatementResult(rows_affected=max(cursor.rowcount, 0),
                                                   last_insert_id=cursor.lastrowid or 0))
            except (sqlite3.Error, sqlite3.Warning, OverflowError) as exc:
                raise _sql_error(conn, i, exc, authorizer, guard, determinism) from None
            finally:
                if cursor is not None:
                    cursor.close()  # a result cut short must not hold its read transaction open
    finally:
        conn.set_authorizer(None)
    return results


def _sql_error(conn: sqlite3.Connection, i: int, exc: Exception, authorizer: sql.Authorizer, guard: Guard | None,
               determinism: sql.Determinism | None) -> ServiceError:
    details = {"statement_index": i}
    if guard is not None and (getattr(guard, "exhausted", False) or getattr(guard, "expired", False)):
        return guard.error(i)
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_TOOBIG":
        return too_big(i, conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH))
    if authorizer.reason and ("not authorized" in str(exc) or "prohibited" in str(exc)):
        return PermissionDenied(f"statement {i}: {authorizer.reason}", {**details, "reason": "SQL_NOT_ALLOWED"})
    if determinism is not None and determinism.refused:
        return InvalidArgument(f"statement {i}: {determinism.refused} reads the clock or the time zone, which would "
                               "differ between replicas; compute the time in the client and pass it as a parameter",
                               {**details, "reason": "CLOCK"})
    return InvalidArgument(f"statement {i}: {exc}", details)


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


def read_namespace(conn: sqlite3.Connection, name: str) -> Namespace:
    """A namespace, with its number of keys."""
    mode = _mode(conn, name)
    if mode is None:
        raise _no_namespace(name)
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
    if _mode(conn, namespace) is None:
        raise _no_namespace(namespace)
    return _get(conn, namespace, key)


def read_scan(conn: sqlite3.Connection, namespace: str, start: bytes, end: bytes, limit: int,
              max_bytes: int | None = None) -> ScanResult:
    """Keys in [start, end) (end empty: to the last key), at most limit, and (at least one key) at most
    max_bytes of keys and values: the page ends early rather than grow past it."""
    if _mode(conn, namespace) is None:
        raise _no_namespace(namespace)
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


def _mode(conn: sqlite3.Connection, name: str) -> Mode | None:
    row = conn.execute("SELECT mode FROM _flaredb_namespaces WHERE name = ?", (name,)).fetchone()
    return Mode(row[0]) if row else None


def _no_namespace(name: str) -> NotFound:
    return NotFound(f"namespace {name!r} not found; create it with POST /api/v1/namespaces", {"namespace": name})


def _get(conn: sqlite3.Connection, namespace: str, key: bytes) -> Entry | None:
    row = conn.execute("SELECT value, version FROM _flaredb_kv WHERE namespace = ? AND key = ?",
                       (namespace, key)).fetchone()
    return Entry(key, bytes(row[0]), row[1]) if row else None


def _put(conn: sqlite3.Connection, namespace: str, key: bytes, value: bytes, version: int) -> None:
    conn.execute("INSERT OR REPLACE INTO _flaredb_kv (namespace, key, value, version) VALUES (?, ?, ?, ?)",
                 (namespace, key, value, version))


def _delete(conn: sqlite3.Connection, namespace: str, key: bytes) -> None:
    conn.execute("DELETE FROM _flaredb_kv WHERE namespace = ? AND key = ?", (namespace, key))


def _json_safe(value: Value) -> Value:
    """Infinite reals as text: JSON has no number for them (SQLite stores NaN as NULL)."""
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


# -- the core ----------------------------------------------------------------------------------------


_PLAIN = (type(None), str, bytes, float)


def check_value(value: Any, where: str) -> Value:
    """value if SQLite can bind it: NULL, a 64-bit integer, a real, text or bytes."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if not -(1 << 63) <= value < (1 << 63):
            raise InvalidArgument(f"{where}: integers are 64-bit", {"field": where})
        return value
    raise InvalidArgument(f"{where}: a parameter is null, a number, text or bytes", {"field": where})


def _params_ok(values: Sequence[Any]) -> bool:
    """Whether every value binds as it is (the common case, checked without building messages)."""
    return all(type(v) in _PLAIN or (type(v) is int and -(1 << 63) <= v < (1 << 63)) for v in values)


def _size(value: Value) -> int:
    """The bytes of a text or BLOB value (0 for the others)."""
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode())
    return 0


def check_statements(statements: Sequence[Statement], max_value_bytes: int = Limits.max_value_bytes
                     ) -> tuple[Statement, ...]:
    """The statements, if there are 1 to MAX_STATEMENTS well-formed ones whose parameters are at most
    max_value_bytes each."""
    if not statements:
        raise InvalidArgument("give at least one statement", {"field": "statements"})
    if len(statements) > MAX_STATEMENTS:
        raise InvalidArgument(f"at most {MAX_STATEMENTS} statements per request", {"field": "statements"})
    checked = []
    for i, s in enumerate(statements):
        if not s.sql.strip():
            raise InvalidArgument(f"statements.{i}: the statement is empty", {"field": f"statements.{i}.sql"})
        if len(s.sql) > MAX_SQL_BYTES // 4 and len(s.sql.encode()) > MAX_SQL_BYTES:
            raise InvalidArgument(f"statements.{i}: a statement has at most {MAX_SQL_BYTES} bytes",
                                  {"field": f"statements.{i}.sql"})
        if s.params and s.named:
            raise InvalidArgument(f"statements.{i}: give positional or named parameters, not both",
                                  {"field": f"statements.{i}.params"})
        if s.named:
            s = Statement(s.sql, named=tuple((name.lstrip(":@$"), value) for name, value in s.named))
        if not _params_ok(s.params) or not _params_ok([v for _, v in s.named]):
            where = f"statements.{i}.params"
            s = Statement(s.sql, tuple(check_value(v, where) for v in s.params),
                          tuple((name, check_value(v, where)) for name, v in s.named))
        for value in (*s.params, *(v for _, v in s.named)):
            if _size(value) > max_value_bytes:
                raise value_too_large(f"statements.{i}.params", max_value_bytes)
        checked.append(s)
    return tuple(checked)


def check_namespace(name: str) -> str:
    """name if it is a valid namespace name."""
    if not re.match(NAMESPACE_NAME, name or ""):
        raise InvalidArgument("a namespace name is 1 to 64 letters, digits, '.', '-' or '_'", {"field": "namespace"})
    return name


def check_key(key: bytes) -> bytes:
    """key if it is 1 to MAX_KEY_BYTES bytes."""
    if not key or len(key) > MAX_KEY_BYTES:
        raise InvalidArgument(f"a key has 1 to {MAX_KEY_BYTES} bytes", {"field": "key"})
    return key


def check_kv_value(value: bytes, max_value_bytes: int = Limits.max_value_bytes) -> bytes:
    """value if it is at most max_value_bytes bytes (else RESOURCE_EXHAUSTED)."""
    if len(value) > max_value_bytes:
        raise value_too_large("value", max_value_bytes)
    return value


def _nothing() -> None:
    """A read that reads nothing: awaiting it through the log is a barrier."""


class FlareDBCore:
    """FlareDB's operations: validate, then propose writes to the log or read the project files."""

    def __init__(self, machine: FlareDBStateMachine, log: Log, version: str, projects: Projects | None = None,
                 limits: Limits | None = None):
        self.machine = machine
        self.log = log
        self.version = version
        self.projects = projects  # IAM, for the org of a project an org-scoped token names
        self.limits = limits or Limits()
        self.readers = ReadPool(machine.files, self.limits)
        self.heavy = HeavyWriters()

    # -- who acts on which project --

    async def project(self, requested: str, action: str) -> str:
        """The project the current caller acts on, once it may do action there: a project-scoped
        token's own project, or the one the request names (`project_id`) for a system-scoped token,
        or for an org-scoped token whose org IAM says the project belongs to (asked with the
        caller's own token)."""
        principal = auth.current()
        if principal is None:  # no authentication (tests of the core)
            return check_project_id(requested)
        principal.require(action)
        scope = principal.scope
        if scope.kind == PROJECT:
            if requested and requested != scope.project_id:
                raise PermissionDenied("the project lies outside the token's scope",
                                       {"reason": "OUT_OF_SCOPE", "action": action, "scope": scope.as_dict()})
            return check_project_id(scope.project_id)
        if not requested:
            raise InvalidArgument(f"a token scoped to {'the system' if scope.kind == SYSTEM else 'an org'} names the "
                                  "project: give project_id", {"field": "project_id"})
        check_project_id(requested)
        if scope.kind == ORG:
            if self.projects is None:
                raise PermissionDenied("this FlareDB cannot ask IAM which org a project belongs to: use a token "
                                       "scoped to the project", {"reason": "PROJECT_SCOPE_REQUIRED", "action": action})
            principal.require(action, await self.projects.org_of(requested), requested)
        return requested

    # -- reads with a consistency level --

    async def _read(self, project_id: str, read: Callable[[sqlite3.Connection, Deadline], T],
                    consistency: Consistency) -> T:
        """read(connection, deadline) on one of the project's readers, as fresh as consistency asks."""
        if consistency is Consistency.STRONG:
            await self._barrier()
        elif consistency is Consistency.WEAK and self.log.status().role != "LEADER":
            raise Unavailable("this member is not the leader: send weak reads to the leader, or ask for "
                              "consistency none (this member's state) or strong", {"leader": self.leader_urls()})
        return await self.readers.run(project_id, read)

    async def _barrier(self) -> None:
        """Return once this member has applied every write acknowledged anywhere before the call:
        readers then see them all (a write is committed before it is acknowledged)."""
        if isinstance(self.log, LocalLog):
            return  # one member: every write it acknowledged is committed already
        await self.log.read(_nothing, linearizable=True)

    def leader_urls(self) -> dict[str, str] | None:
        """Where clients reach the leader (None: no leader known)."""
        leader = next((m for m in self.log.members() if m.is_leader), None)
        return dict(leader.client_urls) if leader is not None else None

    # -- SQL --

    async def execute(self, project_id: str, statements: Sequence[Statement],
                      consistency: Consistency = Consistency.WEAK,
                      principal: Principal | None = None) -> list[StatementResult]:
        """Run statements: read-only ones with the consistency asked for, others through the log as
        one transaction (all or nothing)."""
        checked = check_statements(statements, self.limits.max_value_bytes)
        if all(sql.is_read_only(s.sql) for s in checked):
            limits = self.limits

            def query(conn: sqlite3.Connection, deadline: Deadline) -> list[StatementResult]:
                authorizer = sql.Authorizer()  # one per read: it keeps the reason of its last refusal
                return run_statements(conn, checked, authorizer, authorizer.read, deadline,
                                      ResultMeter(limits.max_result_rows, limits.max_result_bytes))

            return await self._read(project_id, query, consistency)
        if principal is not None:
            principal.require(SQL_WRITE)
        for i, statement in enumerate(checked):
            reason = sql.clock_use(statement.sql)
            if reason is not None:
                raise InvalidArgument(
                    f"statement {i}: {reason} reads the clock or the time zone, which would differ between "
                    "replicas; compute the time in the client and pass it as a parameter",
                    {"statement_index": i, "reason": "CLOCK", "field": f"statements.{i}.sql"})
        command = ExecuteSql(project_id, checked, self.limits.for_writes())
        return await self.heavy.write(project_id, lambda: self.log.propose(command))

    async def tables(self, project_id: str, page_size: int = 0, page_token: str = "",
                     consistency: Consistency = Consistency.WEAK) -> TablePage:
        """The project's tables, by name."""
        limit = paging.page_size(page_size)
        after = str(paging.decode_token(page_token).get("after", "")) if page_token else ""
        found = await self._read(project_id, lambda conn, _: read_tables(conn, after, limit + 1), consistency)
        token = paging.encode_token({"after": found[limit - 1].name}) if len(found) > limit else ""
        return TablePage(found[:limit], token)

    async def table(self, project_id: str, name: str, consistency: Consistency = Consistency.WEAK) -> Table:
        """One table: columns, indexes, row count."""
        if name.lower().startswith(sql.INTERNAL_PREFIX):
            raise NotFound(f"table {name!r} not found", {"table": name})
        found = await self._read(project_id, lambda conn, _: read_tables(conn, "", 1, name), consistency)
        if not found:
            raise NotFound(f"table {name!r} not found", {"table": name})
        return found[0]

    async def backup(self, project_id: str, consistency: Consistency = Consistency.WEAK) -> bytes:
        """The project's database as a SQLite file."""
        files = self.machine.files
        return await self._read(project_id, lambda conn, _: files.backup(project_id, conn), consistency)

    async def restore(self, project_id: str, data: bytes) -> RestoreResult:
        """Replace the project's database with a SQLite file (one made by backup). The file is checked
        here, so that one no member would take never enters the log, and again by every member."""
        if not data.startswith(SQLITE_HEADER):
            raise InvalidArgument("the body is not a SQLite database file", {"field": "data"})
        limits = self.limits.for_writes()
        await asyncio.to_thread(self.machine.files.check, project_id, data, limits)
        return await self.log.propose(RestoreDatabase(project_id, bytes(data), limits))

    # -- KV --

    async def create_namespace(self, project_id: str, name: str, mode: Mode) -> Namespace:
        """Declare a namespace."""
        return await self.log.propose(CreateNamespace(project_id, check_namespace(name), mode))

    async def namespaces(self, project_id: str, page_size: int = 0, page_token: str = "") -> NamespacePage:
        """The project's namespaces, by name."""
        limit = paging.page_size(page_size)
        after = str(paging.decode_token(page_token).get("after", "")) if page_token else ""
        found = await self.readers.run(project_id, lambda conn, _: read_namespaces(conn, after, limit + 1))
        token = paging.encode_token({"after": found[limit - 1].name}) if len(found) > limit else ""
        return NamespacePage(found[:limit], token)

    async def namespace(self, project_id: str, name: str) -> Namespace:
        """One namespace, with its number of keys."""
        check_namespace(name)
        return await self._kv_read(project_id, name, lambda conn: read_namespace(conn, name))

    async def _kv_read(self, project_id: str, namespace: str, query: Callable[[sqlite3.Connection], T]) -> T:
        """A read of a namespace: linearizable if it is strong, from this member's state if eventual."""
        mode = await self.readers.run(project_id, lambda conn, _: _mode(conn, namespace))
        if mode is None:  # maybe declared but not applied here yet
            await self._barrier()
            mode = await self.readers.run(project_id, lambda conn, _: _mode(conn, namespace))
        if mode is None:
            raise _no_namespace(namespace)
        if mode is Mode.STRONG:
            await self._barrier()
        return await self.readers.run(project_id, lambda conn, _: query(conn))

    async def get(self, project_id: str, namespace: str, key: bytes) -> Entry:
        """A key's value and version."""
        check_namespace(namespace)
        check_key(key)
        found = await self._kv_read(project_id, namespace, lambda conn: read_get(conn, namespace, key))
        if found is None:
            raise NotFound(f"key {key.decode(errors='backslashreplace')!r} not found",
                           {"namespace": namespace, "key": key.decode(errors="backslashreplace")})
        return found

    async def scan(self, project_id: str, namespace: str, start: bytes = b"", end: bytes = b"",
                   limit: int = 0) -> ScanResult:
        """Keys in [start, end), at most limit (default DEFAULT_SCAN_LIMIT, at most MAX_SCAN_LIMIT), and at
        most --max-result-bytes of keys and values (but at least one key): has_more says where to go on."""
        check_namespace(namespace)
        limit = paging.page_size(limit, DEFAULT_SCAN_LIMIT, MAX_SCAN_LIMIT)
        if end and end <= start:
            raise InvalidArgument("end must be after start (or empty: no end)", {"field": "end"})
        max_bytes = self.limits.max_result_bytes
        return await self._kv_read(project_id, namespace,
                                   lambda conn: read_scan(conn, namespace, start, end, limit, max_bytes))

    async def put(self, project_id: str, namespace: str, key: bytes, value: bytes) -> PutResult:
        """Write a key of an eventual namespace."""
        return await self.log.propose(KvPut(project_id, check_namespace(namespace), check_key(key),
                                            check_kv_value(value, self.limits.max_value_bytes)))

    async def delete(self, project_id: str, namespace: str, key: bytes) -> DeleteResult:
        """Delete a key of an eventual namespace (deleted 0 if it did not exist)."""
        return await self.log.propose(KvDelete(project_id, check_namespace(namespace), check_key(key)))

    async def cas(self, project_id: str, namespace: str, key: bytes, value: bytes, expected_version: int,
                  delete: bool = False) -> CasResult:
        """Write (or delete) a key of a strong namespace if its version is expected_version (0: absent)."""
        if expected_version < 0:
            raise InvalidArgument("expected_version is 0 (absent) or a version", {"field": "expected_version"})
        return await self.log.propose(KvCas(project_id, check_namespace(namespace), check_key(key),
                                            check_kv_value(value, self.limits.max_value_bytes), expected_version,
                                            delete))

    # -- the member --

    def log_status(self) -> LogStatus:
        """This member's place in the log."""
        return self.log.status()

    async def status(self) -> Status:
        """This member, its log and its files."""
        s = self.log.status()
        projects, size = await self.log.read(lambda: (len(self.machine.files.projects()),
                                                      self.machine.files.size_bytes()))
        return Status(s.member_id, s.leader, s.role, s.term, s.index, projects, size)

    def members(self) -> list[Member]:
        """Every member of the cluster."""
        return self.log.members()

    async def close(self) -> None:
        """Stop the log and the readers (the files are closed by whoever opened them)."""
        await self.log.close()
        await asyncio.to_thread(self.readers.close)

