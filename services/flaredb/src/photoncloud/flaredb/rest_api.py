"""FlareDB's REST adapter: JSON in, `await core.x(...)`, JSON out.

SQL values are JSON numbers, strings and null; a BLOB is `{"base64": "..."}`, in parameters and in
rows alike. KV keys and values are UTF-8 text (`value_base64` carries a value that is not).
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from aiohttp import web
from photoncloud.common import auth
from photoncloud.common.auth import TENANT
from photoncloud.common.errors import InvalidArgument
from photoncloud.common.models import Body, Query, Result, from_base64
from photoncloud.common.rest import RouteTable
from pydantic import Field

from . import core

SQL = "photoncloud.flaredb.v1.Sql/"
KV = "photoncloud.flaredb.v1.Kv/"
KEY = "/api/v1/kv/{key:.+}"
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


class ProjectQuery(Query):
    """The project (for a system-scoped token) and the read consistency."""

    project_id: str = ""
    consistency: ConsistencyName = "weak"


class PageQuery(ProjectQuery):
    """A page of a listing."""

    page_size: int = 0
    page_token: str = ""


class ColumnOut(Result):
    """A column as declared."""

    name: str
    type: str
    not_null: bool
    default: str | None
    primary_key: int


class IndexOut(Result):
    """An index."""

    name: str
    columns: list[str]
    unique: bool


class TableOut(Result):
    """A table: columns, indexes, row count and its CREATE statement."""

    name: str
    columns: list[ColumnOut]
    indexes: list[IndexOut]
    row_count: int
    sql: str


class TablesOut(Result):
    """A page of tables."""

    items: list[TableOut]
    next_page_token: str


class RestoreQuery(Query):
    """The project to restore (for a system-scoped token)."""

    project_id: str = ""


class RestoreOut(Result):
    """What the restore brought."""

    tables: int
    bytes: int


class NamespaceBody(Body):
    """A namespace to declare."""

    name: str
    mode: Literal["strong", "eventual"]
    project_id: str = ""


class NamespaceOut(Result):
    """A namespace and its number of keys."""

    name: str
    mode: Literal["strong", "eventual"]
    keys: int


class NamespacesQuery(Query):
    """A page of namespaces."""

    project_id: str = ""
    page_size: int = 0
    page_token: str = ""


class NamespacesOut(Result):
    """A page of namespaces."""

    items: list[NamespaceOut]
    next_page_token: str


class KeyQuery(Query):
    """Which namespace (and project, for a system-scoped token)."""

    namespace: str = core.DEFAULT_NAMESPACE
    project_id: str = ""


class EntryOut(Result):
    """A key, its value and version."""

    namespace: str
    key: str
    value: str | None = Field(description="the value as UTF-8 text (null if it is not UTF-8)")
    value_base64: str | None = Field(None, description="the value in base64, set only when it is not UTF-8")
    version: int


class PutBody(Body):
    """A value to write: `value` as text or `value_base64`, exactly one."""

    value: str | None = None
    value_base64: str | None = None
    namespace: str | None = Field(None, description="instead of the namespace query parameter")
    project_id: str = ""


class PutOut(Result):
    """The key's version after the put."""

    namespace: str
    key: str
    version: int


class DeleteOut(Result):
    """How many keys were deleted (0: it did not exist)."""

    namespace: str
    key: str
    deleted: int


class ScanQuery(Query):
    """[start, end) of a namespace, at most limit keys."""

    namespace: str = core.DEFAULT_NAMESPACE
    start: str = ""
    end: str = Field("", description="empty: to the last key")
    limit: int = Field(0, description=f"0: {core.DEFAULT_SCAN_LIMIT}; at most {core.MAX_SCAN_LIMIT}")
    project_id: str = ""


class ScanOut(Result):
    """The keys, and where the next page starts."""

    items: list[EntryOut]
    has_more: bool
    next_key: str | None


class CasBody(Body):
    """Write (or delete) key if its version is expected_version (0: the key must be absent)."""

    namespace: str = core.DEFAULT_NAMESPACE
    key: str
    value: str | None = None
    value_base64: str | None = None
    expected_version: int
    delete: bool = False
    project_id: str = ""


class CasOut(Result):
    """Whether it swapped; the version and value afterwards (on failure: the current ones)."""

    succeeded: bool
    namespace: str
    key: str
    version: int
    value: str | None
    value_base64: str | None = None


def sql_value(value: Any, where: str) -> core.Value:
    """A JSON parameter as a SQLite value ({"base64": ...} is a BLOB)."""
    if isinstance(value, dict):
        if set(value) != {"base64"} or not isinstance(value["base64"], str):
            raise InvalidArgument(f"{where}: an object parameter is {{\"base64\": \"...\"}}", {"field": where})
        return from_base64(value["base64"], where)
    if isinstance(value, list):
        raise InvalidArgument(f"{where}: a parameter is null, a number, text or {{\"base64\": ...}}", {"field": where})
    return value


def json_value(value: core.Value) -> Any:
    """A SQLite value as JSON (a BLOB as {"base64": ...})."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return value


def _statement(sql: str, params: list[Any] | dict[str, Any] | None, where: str) -> core.Statement:
    if isinstance(params, dict):
        return core.Statement(sql, named=tuple(
            (k, sql_value(v, f"{where}.params.{k}") if isinstance(v, (dict, list)) else v) for k, v in params.items()))
    return core.Statement(sql, tuple(sql_value(v, f"{where}.params.{i}") if isinstance(v, (dict, list)) else v
                                     for i, v in enumerate(params or [])))


def statements(body: SqlBody) -> list[core.Statement]:
    """The statements of a request: `sql` + `params`, or `statements`, exactly one."""
    if (body.sql is None) == (body.statements is None):
        raise InvalidArgument("give either sql (one statement) or statements (a list)", {"field": "sql"})
    if body.sql is not None:
        return [_statement(body.sql, body.params, "params")]
    if body.params is not None:
        raise InvalidArgument("params go with sql; in statements, each statement has its own", {"field": "params"})
    return [_statement(s.sql, s.params, f"statements.{i}") for i, s in enumerate(body.statements)]


def statement_out(result: core.StatementResult) -> dict[str, Any]:
    """A statement's result for REST: {columns, types, rows} or {rows_affected, last_insert_id}."""
    if result.columns is not None:
        return {"columns": result.columns, "types": result.types,
                "rows": [[json_value(v) for v in row] for row in result.rows]}
    return {"rows_affected": result.rows_affected, "last_insert_id": result.last_insert_id}


def table_out(table: core.Table) -> TableOut:
    """A table for REST."""
    return TableOut(name=table.name, columns=[ColumnOut(**c.__dict__) for c in table.columns],
                    indexes=[IndexOut(**i.__dict__) for i in table.indexes], row_count=table.row_count,
                    sql=table.sql)


def _text(data: bytes) -> tuple[str | None, str | None]:
    try:
        return data.decode(), None
    except UnicodeDecodeError:
        return None, base64.b64encode(data).decode()


def entry_out(namespace: str, entry: core.Entry) -> EntryOut:
    """A key-value pair for REST."""
    text, encoded = _text(entry.value)
    return EntryOut(namespace=namespace, key=entry.key.decode(errors="backslashreplace"), value=text,
                    value_base64=encoded, version=entry.version)


def kv_value(text: str | None, encoded: str | None) -> bytes:
    """The bytes of exactly one of `value` (text) and `value_base64`."""
    if (text is None) == (encoded is None):
        raise InvalidArgument("give exactly one of value and value_base64", {"field": "value"})
    return text.encode() if encoded is None else from_base64(encoded, "value_base64")


def routes(db: core.FlareDBCore) -> RouteTable:
    """FlareDB's REST routes over db."""
    table = RouteTable()

    @table.post("/api/v1/sql", "Run one SQL statement or a list of them (a list is one transaction)",
                body=SqlBody, response=SqlOut, rpc=SQL + "Execute", permission=core.SQL_READ, who=TENANT)
    async def run_sql(request: web.Request, body: SqlBody) -> SqlOut:
        # Reading takes flaredb:sql:read (checked at the gate); a request that writes also needs
        # flaredb:sql:write, which the core checks once it knows.
        project_id = await db.project(body.project_id, core.SQL_READ)
        results = await db.execute(project_id, statements(body), core.Consistency(body.consistency), auth.current())
        return SqlOut(results=[statement_out(r) for r in results])

    @table.get("/api/v1/tables", "List the project's tables: columns, indexes, row counts", query=PageQuery,
               response=TablesOut, rpc=SQL + "ListTables", permission=core.SQL_READ, who=TENANT)
    async def list_tables(request: web.Request, query: PageQuery) -> TablesOut:
        page = await db.tables(await db.project(query.project_id, core.SQL_READ), query.page_size, query.page_token,
                               core.Consistency(query.consistency))
        return TablesOut(items=[table_out(t) for t in page.items], next_page_token=page.next_page_token)

    @table.get("/api/v1/tables/{name}", "One table: columns, indexes, row count", query=ProjectQuery,
               response=TableOut, rpc=SQL + "GetTable", permission=core.SQL_READ, who=TENANT)
    async def get_table(request: web.Request, name: str, query: ProjectQuery) -> TableOut:
        return table_out(await db.table(await db.project(query.project_id, core.SQL_READ), name,
                                        core.Consistency(query.consistency)))

    @table.get("/api/v1/backup", "The project's database as a SQLite file (application/vnd.sqlite3)",
               query=ProjectQuery, raw=True, rpc=SQL + "Backup", permission=core.SQL_READ, who=TENANT)
    async def backup(request: web.Request, query: ProjectQuery) -> web.Response:
        project_id = await db.project(query.project_id, core.SQL_READ)
        data = await db.backup(project_id, core.Consistency(query.consistency))
        return web.Response(body=data, content_type="application/vnd.sqlite3", headers={
            "Content-Disposition": f'attachment; filename="{project_id}.sqlite3"'})

    @table.post("/api/v1/restore", "Replace the project's database with a SQLite file (the request body)",
                query=RestoreQuery, response=RestoreOut, rpc=SQL + "Restore", permission=core.SQL_MANAGE, who=TENANT)
    async def restore(request: web.Request, query: RestoreQuery) -> RestoreOut:
        project_id = await db.project(query.project_id, core.SQL_MANAGE)
        result = await db.restore(project_id, await request.read())
        return RestoreOut(tables=result.tables, bytes=result.bytes)

    def namespace_out(ns: core.Namespace) -> NamespaceOut:
        return NamespaceOut(name=ns.name, mode=ns.mode.value, keys=ns.keys)

    @table.post("/api/v1/namespaces", "Declare a KV namespace, strong or eventual", body=NamespaceBody,
                response=NamespaceOut, rpc=KV + "CreateNamespace", permission=core.KV_WRITE, who=TENANT)
    async def create_namespace(request: web.Request, body: NamespaceBody) -> NamespaceOut:
        project_id = await db.project(body.project_id, core.KV_WRITE)
        return namespace_out(await db.create_namespace(project_id, body.name, core.Mode(body.mode)))

    @table.get("/api/v1/namespaces", "List the project's KV namespaces", query=NamespacesQuery,
               response=NamespacesOut, rpc=KV + "ListNamespaces", permission=core.KV_READ, who=TENANT)
    async def list_namespaces(request: web.Request, query: NamespacesQuery) -> NamespacesOut:
        page = await db.namespaces(await db.project(query.project_id, core.KV_READ), query.page_size, query.page_token)
        return NamespacesOut(items=[namespace_out(n) for n in page.items], next_page_token=page.next_page_token)

    @table.get("/api/v1/namespaces/{name}", "One KV namespace: its mode and number of keys",
               query=RestoreQuery, response=NamespaceOut, rpc=KV + "GetNamespace", permission=core.KV_READ, who=TENANT)
    async def get_namespace(request: web.Request, name: str, query: RestoreQuery) -> NamespaceOut:
        return namespace_out(await db.namespace(await db.project(query.project_id, core.KV_READ), name))

    @table.get(KEY, "Read a key", query=KeyQuery, response=EntryOut, rpc=KV + "Get", permission=core.KV_READ,
               who=TENANT)
    async def get_key(request: web.Request, key: str, query: KeyQuery) -> EntryOut:
        entry = await db.get(await db.project(query.project_id, core.KV_READ), query.namespace, key.encode())
        return entry_out(query.namespace, entry)

    @table.put(KEY, "Write a key of an eventual namespace", query=KeyQuery, body=PutBody, response=PutOut,
               rpc=KV + "Put", permission=core.KV_WRITE, who=TENANT)
    async def put_key(request: web.Request, key: str, query: KeyQuery, body: PutBody) -> PutOut:
        namespace = body.namespace or query.namespace
        result = await db.put(await db.project(body.project_id or query.project_id, core.KV_WRITE), namespace,
                              key.encode(), kv_value(body.value, body.value_base64))
        return PutOut(namespace=namespace, key=key, version=result.version)

    @table.delete(KEY, "Delete a key of an eventual namespace", query=KeyQuery, response=DeleteOut,
                  rpc=KV + "Delete", permission=core.KV_WRITE, who=TENANT)
    async def delete_key(request: web.Request, key: str, query: KeyQuery) -> DeleteOut:
        result = await db.delete(await db.project(query.project_id, core.KV_WRITE), query.namespace, key.encode())
        return DeleteOut(namespace=query.namespace, key=key, deleted=result.deleted)

    @table.get("/api/v1/scan", "Keys in [start, end) of a namespace", query=ScanQuery, response=ScanOut,
               rpc=KV + "Scan", permission=core.KV_READ, who=TENANT)
    async def scan(request: web.Request, query: ScanQuery) -> ScanOut:
        result = await db.scan(await db.project(query.project_id, core.KV_READ), query.namespace, query.start.encode(),
                               query.end.encode(), query.limit)
        return ScanOut(items=[entry_out(query.namespace, e) for e in result.items], has_more=result.has_more,
                       next_key=result.next_key.decode(errors="backslashreplace") if result.next_key else None)

    @table.post("/api/v1/cas", "Compare-and-swap a key of a strong namespace by its version", body=CasBody,
                response=CasOut, rpc=KV + "CompareAndSwap", permission=core.KV_WRITE, who=TENANT)
    async def cas(request: web.Request, body: CasBody) -> CasOut:
        value = b"" if body.delete and body.value is None and body.value_base64 is None \
            else kv_value(body.value, body.value_base64)
        project_id = await db.project(body.project_id, core.KV_WRITE)
        result = await db.cas(project_id, body.namespace, body.key.encode(), value, body.expected_version, body.delete)
        text, encoded = _text(result.value) if result.value is not None else (None, None)
        return CasOut(succeeded=result.succeeded, namespace=body.namespace, key=body.key, version=result.version,
                      value=text, value_base64=encoded)

    return table
