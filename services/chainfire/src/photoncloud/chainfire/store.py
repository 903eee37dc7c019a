"""ChainFire's store: MVCC history and the latest state in SQLite, every commit fsynced.

`history` holds every change (revision, sub-revision, key) so reads at an old revision and,
later, watches can replay it; `live` holds each existing key's latest pair for fast reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .core import KeyValue

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    key BLOB NOT NULL,
    revision INTEGER NOT NULL,
    sub INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    value BLOB,              -- NULL: the key was deleted at this revision
    PRIMARY KEY (key, revision)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_by_revision ON history (revision, sub);
CREATE TABLE IF NOT EXISTS live (
    key BLOB PRIMARY KEY,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""

_COLUMNS = "key, value, create_revision, mod_revision, version"

# The pair of each key in the range as of ?revision: its newest history row at or before it.
_AT_REVISION = """
SELECT h.key, h.value, h.create_revision, h.revision AS mod_revision, h.version FROM history h
WHERE h.key >= :start AND (:end IS NULL OR h.key < :end)
  AND h.revision = (SELECT MAX(revision) FROM history
                    WHERE key = h.key AND revision <= :revision)
  AND h.value IS NOT NULL
"""


class SqliteKVStore:
    """The KVStore of the core on one SQLite file (":memory:" for tests)."""

    def __init__(self, path: Path | str):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One state-machine thread uses the connection, but it is opened on another.
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the write is acknowledged (survives kill -9 and power loss).
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.path = path

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

    def _meta(self, name: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    def _set_meta(self, name: str, value: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def revision(self) -> int:
        """The latest revision."""
        return self._meta("revision")

    def compact_revision(self) -> int:
        """The oldest readable revision (nothing is compacted yet)."""
        return self._meta("compact_revision")

    def applied_index(self) -> int:
        """The log index of the last applied command."""
        return self._meta("applied_index")

    def set_applied(self, index: int, revision: int) -> None:
        """Record the last applied log index and the revision it left."""
        self._set_meta("applied_index", index)
        self._set_meta("revision", revision)

    def get(self, key: bytes) -> KeyValue | None:
        """The key's latest pair."""
        row = self.db.execute(f"SELECT {_COLUMNS} FROM live WHERE key = ?", (key,)).fetchone()
        return KeyValue(*row) if row else None

    def _select(self, start: bytes, end: bytes | None, revision: int, what: str) -> tuple[str, dict]:
        params = {"start": start, "end": end, "revision": revision}
        if revision >= self.revision():
            where = "key >= :start AND (:end IS NULL OR key < :end)"
            return f"SELECT {what} FROM live WHERE {where}", params
        return f"SELECT {what} FROM ({_AT_REVISION})", params

    def range(self, start: bytes, end: bytes | None, revision: int, limit: int) -> list[KeyValue]:
        """The pairs in [start, end) as of revision, by key; limit 0: all of them."""
        sql, params = self._select(start, end, revision, _COLUMNS)
        sql += " ORDER BY key LIMIT :limit"
        params["limit"] = limit or -1
        return [KeyValue(*row) for row in self.db.execute(sql, params)]

    def count(self, start: bytes, end: bytes | None, revision: int) -> int:
        """How many keys are in [start, end) as of revision."""
        sql, params = self._select(start, end, revision, "COUNT(*)")
        return self.db.execute(sql, params).fetchone()[0]

    def put(self, revision: int, sub: int, kv: KeyValue) -> None:
        """Record kv as changed at (revision, sub)."""
        self.db.execute(
            "INSERT INTO history (key, revision, sub, create_revision, version, value)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (kv.key, revision, sub, kv.create_revision, kv.version, kv.value),
        )
        self.db.execute(
            f"INSERT OR REPLACE INTO live ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version),
        )

    def delete(self, revision: int, sub: int, key: bytes) -> None:
        """Record key as deleted at (revision, sub)."""
        self.db.execute(
            "INSERT INTO history (key, revision, sub, create_revision, version, value)"
            " VALUES (?, ?, ?, 0, 0, NULL)",
            (key, revision, sub),
        )
        self.db.execute("DELETE FROM live WHERE key = ?", (key,))

    def size_bytes(self) -> int:
        """Pages in use times page size."""
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        return pages * self.db.execute("PRAGMA page_size").fetchone()[0]

    def close(self) -> None:
        """Close the database."""
        self.db.close()
