"""k8shost's store: every object and the recent history of changes, in SQLite.

Objects are rows keyed by (kind, namespace, name) holding the record as JSON, with the columns
listings filter on (tenancy, the node a pod is bound to). The table `events` is the history watches
replay: one row per change, keyed by the global revision (Kubernetes' Events are objects of kind
"events", in `objects`). The state machine is the only writer and calls
it on one thread inside `transaction()`; every commit is fsynced (WAL, synchronous=FULL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, overload

from photoncloud.common.sqlite import SqliteState

from .records import KINDS, Endpoints, Event, Namespace, Node, Object, Pod, Service, decode, encode

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL,
    org_id TEXT NOT NULL, project_id TEXT NOT NULL, node_name TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_by_node ON objects (kind, node_name);
CREATE INDEX IF NOT EXISTS objects_by_project ON objects (kind, org_id, project_id);
-- Events (kind 'events') are found by what they are about (aggregation) and by age (retention); these
-- indexes on their JSON need no column of their own, so files made before events had them need nothing.
CREATE INDEX IF NOT EXISTS events_by_object ON objects (namespace, json_extract(data, '$.involved_object.uid'))
    WHERE kind = 'events';
CREATE INDEX IF NOT EXISTS events_by_age ON objects (namespace, json_extract(data, '$.last_timestamp'), name)
    WHERE kind = 'events';
CREATE TABLE IF NOT EXISTS events (
    revision INTEGER PRIMARY KEY, kind TEXT NOT NULL, type TEXT NOT NULL, org_id TEXT NOT NULL,
    project_id TEXT NOT NULL, data TEXT NOT NULL,
    previous TEXT  -- the object before a MODIFIED (watches filter on both)
);
"""


@dataclass(frozen=True)
class Change:
    """One change to one object: ADDED, MODIFIED or DELETED, at a revision."""

    revision: int
    kind: str  # a key of records.KINDS: pods, services, nodes, namespaces, endpoints or events
    type: str
    object: Object
    previous: Object | None = None
    org_id: str = ""  # the project the object's namespace belongs to ("" for nodes)
    project_id: str = ""


class SqliteObjectStore(SqliteState):
    """The store on one SQLite file (":memory:" for tests)."""

    SCHEMA = SCHEMA

    def revision(self) -> int:
        """The global revision: that of the last change."""
        return self.meta("revision")

    def compacted(self) -> int:
        """The newest revision whose event is no longer kept (0: the whole history is)."""
        return self.meta("compacted")

    # Objects

    # The kinds' names, given literally, say which record get() and scan() return.
    @overload
    def get(self, kind: Literal["namespaces"], namespace: str, name: str) -> Namespace | None: ...
    @overload
    def get(self, kind: Literal["pods"], namespace: str, name: str) -> Pod | None: ...
    @overload
    def get(self, kind: Literal["services"], namespace: str, name: str) -> Service | None: ...
    @overload
    def get(self, kind: Literal["nodes"], namespace: str, name: str) -> Node | None: ...
    @overload
    def get(self, kind: Literal["endpoints"], namespace: str, name: str) -> Endpoints | None: ...
    @overload
    def get(self, kind: Literal["events"], namespace: str, name: str) -> Event | None: ...
    @overload
    def get(self, kind: str, namespace: str, name: str) -> Object | None: ...

    def get(self, kind: str, namespace: str, name: str) -> Object | None:
        """An object by kind, namespace ("" for cluster-wide kinds) and name."""
        row = self.db.execute("SELECT data FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
                              (kind, namespace, name)).fetchone()
        return decode(KINDS[kind], json.loads(row[0])) if row else None

    @overload
    def scan(self, kind: Literal["namespaces"], namespace: str = "", org_id: str = "", project_id: str = "",
             node_name: str | None = None, after: tuple[str, str] = ("", "")) -> Iterator[Namespace]: ...
    @overload
    def scan(self, kind: Literal["pods"], namespace: str = "", org_id: str = "", project_id: str = "",
             node_name: str | None = None, after: tuple[str, str] = ("", "")) -> Iterator[Pod]: ...
    @overload
    def scan(self, kind: Literal["services"], namespace: str = "", org_id: str = "", project_id: str = "",
             node_name: str | None = None, after: tuple[str, str] = ("", "")) -> Iterator[Service]: ...
    @overload
    def scan(self, kind: Literal["nodes"], namespace: str = "", org_id: str = "", project_id: str = "",
             node_name: str | None = None, after: tuple[str, str] = ("", "")) -> Iterator[Node]: ...
    @overload
    def scan(self, kind: Literal["endpoints"], namespace: str = "", org_id: str = "", project_id: str = "",
             node_name: str | None = None, after: tuple[str, str] = ("", "")) -> Iterator[Endpoints]: ...
    @overload
    def scan(self, kind: Literal["events"], namespace: str = "", org_id: str = "", project_id: str = "",
             node_name: str | None = None, after: tuple[str, str] = ("", "")) -> Iterator[Event]: ...
    @overload
    def scan(self, kind: str, namespace: str = "", org_id: str = "", project_id: str = "",
             node_name: str | None = None, after: tuple[str, str] = ("", "")) -> Iterator[Object]: ...

    def scan(self, kind: str, namespace: str = "", org_id: str = "", project_id: str = "", node_name: str | None = None,
             after: tuple[str, str] = ("", "")) -> Iterator[Object]:
        """Objects of a kind in (namespace, name) order after `after`, filtered by what is given."""
        rows = self.db.execute(
            "SELECT data FROM objects WHERE kind = ? AND (? = '' OR namespace = ?) AND (? = '' OR org_id = ?)"
            " AND (? = '' OR project_id = ?) AND (? IS NULL OR node_name = ?) AND (namespace, name) > (?, ?)"
            " ORDER BY namespace, name",
            (kind, namespace, namespace, org_id, org_id, project_id, project_id, node_name, node_name, *after))
        for row in rows:
            yield decode(KINDS[kind], json.loads(row[0]))

    def count(self, kind: str, namespace: str) -> int:
        """How many objects of a kind a namespace holds."""
        return self.db.execute("SELECT COUNT(*) FROM objects WHERE kind = ? AND namespace = ?",
                               (kind, namespace)).fetchone()[0]

    # Events: the queries aggregation and retention make on every event written (index-backed)

    def events_about(self, namespace: str, uid: str) -> list[Event]:
        """A namespace's events about the object with this uid."""
        rows = self.db.execute("SELECT data FROM objects WHERE kind = 'events' AND namespace = ?"
                               " AND json_extract(data, '$.involved_object.uid') = ?", (namespace, uid))
        return [decode(Event, json.loads(row[0])) for row in rows]

    def events_before(self, namespace: str, before: float) -> list[Event]:
        """A namespace's events last seen before a time, oldest first."""
        rows = self.db.execute("SELECT data FROM objects WHERE kind = 'events' AND namespace = ?"
                               " AND json_extract(data, '$.last_timestamp') < ?"
                               " ORDER BY json_extract(data, '$.last_timestamp'), name", (namespace, before))
        return [decode(Event, json.loads(row[0])) for row in rows]

    def oldest_events(self, namespace: str, limit: int) -> list[Event]:
        """A namespace's `limit` events last seen longest ago (ties by name)."""
        rows = self.db.execute("SELECT data FROM objects WHERE kind = 'events' AND namespace = ?"
                               " ORDER BY json_extract(data, '$.last_timestamp'), name LIMIT ?", (namespace, limit))
        return [decode(Event, json.loads(row[0])) for row in rows]

    def save(self, kind: str, obj: Object, org_id: str, project_id: str) -> None:
        """Insert or replace an object."""
        node_name = obj.spec.node_name if isinstance(obj, Pod) else ""  # kind is "pods" exactly when obj is a Pod
        self.db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (kind, obj.metadata.namespace, obj.metadata.name, obj.metadata.uid, org_id, project_id,
                         node_name, json.dumps(encode(obj), separators=(",", ":"))))

    def tenancy(self, kind: str, namespace: str, name: str) -> tuple[str, str]:
        """The (org_id, project_id) an object is kept under."""
        row = self.db.execute("SELECT org_id, project_id FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
                              (kind, namespace, name)).fetchone()
        return (row[0], row[1]) if row else ("", "")

    def remove(self, kind: str, namespace: str, name: str) -> None:
        """Delete an object."""
        self.db.execute("DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?", (kind, namespace, name))

    # History

    def record(self, change: Change) -> None:
        """Append a change to the history and make its revision the current one."""
        previous = None if change.previous is None else json.dumps(encode(change.previous), separators=(",", ":"))
        self.db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (change.revision, change.kind, change.type, change.org_id, change.project_id,
                         json.dumps(encode(change.object), separators=(",", ":")), previous))
        self.set_meta("revision", change.revision)

    def compact(self, keep: int) -> None:
        """Forget all but the newest `keep` events."""
        horizon = self.revision() - keep
        if horizon > self.compacted():
            self.db.execute("DELETE FROM events WHERE revision <= ?", (horizon,))
            self.set_meta("compacted", horizon)

    def changes(self, kind: str, after: int, limit: int) -> list[Change]:
        """The kept changes of a kind after a revision, oldest first."""
        rows = self.db.execute("SELECT revision, type, data, previous, org_id, project_id FROM events"
                               " WHERE kind = ? AND revision > ? ORDER BY revision LIMIT ?", (kind, after, limit))
        cls = KINDS[kind]
        return [Change(r[0], kind, r[1], decode(cls, json.loads(r[2])),
                       None if r[3] is None else decode(cls, json.loads(r[3])), r[4], r[5]) for r in rows]
