"""FlareDB's store: one SQLite database per project, `projects/<project_id>.sqlite3` under the data
directory, in WAL mode with `synchronous=FULL` (a commit is on disk before it is acknowledged).

Each file holds the project's own tables and FlareDB's internal ones (`_flaredb_` prefix): the log
index of the last command applied to the file, the KV namespaces and their keys. A command touches
one file, and its index is written in the same transaction as its change; entries are applied one
at a time, so the highest index over all files is the state machine's applied index.

Reads do not use the state machine's connections: `open_reader` gives read-only ones (readers.py),
and each file's generation tells them when the file under them was replaced.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tarfile
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path

from photoncloud.common.errors import InvalidArgument

from .core import PROJECT_ID, check_project_id
from .limits import UNLIMITED_LENGTH, StatementLimits
from .restore_check import check_database

SUFFIX = ".sqlite3"
OPEN_FILES = 64  # connections kept open; the least recently used one is closed beyond this

SCHEMA = """
CREATE TABLE IF NOT EXISTS _flaredb_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS _flaredb_namespaces (
    name TEXT PRIMARY KEY,
    mode TEXT NOT NULL CHECK (mode IN ('strong', 'eventual')),
    created_index INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _flaredb_kv (
    namespace TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
"""


def configure(conn: sqlite3.Connection) -> None:
    """The pragmas every project connection runs with, and FlareDB's internal tables."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")  # the same on every replica: user SQL cannot change it
    conn.executescript(SCHEMA)


def file_index(conn: sqlite3.Connection) -> int:
    """The log index of the last command applied to this file."""
    row = conn.execute("SELECT value FROM _flaredb_meta WHERE name = 'applied_index'").fetchone()
    return row[0] if row else 0


def set_file_index(conn: sqlite3.Connection, index: int) -> None:
    """Record index as applied (inside the command's transaction).

    The row is always rowid 0, so this also sets last_insert_rowid() to 0: a command's statements
    start from the same value on every replica, however long its connection has been open.
    """
    conn.execute("INSERT OR REPLACE INTO _flaredb_meta (rowid, name, value) VALUES (0, 'applied_index', ?)",
                 (index,))


def _check_file(conn: sqlite3.Connection, limits: StatementLimits | None) -> None:
    """restore_check's checks under the limits of the restore (none for entries logged without)."""
    if limits is None:
        check_database(conn, SCHEMA, None, UNLIMITED_LENGTH)
    else:
        check_database(conn, SCHEMA, limits.steps, limits.length)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ProjectFiles:
    """The project databases under root/projects, with open connections kept in an LRU
    (core.ProjectStore)."""

    def __init__(self, root: Path, on_open: Callable[[sqlite3.Connection], None] | None = None,
                 open_files: int = OPEN_FILES):
        self.root = Path(root) / "projects"
        self.root.mkdir(parents=True, exist_ok=True)
        self.on_open = on_open
        self.open_files = open_files
        self._open: OrderedDict[str, sqlite3.Connection] = OrderedDict()
        self._indexes: dict[str, int] = {}
        self._empty: sqlite3.Connection | None = None
        # Bumped once a file is replaced (per project) or every file is (a snapshot installed).
        self._generations: dict[str, int] = {}
        self._epoch = 0
        for stale in self.root.glob("*.tmp*"):  # a restore or backup cut short
            stale.unlink()
        self.applied = max((self._read_index(p) for p in self.projects()), default=0)

    def path(self, project_id: str) -> Path:
        """The file of a project."""
        return self.root / f"{check_project_id(project_id)}{SUFFIX}"

    def exists(self, project_id: str) -> bool:
        """Whether the project has a database yet (it gets one with its first write)."""
        return self.path(project_id).exists()

    def projects(self) -> list[str]:
        """Every project with a database, sorted."""
        return sorted(p.name[: -len(SUFFIX)] for p in self.root.glob(f"*{SUFFIX}")
                      if PROJECT_ID.match(p.name[: -len(SUFFIX)]))

    def _read_index(self, project_id: str) -> int:
        conn = sqlite3.connect(self.path(project_id))
        try:
            return file_index(conn)
        except sqlite3.OperationalError:  # no internal tables: nothing was ever applied
            return 0
        finally:
            conn.close()

    def connection(self, project_id: str) -> sqlite3.Connection:
        """The project's connection, creating its database if it has none."""
        conn = self._open.get(project_id)
        if conn is not None:
            self._open.move_to_end(project_id)
            return conn
        path = self.path(project_id)
        if not path.exists():
            self._create(path)
        # One thread at a time uses a connection (the log's lock), but not always the same one.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        configure(conn)
        if self.on_open is not None:
            self.on_open(conn)
        self._open[project_id] = conn
        self._indexes[project_id] = file_index(conn)
        while len(self._open) > self.open_files:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return conn

    def _create(self, path: Path) -> None:
        """Make a project's database with FlareDB's tables under a temporary name, then move it into
        place: a reader that finds the file (open_reader, on another thread) always finds the tables."""
        temp = path.with_name(path.name + ".tmp")  # removed at start if a crash leaves it
        conn = sqlite3.connect(temp, isolation_level=None)
        try:
            configure(conn)
        finally:
            conn.close()  # the last connection: its WAL is checkpointed into the file and removed
        os.replace(temp, path)
        _fsync_dir(self.root)

    def reader(self, project_id: str) -> sqlite3.Connection:
        """The project's connection, or an empty database's if it has none (reads create nothing)."""
        if self.exists(project_id):
            return self.connection(project_id)
        if self._empty is None:
            self._empty = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._empty.executescript(SCHEMA)
            if self.on_open is not None:
                self.on_open(self._empty)
        return self._empty

    def generation(self, project_id: str) -> Hashable:
        """A value that changes whenever the project's file is replaced."""
        return self._epoch, self._generations.get(project_id, 0)

    def open_reader(self, project_id: str) -> tuple[sqlite3.Connection, bool]:
        """A new read-only connection to the project's database, usable from any one thread at a
        time, and True; or one to an empty database with FlareDB's tables, and False, if it has none."""
        path = self.path(project_id)
        if path.exists():
            try:
                uri = path.resolve().as_uri() + "?mode=ro"
                return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False), True
            except sqlite3.OperationalError:
                if path.exists():
                    raise
                # Removed between the two calls (a snapshot installed): it reads as empty.
        empty = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        empty.executescript(SCHEMA)
        return empty, False

    def applied_index(self) -> int:
        """The highest index applied to any project's database."""
        return self.applied

    def set_index(self, conn: sqlite3.Connection, index: int) -> None:
        """Record index as applied, inside the command's transaction."""
        set_file_index(conn, index)

    def index(self, project_id: str) -> int:
        """The last index applied to the project's file (0: none)."""
        if project_id not in self._indexes:
            self._indexes[project_id] = self._read_index(project_id) if self.exists(project_id) else 0
        return self._indexes[project_id]

    def applied_to(self, project_id: str, index: int) -> None:
        """Note that index was committed to the project's file."""
        self._indexes[project_id] = index
        self.applied = max(self.applied, index)

    def _copy(self, project_id: str, target: Path) -> None:
        """A consistent copy of the project's database, as of its last commit, at target."""
        out = sqlite3.connect(target)
        try:
            self.reader(project_id).backup(out)
        finally:
            out.close()

    def backup(self, project_id: str, source: sqlite3.Connection | None = None) -> bytes:
        """A consistent copy of the project's database as a SQLite file (an empty one if it has none),
        copied from source (a reader) or from the state machine's connection."""
        target = self.temp_path(project_id)
        try:
            if source is None:
                self._copy(project_id, target)
            else:
                out = sqlite3.connect(target)
                try:
                    source.backup(out)
                finally:
                    out.close()
            return target.read_bytes()
        finally:
            target.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _staged(self, project_id: str, data: bytes,
                limits: StatementLimits | None) -> Iterator[tuple[Path, sqlite3.Connection]]:
        """data written beside the project's database, open, and passed by restore_check (else
        INVALID_ARGUMENT); the file is removed afterwards unless it was moved into place."""
        staged = self.temp_path(project_id)
        try:
            staged.write_bytes(data)
            conn = sqlite3.connect(staged, isolation_level=None)
            try:
                _check_file(conn, limits)
                yield staged, conn
            finally:
                conn.close()
        finally:
            staged.unlink(missing_ok=True)

    def check(self, project_id: str, data: bytes, limits: StatementLimits | None) -> None:
        """INVALID_ARGUMENT unless data is a SQLite file a restore would take (restore_check)."""
        with self._staged(project_id, data, limits):
            pass

    def load(self, project_id: str, data: bytes, index: int, limits: StatementLimits | None = None) -> int:
        """Replace the project's database with the SQLite file data, recorded as applied up to index;
        INVALID_ARGUMENT (nothing replaced) unless restore_check passes it. Its table count."""
        with self._staged(project_id, data, limits) as (staged, conn):
            try:
                configure(conn)
                conn.execute("BEGIN IMMEDIATE")
                set_file_index(conn, index)
                conn.execute("COMMIT")
                tables: int = conn.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                      "AND name NOT LIKE '\\_flaredb\\_%' ESCAPE '\\' "
                                      "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchone()[0]
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file before it moves
            except sqlite3.Error as exc:
                raise InvalidArgument(f"the file is not a usable SQLite database: {exc}", {"field": "data"}) from None
            conn.close()  # before the move; closing twice is harmless
            with open(staged, "rb+") as out:
                os.fsync(out.fileno())
            self.replace(project_id, staged)
            return tables

    def replace(self, project_id: str, source: Path) -> None:
        """Move the database at source into the project's place (closing the one there)."""
        conn = self._open.pop(project_id, None)
        if conn is not None:
            conn.close()
        path = self.path(project_id)
        for suffix in ("-wal", "-shm"):  # the old file's journal must not be replayed onto the new one
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(source, path)
        _fsync_dir(self.root)
        self._indexes.pop(project_id, None)
        self._generations[project_id] = self._generations.get(project_id, 0) + 1  # after the move: see generation

    def temp_path(self, project_id: str) -> Path:
        """A fresh temporary file name next to the project's database."""
        fd, name = tempfile.mkstemp(prefix=f"{project_id}.", suffix=".tmp", dir=self.root)
        os.close(fd)
        os.unlink(name)
        return Path(name)

    def snapshot(self, path: str) -> None:
        """Every project's database, copied with SQLite's backup API, in one tar archive at path."""
        with tarfile.open(path, "w") as archive:
            for project_id in self.projects():
                copy = self.temp_path(project_id)
                try:
                    self._copy(project_id, copy)
                    archive.add(copy, arcname=f"{project_id}{SUFFIX}")
                finally:
                    copy.unlink(missing_ok=True)

    def restore(self, path: str) -> None:
        """Replace every project's database with those in the archive at path."""
        self.close()
        with tarfile.open(path, "r") as archive:
            members = [m for m in archive.getmembers()
                       if m.isfile() and m.name.endswith(SUFFIX) and PROJECT_ID.match(m.name[: -len(SUFFIX)])]
            incoming = {m.name[: -len(SUFFIX)] for m in members}
            for project_id in self.projects():
                if project_id not in incoming:
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{self.path(project_id)}{suffix}").unlink(missing_ok=True)
            for member in members:
                project_id = member.name[: -len(SUFFIX)]
                staged = self.temp_path(project_id)
                source = archive.extractfile(member)
                assert source is not None
                with open(staged, "wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                self.replace(project_id, staged)
        self._indexes.clear()
        self._epoch += 1
        self.applied = max((self._read_index(p) for p in self.projects()), default=0)

    def size_bytes(self) -> int:
        """The size of every project's database file."""
        return sum(p.stat().st_size for p in self.root.glob(f"*{SUFFIX}"))

    def close(self) -> None:
        """Close every open connection."""
        while self._open:
            _, conn = self._open.popitem()
            conn.close()
