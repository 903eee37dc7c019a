"""What FlareDB's operations return: statement results, tables, namespaces, entries, the member's status."""

from __future__ import annotations

from dataclasses import dataclass, field

from .commands import Mode, Value


@dataclass(frozen=True)
class StatementResult:
    """A query's columns, their types and rows; or a write's rows affected and last rowid."""

    columns: list[str] | None = None  # None: the statement returned no rows (a write)
    types: list[str] = field(default_factory=list)
    rows: list[list[Value]] = field(default_factory=list)
    rows_affected: int = 0
    last_insert_id: int = 0


@dataclass(frozen=True)
class Column:
    """A table's column as declared."""

    name: str
    type: str
    not_null: bool
    default: str | None
    primary_key: int  # position in the primary key (0: not part of it)


@dataclass(frozen=True)
class Index:
    """An index of a table."""

    name: str
    columns: list[str]
    unique: bool


@dataclass(frozen=True)
class Table:
    """A user table: its columns, indexes and row count."""

    name: str
    columns: list[Column]
    indexes: list[Index]
    row_count: int
    sql: str


@dataclass(frozen=True)
class TablePage:
    """A page of tables, by name."""

    items: list[Table]
    next_page_token: str


@dataclass(frozen=True)
class RestoreResult:
    """What a restore brought."""

    tables: int
    bytes: int


@dataclass(frozen=True)
class Namespace:
    """A KV namespace."""

    name: str
    mode: Mode
    keys: int = 0


@dataclass(frozen=True)
class NamespacePage:
    """A page of namespaces, by name."""

    items: list[Namespace]
    next_page_token: str


@dataclass(frozen=True)
class Entry:
    """A key, its value and its version (1 on create, +1 per change)."""

    key: bytes
    value: bytes
    version: int


@dataclass(frozen=True)
class PutResult:
    """The version a put gave the key."""

    key: bytes
    version: int


@dataclass(frozen=True)
class DeleteResult:
    """How many keys a delete removed (0 or 1: deleting a missing key is not an error)."""

    key: bytes
    deleted: int


@dataclass(frozen=True)
class CasResult:
    """Whether the swap happened, and the key's version and value afterwards (0 and None: absent)."""

    succeeded: bool
    key: bytes
    version: int
    value: bytes | None


@dataclass(frozen=True)
class ScanResult:
    """Keys in [start, end), by key; next_key is where the next page starts."""

    items: list[Entry]
    has_more: bool
    next_key: bytes | None


@dataclass(frozen=True)
class Status:
    """This member and its log."""

    member_id: int
    leader: int
    role: str
    raft_term: int
    raft_index: int
    projects: int
    db_size_bytes: int
