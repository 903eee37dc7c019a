"""ChainFire's store: MVCC history and the latest state in SQLite, every commit fsynced.

`history` holds every change (revision, sub-revision, key) so reads at an old revision and
watches can replay it (until compaction drops what no read at or after the compact revision
needs); `live` holds each existing key's latest pair for fast reads; `leases` the leases, with the
wall-clock deadline their proposer computed and the keyspace they belong to.

Reads may run inside `reading()` on another thread than the writer's, from one snapshot of the
last commit (see photoncloud.common.sqlite); the snapshot's revisions are read once, at its start.
"""

from __future__ import annotations

from photoncloud.common.sqlite import SqliteState

from .core import Event, EventType, KeyValue, Lease, prefix_end

SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    key BLOB NOT NULL,
    revision INTEGER NOT NULL,
    sub INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    value BLOB,              -- NULL: the key was deleted at this revision
    lease INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key, revision)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_by_revision ON history (revision, sub);
CREATE TABLE IF NOT EXISTS live (
    key BLOB PRIMARY KEY,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    value BLOB NOT NULL,
    lease INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY,
    ttl INTEGER NOT NULL,
    deadline REAL NOT NULL,  -- seconds since the epoch, as the proposer computed it
    keyspace BLOB NOT NULL DEFAULT x''  -- the raw key prefix of the keyspace that granted it
);
"""
# After the columns a store made before leases (or before keyspaces) lacks are added.
INDEXES = """
CREATE INDEX IF NOT EXISTS live_by_lease ON live (lease);
CREATE INDEX IF NOT EXISTS leases_by_deadline ON leases (deadline);
"""

_COLUMNS = "key, value, create_revision, mod_revision, version, lease"
_LEASE = "id, ttl, deadline, keyspace"

# The pair of each key in the range as of ?revision: its newest history row at or before it.
_AT_REVISION = """
SELECT h.key, h.value, h.create_revision, h.revision AS mod_revision, h.version, h.lease FROM history h
WHERE h.key >= :start AND (:end IS NULL OR h.key < :end)
  AND h.revision = (SELECT MAX(revision) FROM history
                    WHERE key = h.key AND revision <= :revision)
  AND h.value IS NOT NULL
"""


class SqliteKVStore(SqliteState):
    """The KVStore of the core on one SQLite file (":memory:" for tests)."""

    SCHEMA = SCHEMA

    def capture(self) -> tuple[int, int]:
        """The snapshot's (revision, compact_revision), read once: every read asks for them."""
        row = self.db.execute("SELECT (SELECT value FROM meta WHERE name = 'revision'),"
                              " (SELECT value FROM meta WHERE name = 'compact_revision')").fetchone()
        return (row[0] or 0, row[1] or 0)

    def migrate(self) -> None:
        """Add the columns an older store lacks (keys' leases, leases' keyspaces), then the indexes
        that use them; an older store's leases are the whole store's."""
        for table, column, declaration in (("history", "lease", "INTEGER NOT NULL DEFAULT 0"),
                                           ("live", "lease", "INTEGER NOT NULL DEFAULT 0"),
                                           ("leases", "keyspace", "BLOB NOT NULL DEFAULT x''")):
            columns = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        self.db.executescript(INDEXES)

    def revision(self) -> int:
        """The latest revision."""
        revisions = self.captured()
        return revisions[0] if revisions is not None else self.meta("revision")

    def compact_revision(self) -> int:
        """The oldest readable revision (0: nothing is compacted)."""
        revisions = self.captured()
        return revisions[1] if revisions is not None else self.meta("compact_revision")

    def set_revision(self, revision: int) -> None:
        """Record the revision the last command left."""
        self.set_meta("revision", revision)

    # Every commit is fsynced, and its cost grows with the pages it writes: the two writes every
    # command makes (the revision, the applied index) and the overwrite of a key update their rows
    # in place, which leaves the indexes that do not change alone (an INSERT OR REPLACE would
    # delete and insert the row, and write each of its indexes' pages too).

    def set_meta(self, name: str, value: int) -> None:
        """Keep a number in the meta table."""
        if not self.db.execute("UPDATE meta SET value = ? WHERE name = ?", (value, name)).rowcount:
            super().set_meta(name, value)

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
            "INSERT INTO history (key, revision, sub, create_revision, version, value, lease)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kv.key, revision, sub, kv.create_revision, kv.version, kv.value, kv.lease),
        )
        if not self.db.execute(
            "UPDATE live SET value = ?, create_revision = ?, mod_revision = ?, version = ? WHERE key = ? AND lease = ?",
            (kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.key, kv.lease),
        ).rowcount:  # a new key, or one that changes lease
            self.db.execute(
                f"INSERT OR REPLACE INTO live ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease),
            )

    def delete(self, revision: int, sub: int, key: bytes) -> None:
        """Record key as deleted at (revision, sub)."""
        self.db.execute(
            "INSERT INTO history (key, revision, sub, create_revision, version, value)"
            " VALUES (?, ?, ?, 0, 0, NULL)",
            (key, revision, sub),
        )
        self.db.execute("DELETE FROM live WHERE key = ?", (key,))

    def history(self, start: bytes, end: bytes | None, after: tuple[int, int], limit: int) -> list[Event]:
        """Changes in [start, end) after position (revision, sub), by position; at most limit."""
        rows = self.db.execute(
            "SELECT key, value, create_revision, revision, version, lease, sub FROM history"
            " WHERE (revision > :rev OR (revision = :rev AND sub > :sub))"
            " AND key >= :start AND (:end IS NULL OR key < :end)"
            " ORDER BY revision, sub LIMIT :limit",
            {"rev": after[0], "sub": after[1], "start": start, "end": end, "limit": limit or -1},
        )
        events = []
        for key, value, create, revision, version, lease, sub in rows:
            if value is None:
                events.append(Event(EventType.DELETE, KeyValue(key, b"", 0, revision, 0), sub))
            else:
                events.append(Event(EventType.PUT, KeyValue(key, value, create, revision, version, lease), sub))
        return events

    def previous(self, key: bytes, revision: int) -> KeyValue | None:
        """The key's pair just before revision."""
        row = self.db.execute(
            "SELECT key, value, create_revision, revision, version, lease FROM history"
            " WHERE key = ? AND revision < ? ORDER BY revision DESC LIMIT 1", (key, revision),
        ).fetchone()
        return KeyValue(*row) if row and row[1] is not None else None

    def compact(self, revision: int) -> None:
        """Drop history rows before revision unless a read at revision needs them: per key, the
        newest row at or before revision stays if it is not a deletion."""
        self.db.execute(
            "DELETE FROM history WHERE revision < :rev AND (value IS NULL OR revision < "
            "(SELECT MAX(h.revision) FROM history h WHERE h.key = history.key AND h.revision <= :rev))",
            {"rev": revision},
        )
        self.set_meta("compact_revision", revision)

    def lease(self, id: int) -> Lease | None:
        """One lease."""
        row = self.db.execute(f"SELECT {_LEASE} FROM leases WHERE id = ?", (id,)).fetchone()
        return Lease(*row) if row else None

    def leases(self, after: int, limit: int, keyspace: bytes = b"") -> list[Lease]:
        """Leases with id > after whose keyspace starts with keyspace, by id."""
        end = prefix_end(keyspace) if keyspace else None
        rows = self.db.execute(
            f"SELECT {_LEASE} FROM leases WHERE id > :after AND keyspace >= :start"
            " AND (:end IS NULL OR keyspace < :end) ORDER BY id LIMIT :limit",
            {"after": after, "start": keyspace, "end": None if end == b"\0" else end, "limit": limit or -1})
        return [Lease(*row) for row in rows]

    def expired_leases(self, now: float) -> list[Lease]:
        """Leases whose deadline is at or before now, by id."""
        rows = self.db.execute(f"SELECT {_LEASE} FROM leases WHERE deadline <= ? ORDER BY id", (now,))
        return [Lease(*row) for row in rows]

    def next_deadline(self) -> float | None:
        """The earliest lease deadline."""
        return self.db.execute("SELECT MIN(deadline) FROM leases").fetchone()[0]

    def save_lease(self, lease: Lease) -> None:
        """Insert or replace a lease."""
        self.db.execute(f"INSERT OR REPLACE INTO leases ({_LEASE}) VALUES (?, ?, ?, ?)",
                        (lease.id, lease.ttl, lease.deadline, lease.keyspace))

    def drop_lease(self, id: int) -> None:
        """Delete a lease."""
        self.db.execute("DELETE FROM leases WHERE id = ?", (id,))

    def lease_keys(self, id: int) -> list[bytes]:
        """The live keys attached to a lease."""
        return [row[0] for row in self.db.execute("SELECT key FROM live WHERE lease = ? ORDER BY key", (id,))]

    def next_lease_id(self) -> int:
        """One more than the last id this counter gave, skipping ids taken by explicit grants."""
        candidate = self.meta("lease_seq") + 1
        while self.lease(candidate) is not None:
            candidate += 1
        self.set_meta("lease_seq", candidate)
        return candidate

    def size_bytes(self) -> int:
        """Pages in use times page size."""
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        return pages * self.db.execute("PRAGMA page_size").fetchone()[0]
