"""etcd clients nobody here wrote, against ChainFire with IAM's authentication on: Debian's etcdctl
logs in with `--user NAME:PASSWORD` (IAM checks the password), aetcd from PyPI does the same, and
the platform's own bearer tokens are taken in etcd's `token` metadata and in `authorization`."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from photoncloud.common import needs
from photoncloud.common.testing import ServiceProcess, free_ports
from photoncloud.etcd.v3 import rpc_pb2 as pb
from photoncloud.etcd.v3 import rpc_pb2_grpc as pb_grpc

PYTHON_CLIENT = Path(__file__).with_name("etcd_python_client.py")


def etcdctl(platform, *args: str, user: str | None = None, endpoints: str = "") -> subprocess.CompletedProcess:
    """etcdctl (API v3) against the platform's ChainFire (or endpoints), logged in as user ("name:password")."""
    endpoints = endpoints or f"127.0.0.1:{platform.services['chainfire'].grpc_port}"
    login = [f"--user={user}"] if user else []
    binary = needs.tool("etcdctl", "etcd-client")  # skipped without it (failed in CI)
    return subprocess.run([binary, f"--endpoints={endpoints}", "--dial-timeout=5s", "--command-timeout=10s",
                           *login, *args], env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def admin(platform) -> str:
    """`admin:PASSWORD` for etcdctl's --user."""
    return f"admin:{platform.admin_password}"


def test_etcdctl_logs_in_with_iams_password(platform, admin):
    put = etcdctl(platform, "put", "cfg/mode", "fast", user=admin)
    assert (put.returncode, put.stdout) == (0, "OK\n"), put.stderr
    got = etcdctl(platform, "get", "cfg/", "--prefix", user=admin)
    assert got.stdout == "cfg/mode\nfast\n", got.stderr
    # etcd's "auth enabled" answers: no token, a wrong password, an unknown user.
    anonymous = etcdctl(platform, "get", "cfg/mode")
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr
    for login in ("admin:wrong-password", "nobody:whatever"):
        refused = etcdctl(platform, "get", "cfg/mode", user=login)
        assert refused.returncode != 0
        assert "etcdserver: authentication failed, invalid user ID or password" in refused.stderr


def test_etcdctl_user_gets_only_what_iam_grants(platform, admin):
    name, password = platform.user_with_role("viewer")
    etcdctl(platform, "put", "shared", "v1", user=admin)
    read = etcdctl(platform, "get", "shared", "--print-value-only", user=f"{name}:{password}")
    assert read.stdout == "v1\n", read.stderr
    write = etcdctl(platform, "put", "shared", "v2", user=f"{name}:{password}")
    assert write.returncode != 0 and "PermissionDenied" in write.stderr and "chainfire:kv:write" in write.stderr
    lease = etcdctl(platform, "lease", "grant", "10", user=f"{name}:{password}")
    assert lease.returncode != 0 and "chainfire:leases:write" in lease.stderr
    members = etcdctl(platform, "member", "list", "-w", "json", user=f"{name}:{password}")
    assert len(json.loads(members.stdout)["members"]) == 1, members.stderr
    status = etcdctl(platform, "endpoint", "status", "-w", "json", user=f"{name}:{password}")
    assert json.loads(status.stdout)[0]["Status"]["header"]["revision"] >= 1, status.stderr


async def test_the_platforms_bearer_tokens_work_on_etcds_api(platform):
    token = platform.admin_token()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{platform.services['chainfire'].grpc_port}") as channel:
        kv, auth = pb_grpc.KVStub(channel), pb_grpc.AuthStub(channel)
        put = await kv.Put(pb.PutRequest(key=b"bearer", value=b"yes"), metadata=(("token", token),))
        got = await kv.Range(pb.RangeRequest(key=b"bearer"), metadata=(("authorization", f"Bearer {token}"),))
        assert [(kv.value, kv.mod_revision) for kv in got.kvs] == [(b"yes", put.header.revision)]
        # Authenticate's token is IAM's: it works the same way, and the platform's REST API takes it too.
        login = await auth.Authenticate(pb.AuthenticateRequest(name="admin", password=platform.admin_password))
        platform.secrets.add(login.token)
        got = await kv.Range(pb.RangeRequest(key=b"bearer"), metadata=(("token", login.token),))
        assert got.kvs[0].value == b"yes"
        status, reply = platform.request("GET", f"{platform.services['chainfire'].url}/api/v1/kv/bearer",
                                         token=login.token)
        assert (status, reply["data"]["value"]) == (200, "yes")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await auth.Authenticate(pb.AuthenticateRequest(name="admin", password="wrong"))
        assert (error.value.code(), error.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password")


def test_aetcd_from_pypi(platform):
    chainfire = platform.services["chainfire"]
    run = subprocess.run([sys.executable, str(PYTHON_CLIENT), "127.0.0.1", str(chainfire.grpc_port), "admin",
                          platform.admin_password], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    revision = seen["put_revision"]
    assert seen["get"] == ["1", revision, 1]
    assert seen["prefix"] == [["py/a", "1"], ["py/b", "2"]]
    assert seen["txn"] == [True, "3"]
    assert seen["watch"] == [["PUT", "py/w", "x"], ["DELETE", "py/w", ""]]
    assert seen["lease"] == [30, 30, 30, ["py/l"]]
    assert seen["after_revoke"] is True
    assert seen["deleted"] == 3
    assert seen["status"][0] == "3.4.0" and seen["status"][1] is True and seen["status"][2] >= 1
    assert seen["members"] == 1


def test_etcdctl_against_a_three_member_cluster(platform, admin, tmp_path):
    peers = [f"127.0.0.1:{port}" for port in free_ports(4)]
    secret = secrets.token_urlsafe(32)

    def member(i: int, initial_cluster: list[str]) -> ServiceProcess:
        return ServiceProcess("chainfire", tmp_path / f"member-{i}", "--iam-url", platform.iam.url,
                              "--peer-address", peers[i], "--initial-cluster", ",".join(initial_cluster),
                              "--election-timeout-ms", "300", env={"CHAINFIRE_CLUSTER_SECRET": secret})

    members = [member(i, peers[:3]) for i in range(3)]
    try:
        for process in members:
            process.start()
        endpoints = [f"127.0.0.1:{m.grpc_port}" for m in members]
        deadline = time.monotonic() + 30
        while True:  # until the members have elected a leader
            status = etcdctl(platform, "endpoint", "status", "-w", "json", user=admin, endpoints=",".join(endpoints))
            if status.returncode == 0 and all(s["Status"].get("leader") for s in json.loads(status.stdout)):
                break
            assert time.monotonic() < deadline, status.stderr
            time.sleep(0.3)
        statuses = json.loads(status.stdout)
        assert len({s["Status"]["leader"] for s in statuses}) == 1
        assert sum(s["Status"]["leader"] == s["Status"]["header"]["member_id"] for s in statuses) == 1

        # Written through one member, read (linearizably) through another.
        assert etcdctl(platform, "put", "replicated", "yes", user=admin, endpoints=endpoints[1]).stdout == "OK\n"
        got = etcdctl(platform, "get", "replicated", "--print-value-only", user=admin, endpoints=endpoints[2])
        assert got.stdout == "yes\n", got.stderr

        listed = json.loads(etcdctl(platform, "member", "list", "-w", "json", user=admin,
                                    endpoints=endpoints[0]).stdout)
        assert sorted(m["clientURLs"][0] for m in listed["members"]) == sorted(f"http://{e}" for e in endpoints)
        assert sorted(m["peerURLs"][0] for m in listed["members"]) == sorted(f"http://{p}" for p in peers[:3])

        # A fourth member joins through etcd's MemberAdd, and leaves through MemberRemove.
        newcomer = member(3, peers)
        members.append(newcomer)
        newcomer.start()
        added = etcdctl(platform, "member", "add", "newcomer", f"--peer-urls=http://{peers[3]}", user=admin,
                        endpoints=endpoints[0])
        assert added.returncode == 0 and "added to cluster" in added.stdout, added.stderr
        listed = json.loads(etcdctl(platform, "member", "list", "-w", "json", user=admin,
                                    endpoints=endpoints[1]).stdout)
        assert sorted(m["peerURLs"][0] for m in listed["members"]) == sorted(f"http://{p}" for p in peers)
        new_id = next(m["ID"] for m in listed["members"] if m["peerURLs"] == [f"http://{peers[3]}"])
        removed = etcdctl(platform, "member", "remove", f"{new_id:x}", user=admin, endpoints=endpoints[0])
        assert removed.returncode == 0 and f"Member {new_id:16x} removed" in removed.stdout, removed.stderr
        listed = json.loads(etcdctl(platform, "member", "list", "-w", "json", user=admin,
                                    endpoints=endpoints[0]).stdout)
        assert len(listed["members"]) == 3
    finally:
        for process in members:
            process.stop()
