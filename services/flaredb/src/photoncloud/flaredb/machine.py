"""FlareDB's state machine: applies the commands to the project databases, in log order, on every member.

It reads nothing but the command and its files: statements that would read the clock are refused
before they are proposed (and again here), and random() / randomblob() are seeded from the index.
A write runs under a budget of SQLite steps that travels with it in the log (limits.py), so the
statement that runs out runs out on every member. The rules that depend on the current state (a
namespace exists, or not; its mode allows the write; a compare-and-swap's expected version) are
checked here, in the step that applies the command.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from photoncloud.common.errors import AlreadyExists, FailedPrecondition, ServiceError

from . import sql
from .commands import Command, CreateNamespace, ExecuteSql, KvCas, KvDelete, KvPut, Mode, RestoreDatabase, Statement
from .kv import delete_entry, get_entry, namespace_mode, no_namespace, put_entry, read_get, read_scan
from .limits import UNLIMITED_LENGTH, ResultMeter, StepBudget, install
from .results import CasResult, DeleteResult, Entry, Namespace, PutResult, RestoreResult, ScanResult, StatementResult
from .statements import run_statements

if TYPE_CHECKING:  # the façade declares the store it needs; it imports this module, so only for types
    from .core import ProjectStore


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
            if namespace_mode(conn, command.name) is not None:
                raise AlreadyExists(f"namespace {command.name!r} exists", {"namespace": command.name})
            conn.execute("INSERT INTO _flaredb_namespaces (name, mode, created_index) VALUES (?, ?, ?)",
                         (command.name, command.mode.value, index))
            return Namespace(command.name, command.mode)
        if not isinstance(command, (KvPut, KvDelete, KvCas)):  # a restore is applied as a whole, not here
            raise TypeError(f"not a command of one database: {type(command).__name__}")
        mode = namespace_mode(conn, command.namespace)
        if mode is None:
            raise no_namespace(command.namespace)
        if isinstance(command, (KvPut, KvDelete)) and mode is Mode.STRONG:
            raise FailedPrecondition(
                f"namespace {command.namespace!r} is strong: write it with compare-and-swap",
                {"namespace": command.namespace, "mode": mode.value})
        if isinstance(command, KvCas) and mode is Mode.EVENTUAL:
            raise FailedPrecondition(
                f"namespace {command.namespace!r} is eventual: compare-and-swap needs a strong namespace",
                {"namespace": command.namespace, "mode": mode.value})
        current = get_entry(conn, command.namespace, command.key)
        if isinstance(command, KvPut):
            version = current.version + 1 if current else 1
            put_entry(conn, command.namespace, command.key, command.value, version)
            return PutResult(command.key, version)
        if isinstance(command, KvDelete):
            if current is None:
                return DeleteResult(command.key, 0)
            delete_entry(conn, command.namespace, command.key)
            return DeleteResult(command.key, 1)
        version = current.version if current else 0
        if version != command.expected_version or (command.delete and current is None):
            return CasResult(False, command.key, version, current.value if current else None)
        if command.delete:
            delete_entry(conn, command.namespace, command.key)
            return CasResult(True, command.key, 0, None)
        put_entry(conn, command.namespace, command.key, command.value, version + 1)
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
