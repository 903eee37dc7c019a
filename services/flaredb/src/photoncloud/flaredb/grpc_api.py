"""FlareDB's servicers: a request message in, `await core.x(...)`, a message out (convert.py).
gRPC serves them, and REST through the routes the contract binds to HTTP (shared gateway); the
REST routes the gateway cannot serve are rest_api's."""

from __future__ import annotations

from typing import Any

from photoncloud.common import auth
from photoncloud.common.server import GrpcService, grpc_services
from photoncloud.flaredb.v1 import flaredb_pb2 as pb
from photoncloud.flaredb.v1 import flaredb_pb2_grpc as pb_grpc

from . import convert, core
from .convert import ns

Context = Any  # grpc.aio.ServicerContext, or the gateway's RestContext


class SqlServicer(pb_grpc.SqlServicer):
    """photoncloud.flaredb.v1.Sql over the core."""

    def __init__(self, db: core.FlareDBCore):
        self.db = db

    async def Execute(self, request: pb.ExecuteRequest, context: Context) -> pb.ExecuteResponse:
        # Reading takes flaredb:sql:read (checked at the gate); a request that writes also needs
        # flaredb:sql:write, which the core checks once it knows.
        project_id = await self.db.project(request.project_id, core.SQL_READ)
        results = await self.db.execute(project_id, [convert.statement(s) for s in request.statements],
                                        convert.consistency(request.consistency), auth.current())
        return pb.ExecuteResponse(results=[convert.statement_result(r) for r in results])

    async def ListTables(self, request: pb.ListTablesRequest, context: Context) -> pb.ListTablesResponse:
        project_id = await self.db.project(request.project_id, core.SQL_READ)
        page = await self.db.tables(project_id, request.page_size, request.page_token,
                                    convert.consistency(request.consistency))
        return pb.ListTablesResponse(items=[convert.table(t) for t in page.items], next_page_token=page.next_page_token)

    async def GetTable(self, request: pb.GetTableRequest, context: Context) -> pb.Table:
        project_id = await self.db.project(request.project_id, core.SQL_READ)
        return convert.table(await self.db.table(project_id, request.name, convert.consistency(request.consistency)))

    async def Backup(self, request: pb.BackupRequest, context: Context) -> pb.BackupResponse:
        project_id = await self.db.project(request.project_id, core.SQL_READ)
        return pb.BackupResponse(data=await self.db.backup(project_id, convert.consistency(request.consistency)))

    async def Restore(self, request: pb.RestoreRequest, context: Context) -> pb.RestoreResponse:
        project_id = await self.db.project(request.project_id, core.SQL_MANAGE)
        result = await self.db.restore(project_id, request.data)
        return pb.RestoreResponse(tables=result.tables, bytes=result.bytes)


class KvServicer(pb_grpc.KvServicer):
    """photoncloud.flaredb.v1.Kv over the core."""

    def __init__(self, db: core.FlareDBCore):
        self.db = db

    async def CreateNamespace(self, request: pb.CreateNamespaceRequest, context: Context) -> pb.Namespace:
        mode = convert.mode(request.mode)
        project_id = await self.db.project(request.project_id, core.KV_WRITE)
        return convert.namespace(await self.db.create_namespace(project_id, request.name, mode))

    async def ListNamespaces(self, request: pb.ListNamespacesRequest, context: Context) -> pb.ListNamespacesResponse:
        project_id = await self.db.project(request.project_id, core.KV_READ)
        page = await self.db.namespaces(project_id, request.page_size, request.page_token)
        return pb.ListNamespacesResponse(items=[convert.namespace(n) for n in page.items],
                                         next_page_token=page.next_page_token)

    async def GetNamespace(self, request: pb.GetNamespaceRequest, context: Context) -> pb.Namespace:
        project_id = await self.db.project(request.project_id, core.KV_READ)
        return convert.namespace(await self.db.namespace(project_id, request.name))

    async def Get(self, request: pb.GetRequest, context: Context) -> pb.KeyValue:
        project_id = await self.db.project(request.project_id, core.KV_READ)
        namespace = ns(request.namespace)
        return convert.entry(namespace, await self.db.get(project_id, namespace, convert.key(request.key)))

    async def Put(self, request: pb.PutRequest, context: Context) -> pb.PutResponse:
        body = request.body
        project_id = await self.db.project(body.project_id or request.project_id, core.KV_WRITE)
        namespace = ns(body.namespace or request.namespace)
        result = await self.db.put(project_id, namespace, convert.key(request.key), convert.value(body))
        return convert.put(namespace, result)

    async def Delete(self, request: pb.DeleteRequest, context: Context) -> pb.DeleteResponse:
        project_id = await self.db.project(request.project_id, core.KV_WRITE)
        namespace = ns(request.namespace)
        return convert.delete(namespace, await self.db.delete(project_id, namespace, convert.key(request.key)))

    async def Scan(self, request: pb.ScanRequest, context: Context) -> pb.ScanResponse:
        project_id = await self.db.project(request.project_id, core.KV_READ)
        namespace = ns(request.namespace)
        result = await self.db.scan(project_id, namespace, convert.key(request.start), convert.key(request.end),
                                    request.limit)
        return convert.scan(namespace, result)

    async def CompareAndSwap(self, request: pb.CompareAndSwapRequest, context: Context) -> pb.CompareAndSwapResponse:
        given = request.HasField("value") or request.HasField("value_base64")
        data = convert.value(request) if given or not request.delete else b""
        project_id = await self.db.project(request.project_id, core.KV_WRITE)
        namespace = ns(request.namespace)
        result = await self.db.cas(project_id, namespace, convert.key(request.key), data, request.expected_version,
                                   request.delete)
        return convert.cas(namespace, result)


def services(db: core.FlareDBCore) -> list[GrpcService]:
    """FlareDB's gRPC services over db."""
    return grpc_services(pb, pb_grpc, {"Sql": SqlServicer(db), "Kv": KvServicer(db)})
