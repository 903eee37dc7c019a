"""etcd's v3 API on ChainFire's gRPC port, driven by Debian's etcdctl (a client nobody here wrote)
and by the generated etcdserverpb stubs; with authentication off for etcdctl (the token gate with
IAM is in the root tests), and on, with test tokens, for the stubs."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import grpc
import pytest

from photoncloud.chainfire import etcd_api
from photoncloud.chainfire.app import build
from photoncloud.chainfire.v1 import kv_pb2
from photoncloud.common import gateway, needs
from photoncloud.common.auth import OPERATOR, PUBLIC, TENANT
from photoncloud.common.config import ServerConfig
from photoncloud.common.server import Server
from photoncloud.common.testing import free_ports
from photoncloud.etcd.v3 import kv_pb2 as mvccpb
from photoncloud.etcd.v3 import rpc_pb2 as pb
from photoncloud.etcd.v3 import rpc_pb2_grpc as pb_grpc


async def start(data_dir, verifier) -> Server:
    """ChainFire on free ports; IAM's URL points at a closed port (Authenticate finds nobody)."""
    # Real ports, not 0: the member list advertises the configured gRPC address.
    rest_port, grpc_port, closed_port = free_ports(3)
    config = ServerConfig(service="chainfire", bind="127.0.0.1", rest_port=rest_port, grpc_port=grpc_port,
                          data_dir=data_dir,
                          shutdown_grace=2, iam_url=f"http://127.0.0.1:{closed_port}")
    service = await build(config)
    service.verifier = verifier
    running = Server(service, config)
    await running.start()
    return running


@pytest.fixture
async def open_server(tmp_path):
    """A ChainFire with authentication off, as etcd runs by default."""
    running = await start(tmp_path, None)
    yield running
    await running.stop()


@pytest.fixture
async def gated_server(tmp_path, mint):
    """A ChainFire that admits the test mint's tokens."""
    running = await start(tmp_path, mint.verifier())
    yield running
    await running.stop()


class Etcdctl:
    """etcdctl (API v3) against one endpoint, run without blocking the loop serving it."""

    def __init__(self, port: int):
        self.binary = needs.tool("etcdctl", "etcd-client")  # skipped without it (failed in CI)
        self.endpoint = f"127.0.0.1:{port}"
        self.env = {**os.environ, "ETCDCTL_API": "3"}

    def args(self, *args: str) -> list[str]:
        """The command line of one etcdctl call."""
        return [self.binary, f"--endpoints={self.endpoint}", "--dial-timeout=5s", "--command-timeout=10s", *args]

    async def run(self, *args: str, stdin: str | None = None, check: bool = True) -> tuple[int, str, str]:
        """(exit code, stdout, stderr)."""
        process = await asyncio.create_subprocess_exec(
            *self.args(*args), env=self.env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), 30)
        result = process.returncode, out.decode(), err.decode()
        if check:
            assert result[0] == 0, result
        return result

    async def json(self, *args: str) -> dict:
        """etcdctl's -w json output, parsed."""
        return json.loads((await self.run(*args, "-w", "json"))[1])


def b64(text: str) -> str:
    """text as etcdctl's JSON output carries keys and values."""
    return base64.b64encode(text.encode()).decode()


async def test_put_get_prefix_and_delete(open_server):
    ctl = Etcdctl(open_server.grpc_port)
    assert (await ctl.run("put", "app/a", "1"))[1] == "OK\n"
    assert (await ctl.run("put", "app/b", "2"))[1] == "OK\n"
    await ctl.run("put", "other", "3")
    assert (await ctl.run("get", "app/", "--prefix"))[1] == "app/a\n1\napp/b\n2\n"
    reply = await ctl.json("get", "app/", "--prefix")
    assert reply["header"]["revision"] == 3
    assert [(kv["key"], kv["value"], kv["create_revision"], kv["version"]) for kv in reply["kvs"]] == [
        (b64("app/a"), b64("1"), 1, 1), (b64("app/b"), b64("2"), 2, 1)]
    assert reply["count"] == 2
    await ctl.run("put", "app/a", "1b")
    reply = await ctl.json("get", "app/a")
    assert (reply["kvs"][0]["mod_revision"], reply["kvs"][0]["version"]) == (4, 2)
    # Reading the past, sorting, limiting, counting.
    assert (await ctl.run("get", "app/a", "--rev=1"))[1] == "app/a\n1\n"
    assert (await ctl.run("get", "", "--prefix", "--keys-only", "--order=DESCEND", "--sort-by=KEY",
                          "--limit=2"))[1] == "other\n\napp/b\n\n"
    reply = await ctl.json("get", "", "--prefix", "--limit=1")
    assert (reply["count"], reply["more"], len(reply["kvs"])) == (3, True, 1)
    assert (await ctl.run("del", "app/", "--prefix"))[1] == "2\n"
    assert (await ctl.run("get", "app/", "--prefix"))[1] == ""
    assert (await ctl.run("del", "missing"))[1] == "0\n"


async def test_interactive_txn_runs_the_branch_its_comparison_picks(open_server):
    ctl = Etcdctl(open_server.grpc_port)
    await ctl.run("put", "flag", "on")
    script = 'value("flag") = "on"\n\nput result yes\nget flag\n\nput result no\n\n'
    code, out, _ = await ctl.run("txn", "-i", stdin=script)
    # etcdctl prints the branch taken, then each response: the put's OK, the get's pair.
    assert out.splitlines()[-6:] == ["SUCCESS", "", "OK", "", "flag", "on"], out
    assert (await ctl.run("get", "result", "--print-value-only"))[1] == "yes\n"
    script = 'mod("flag") > "100"\n\nput result yes\n\nput result no\n\n'
    code, out, _ = await ctl.run("txn", "-i", stdin=script)
    assert "FAILURE" in out
    assert (await ctl.run("get", "result", "--print-value-only"))[1] == "no\n"
    # etcd's own error for writing one key twice in a transaction.
    code, out, err = await ctl.run("txn", "-i", stdin="\n\nput k 1\nput k 2\n\n\n", check=False)
    assert code != 0 and "etcdserver: duplicate key given in txn request" in err


async def test_watch_streams_puts_and_deletes(open_server):
    ctl = Etcdctl(open_server.grpc_port)
    await ctl.run("put", "jobs/0", "queued")
    # From the next revision on: every event below arrives, however long the watch takes to start.
    start = (await ctl.json("get", "jobs/0"))["header"]["revision"] + 1
    watcher = await asyncio.create_subprocess_exec(
        *ctl.args("watch", "jobs/", "--prefix", "--prev-kv", f"--rev={start}"), env=ctl.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await asyncio.sleep(0.5)  # most likely watching live by now
        await ctl.run("put", "jobs/1", "build")
        await ctl.run("put", "elsewhere", "ignored")
        await ctl.run("put", "jobs/0", "running")
        await ctl.run("del", "jobs/1")
        # --prev-kv prints the previous pair (when there is one) before the new one; a delete's new
        # pair has no value.
        expected = ["PUT", "jobs/1", "build",
                    "PUT", "jobs/0", "queued", "jobs/0", "running",
                    "DELETE", "jobs/1", "build", "jobs/1", ""]
        got = [(await asyncio.wait_for(watcher.stdout.readline(), 10)).decode().rstrip("\n") for _ in expected]
        assert got == expected
    finally:
        watcher.terminate()
        await watcher.wait()


async def test_watch_from_a_compacted_revision_is_canceled_with_etcds_error(open_server):
    ctl = Etcdctl(open_server.grpc_port)
    for value in "abc":
        await ctl.run("put", "k", value)
    assert (await ctl.run("compact", "3"))[1] == "compacted revision 3\n"
    code, out, err = await ctl.run("watch", "k", "--rev=1", check=False)
    assert "watch was canceled (etcdserver: mvcc: required revision has been compacted)" in out + err
    code, out, err = await ctl.run("get", "k", "--rev=1", check=False)
    assert code != 0 and "Error: etcdserver: mvcc: required revision has been compacted" in err
    code, out, err = await ctl.run("get", "k", "--rev=99", check=False)
    assert code != 0 and "etcdserver: mvcc: required revision is a future revision" in err
    # A history from the compact revision on is still there.
    watcher = await asyncio.create_subprocess_exec(*ctl.args("watch", "k", "--rev=3"), env=ctl.env,
                                                   stdout=asyncio.subprocess.PIPE)
    try:
        got = [(await asyncio.wait_for(watcher.stdout.readline(), 5)).decode().rstrip("\n") for _ in range(3)]
        assert got == ["PUT", "k", "c"]
    finally:
        watcher.terminate()
        await watcher.wait()


async def test_lease_grant_keep_alive_revoke(open_server):
    ctl = Etcdctl(open_server.grpc_port)
    out = (await ctl.run("lease", "grant", "60"))[1]
    assert out.startswith("lease ") and out.endswith(" granted with TTL(60s)\n"), out
    lease = out.split()[1]
    await ctl.run("put", "--lease", lease, "session", "alive")
    assert (await ctl.run("lease", "keep-alive", "--once", lease))[1] == f"lease {lease} keepalived with TTL(60)\n"
    out = (await ctl.run("lease", "timetolive", "--keys", lease))[1]
    assert out.startswith(f"lease {lease} granted with TTL(60s), remaining(") and "attached keys([session])" in out
    assert lease in (await ctl.run("lease", "list"))[1]
    reply = await ctl.json("get", "session")
    assert reply["kvs"][0]["lease"] == int(lease, 16)
    assert (await ctl.run("lease", "revoke", lease))[1] == f"lease {lease} revoked\n"
    assert (await ctl.run("get", "session"))[1] == ""
    assert (await ctl.run("lease", "timetolive", lease))[1] == f"lease {lease} already expired\n"
    code, out, err = await ctl.run("lease", "revoke", lease, check=False)
    assert code != 0 and "etcdserver: requested lease not found" in err
    code, out, err = await ctl.run("lease", "keep-alive", "--once", lease, check=False)
    assert code != 0 and "etcdserver: requested lease not found" in err  # the client's reading of TTL 0
    code, out, err = await ctl.run("put", "--lease", lease, "x", "y", check=False)
    assert code != 0 and "etcdserver: requested lease not found" in err


async def test_member_list_and_endpoint_status(open_server):
    ctl = Etcdctl(open_server.grpc_port)
    await ctl.run("put", "a", "1")
    members = await ctl.json("member", "list")
    assert len(members["members"]) == 1
    member = members["members"][0]
    assert member["ID"] == members["header"]["member_id"]
    assert member["clientURLs"] == [f"http://127.0.0.1:{open_server.grpc_port}"]
    out = (await ctl.run("member", "list"))[1]
    assert out.startswith(f"{member['ID']:x}, started, ") and f"http://127.0.0.1:{open_server.grpc_port}" in out
    [status] = await ctl.json("endpoint", "status")
    assert status["Endpoint"] == ctl.endpoint
    s = status["Status"]
    assert s["header"]["member_id"] == s["leader"] == member["ID"]
    assert s["header"]["revision"] == 1 and s["raftTerm"] >= 1 and s["dbSize"] > 0 and s["version"] == "3.4.0"
    out = (await ctl.run("endpoint", "status"))[1]
    assert out.startswith(f"{ctl.endpoint}, {member['ID']:x}, 3.4.0, ") and ", true, false, " in out
    # One member started alone has no peers to add (a cluster is started with --initial-cluster).
    code, out, err = await ctl.run("member", "add", "x", "--peer-urls=http://127.0.0.1:1", check=False)
    assert code != 0 and "FailedPrecondition" in err


async def channel_stubs(server):
    """A channel to server, and KV and Watch stubs on it."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return channel, pb_grpc.KVStub(channel), pb_grpc.WatchStub(channel)


async def test_one_watch_stream_carries_many_watches(open_server):
    channel, kv, watch = await channel_stubs(open_server)
    async with channel:
        requests: asyncio.Queue = asyncio.Queue()

        async def feed():
            while (request := await requests.get()) is not None:
                yield request

        stream = watch.Watch(feed())
        await requests.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"a", range_end=b"b")))
        first = await stream.read()
        assert (first.watch_id, first.created) == (0, True)
        await requests.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(
            key=b"a1", filters=[pb.WatchCreateRequest.NODELETE], prev_kv=True)))
        second = await stream.read()
        assert (second.watch_id, second.created) == (1, True)

        await kv.Put(pb.PutRequest(key=b"a1", value=b"x"))
        await kv.Put(pb.PutRequest(key=b"a1", value=b"y"))
        await kv.DeleteRange(pb.DeleteRangeRequest(key=b"a1"))
        got: dict[int, list] = {0: [], 1: []}
        while len(got[0]) < 3 or len(got[1]) < 2:
            response = await asyncio.wait_for(stream.read(), 5)
            got[response.watch_id] += [(e.type, e.kv.value, e.kv.mod_revision, e.prev_kv.value)
                                       for e in response.events]
        PUT, DELETE = mvccpb.Event.PUT, mvccpb.Event.DELETE
        assert got[0] == [(PUT, b"x", 1, b""), (PUT, b"y", 2, b""), (DELETE, b"", 3, b"")]
        assert got[1] == [(PUT, b"x", 1, b""), (PUT, b"y", 2, b"x")]  # NODELETE; prev_kv asked for

        await requests.put(pb.WatchRequest(cancel_request=pb.WatchCancelRequest(watch_id=0)))
        canceled = await asyncio.wait_for(stream.read(), 5)
        assert (canceled.watch_id, canceled.canceled) == (0, True)
        await requests.put(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))
        progress = await asyncio.wait_for(stream.read(), 5)
        assert (progress.watch_id, progress.header.revision) == (-1, 3)
        # A watch from history replays it; a compacted start is acknowledged, then canceled.
        await requests.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"a1", start_revision=2,
                                                                                 watch_id=7)))
        created, history = await stream.read(), await stream.read()
        assert (created.watch_id, created.created, history.watch_id) == (7, True, 7)
        assert [(e.type, e.kv.mod_revision) for e in history.events] == [(PUT, 2), (DELETE, 3)]
        await kv.Compact(pb.CompactionRequest(revision=3))
        await requests.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"a1", start_revision=1)))
        created, canceled = await stream.read(), await stream.read()
        assert created.created and canceled.canceled and canceled.compact_revision == 3
        assert canceled.cancel_reason == "etcdserver: mvcc: required revision has been compacted"
        await requests.put(None)  # the client closes its side: the stream ends, as etcd's does
        assert await asyncio.wait_for(stream.read(), 5) is grpc.aio.EOF


async def test_range_sorts_filters_and_limits_like_etcd(open_server):
    channel, kv, _ = await channel_stubs(open_server)
    async with channel:
        for key, value in [(b"k1", b"c"), (b"k2", b"a"), (b"k3", b"b")]:
            await kv.Put(pb.PutRequest(key=key, value=value))
        reply = await kv.Range(pb.RangeRequest(key=b"k", range_end=b"l", sort_target=pb.RangeRequest.VALUE,
                                               sort_order=pb.RangeRequest.DESCEND, limit=2))
        assert [kv.key for kv in reply.kvs] == [b"k1", b"k3"] and reply.more and reply.count == 3
        reply = await kv.Range(pb.RangeRequest(key=b"k", range_end=b"l", limit=1))
        assert [kv.key for kv in reply.kvs] == [b"k1"] and reply.more and reply.count == 3
        reply = await kv.Range(pb.RangeRequest(key=b"k", range_end=b"l", min_create_revision=2))
        assert [kv.key for kv in reply.kvs] == [b"k2", b"k3"] and reply.count == 2 and not reply.more
        txn = await kv.Txn(pb.TxnRequest(
            compare=[pb.Compare(key=b"k1", target=pb.Compare.VALUE, result=pb.Compare.EQUAL, value=b"c")],
            success=[pb.RequestOp(request_put=pb.PutRequest(key=b"k4", value=b"d", prev_kv=True)),
                     pb.RequestOp(request_range=pb.RangeRequest(key=b"k", range_end=b"l",
                                                                sort_order=pb.RangeRequest.DESCEND))]))
        assert txn.succeeded and txn.header.revision == 4
        assert [kv.key for kv in txn.responses[1].response_range.kvs] == [b"k4", b"k3", b"k2", b"k1"]
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await kv.Range(pb.RangeRequest(key=b""))
        assert (error.value.code(), error.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                              "etcdserver: key is not provided")


async def test_the_gate_takes_etcds_token_metadata_and_chainfires_permissions(gated_server, mint):
    viewer = mint.token(permissions=("*:*:read",), roles=("viewer",))
    admin = mint.token()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gated_server.grpc_port}") as channel:
        kv, auth, cluster = pb_grpc.KVStub(channel), pb_grpc.AuthStub(channel), pb_grpc.ClusterStub(channel)

        async def code(call, *args, **kwargs) -> grpc.StatusCode:
            try:
                await call(*args, **kwargs)
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        put = pb.PutRequest(key=b"k", value=b"v")
        assert await code(kv.Put, put) == grpc.StatusCode.UNAUTHENTICATED
        assert await code(kv.Put, put, metadata=(("token", "not-a-jwt"),)) == grpc.StatusCode.UNAUTHENTICATED
        expired = mint.token(ttl=-60)
        with pytest.raises(grpc.aio.AioRpcError) as refused:  # etcd's wording: its clients sign in again on it
            await kv.Put(put, metadata=(("token", expired),))
        assert refused.value.details() == "etcdserver: invalid auth token"
        assert await code(kv.Put, put, metadata=(("token", admin),)) == grpc.StatusCode.OK  # etcd's key
        assert await code(kv.Put, put, metadata=(("authorization", f"Bearer {admin}"),)) == grpc.StatusCode.OK
        assert await code(kv.Put, put, metadata=(("token", viewer),)) == grpc.StatusCode.PERMISSION_DENIED
        assert await code(kv.Range, pb.RangeRequest(key=b"k"), metadata=(("token", viewer),)) == grpc.StatusCode.OK
        assert await code(cluster.MemberList, pb.MemberListRequest(),
                          metadata=(("token", viewer),)) == grpc.StatusCode.OK
        add = pb.MemberAddRequest(peerURLs=["http://127.0.0.1:1"])
        assert await code(cluster.MemberAdd, add, metadata=(("token", viewer),)) == grpc.StatusCode.PERMISSION_DENIED
        assert await code(cluster.MemberAdd, add, metadata=(("token", admin),)) == grpc.StatusCode.FAILED_PRECONDITION
        # Authenticate is public: it reaches IAM (here nobody listens at IAM's URL).
        assert await code(auth.Authenticate, pb.AuthenticateRequest(name="a", password="b")) == \
            grpc.StatusCode.UNAVAILABLE
        assert await code(auth.Authenticate, pb.AuthenticateRequest(name="a", password="")) == \
            grpc.StatusCode.INVALID_ARGUMENT
        status = await auth.AuthStatus(pb.AuthStatusRequest())
        assert status.enabled


def test_every_etcd_method_is_gated_like_its_chainfire_counterpart(kv):
    methods = {f"/{service.full_name}/{method.name}" for service in pb.DESCRIPTOR.services_by_name.values()
               for method in service.methods}
    gates = etcd_api.access()
    assert set(gates) == methods  # none is left to "any valid token"
    assert gates["/etcdserverpb.KV/Range"].permission == "chainfire:kv:read"
    assert gates["/etcdserverpb.KV/Txn"].permission == "chainfire:kv:write"
    assert gates["/etcdserverpb.Watch/Watch"].permission == "chainfire:kv:read"
    assert gates["/etcdserverpb.Lease/LeaseKeepAlive"].permission == "chainfire:leases:write"
    assert gates["/etcdserverpb.Lease/LeaseLeases"].permission == "chainfire:leases:read"
    assert gates["/etcdserverpb.Maintenance/Status"].permission == "chainfire:cluster:read"
    assert gates["/etcdserverpb.Cluster/MemberAdd"].permission == "chainfire:cluster:manage"
    assert gates["/etcdserverpb.Auth/Authenticate"].who == PUBLIC
    # a tenant's token works on its keys, never on the cluster's upkeep
    assert {gates[f"/etcdserverpb.{m}"].who for m in ("KV/Range", "KV/Txn", "Watch/Watch", "Lease/LeaseGrant")} \
        == {TENANT}
    assert {gates[f"/etcdserverpb.{m}"].who for m in ("KV/Compact", "Maintenance/Status", "Cluster/MemberList",
                                                     "Cluster/MemberAdd", "Cluster/MemberRemove")} == {OPERATOR}
    assert {gate.unauthenticated_message for gate in gates.values()} == {etcd_api.INVALID_TOKEN}


# Each etcd method and the ChainFire RPC doing the same: rpc.proto must declare the same gate.
COUNTERPARTS = {
    "KV/Range": "KV/Range", "KV/Put": "KV/Put", "KV/DeleteRange": "KV/DeleteRange", "KV/Txn": "KV/Txn",
    "KV/Compact": "KV/Compact", "Watch/Watch": "Watch/Watch", "Lease/LeaseGrant": "Lease/Grant",
    "Lease/LeaseRevoke": "Lease/Revoke", "Lease/LeaseKeepAlive": "Lease/KeepAlive",
    "Lease/LeaseTimeToLive": "Lease/TimeToLive", "Lease/LeaseLeases": "Lease/Leases",
    "Cluster/MemberList": "Cluster/MemberList", "Cluster/MemberAdd": "Cluster/MemberAdd",
    "Cluster/MemberRemove": "Cluster/MemberRemove", "Maintenance/Status": "Cluster/Status",
}


def test_rpc_proto_gates_each_etcd_method_as_its_chainfire_counterpart():
    chainfire = {}
    for service in kv_pb2.DESCRIPTOR.services_by_name.values():
        chainfire.update(gateway.access_table(service))
    gates = etcd_api.access()
    for method, counterpart in COUNTERPARTS.items():
        ours, theirs = chainfire[f"/photoncloud.chainfire.v1.{counterpart}"], gates[f"/etcdserverpb.{method}"]
        assert ours is not None and (theirs.who, theirs.permission) == (ours.who, ours.permission), method
