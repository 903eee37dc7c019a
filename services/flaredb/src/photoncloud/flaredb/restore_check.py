"""The checks a SQLite file passes before it replaces a project's database (a restore).

The file comes from a tenant, and FlareDB will run its own statements against it on every member:
it must be sound (`PRAGMA integrity_check`, which also checks NOT NULL and CHECK constraints), hold
no object in FlareDB's internal namespace (`_flaredb_`) but FlareDB's own tables exactly as FlareDB
creates them (a backup has them: its KV namespaces), and hold no views, triggers or virtual tables
(SQL FlareDB did not see go through its guards, which would run inside FlareDB's own writes; a view
named like an internal table once poisoned the applied index). Every refusal is INVALID_ARGUMENT
with a `reason` in its details.
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache

from photoncloud.common.errors import InvalidArgument, ServiceError

from .limits import StepBudget, install

INTERNAL_PREFIX = "_flaredb_"
VIRTUAL = re.compile(r"\s*CREATE\s+VIRTUAL\s", re.IGNORECASE)


@lru_cache(maxsize=4)
def _expected(schema: str) -> frozenset[tuple[str, str, str, str | None]]:
    """The sqlite_schema rows FlareDB's own schema makes: (type, name, tbl_name, sql)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(schema)
        return frozenset(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema"))
    finally:
        conn.close()


def _refuse(message: str, reason: str, **details: object) -> InvalidArgument:
    return InvalidArgument(f"the file cannot be restored: {message}", {"field": "data", "reason": reason, **details})


def check_database(conn: sqlite3.Connection, internal_schema: str, steps: int | None, length: int) -> None:
    """Raise INVALID_ARGUMENT unless the database on conn may replace a project's; nothing is changed.
    steps (None: no budget) bounds the work, deterministically, so every member decides alike."""
    budget = StepBudget(steps) if steps is not None else None
    install(conn, budget, length)
    try:
        _check(conn, internal_schema)
    except ServiceError:
        raise
    except sqlite3.Error as exc:
        if budget is not None and budget.exhausted:
            raise _refuse(f"checking it took more than {steps} SQLite steps", "CHECK_BUDGET", limit=steps) from None
        raise _refuse(f"it is not a sound SQLite database ({exc})", "CORRUPT") from None
    finally:
        install(conn, None, length)


def _check(conn: sqlite3.Connection, internal_schema: str) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check(10)")]
    if problems != ["ok"]:
        raise _refuse(f"it is not a sound SQLite database: {'; '.join(problems)}", "CORRUPT")
    expected = _expected(internal_schema)
    for kind, name, table, sql in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid"):
        if kind in ("view", "trigger"):
            raise _refuse(f"it holds the {kind} {name!r}; restore the tables, then create views and triggers "
                          "with SQL", kind.upper(), object=name)
        internal = any(n and n.lower().startswith(INTERNAL_PREFIX) for n in (name, table))
        if internal and (kind, name, table, sql) not in expected:
            raise _refuse(f"the {kind} {name!r} is in FlareDB's internal namespace ({INTERNAL_PREFIX}), and is not "
                          "FlareDB's own", "INTERNAL_OBJECT", object=name)
        if kind == "table" and VIRTUAL.match(sql or ""):
            raise _refuse(f"it holds the virtual table {name!r}, which FlareDB does not support", "VIRTUAL_TABLE",
                          object=name)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    # FlareDB reads its internal tables' values as these types: a file may not hold others.
    checks = {"_flaredb_kv": "typeof(key) != 'blob' OR typeof(value) != 'blob' OR typeof(version) != 'integer' "
                             "OR version < 1 OR typeof(namespace) != 'text'",
              "_flaredb_namespaces": "typeof(name) != 'text' OR typeof(created_index) != 'integer'"}
    for table, bad in checks.items():
        if table in tables and conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {bad})").fetchone()[0]:
            raise _refuse(f"FlareDB's table {table} holds values of the wrong type", "INTERNAL_DATA", object=table)
