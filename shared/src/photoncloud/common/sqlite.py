"""The SQLite file under a service's state machine: durable commits, savepoints, the applied
index, and whole-state snapshots.

WAL with synchronous=FULL: a commit is on disk before the command is acknowledged, so it survives
kill -9 and power loss. The state machine is the only writer and uses one connection from one
thread (which is not the thread that opened it, hence check_same_thread=False).

Reads may instead run inside `reading()`, on any other thread, through a read-only connection of
that thread's: in WAL mode a reader neither waits for the writer nor sees what it has not
committed, and everything read inside one `reading()` comes from one snapshot (one read
transaction), the last commit when its first read ran. The store's methods read through `db`,
which inside `reading()` is the calling thread's read connection, so the same methods serve both.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from .errors import ServiceError

META = "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"


def _fsync(path: str | Path) -> None:
    """Flush a file's (or a directory's entries') changes to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _View(threading.local):
    """A thread's read-only connection, and the snapshot it is reading while inside reading()."""

    connection: sqlite3.Connection | None = None
    generation = -1  # the store's generation the connection was opened in (a restore replaces the file)
    active: sqlite3.Connection | None = None  # the connection, while inside reading()
    captured: Any = None  # what capture() returned for the snapshot being read


class SqliteState:
    """A state machine's store on one SQLite file (":memory:" for tests); subclasses add SCHEMA."""

    SCHEMA = ""

    def __init__(self, path: Path | str):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._view = _View()
        self._readers: list[sqlite3.Connection] = []  # every thread's read connection, closed with the store
        self._generation = 0
        self._lock = threading.Lock()
        self._open()

    @property
    def db(self) -> sqlite3.Connection:
        """The connection the store's methods use: inside reading() this thread's read connection,
        elsewhere the writer's."""
        return self._view.active or self._db

    @db.setter
    def db(self, connection: sqlite3.Connection) -> None:
        self._db = connection

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

    @property
    def concurrent_reads(self) -> bool:
        """Whether reading() is available: a file has read connections, an in-memory database
        (private to its one connection) has none."""
        return str(self.path) != ":memory:"

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Everything read inside, on this thread, from one snapshot of the last commit, concurrently
        with the writer (whose uncommitted changes stay invisible); inside already: the same one."""
        view = self._view
        if view.active is not None:
            yield
            return
        connection = view.connection
        if connection is None or view.generation != self._generation:
            connection = self._reader()
        connection.execute("BEGIN")
        view.active = connection
        try:
            view.captured = self.capture()
            yield
        finally:
            view.active = view.captured = None
            connection.execute("COMMIT")  # a read transaction: ends the snapshot

    def capture(self) -> Any:
        """What every read of a snapshot may reuse, read (through `db`) once at its start; None by
        default. Inside reading(), `captured()` returns it."""
        return None

    def captured(self) -> Any:
        """What capture() read for this thread's snapshot (None outside reading())."""
        return self._view.captured

    def _reader(self) -> sqlite3.Connection:
        """A read-only connection for the calling thread, returning rows as the writer's does."""
        uri = f"{Path(self.path).resolve().as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        connection.row_factory = self._db.row_factory
        with self._lock:
            self._readers.append(connection)
            self._view.connection, self._view.generation = connection, self._generation
        return connection

    def _close_readers(self) -> None:
        """Close every thread's read connection; each thread opens a new one at its next read."""
        with self._lock:
            readers, self._readers = self._readers, []
            self._generation += 1
        for connection in readers:
            connection.close()

    def snapshot(self, path: str) -> None:
        """Copy the whole database, as of the last commit, to a new SQLite file at path."""
        target = sqlite3.connect(path)
        try:
            self._db.backup(target)
        finally:
            target.close()

    def restore(self, path: str) -> None:
        """Replace the whole database with the SQLite file at path (which is moved into place); read
        connections reopen on the new file."""
        self._close_readers()
        self._db.close()
        if str(self.path) == ":memory:":
            self._open()
            source = sqlite3.connect(path)
            try:
                source.backup(self._db)
            finally:
                source.close()
            return
        _fsync(path)  # on disk before it replaces the state it stands for
        for suffix in ("-wal", "-shm"):  # the old database's journal must not be replayed onto the new one
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        os.replace(path, self.path)
        _fsync(os.path.dirname(os.path.abspath(self.path)))  # and the rename with it
        self._open()

    def close(self) -> None:
        """Close the writer's connection and every read connection."""
        self._close_readers()
        self._db.close()


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

    # Whether queries may read a snapshot on another thread while commands apply (reading()). Only
    # for a machine whose whole state is in the store: state kept in Python and changed while
    # applying would be read half-changed, or ahead of the commit.
    snapshot_reads = False

    def __init__(self, store: SqliteState):
        self.store = store

    def reading(self) -> AbstractContextManager[None] | None:
        """A view of the last commit for queries on the calling thread while commands apply on
        another (None: this machine or its store has none; queries then belong on the applying thread)."""
        return self.store.reading() if self.snapshot_reads and self.store.concurrent_reads else None

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
