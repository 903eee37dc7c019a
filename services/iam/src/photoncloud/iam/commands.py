"""The commands IAM proposes to its log, and the conditions they carry.

A command holds everything its application needs: the records as they are to be written (their
ids, hashes and times made by the proposer), the audit event that goes with them, and what the
proposer expects the records it decided on to still be. Applying one needs no clock, no
randomness and no password hashing, so every member that applies the same commands in the same
order ends in the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .records import AuditEvent


@dataclass(frozen=True)
class Cmp:
    """A condition other than equality: <, <=, >, >=, !=, `prefix` (starts with), `under`
    (equal, or a dotted descendant: `iam.users` matches `iam.users.create`)."""

    op: str
    value: Any


# Conditions on fields, all of which must hold: a value (equal), a list/tuple/set (one of), a Cmp.
Where = Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class Insert:
    """Add a record (ALREADY_EXISTS when it breaks a uniqueness rule)."""

    record: Any


@dataclass(frozen=True)
class Update:
    """Replace the stored record with the same key."""

    record: Any


@dataclass(frozen=True)
class Delete:
    """Remove the records of kind matching where."""

    kind: type
    where: Where


Change = Insert | Update | Delete


@dataclass(frozen=True)
class Expect:
    """The record of kind with key is still `record` (None: there is none).

    The proposer decides on what it read (a user is enabled, a role is custom, a binding is not
    the last admin's); the command carries that reading, and applying it refuses (ABORTED) when
    the state moved on in between, instead of writing a decision made on an old state.
    """

    kind: type
    key: Any
    record: Any


@dataclass(frozen=True)
class Absent:
    """No record of kind matches where (an organization being deleted has no projects, a role
    being deleted no bindings); ABORTED otherwise, as for Expect."""

    kind: type
    where: Where


Guard = Expect | Absent


@dataclass(frozen=True)
class Commit:
    """Apply changes, all or none, with the audit event that records them (None: no event).

    With no changes it records a refused operation's FAILURE event alone.
    """

    changes: tuple[Change, ...] = ()
    audit: AuditEvent | None = None
    expect: tuple[Guard, ...] = ()
