"""IAM's deterministic state machine: it applies the commands of the log to the store.

What it checks is what only the current state can tell: that the records a command was decided on
are still what the proposer read (`Expect`), and that no name or binding is taken twice (the
store's uniqueness constraints). No clock, no randomness, no hashing: the proposer put the times,
ids, hashes and keys into the command.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from photoncloud.common.errors import Aborted, AlreadyExists, FailedPrecondition
from photoncloud.common.sqlite import SqliteStateMachine

from .commands import Absent, Commit, Guard, Insert
from .records import Binding, Organization, Project, Role, ServiceAccount, User
from .store import Duplicate, SqliteIamStore

# What a name conflict is called in ALREADY_EXISTS, by the kind of record that conflicted.
_NOUNS = {Organization: "an organization", Project: "a project in this organization", User: "a user",
          ServiceAccount: "a service account here", Role: "a role"}


def already_exists(exc: Duplicate) -> AlreadyExists:
    """The ALREADY_EXISTS error for a uniqueness conflict, naming the field that clashed."""
    if exc.kind is Binding:
        return AlreadyExists("this binding exists already", {"field": "role"})
    field_name = [f for f in exc.fields if f not in ("org_id", "project_id")][-1]
    noun = _NOUNS.get(exc.kind, "a record")
    return AlreadyExists(f"{noun} with this {field_name} exists already", {"field": field_name})


class IamStateMachine(SqliteStateMachine):
    """Applies IAM's commands to a SqliteIamStore, each atomically."""

    store: SqliteIamStore
    snapshot_reads = True  # its whole state is the store's: nothing kept in Python while applying

    def __init__(self, store: SqliteIamStore):
        super().__init__(store)

    def execute(self, command: Any) -> list[int]:
        """Apply one Commit; the rows each of its changes affected."""
        if not isinstance(command, Commit):
            raise TypeError(f"IAM has no command {type(command).__name__}")
        for guard in command.expect:
            self._check(guard)
        try:
            counts = [self.store.change(change) for change in command.changes]
        except Duplicate as exc:
            raise already_exists(exc) from None
        except sqlite3.IntegrityError as exc:
            # A record refers to one that is gone (a foreign key): refuse this command alone, never
            # the batch it is applied in.
            raise FailedPrecondition(f"the change refers to a record that does not exist ({exc})",
                                     {"reason": "MISSING_REFERENCE"}) from None
        if command.audit is not None:
            self.store.change(Insert(command.audit))
        return counts

    def _check(self, guard: Guard) -> None:
        """ABORTED unless guard holds: the proposer decided on a state that has since moved on."""
        if isinstance(guard, Absent):
            if self.store.count(guard.kind, guard.where):
                raise Aborted(f"a {guard.kind.__name__.lower()} was added meanwhile; try again",
                              {"reason": "CONCURRENT_CHANGE"})
        elif self.store.get(guard.kind, guard.key) != guard.record:
            raise Aborted(f"{guard.kind.__name__.lower()} {guard.key!r} changed meanwhile; try again",
                          {"reason": "CONCURRENT_CHANGE"})
