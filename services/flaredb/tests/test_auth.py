"""Who may do what: a viewer reads and cannot write; a project's token sees only its project."""

from __future__ import annotations

import aiohttp
import grpc
import pytest
from photoncloud.common.auth import PROJECT, Scope
from photoncloud.flaredb.v1 import flaredb_pb2 as pb
from photoncloud.flaredb.v1 import flaredb_pb2_grpc as pb_grpc

MEMBER = ("*:*:read", "*:*:write")
VIEWER = ("*:*:read",)


def token(mint, project="proj-a", permissions=MEMBER):
    return mint.token(permissions=permissions, roles=("member",), scope=Scope(PROJECT, "org-1", project))


async def call(server, method, path, bearer, **kw):
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {bearer}"}) as session:
        async with session.request(method, f"http://127.0.0.1:{server.rest_port}/api/v1{path}", **kw) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.read()


async def sql(server, bearer, *statements, **extra):
    return await call(server, "POST", "/sql", bearer,
                      json={"statements": [{"sql": s} for s in statements], **extra})


async def test_a_viewer_reads_but_cannot_write(server, mint):
    member, viewer = token(mint), token(mint, permissions=VIEWER)
    status, _ = await sql(server, member, "CREATE TABLE t (a)", "INSERT INTO t VALUES (1)")
    assert status == 200
    status, body = await sql(server, viewer, "SELECT a FROM t")
    assert (status, body["data"]["results"][0]["rows"]) == (200, [[1]])
    status, body = await sql(server, viewer, "INSERT INTO t VALUES (2)")
    assert (status, body["error"]["code"], body["error"]["details"]["action"]) == \
        (403, "PERMISSION_DENIED", "flaredb:sql:write")
    status, body = await call(server, "POST", "/namespaces", viewer, json={"name": "n", "mode": "eventual"})
    assert (status, body["error"]["details"]["action"]) == (403, "flaredb:kv:write")
    status, body = await call(server, "GET", "/tables", viewer)
    assert [t["name"] for t in body["data"]["items"]] == ["t"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.SqlStub(channel).Execute(
                pb.ExecuteRequest(statements=[pb.Statement(sql="DELETE FROM t")]),
                metadata=(("authorization", f"Bearer {viewer}"),))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    status, body = await sql(server, viewer, "SELECT count(*) FROM t")
    assert body["data"]["results"][0]["rows"] == [[1]]


async def test_a_project_sees_only_its_own_database(server, mint):
    a, b = token(mint, "proj-a"), token(mint, "proj-b")
    await sql(server, a, "CREATE TABLE secrets (s)", "INSERT INTO secrets VALUES ('a only')")
    await call(server, "POST", "/namespaces", a, json={"name": "n", "mode": "eventual"})
    await call(server, "PUT", "/kv/k", a, params={"namespace": "n"}, json={"value": "a only"})
    status, body = await sql(server, b, "SELECT * FROM secrets")
    assert (status, body["error"]["message"]) == (400, "statement 0: no such table: secrets")
    status, body = await call(server, "GET", "/tables", b)
    assert body["data"]["items"] == []
    status, body = await call(server, "GET", "/kv/k", b, params={"namespace": "n"})
    assert status == 404
    status, body = await call(server, "GET", "/namespaces", b)
    assert body["data"]["items"] == []
    # Naming the other project is refused, not silently redirected.
    status, body = await sql(server, b, "SELECT * FROM secrets", project_id="proj-a")
    assert (status, body["error"]["details"]["reason"]) == (403, "OUT_OF_SCOPE")
    status, body = await call(server, "GET", "/backup", b, params={"project_id": "proj-a"})
    assert status == 403


async def test_a_system_token_names_the_project(server, mint):
    admin = mint.token()
    status, body = await sql(server, admin, "SELECT 1")
    assert (status, body["error"]["code"], body["error"]["details"]["field"]) == (400, "INVALID_ARGUMENT", "project_id")
    status, body = await sql(server, admin, "CREATE TABLE t (a)", project_id="proj-c")
    assert status == 200
    status, body = await sql(server, token(mint, "proj-c"), "SELECT count(*) FROM t")
    assert body["data"]["results"][0]["rows"] == [[0]]
    status, body = await sql(server, admin, "SELECT 1", project_id="../etc")
    assert status == 400


async def test_backup_and_restore_over_rest(server, mint):
    member = token(mint)
    admin_of_project = mint.token(permissions=("*",), roles=("admin",), scope=Scope(PROJECT, "org-1", "proj-a"))
    await sql(server, member, "CREATE TABLE t (a)", "INSERT INTO t VALUES ('kept')")
    status, data = await call(server, "GET", "/backup", member)
    assert status == 200 and data.startswith(b"SQLite format 3\x00")
    await sql(server, member, "DELETE FROM t")
    status, body = await call(server, "POST", "/restore", member, data=data)
    assert (status, body["error"]["details"]["action"]) == (403, "flaredb:sql:manage")
    status, body = await call(server, "POST", "/restore", admin_of_project, data=data)
    assert (status, body["data"]["tables"]) == (200, 1)
    status, body = await sql(server, member, "SELECT a FROM t")
    assert body["data"]["results"][0]["rows"] == [["kept"]]
    status, body = await call(server, "POST", "/restore", admin_of_project, data=b"{}")
    assert (status, body["error"]["code"]) == (400, "INVALID_ARGUMENT")


async def test_no_token_is_unauthenticated(server):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{server.rest_port}/api/v1/sql", json={"sql": "SELECT 1"}) as r:
            assert r.status == 401
