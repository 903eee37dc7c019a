"""FlareDB's REST routes that the gateway cannot make from the contract, written by hand:

- POST /api/v1/sql (Sql/Execute): SQL values are JSON numbers, strings and null, and a BLOB is
  `{"base64": "..."}`, in parameters and in rows alike; a row is a JSON array of such values, and a
  result is `{columns, types, rows}` for a query or `{rows_affected, last_insert_id}` for a write.
  No message maps to that JSON (google.protobuf.Value would make every integer a double, losing
  SQL integers beyond 2**53), so this route reads and writes its JSON itself.
- GET /api/v1/backup (Sql/Backup): answers the SQLite file itself, not JSON.
- POST /api/v1/restore (Sql/Restore): takes the SQLite file as the request body, not JSON.
The other routes are the contract's (shared gateway, grpc_api's servicers).
"""

from __future__ import annotations

import base64
from typing import Any, Literal, cast

from aiohttp import web
from photoncloud.common import auth, gateway, protojson
from photoncloud.common.errors import InvalidArgument
from photoncloud.common.models import Body, Result, from_base64
from photoncloud.common.rest import RouteTable
from photoncloud.flaredb.v1 import flaredb_pb2 as pb
from pydantic import Field

from . import convert, core
from .commands import Statement, Value
from .results import StatementResult

SQL = "photoncloud.flaredb.v1.Sql/"
SQLITE = "application/vnd.sqlite3"  # the media type of a SQLite database file
ConsistencyName = Literal["none", "weak", "strong"]


class StatementIn(Body):
    """One statement and its parameters: a list (positional, `?`) or an object (named, `:name`)."""

    sql: str
    params: list[Any] | dict[str, Any] = Field(default_factory=list)


class SqlBody(Body):
    """One statement (`sql`, `params`) or a list of them (`statements`: one transaction)."""

    sql: str | None = None
    params: list[Any] | dict[str, Any] | None = None
    statements: list[StatementIn] | None = None
    consistency: ConsistencyName = Field("weak", description="for requests that only read: none, weak or strong")
    project_id: str = Field("", description="the project, for a system-scoped token")


class SqlOut(Result):
    """One result per statement, in order: {columns, types, rows} for a query (types: the SQLite
    types of the values, integer, real, text, blob, or null if every value is NULL), or
    {rows_affected, last_insert_id} for a write."""

    results: list[dict[str, Any]]


def sql_value(value: Any, where: str) -> Value:
    """A JSON parameter as a SQLite value ({"base64": ...} is a BLOB)."""
    if isinstance(value, dict):
        if set(value) != {"base64"} or not isinstance(value["base64"], str):
            raise InvalidArgument(f"{where}: an object parameter is {{\"base64\": \"...\"}}", {"field": where})
        return from_base64(value["base64"], where)
    if isinstance(value, list):
        raise InvalidArgument(f"{where}: a parameter is null, a number, text or {{\"base64\": ...}}", {"field": where})
    return value  # type: ignore[no-any-return]  # JSON: null, a number or text, as the core checks


def json_value(value: Value) -> Any:
    """A SQLite value as JSON (a BLOB as {"base64": ...})."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return value


def _statement(sql: str, params: list[Any] | dict[str, Any] | None, where: str) -> Statement:
    if isinstance(params, dict):
        return Statement(sql, named=tuple(
            (k, sql_value(v, f"{where}.params.{k}") if isinstance(v, (dict, list)) else v) for k, v in params.items()))
    return Statement(sql, tuple(sql_value(v, f"{where}.params.{i}") if isinstance(v, (dict, list)) else v
                                     for i, v in enumerate(params or [])))


def statements(body: SqlBody) -> list[Statement]:
    """The statements of a request: `sql` + `params`, or `statements`, exactly one."""
    if (body.sql is None) == (body.statements is None):
        raise InvalidArgument("give either sql (one statement) or statements (a list)", {"field": "sql"})
    if body.sql is not None:
        return [_statement(body.sql, body.params, "params")]
    if body.params is not None:
        raise InvalidArgument("params go with sql; in statements, each statement has its own", {"field": "params"})
    return [_statement(s.sql, s.params, f"statements.{i}") for i, s in enumerate(body.statements or [])]


def statement_out(result: StatementResult) -> dict[str, Any]:
    """A statement's result for REST: {columns, types, rows} or {rows_affected, last_insert_id}."""
    if result.columns is not None:
        return {"columns": result.columns, "types": result.types,
                "rows": [[json_value(v) for v in row] for row in result.rows]}
    return {"rows_affected": result.rows_affected, "last_insert_id": result.last_insert_id}


def routes(db: core.FlareDBCore) -> RouteTable:
    """FlareDB's hand-written REST routes over db."""
    table = RouteTable()

    # Typed SQL values in mixed-type JSON arrays, integers of 64 bits: no message maps to this JSON.
    @table.post("/api/v1/sql", "Run one SQL statement or a list of them (a list is one transaction)",
                body=SqlBody, response=SqlOut, **gateway.declared(SQL + "Execute"))
    async def run_sql(request: web.Request, body: SqlBody) -> SqlOut:
        # Reading takes flaredb:sql:read (checked at the gate); a request that writes also needs
        # flaredb:sql:write, which the core checks once it knows.
        project_id = await db.project(body.project_id, core.SQL_READ)
        results = await db.execute(project_id, statements(body), core.Consistency(body.consistency), auth.current())
        return SqlOut(results=[statement_out(r) for r in results])

    backup_binding = gateway.binding(SQL + "Backup", "/api/v1/backup")
    restore_binding = gateway.binding(SQL + "Restore", "/api/v1/restore")

    # The answer is the SQLite file itself, not JSON.
    @table.get("/api/v1/backup", "The project's database as a SQLite file (application/vnd.sqlite3)",
               raw=True, content_types=(SQLITE,), binding=backup_binding, **gateway.declared(SQL + "Backup"))
    async def backup(request: web.Request) -> web.Response:
        query = cast(pb.BackupRequest, await gateway.request_message(request, backup_binding))
        project_id = await db.project(query.project_id, core.SQL_READ)
        data = await db.backup(project_id, convert.consistency(query.consistency))
        return web.Response(body=data, content_type=SQLITE, headers={
            "Content-Disposition": f'attachment; filename="{project_id}.sqlite3"'})

    # The request body is the SQLite file itself, not JSON (the project comes from the query string).
    @table.post("/api/v1/restore", "Replace the project's database with a SQLite file (the request body)",
                binding=restore_binding, **gateway.declared(SQL + "Restore"))
    async def restore(request: web.Request) -> Any:
        query = cast(pb.RestoreRequest, await gateway.request_message(request, restore_binding))
        project_id = await db.project(query.project_id, core.SQL_MANAGE)
        result = await db.restore(project_id, await request.read())
        return protojson.to_json(pb.RestoreResponse(tables=result.tables, bytes=result.bytes))

    return table
