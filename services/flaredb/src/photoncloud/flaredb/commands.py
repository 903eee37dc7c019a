"""FlareDB's commands: what the core proposes to the log and FlareDBStateMachine applies.

Commands are pickled between members and into the log's journal: frozen dataclasses of plain values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

from .limits import StatementLimits

Value = Union[None, int, float, str, bytes]


class Mode(enum.Enum):
    """How a namespace is written and read."""

    STRONG = "strong"  # written only by compare-and-swap, read linearizably
    EVENTUAL = "eventual"  # raw puts and deletes, reads from the member's own state


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
