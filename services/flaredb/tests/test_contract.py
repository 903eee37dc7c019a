"""One table of cases run over REST and over gRPC: the same results and the same error codes."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import grpc
import pytest
from photoncloud.common.rpc import error_from_rpc
from photoncloud.flaredb.v1 import flaredb_pb2 as pb
from photoncloud.flaredb.v1 import flaredb_pb2_grpc as pb_grpc

PROJECT = "proj-contract"


def from_json(value: Any) -> Any:
    return base64.b64decode(value["base64"]) if isinstance(value, dict) else value


class Rest:
    """A case's operations over REST, results in one neutral shape, errors as their code name."""

    def __init__(self, session: aiohttp.ClientSession, port: int):
        self.session, self.base = session, f"http://127.0.0.1:{port}/api/v1"

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        async with self.session.request(method, self.base + path, **kw) as response:
            body = await response.json()
        if "error" in body:
            assert response.status >= 400
            return {"error": body["error"]["code"]}
        assert response.status in (200, 201)
        return body["data"]

    async def sql(self, statements, consistency="weak"):
        body = {"statements": [{"sql": s, "params": [{"base64": base64.b64encode(p).decode()}
                                                     if isinstance(p, bytes) else p for p in params]}
                               for s, params in statements], "consistency": consistency, "project_id": PROJECT}
        data = await self.call("POST", "/sql", json=body)
        if "error" in data:
            return data
        return [{"columns": r["columns"], "types": r["types"],
                 "rows": [[from_json(v) for v in row] for row in r["rows"]]}
                if "columns" in r else {"rows_affected": r["rows_affected"], "last_insert_id": r["last_insert_id"]}
                for r in data["results"]]

    async def table(self, name):
        data = await self.call("GET", f"/tables/{name}", params={"project_id": PROJECT})
        if "error" in data:
            return data
        return {"name": data["name"], "columns": [(c["name"], c["type"]) for c in data["columns"]],
                "indexes": [i["name"] for i in data["indexes"]], "row_count": data["row_count"]}

    async def tables(self):
        data = await self.call("GET", "/tables", params={"project_id": PROJECT})
        return [t["name"] for t in data["items"]]

    async def namespace(self, name, mode):
        data = await self.call("POST", "/namespaces", json={"name": name, "mode": mode, "project_id": PROJECT})
        return data if "error" in data else (data["name"], data["mode"], data["keys"])

    async def namespaces(self):
        data = await self.call("GET", "/namespaces", params={"project_id": PROJECT})
        return [(n["name"], n["mode"], n["keys"]) for n in data["items"]]

    async def put(self, ns, key, value):
        data = await self.call("PUT", f"/kv/{key}", params={"namespace": ns, "project_id": PROJECT},
                               json={"value": value})
        return data if "error" in data else data["version"]

    async def get(self, ns, key):
        data = await self.call("GET", f"/kv/{key}", params={"namespace": ns, "project_id": PROJECT})
        return data if "error" in data else (data["value"], data["version"])

    async def delete(self, ns, key):
        data = await self.call("DELETE", f"/kv/{key}", params={"namespace": ns, "project_id": PROJECT})
        return data if "error" in data else data["deleted"]

    async def scan(self, ns, start, end, limit):
        data = await self.call("GET", "/scan", params={"namespace": ns, "start": start, "end": end, "limit": limit,
                                                       "project_id": PROJECT})
        if "error" in data:
            return data
        return [(i["key"], i["value"], i["version"]) for i in data["items"]], data["has_more"], data["next_key"]

    async def cas(self, ns, key, value, expected, delete=False):
        data = await self.call("POST", "/cas", json={"namespace": ns, "key": key, "value": value,
                                                     "expected_version": expected, "delete": delete,
                                                     "project_id": PROJECT})
        return data if "error" in data else (data["succeeded"], data["version"], data["value"])


def value_pb(v):
    if v is None:
        return pb.SqlValue(null=True)
    if isinstance(v, bytes):
        return pb.SqlValue(blob=v)
    if isinstance(v, int):
        return pb.SqlValue(integer=v)
    if isinstance(v, float):
        return pb.SqlValue(real=v)
    return pb.SqlValue(text=v)


def from_pb(v):
    kind = v.WhichOneof("kind")
    return None if kind in (None, "null") else getattr(v, kind)


class Grpc:
    """The same operations over gRPC."""

    def __init__(self, channel, metadata):
        self.sql_stub, self.kv = pb_grpc.SqlStub(channel), pb_grpc.KvStub(channel)
        self.metadata = metadata

    async def call(self, rpc, request):
        try:
            return await rpc(request, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            return {"error": error_from_rpc(exc).code.name}

    async def sql(self, statements, consistency="weak"):
        r = await self.call(self.sql_stub.Execute, pb.ExecuteRequest(
            project_id=PROJECT, consistency=pb.Consistency.Value(consistency),
            statements=[pb.Statement(sql=s, params=[value_pb(p) for p in params]) for s, params in statements]))
        if isinstance(r, dict):
            return r
        return [{"columns": list(x.columns), "types": list(x.types),
                 "rows": [[from_pb(v) for v in row.values] for row in x.rows]} if x.is_query
                else {"rows_affected": x.rows_affected, "last_insert_id": x.last_insert_id} for x in r.results]

    async def table(self, name):
        r = await self.call(self.sql_stub.GetTable, pb.GetTableRequest(project_id=PROJECT, name=name))
        if isinstance(r, dict):
            return r
        return {"name": r.name, "columns": [(c.name, c.type) for c in r.columns],
                "indexes": [i.name for i in r.indexes], "row_count": r.row_count}

    async def tables(self):
        r = await self.call(self.sql_stub.ListTables, pb.ListTablesRequest(project_id=PROJECT))
        return [t.name for t in r.items]

    async def namespace(self, name, mode):
        r = await self.call(self.kv.CreateNamespace, pb.CreateNamespaceRequest(
            project_id=PROJECT, name=name, mode=pb.Namespace.Mode.Value(mode)))
        return r if isinstance(r, dict) else (r.name, pb.Namespace.Mode.Name(r.mode), r.keys)

    async def namespaces(self):
        r = await self.call(self.kv.ListNamespaces, pb.ListNamespacesRequest(project_id=PROJECT))
        return [(n.name, pb.Namespace.Mode.Name(n.mode), n.keys) for n in r.items]

    async def put(self, ns, key, value):
        r = await self.call(self.kv.Put, pb.PutRequest(project_id=PROJECT, namespace=ns, key=key,
                                                       body=pb.PutBody(value=value)))
        return r if isinstance(r, dict) else r.version

    async def get(self, ns, key):
        r = await self.call(self.kv.Get, pb.GetRequest(project_id=PROJECT, namespace=ns, key=key))
        return r if isinstance(r, dict) else (r.value, r.version)

    async def delete(self, ns, key):
        r = await self.call(self.kv.Delete, pb.DeleteRequest(project_id=PROJECT, namespace=ns, key=key))
        return r if isinstance(r, dict) else r.deleted

    async def scan(self, ns, start, end, limit):
        r = await self.call(self.kv.Scan, pb.ScanRequest(project_id=PROJECT, namespace=ns, start=start,
                                                         end=end, limit=limit))
        if isinstance(r, dict):
            return r
        return ([(i.key, i.value, i.version) for i in r.items], r.has_more,
                r.next_key if r.HasField("next_key") else None)

    async def cas(self, ns, key, value, expected, delete=False):
        r = await self.call(self.kv.CompareAndSwap, pb.CompareAndSwapRequest(
            project_id=PROJECT, namespace=ns, key=key, value=value, expected_version=expected,
            delete=delete))
        if isinstance(r, dict):
            return r
        return r.succeeded, r.version, r.value if r.HasField("value") else None


async def case_sql(api):
    assert await api.sql([("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, b BLOB)", []),
                          ("INSERT INTO t (name, b) VALUES (?, ?)", ["ann", b"\x00\x01"]),
                          ("INSERT INTO t (name) VALUES (?)", [None])]) == [
        {"rows_affected": 0, "last_insert_id": 0}, {"rows_affected": 1, "last_insert_id": 1},
        {"rows_affected": 1, "last_insert_id": 2}]
    assert await api.sql([("SELECT id, name, b, 1.5 FROM t ORDER BY id", [])], "strong") == [
        {"columns": ["id", "name", "b", "1.5"], "types": ["integer", "text", "blob", "real"],
         "rows": [[1, "ann", b"\x00\x01", 1.5], [2, None, None, 1.5]]}]
    assert await api.sql([("INSERT INTO t (id) VALUES (3)", []), ("INSERT INTO t (id) VALUES (1)", [])]) == \
        {"error": "INVALID_ARGUMENT"}
    assert (await api.sql([("SELECT count(*) FROM t", [])], "none"))[0]["rows"] == [[2]]
    assert await api.sql([("SELECT * FROM _flaredb_kv", [])]) == {"error": "PERMISSION_DENIED"}
    assert await api.sql([("INSERT INTO t (name) VALUES (datetime('now'))", [])]) == {"error": "INVALID_ARGUMENT"}
    assert await api.table("t") == {"name": "t", "columns": [("id", "INTEGER"), ("name", "TEXT"), ("b", "BLOB")],
                                    "indexes": [], "row_count": 2}
    assert await api.table("nowhere") == {"error": "NOT_FOUND"}
    assert await api.tables() == ["t"]


async def case_kv(api):
    assert await api.namespace("cache", "eventual") == ("cache", "eventual", 0)
    assert await api.namespace("cfg", "strong") == ("cfg", "strong", 0)
    assert await api.namespace("cfg", "strong") == {"error": "ALREADY_EXISTS"}
    assert await api.put("cache", "a", "1") == 1
    assert await api.put("cache", "a", "2") == 2
    assert await api.put("cache", "b", "3") == 1
    assert await api.get("cache", "a") == ("2", 2)
    assert await api.get("cache", "zz") == {"error": "NOT_FOUND"}
    assert await api.get("nowhere", "a") == {"error": "NOT_FOUND"}
    assert await api.scan("cache", "a", "", 1) == ([("a", "2", 2)], True, "b")
    assert await api.scan("cache", "b", "", 1) == ([("b", "3", 1)], False, None)
    assert await api.delete("cache", "b") == 1
    assert await api.delete("cache", "b") == 0
    assert await api.put("cfg", "k", "v") == {"error": "FAILED_PRECONDITION"}
    assert await api.cas("cache", "k", "v", 0) == {"error": "FAILED_PRECONDITION"}
    assert await api.cas("cfg", "k", "v1", 0) == (True, 1, "v1")
    assert await api.cas("cfg", "k", "v2", 0) == (False, 1, "v1")
    assert await api.cas("cfg", "k", "v2", 1) == (True, 2, "v2")
    assert await api.cas("cfg", "k", "", 2, delete=True) == (True, 0, None)
    assert await api.namespaces() == [("cache", "eventual", 1), ("cfg", "strong", 0)]


@pytest.fixture
async def apis(server, mint):
    token = mint.token()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            yield {"rest": Rest(session, server.rest_port),
                   "grpc": Grpc(channel, (("authorization", f"Bearer {token}"),))}


@pytest.mark.parametrize("transport", ["rest", "grpc"])
@pytest.mark.parametrize("case", [case_sql, case_kv])
async def test_case(apis, transport, case):
    await case(apis[transport])
