"""The SQLite file under a service's state machine: durable commits, savepoints, the applied
index, and whole-state snapshots.

WAL with synchronous=FULL: a commit is on disk before the command is acknowledged, so it survives
kill -9 and power loss. The state machine is the only writer and uses one connection from one
thread (which is not the thread that opened it, hence check_same_thread=False).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import ServiceError

META = "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"


class SqliteState:
    """A state machine's store on one SQLite file (":memory:" for tests); subclasses add SCHEMA."""

    SCHEMA = ""

    def __init__(self, path: Path | str):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._open()

    def _open(self) -> None:
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(META + self.SCHEMA)
        self.migrate()

    def migrate(self) -> None:
        """Bring a file made by an older version up to SCHEMA (nothing to do by default)."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit everything inside at once, or nothing if it raises."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a transaction: undo everything inside if it raises, keep it otherwise."""
        self.db.execute("SAVEPOINT command")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK TO command")
            self.db.execute("RELEASE command")
            raise
        self.db.execute("RELEASE command")

    def meta(self, name: str) -> int:
        """A number kept in the meta table (0 when unset)."""
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    def set_meta(self, name: str, value: int) -> None:
        """Keep a number in the meta table."""
        self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def applied_index(self) -> int:
        """The log index of the last applied command."""
        return self.meta("applied_index")

    def snapshot(self, path: str) -> None:
        """Copy the whole database, as of the last commit, to a new SQLite file at path."""
        target = sqlite3.connect(path)
        try:
            self.db.backup(target)
        finally:
            target.close()

    def restore(self, path: str) -> None:
        """Replace the whole database with the SQLite file at path (which is moved into place)."""
        self.db.close()
        if str(self.path) == ":memory:":
            self._open()
            source = sqlite3.connect(path)
            try:
                source.backup(self.db)
            finally:
                source.close()
            return
        for suffix in ("-wal", "-shm"):  # the old database's journal must not be replayed onto the new one
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        os.replace(path, self.path)
        self._open()

    def close(self) -> None:
        """Close the database."""
        self.db.close()


def apply_in_one_transaction(state: SqliteState, entries: list[tuple[int, Any]],
                             execute: Callable[[Any], Any]) -> list[Any]:
    """Apply (index, command) entries in order in one transaction (one fsync), each in its own
    savepoint: a command that raises a ServiceError changes nothing but the applied index, and its
    error is its result."""
    results: list[Any] = []
    with state.transaction():
        for index, command in entries:
            try:
                with state.savepoint():
                    result = execute(command)
            except ServiceError as exc:
                result = exc
            state.set_meta("applied_index", index)
            results.append(result)
    return results


class SqliteStateMachine:
    """A state machine over a SqliteState whose commands run one by one through `execute`, committed
    together in batches (subclasses define `execute`: deterministic, raising ServiceError to refuse)."""

    def __init__(self, store: SqliteState):
        self.store = store

    def execute(self, command: Any) -> Any:
        """Apply one command to the store (inside the transaction) and return its result."""
        raise NotImplementedError

    def applied_index(self) -> int:
        """The index of the last applied log entry."""
        return self.store.applied_index()

    def apply(self, index: int, command: Any) -> Any:
        """Apply one command atomically; a refused command changes nothing but the applied index."""
        return self.apply_batch([(index, command)])[0]

    def apply_batch(self, entries: list[tuple[int, Any]]) -> list[Any]:
        """Apply commands in order, committed together (one fsync), each atomic on its own."""
        return apply_in_one_transaction(self.store, entries, self.execute)

    def snapshot(self, path: str) -> None:
        """Write the whole state to path."""
        self.store.snapshot(path)

    def restore(self, path: str) -> None:
        """Replace the whole state with a snapshot."""
        self.store.restore(path)
