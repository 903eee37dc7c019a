"""A three-member FlareDB cluster as real processes: rows written through any member are read back
from every member with strong consistency, survive the leader's SIGKILL, and a new leader takes
writes; weak reads on a follower name the leader."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import aiohttp
import pytest
from photoncloud.common.testing import ServiceProcess, free_ports

SECRET = secrets.token_urlsafe(32)
PROJECT = "proj-cluster"
TIMEOUT = aiohttp.ClientTimeout(total=15)


class Cluster:
    """FlareDB members on 127.0.0.1 that form one Raft cluster, trusting one IAM."""

    def __init__(self, root, iam_url: str, size: int = 3):
        peers = [f"127.0.0.1:{port}" for port in free_ports(size)]
        self.members = [ServiceProcess(
            "flaredb", root / f"member-{i}", "--iam-url", iam_url, "--revocation-poll-seconds", "0.5",
            "--peer-address", peers[i], "--initial-cluster", ",".join(peers), "--election-timeout-ms", "300",
            env={"FLAREDB_CLUSTER_SECRET": SECRET}) for i in range(size)]

    def alive(self) -> list[ServiceProcess]:
        return [m for m in self.members if m.process is not None and m.process.poll() is None]

    def stop(self) -> None:
        for member in self.alive():
            member.stop()


class Client:
    """JSON calls with the admin's (system-scoped) token, naming the project."""

    def __init__(self, session: aiohttp.ClientSession):
        self.session = session

    async def call(self, method: str, url: str, **kwargs: Any) -> tuple[int, dict]:
        async with self.session.request(method, url, timeout=TIMEOUT, **kwargs) as response:
            return response.status, await response.json()

    async def sql(self, member: ServiceProcess, *statements: tuple[str, list], consistency: str = "strong"):
        body = {"statements": [{"sql": s, "params": p} for s, p in statements], "consistency": consistency,
                "project_id": PROJECT}
        return await self.call("POST", f"{member.url}/api/v1/sql", json=body)

    async def write(self, member: ServiceProcess, *statements: tuple[str, list], timeout: float = 20) -> dict:
        """Run a write, retrying while the cluster has no leader (an election after a kill)."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = await self.sql(member, *statements)
            if status == 200:
                return body["data"]
            assert status == 503 and time.monotonic() < deadline, body
            await asyncio.sleep(0.2)

    async def rows(self, member: ServiceProcess, consistency: str = "strong") -> list:
        status, body = await self.sql(member, ("SELECT id, note FROM notes ORDER BY id", []), consistency=consistency)
        assert status == 200, body
        return body["data"]["results"][0]["rows"]

    async def role(self, member: ServiceProcess) -> dict:
        _, body = await self.call("GET", f"{member.url}/health")
        return body["data"]["dependencies"]["raft"]

    async def leader(self, cluster: Cluster, timeout: float = 20) -> ServiceProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                roles = [(m, await self.role(m)) for m in cluster.alive()]
            except (TimeoutError, aiohttp.ClientError, KeyError):
                roles = []
            leaders = [m for m, r in roles if r["role"] == "LEADER"]
            if len(leaders) == 1 and len({r["leader"] for _, r in roles}) == 1:
                return leaders[0]
            await asyncio.sleep(0.1)
        raise AssertionError("no leader was elected in time")


@pytest.fixture
def cluster(tmp_path, iam_alone):
    running = Cluster(tmp_path, iam_alone.iam.url)
    try:
        for member in running.members:
            member.start()
        yield running
    finally:
        running.stop()


@pytest.fixture
async def client(iam_alone):
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {iam_alone.admin_token()}"}) as session:
        yield Client(session)


async def test_rows_from_any_member_are_everywhere_and_survive_the_leader(cluster: Cluster, client: Client):
    leader = await client.leader(cluster)
    followers = [m for m in cluster.members if m is not leader]
    await client.write(followers[0], ("CREATE TABLE notes (id INTEGER PRIMARY KEY, note TEXT NOT NULL)", []))
    for i, member in enumerate(cluster.members):  # through each member, followers forward
        await client.write(member, ("INSERT INTO notes (note) VALUES (?)", [f"via member {i}"]),
                           ("INSERT INTO notes (note) VALUES (:note)", {"note": f"second via member {i}"}))
    expected = [[i + 1, note] for i, note in enumerate(
        n for i in range(3) for n in (f"via member {i}", f"second via member {i}"))]
    for member in cluster.members:
        assert await client.rows(member) == expected

    # A weak read is the leader's: a follower names it.
    status, body = await client.sql(followers[1], ("SELECT 1", []), consistency="weak")
    assert (status, body["error"]["code"]) == (503, "UNAVAILABLE")
    assert body["error"]["details"]["leader"]["rest"] == leader.url
    assert (await client.sql(leader, ("SELECT 1", []), consistency="weak"))[0] == 200

    # A strong namespace, compare-and-swapped through a follower, read from every member.
    status, body = await client.call("POST", f"{followers[0].url}/api/v1/namespaces",
                                     json={"name": "locks", "mode": "strong", "project_id": PROJECT})
    assert status == 200, body
    status, body = await client.call("POST", f"{followers[1].url}/api/v1/cas", json={
        "namespace": "locks", "key": "job", "value": "owner-1", "expected_version": 0, "project_id": PROJECT})
    assert (status, body["data"]["succeeded"], body["data"]["version"]) == (200, True, 1)
    for member in cluster.members:
        status, body = await client.call("GET", f"{member.url}/api/v1/kv/job",
                                         params={"namespace": "locks", "project_id": PROJECT})
        assert (status, body["data"]["value"], body["data"]["version"]) == (200, "owner-1", 1)

    leader.kill()  # SIGKILL: no shutdown code runs
    new_leader = await client.leader(cluster)
    assert new_leader is not leader
    survivors = cluster.alive()
    for member in survivors:
        assert await client.rows(member) == expected
    follower = next(m for m in survivors if m is not new_leader)
    await client.write(new_leader, ("INSERT INTO notes (note) VALUES (?)", ["after the kill"]))
    await client.write(follower, ("INSERT INTO notes (note) VALUES (?)", ["after the kill, forwarded"]))
    expected += [[7, "after the kill"], [8, "after the kill, forwarded"]]
    for member in survivors:
        assert await client.rows(member) == expected

    # The killed member comes back and catches up from the log.
    leader.start()
    deadline = time.monotonic() + 30
    while True:
        status, body = await client.sql(leader, ("SELECT id, note FROM notes ORDER BY id", []), consistency="none")
        if status == 200 and body["data"]["results"][0]["rows"] == expected:
            break
        assert time.monotonic() < deadline, f"the restarted member did not catch up: {body}"
        await asyncio.sleep(0.2)
    assert await client.rows(leader) == expected
