"""Running a request's SQL statements on a connection: the rows they return, the errors they raise.

The state machine runs writes with it (under a budget of steps), the readers reads (under a deadline).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence

from photoncloud.common.errors import InvalidArgument, PermissionDenied, ServiceError

from . import sql
from .commands import Statement, Value
from .limits import Guard, ResultMeter, too_big
from .results import StatementResult


def run_statements(conn: sqlite3.Connection, statements: Sequence[Statement], authorizer: sql.Authorizer,
                   check: Callable[..., int], guard: Guard | None = None, meter: ResultMeter | None = None,
                   determinism: sql.Determinism | None = None) -> list[StatementResult]:
    """Run user statements under check (one of authorizer's callbacks), with the guard installed on
    conn stopping them and meter counting their rows; SQLite's errors become INVALID_ARGUMENT, a
    guard's or a limit's RESOURCE_EXHAUSTED (or DEADLINE_EXCEEDED)."""
    results = []
    conn.set_authorizer(check)
    try:
        for i, statement in enumerate(statements):
            authorizer.reason = ""
            cursor = None
            try:
                cursor = conn.execute(statement.sql, statement.bindings())
                if cursor.description is not None:
                    rows = []
                    for row in cursor:
                        if meter is not None:
                            meter.add(row, i)
                        rows.append(list(row))
                    columns = [d[0] for d in cursor.description]
                    results.append(StatementResult(columns, _column_types(rows, len(columns)),
                                                   [[_json_safe(v) for v in row] for row in rows]))
                else:
                    results.append(StatementResult(rows_affected=max(cursor.rowcount, 0),
                                                   last_insert_id=cursor.lastrowid or 0))
            except (sqlite3.Error, sqlite3.Warning, OverflowError) as exc:
                raise _sql_error(conn, i, exc, authorizer, guard, determinism) from None
            finally:
                if cursor is not None:
                    cursor.close()  # a result cut short must not hold its read transaction open
    finally:
        conn.set_authorizer(None)
    return results


def _sql_error(conn: sqlite3.Connection, i: int, exc: Exception, authorizer: sql.Authorizer, guard: Guard | None,
               determinism: sql.Determinism | None) -> ServiceError:
    details = {"statement_index": i}
    if guard is not None and (getattr(guard, "exhausted", False) or getattr(guard, "expired", False)):
        return guard.error(i)
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_TOOBIG":
        return too_big(i, conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH))
    if authorizer.reason and ("not authorized" in str(exc) or "prohibited" in str(exc)):
        return PermissionDenied(f"statement {i}: {authorizer.reason}", {**details, "reason": "SQL_NOT_ALLOWED"})
    if determinism is not None and determinism.refused:
        return InvalidArgument(f"statement {i}: {determinism.refused} reads the clock or the time zone, which would "
                               "differ between replicas; compute the time in the client and pass it as a parameter",
                               {**details, "reason": "CLOCK"})
    return InvalidArgument(f"statement {i}: {exc}", details)


def _storage_class(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, (bool, int)):
        return "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, bytes):
        return "blob"
    return "text"


def _column_types(rows: list[list[Value]], width: int) -> list[str]:
    """Per column, the storage class of its first non-NULL value ("null" if every value is NULL)."""
    types = []
    for i in range(width):
        found = next((row[i] for row in rows if row[i] is not None), None)
        types.append(_storage_class(found))
    return types


def _json_safe(value: Value) -> Value:
    """Infinite reals as text: JSON has no number for them (SQLite stores NaN as NULL)."""
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
