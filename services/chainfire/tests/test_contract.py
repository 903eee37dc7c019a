"""One table of cases run over REST and over gRPC: the same results and the same error codes."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
import grpc
import pytest

from photoncloud.chainfire.v1 import kv_pb2 as pb
from photoncloud.chainfire.v1 import kv_pb2_grpc as pb_grpc
from photoncloud.common.rpc import error_from_rpc

# A member's id is the first 53 bits of the SHA-256 of its peer address (the default one here).
ALONE = int.from_bytes(hashlib.sha256(b"127.0.0.1:2380").digest()[:8], "big") >> 11
KV_FIELDS = ("key", "value", "create_revision", "mod_revision", "version")


def kv_from_rest(kv: dict) -> dict:
    return {f: kv[f] for f in KV_FIELDS}


def kv_from_pb(kv: pb.KeyValue) -> dict:
    return {"key": kv.key.decode(), "value": kv.value.decode(), "create_revision": kv.create_revision,
            "mod_revision": kv.mod_revision, "version": kv.version}


class Rest:
    """Runs a case's operations over REST; results in one neutral shape, errors as their code name."""

    def __init__(self, session: aiohttp.ClientSession, port: int):
        self.session, self.base = session, f"http://127.0.0.1:{port}/api/v1"

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        async with self.session.request(method, self.base + path, **kw) as response:
            body = await response.json()
        if "error" in body:
            assert response.status >= 400
            return {"error": body["error"]["code"], "message": body["error"]["message"]}
        assert response.status == 200
        return body["data"]

    async def put(self, key, value, prev_kv=False, lease=0):
        data = await self.call("PUT", f"/kv/{key}", json={"value": value, "prev_kv": prev_kv, "lease": lease})
        if "error" in data:
            return data
        return {"revision": data["revision"], "prev_kv": data["prev_kv"] and kv_from_rest(data["prev_kv"])}

    async def get(self, key, revision=0):
        data = await self.call("GET", f"/kv/{key}", params={"revision": revision})
        return data if "error" in data else kv_from_rest(data)

    async def list(self, page_size, prefix=None, key=None, range_end=None, revision=0, page_token="",
                   keys_only=False, count_only=False):
        params = {"page_size": page_size, "revision": revision, "page_token": page_token,
                  "keys_only": str(keys_only).lower(), "count_only": str(count_only).lower()}
        params.update({k: v for k, v in {"prefix": prefix, "key": key, "range_end": range_end}.items()
                       if v is not None})
        data = await self.call("GET", "/kv", params=params)
        if "error" in data:
            return data
        return {"items": [kv_from_rest(kv) for kv in data["items"]], "count": data["count"],
                "next_page_token": data["next_page_token"]}

    async def delete(self, key, prefix=False, range_end=None, prev_kv=False):
        body = {"prefix": prefix, "prev_kv": prev_kv, **({"range_end": range_end} if range_end else {})}
        data = await self.call("POST", f"/kv/{key}/delete", json=body)
        if "error" in data:
            return data
        return {"revision": data["revision"], "deleted": data["deleted"],
                "prev_kvs": [kv_from_rest(kv) for kv in data["prev_kvs"]]}

    async def txn(self, compare, success, failure):
        data = await self.call("POST", "/txn", json={"compare": compare, "success": success, "failure": failure})
        if "error" in data:
            return data
        responses = []
        for r in data["responses"]:
            if r["put"]:
                responses.append({"put": r["put"]["revision"]})
            elif r["delete"]:
                responses.append({"delete": r["delete"]["deleted"]})
            else:
                responses.append({"range": [kv_from_rest(kv) for kv in r["range"]["items"]]})
        return {"revision": data["revision"], "succeeded": data["succeeded"], "responses": responses}

    async def status(self):
        data = await self.call("GET", "/cluster/status")
        return {k: data[k] for k in ("member_id", "leader", "role", "raft_term", "revision")}

    async def compact(self, revision):
        return await self.call("POST", "/compact", json={"revision": revision})

    async def members(self):
        data = await self.call("GET", "/cluster/members")
        return {"members": [[m["id"], m["peer_address"], m["is_leader"]] for m in data["members"]]}

    async def add_member(self, peer_address):
        return await self.call("POST", "/cluster/members", json={"peer_address": peer_address})

    async def remove_member(self, id):
        return await self.call("DELETE", f"/cluster/members/{id}")

    async def grant(self, ttl, id=0):
        return await self.call("POST", "/leases", json={"ttl": ttl, "id": id})

    async def revoke(self, id):
        return await self.call("DELETE", f"/leases/{id}")

    async def keepalive(self, id):
        return await self.call("POST", f"/leases/{id}/keepalive")

    async def time_to_live(self, id, keys=False):
        data = await self.call("GET", f"/leases/{id}", params={"keys": str(keys).lower()})
        return data if "error" in data else {k: data[k] for k in ("id", "granted_ttl", "keys", "revision")}

    async def leases(self):
        data = await self.call("GET", "/leases")
        return data if "error" in data else {"ids": [item["id"] for item in data["items"]]}


class Grpc:
    """Runs a case's operations over gRPC, in the same neutral shape as Rest."""

    def __init__(self, channel: grpc.aio.Channel, metadata):
        self.kv, self.cluster = pb_grpc.KVStub(channel), pb_grpc.ClusterStub(channel)
        self.lease = pb_grpc.LeaseStub(channel)
        self.metadata = metadata

    async def call(self, rpc, request):
        try:
            return await rpc(request, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            error = error_from_rpc(exc)
            return {"error": error.code.name, "message": error.message}

    async def put(self, key, value, prev_kv=False, lease=0):
        r = await self.call(self.kv.Put, pb.PutRequest(key=key.encode(), value=value.encode(), prev_kv=prev_kv,
                                                       lease=lease))
        if isinstance(r, dict):
            return r
        return {"revision": r.header.revision, "prev_kv": kv_from_pb(r.prev_kv) if r.HasField("prev_kv") else None}

    async def get(self, key, revision=0):
        r = await self.call(self.kv.Range, pb.RangeRequest(key=key.encode(), revision=revision))
        if isinstance(r, dict):
            return r
        # A missing key is an empty Range over gRPC and NOT_FOUND on REST's single-key GET.
        return kv_from_pb(r.kvs[0]) if r.kvs else {"error": "NOT_FOUND", "message": None}

    async def list(self, page_size, prefix=None, key=None, range_end=None, revision=0, page_token="",
                   keys_only=False, count_only=False):
        request = pb.RangeRequest(limit=page_size, revision=revision, page_token=page_token,
                                  keys_only=keys_only, count_only=count_only)
        if prefix is not None:
            request.key, request.prefix = prefix.encode(), True
        else:
            request.key, request.range_end = key.encode(), (range_end or "").encode()
        r = await self.call(self.kv.Range, request)
        if isinstance(r, dict):
            return r
        return {"items": [kv_from_pb(kv) for kv in r.kvs], "count": r.count, "next_page_token": r.next_page_token}

    async def delete(self, key, prefix=False, range_end=None, prev_kv=False):
        r = await self.call(self.kv.DeleteRange, pb.DeleteRangeRequest(
            key=key.encode(), prefix=prefix, range_end=(range_end or "").encode(), prev_kv=prev_kv))
        if isinstance(r, dict):
            return r
        return {"revision": r.header.revision, "deleted": r.deleted, "prev_kvs": [kv_from_pb(kv) for kv in r.prev_kvs]}

    async def txn(self, compare, success, failure):
        def op(o):
            (kind, args), = o.items()
            if kind == "put":
                return pb.RequestOp(request_put=pb.PutRequest(key=args["key"].encode(), value=args["value"].encode()))
            if kind == "delete":
                return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(
                    key=args["key"].encode(), prefix=args.get("prefix", False)))
            return pb.RequestOp(request_range=pb.RangeRequest(key=args["key"].encode(),
                                                              prefix=args.get("prefix", False)))

        def cmp(c):
            operands = {f: (c[f].encode() if f == "value" else c[f])
                        for f in ("version", "create_revision", "mod_revision", "value") if f in c}
            return pb.Compare(key=c["key"].encode(), target=pb.Compare.CompareTarget.Value(c["target"]),
                              result=pb.Compare.CompareResult.Value(c["result"]), **operands)

        r = await self.call(self.kv.Txn, pb.TxnRequest(compare=[cmp(c) for c in compare],
                                                        success=[op(o) for o in success],
                                                        failure=[op(o) for o in failure]))
        if isinstance(r, dict):
            return r
        responses = []
        for resp in r.responses:
            kind = resp.WhichOneof("response")
            if kind == "response_put":
                responses.append({"put": resp.response_put.header.revision})
            elif kind == "response_delete_range":
                responses.append({"delete": resp.response_delete_range.deleted})
            else:
                responses.append({"range": [kv_from_pb(kv) for kv in resp.response_range.kvs]})
        return {"revision": r.header.revision, "succeeded": r.succeeded, "responses": responses}

    async def status(self):
        r = await self.call(self.cluster.Status, pb.StatusRequest())
        return {"member_id": r.member_id, "leader": r.leader, "role": r.role, "raft_term": r.raft_term,
                "revision": r.revision}

    async def members(self):
        r = await self.call(self.cluster.MemberList, pb.MemberListRequest())
        return {"members": [[m.id, m.peer_address, m.is_leader] for m in r.members]}

    async def add_member(self, peer_address):
        return await self.call(self.cluster.MemberAdd, pb.MemberAddRequest(peer_address=peer_address))

    async def remove_member(self, id):
        return await self.call(self.cluster.MemberRemove, pb.MemberRemoveRequest(id=id))

    async def compact(self, revision):
        r = await self.call(self.kv.Compact, pb.CompactionRequest(revision=revision))
        return r if isinstance(r, dict) else {"revision": r.header.revision, "compact_revision": r.compact_revision}

    async def grant(self, ttl, id=0):
        r = await self.call(self.lease.Grant, pb.LeaseGrantRequest(ttl=ttl, id=id))
        return r if isinstance(r, dict) else {"id": r.id, "ttl": r.ttl, "revision": r.header.revision}

    async def revoke(self, id):
        r = await self.call(self.lease.Revoke, pb.LeaseRevokeRequest(id=id))
        return r if isinstance(r, dict) else {"id": id, "revision": r.header.revision}

    async def keepalive(self, id):
        r = await self.call(self.lease.KeepAlive, pb.LeaseKeepAliveRequest(id=id))
        return r if isinstance(r, dict) else {"id": r.id, "ttl": r.ttl, "revision": r.header.revision}

    async def time_to_live(self, id, keys=False):
        r = await self.call(self.lease.TimeToLive, pb.LeaseTimeToLiveRequest(id=id, keys=keys))
        return r if isinstance(r, dict) else {"id": r.id, "granted_ttl": r.granted_ttl,
                                              "keys": [k.decode() for k in r.keys], "revision": r.header.revision}

    async def leases(self):
        r = await self.call(self.lease.Leases, pb.LeaseLeasesRequest())
        return r if isinstance(r, dict) else {"ids": [lease.id for lease in r.leases]}


def kv(key, value, create, mod, version):
    return {"key": key, "value": value, "create_revision": create, "mod_revision": mod, "version": version}


# Each case: steps of (operation, arguments, expectation). An expectation is a dict the result must
# contain, or an error code name. The previous step's next_page_token is passed on as "$token".
CASES = {
    "put and get": [
        ("put", {"key": "a", "value": "1"}, {"revision": 1, "prev_kv": None}),
        ("put", {"key": "a", "value": "2", "prev_kv": True}, {"revision": 2, "prev_kv": kv("a", "1", 1, 1, 1)}),
        ("get", {"key": "a"}, kv("a", "2", 1, 2, 2)),
        ("get", {"key": "a", "revision": 1}, kv("a", "1", 1, 1, 1)),
        ("get", {"key": "config/db/host"}, "NOT_FOUND"),
    ],
    "errors": [
        ("put", {"key": "a", "value": "1"}, {"revision": 1}),
        ("get", {"key": "a", "revision": 5}, "OUT_OF_RANGE"),
        ("put", {"key": "big", "value": "x" * (1024 * 1024 + 1)}, "INVALID_ARGUMENT"),
        ("list", {"prefix": "a", "page_size": 1, "page_token": "bogus"}, "INVALID_ARGUMENT"),
        ("list", {"key": "a", "range_end": "b", "page_size": 1, "revision": 9}, "OUT_OF_RANGE"),
    ],
    "ranges and pages": [
        *[("put", {"key": f"app/{c}", "value": c}, {}) for c in "abc"],
        ("put", {"key": "apq", "value": "x"}, {}),
        ("list", {"prefix": "app/", "page_size": 2},
         {"items": [kv("app/a", "a", 1, 1, 1), kv("app/b", "b", 2, 2, 1)], "count": 3}),
        ("list", {"prefix": "app/", "page_size": 2, "page_token": "$token"},
         {"items": [kv("app/c", "c", 3, 3, 1)], "next_page_token": ""}),
        ("list", {"key": "app/b", "range_end": "apq", "page_size": 10}, {"count": 2}),
        ("list", {"prefix": "app/", "page_size": 10, "count_only": True}, {"items": [], "count": 3}),
        ("list", {"prefix": "apq", "page_size": 10, "keys_only": True}, {"items": [kv("apq", "", 4, 4, 1)]}),
    ],
    "delete": [
        *[("put", {"key": f"d/{c}", "value": c}, {}) for c in "ab"],
        ("put", {"key": "e", "value": "e"}, {}),
        ("delete", {"key": "d/", "prefix": True, "prev_kv": True},
         {"revision": 4, "deleted": 2, "prev_kvs": [kv("d/a", "a", 1, 1, 1), kv("d/b", "b", 2, 2, 1)]}),
        ("delete", {"key": "nothing"}, {"revision": 4, "deleted": 0}),
        ("delete", {"key": "a", "range_end": "z"}, {"revision": 5, "deleted": 1}),
        ("get", {"key": "e"}, "NOT_FOUND"),
    ],
    "transactions": [
        ("put", {"key": "lock", "value": "free"}, {}),
        ("txn", {"compare": [{"key": "lock", "target": "VALUE", "result": "EQUAL", "value": "free"}],
                 "success": [{"put": {"key": "lock", "value": "mine"}}],
                 "failure": [{"range": {"key": "lock"}}]},
         {"succeeded": True, "revision": 2, "responses": [{"put": 2}]}),
        ("txn", {"compare": [{"key": "lock", "target": "VALUE", "result": "EQUAL", "value": "free"}],
                 "success": [{"put": {"key": "lock", "value": "mine"}}],
                 "failure": [{"range": {"key": "lock"}}]},
         {"succeeded": False, "revision": 2, "responses": [{"range": [kv("lock", "mine", 1, 2, 2)]}]}),
        ("txn", {"compare": [{"key": "lock", "target": "VERSION", "result": "GREATER", "version": 1},
                             {"key": "lock", "target": "MOD", "result": "EQUAL", "mod_revision": 2}],
                 "success": [{"delete": {"key": "lock"}}], "failure": []},
         {"succeeded": True, "revision": 3, "responses": [{"delete": 1}]}),
        ("txn", {"compare": [], "success": [{"put": {"key": "x", "value": "1"}}, {"put": {"key": "x", "value": "2"}}],
                 "failure": []}, "INVALID_ARGUMENT"),
        # A comparison without the operand its target needs is refused, not compared with zero.
        ("txn", {"compare": [{"key": "x", "target": "VERSION", "result": "EQUAL"}],
                 "success": [{"put": {"key": "x", "value": "1"}}], "failure": []}, "INVALID_ARGUMENT"),
        ("txn", {"compare": [{"key": "x", "target": "VERSION", "result": "EQUAL", "value": "0"}],
                 "success": [{"put": {"key": "x", "value": "1"}}], "failure": []}, "INVALID_ARGUMENT"),
        ("get", {"key": "x"}, "NOT_FOUND"),
    ],
    "compaction": [
        *[("put", {"key": "a", "value": v}, {}) for v in "123"],
        ("compact", {"revision": 2}, {"revision": 3, "compact_revision": 2}),
        ("get", {"key": "a", "revision": 1}, "OUT_OF_RANGE"),
        ("get", {"key": "a", "revision": 2}, kv("a", "2", 1, 2, 2)),
        ("list", {"prefix": "a", "page_size": 10, "revision": 1}, "OUT_OF_RANGE"),
        ("compact", {"revision": 2}, "OUT_OF_RANGE"),
        ("compact", {"revision": 1}, "OUT_OF_RANGE"),
        ("compact", {"revision": 9}, "OUT_OF_RANGE"),
        ("compact", {"revision": 0}, "INVALID_ARGUMENT"),
    ],
    "leases": [
        ("grant", {"ttl": 60, "id": 5}, {"id": 5, "ttl": 60, "revision": 0}),
        ("grant", {"ttl": 60, "id": 5}, "ALREADY_EXISTS"),
        ("grant", {"ttl": 0}, "INVALID_ARGUMENT"),
        ("put", {"key": "svc/a", "value": "1", "lease": 5}, {"revision": 1}),
        ("put", {"key": "svc/b", "value": "2", "lease": 6}, "NOT_FOUND"),
        ("put", {"key": "svc/c", "value": "3"}, {"revision": 2}),
        ("time_to_live", {"id": 5, "keys": True}, {"id": 5, "granted_ttl": 60, "keys": ["svc/a"]}),
        ("keepalive", {"id": 5}, {"id": 5, "ttl": 60}),
        ("keepalive", {"id": 6}, "NOT_FOUND"),
        ("grant", {"ttl": 30}, {"id": 1, "ttl": 30}),
        ("leases", {}, {"ids": [1, 5]}),
        ("revoke", {"id": 5}, {"id": 5, "revision": 3}),
        ("get", {"key": "svc/a"}, "NOT_FOUND"),
        ("get", {"key": "svc/c"}, kv("svc/c", "3", 2, 2, 1)),
        ("revoke", {"id": 5}, "NOT_FOUND"),
        ("time_to_live", {"id": 5}, "NOT_FOUND"),
        ("revoke", {"id": 1}, {"revision": 3}),  # no keys: no new revision
        ("leases", {}, {"ids": []}),
    ],
    "status": [
        ("put", {"key": "a", "value": "1"}, {}),
        ("status", {}, {"member_id": ALONE, "leader": ALONE, "role": "LEADER", "revision": 1}),
        ("members", {}, {"members": [[ALONE, "127.0.0.1:2380", True]]}),
        ("add_member", {"peer_address": "127.0.0.1:2381"}, "FAILED_PRECONDITION"),  # a lone member stays alone
        ("remove_member", {"id": ALONE}, "FAILED_PRECONDITION"),
    ],
}


async def run_case(client, steps) -> list:
    results, token = [], ""
    for op, args, expected in steps:
        args = {k: (token if v == "$token" else v) for k, v in args.items()}
        result = await getattr(client, op)(**args)
        token = result.get("next_page_token", token) if isinstance(result, dict) else token
        if isinstance(expected, str):
            assert result.get("error") == expected, (op, args, result)
        else:
            assert "error" not in result, (op, args, result)
            assert {k: result[k] for k in expected} == expected, (op, args, result)
        results.append(result)
    return results


@pytest.mark.parametrize("name", list(CASES))
async def test_rest_and_grpc_agree(tmp_path, start, auth, name):
    rest_server, grpc_server = await start(tmp_path / "rest"), await start(tmp_path / "grpc")
    try:
        async with aiohttp.ClientSession(headers=auth.headers) as session, \
                grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.grpc_port}") as channel:
            over_rest = await run_case(Rest(session, rest_server.rest_port), CASES[name])
            over_grpc = await run_case(Grpc(channel, auth.metadata), CASES[name])
    finally:
        await rest_server.stop()
        await grpc_server.stop()
    for step, rest_result, grpc_result in zip(CASES[name], over_rest, over_grpc):
        if "error" in rest_result and grpc_result["message"] is not None:
            assert rest_result == grpc_result, step  # the same code and the same message
        else:
            assert {k: v for k, v in rest_result.items() if k not in ("message", "next_page_token")} == \
                   {k: v for k, v in grpc_result.items() if k not in ("message", "next_page_token")}, step
        assert bool(rest_result.get("next_page_token")) == bool(grpc_result.get("next_page_token")), step
