"""FlareDB's gRPC adapter: protobuf in, `await core.x(...)`, protobuf out."""

from __future__ import annotations

import grpc
from photoncloud.common import auth
from photoncloud.common.errors import InvalidArgument
from photoncloud.common.server import GrpcService
from photoncloud.flaredb.v1 import flaredb_pb2 as pb
from photoncloud.flaredb.v1 import flaredb_pb2_grpc as pb_grpc

from . import core

_CONSISTENCY = {pb.CONSISTENCY_UNSPECIFIED: core.Consistency.WEAK, pb.NONE: core.Consistency.NONE,
                pb.WEAK: core.Consistency.WEAK, pb.STRONG: core.Consistency.STRONG}
_MODE = {pb.STRONG_MODE: core.Mode.STRONG, pb.EVENTUAL_MODE: core.Mode.EVENTUAL}
_MODE_PB = {mode: number for number, mode in _MODE.items()}


def consistency(value: int) -> core.Consistency:
    """A protobuf consistency for the core."""
    if value not in _CONSISTENCY:
        raise InvalidArgument("unknown consistency", {"field": "consistency"})
    return _CONSISTENCY[value]


def sql_value(m: pb.SqlValue) -> core.Value:
    """A protobuf value for SQLite (unset: NULL)."""
    kind = m.WhichOneof("kind")
    return None if kind in (None, "null") else getattr(m, kind)


def value_pb(value: core.Value) -> pb.SqlValue:
    """A SQLite value as protobuf."""
    if value is None:
        return pb.SqlValue(null=True)
    if isinstance(value, bytes):
        return pb.SqlValue(blob=value)
    if isinstance(value, int):
        return pb.SqlValue(integer=value)
    if isinstance(value, float):
        return pb.SqlValue(real=value)
    return pb.SqlValue(text=str(value))


def statement(m: pb.Statement) -> core.Statement:
    """A protobuf statement for the core."""
    return core.Statement(m.sql, tuple(sql_value(v) for v in m.params),
                          tuple((k, sql_value(v)) for k, v in sorted(m.named_params.items())))


def result_pb(result: core.StatementResult) -> pb.StatementResult:
    """A statement's result as protobuf."""
    if result.columns is not None:
        return pb.StatementResult(is_query=True, columns=result.columns, types=result.types,
                                  rows=[pb.Row(values=[value_pb(v) for v in row]) for row in result.rows])
    return pb.StatementResult(rows_affected=result.rows_affected, last_insert_id=result.last_insert_id)


def table_pb(table: core.Table) -> pb.Table:
    """A table as protobuf."""
    return pb.Table(name=table.name, row_count=table.row_count, sql=table.sql,
                    columns=[pb.Column(name=c.name, type=c.type, not_null=c.not_null, default=c.default,
                                       primary_key=c.primary_key) for c in table.columns],
                    indexes=[pb.Index(name=i.name, columns=i.columns, unique=i.unique) for i in table.indexes])


def namespace_pb(ns: core.Namespace) -> pb.Namespace:
    """A namespace as protobuf."""
    return pb.Namespace(name=ns.name, mode=_MODE_PB[ns.mode], keys=ns.keys)


def ns(name: str) -> str:
    """The namespace a request names (none: the default one)."""
    return name or core.DEFAULT_NAMESPACE


class SqlServicer(pb_grpc.SqlServicer):
    """photoncloud.flaredb.v1.Sql over the core."""

    def __init__(self, db: core.FlareDBCore):
        self.db = db

    async def Execute(self, request: pb.ExecuteRequest, context: grpc.aio.ServicerContext) -> pb.ExecuteResponse:
        project_id = await self.db.project(request.project_id, core.SQL_READ)
        results = await self.db.execute(project_id, [statement(s) for s in request.statements],
                                        consistency(request.consistency), auth.current())
        return pb.ExecuteResponse(results=[result_pb(r) for r in results])

    async def ListTables(self, request: pb.ListTablesRequest,
                         context: grpc.aio.ServicerContext) -> pb.ListTablesResponse:
        project_id = await self.db.project(request.project_id, core.SQL_READ)
        page = await self.db.tables(project_id, request.page_size, request.page_token, consistency(request.consistency))
        return pb.ListTablesResponse(tables=[table_pb(t) for t in page.items], next_page_token=page.next_page_token)

    async def GetTable(self, request: pb.GetTableRequest, context: grpc.aio.ServicerContext) -> pb.Table:
        project_id = await self.db.project(request.project_id, core.SQL_READ)
        return table_pb(await self.db.table(project_id, request.name, consistency(request.consistency)))

    async def Backup(self, request: pb.BackupRequest, context: grpc.aio.ServicerContext) -> pb.BackupResponse:
        project_id = await self.db.project(request.project_id, core.SQL_READ)
        return pb.BackupResponse(data=await self.db.backup(project_id, consistency(request.consistency)))

    async def Restore(self, request: pb.RestoreRequest, context: grpc.aio.ServicerContext) -> pb.RestoreResponse:
        project_id = await self.db.project(request.project_id, core.SQL_MANAGE)
        result = await self.db.restore(project_id, request.data)
        return pb.RestoreResponse(tables=result.tables, bytes=result.bytes)


class KvServicer(pb_grpc.KvServicer):
    """photoncloud.flaredb.v1.Kv over the core."""

    def __init__(self, db: core.FlareDBCore):
        self.db = db

    async def CreateNamespace(self, request: pb.CreateNamespaceRequest,
                              context: grpc.aio.ServicerContext) -> pb.Namespace:
        if request.mode not in _MODE:
            raise InvalidArgument("mode is STRONG_MODE or EVENTUAL_MODE", {"field": "mode"})
        project_id = await self.db.project(request.project_id, core.KV_WRITE)
        return namespace_pb(await self.db.create_namespace(project_id, request.name, _MODE[request.mode]))

    async def ListNamespaces(self, request: pb.ListNamespacesRequest,
                             context: grpc.aio.ServicerContext) -> pb.ListNamespacesResponse:
        project_id = await self.db.project(request.project_id, core.KV_READ)
        page = await self.db.namespaces(project_id, request.page_size, request.page_token)
        return pb.ListNamespacesResponse(namespaces=[namespace_pb(n) for n in page.items],
                                         next_page_token=page.next_page_token)

    async def GetNamespace(self, request: pb.GetNamespaceRequest, context: grpc.aio.ServicerContext) -> pb.Namespace:
        project_id = await self.db.project(request.project_id, core.KV_READ)
        return namespace_pb(await self.db.namespace(project_id, request.name))

    async def Get(self, request: pb.GetRequest, context: grpc.aio.ServicerContext) -> pb.KeyValue:
        project_id = await self.db.project(request.project_id, core.KV_READ)
        entry = await self.db.get(project_id, ns(request.namespace), request.key)
        return pb.KeyValue(key=entry.key, value=entry.value, version=entry.version)

    async def Put(self, request: pb.PutRequest, context: grpc.aio.ServicerContext) -> pb.PutResponse:
        project_id = await self.db.project(request.project_id, core.KV_WRITE)
        result = await self.db.put(project_id, ns(request.namespace), request.key, request.value)
        return pb.PutResponse(key=result.key, version=result.version)

    async def Delete(self, request: pb.DeleteRequest, context: grpc.aio.ServicerContext) -> pb.DeleteResponse:
        project_id = await self.db.project(request.project_id, core.KV_WRITE)
        result = await self.db.delete(project_id, ns(request.namespace), request.key)
        return pb.DeleteResponse(key=result.key, deleted=result.deleted)

    async def Scan(self, request: pb.ScanRequest, context: grpc.aio.ServicerContext) -> pb.ScanResponse:
        project_id = await self.db.project(request.project_id, core.KV_READ)
        result = await self.db.scan(project_id, ns(request.namespace), request.start, request.end, request.limit)
        return pb.ScanResponse(items=[pb.KeyValue(key=e.key, value=e.value, version=e.version) for e in result.items],
                               has_more=result.has_more, next_key=result.next_key or b"")

    async def CompareAndSwap(self, request: pb.CompareAndSwapRequest,
                             context: grpc.aio.ServicerContext) -> pb.CompareAndSwapResponse:
        project_id = await self.db.project(request.project_id, core.KV_WRITE)
        result = await self.db.cas(project_id, ns(request.namespace), request.key, request.value,
                                   request.expected_version, request.delete)
        return pb.CompareAndSwapResponse(succeeded=result.succeeded, key=result.key, version=result.version,
                                         value=result.value)


def services(db: core.FlareDBCore) -> list[GrpcService]:
    """FlareDB's gRPC services over db."""
    descriptor = pb.DESCRIPTOR.services_by_name
    return [
        GrpcService(descriptor["Sql"].full_name,
                    lambda server: pb_grpc.add_SqlServicer_to_server(SqlServicer(db), server)),
        GrpcService(descriptor["Kv"].full_name,
                    lambda server: pb_grpc.add_KvServicer_to_server(KvServicer(db), server)),
    ]
