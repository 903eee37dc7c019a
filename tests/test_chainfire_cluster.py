"""A three-member ChainFire cluster as real processes: leader kills under load, linearizability,
catch-up after a restart, and membership changes, all over the public REST API."""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import time
from typing import Any

import aiohttp
import pytest

from photoncloud.common.testing import ServiceProcess, free_ports
from tests.linearizability import Operation, Register, check

SECRET = secrets.token_urlsafe(32)
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15)
KILL_ROUNDS = 3


class Cluster:
    """ChainFire members on 127.0.0.1 that form one Raft cluster, trusting one IAM."""

    def __init__(self, root, iam_url: str, size: int = 3):
        self.root, self.iam_url = root, iam_url
        self.peers = [f"127.0.0.1:{port}" for port in free_ports(size)]
        self.members = [self.process(i, self.peers) for i in range(size)]

    def process(self, i: int, initial_cluster: list[str]) -> ServiceProcess:
        return ServiceProcess(
            "chainfire", self.root / f"member-{i}", "--iam-url", self.iam_url, "--revocation-poll-seconds", "0.5",
            "--peer-address", self.peers[i], "--initial-cluster", ",".join(initial_cluster),
            "--election-timeout-ms", "300", "--snapshot-entries", "200",
            env={"CHAINFIRE_CLUSTER_SECRET": SECRET})

    def alive(self) -> list[ServiceProcess]:
        return [m for m in self.members if m.process is not None and m.process.poll() is None]

    def stop(self) -> None:
        for member in self.alive():
            member.stop()

    def dropped_entries(self) -> list[str]:
        """What the Raft library logged of entries a member dropped after applying them (Raft keeps
        entries that match the leader's; dropping one can lose a committed write)."""
        return [line for member in self.members for line in member.log().splitlines()
                if "truncating already-applied" in line]


class Client:
    """JSON calls to any member with the admin's token; transport failures raise aiohttp errors."""

    def __init__(self, session: aiohttp.ClientSession):
        self.session = session

    async def call(self, method: str, url: str, **kwargs: Any) -> tuple[int, dict]:
        async with self.session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs) as response:
            return response.status, await response.json()

    async def put(self, member: ServiceProcess, key: str, value: str) -> tuple[int, dict]:
        # POST .../put, not PUT: aiohttp sends a PUT again when its connection broke, and a second
        # copy of a write, applied later, is not in the history the checker is given.
        return await self.call("POST", f"{member.url}/api/v1/kv/{key}/put", json={"value": value})

    async def get(self, member: ServiceProcess, key: str) -> tuple[int, dict]:
        return await self.call("GET", f"{member.url}/api/v1/kv/{key}")

    async def status(self, member: ServiceProcess) -> dict:
        status, body = await self.call("GET", f"{member.url}/api/v1/cluster/status")
        assert status == 200, body
        return body["data"]

    async def listing(self, member: ServiceProcess, prefix: str, serializable: bool = False) -> dict[str, str]:
        """Every key under prefix, page by page (one revision for all pages)."""
        found, token = {}, ""
        while True:
            params = {"prefix": prefix, "page_size": "500", "serializable": str(serializable).lower()}
            if token:
                params["page_token"] = token
            status, body = await self.call("GET", f"{member.url}/api/v1/kv", params=params)
            assert status == 200, body
            found.update({kv["key"]: kv["value"] for kv in body["data"]["items"]})
            token = body["data"]["next_page_token"]
            if not token:
                return found

    async def leader(self, cluster: Cluster, timeout: float = 20) -> ServiceProcess:
        """The member every live member names as leader."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = cluster.alive()
            try:
                statuses = [await self.status(m) for m in alive]
            except (TimeoutError, aiohttp.ClientError):
                statuses = []
            leaders = {s["leader"] for s in statuses}
            named = [m for m, s in zip(alive, statuses) if s["member_id"] in leaders]
            if len(leaders) == 1 and named and named[0].process.poll() is None:  # not one that just died
                return named[0]
            await asyncio.sleep(0.1)
        raise AssertionError("no leader was elected in time")

    async def caught_up(self, cluster: Cluster, prefix: str, timeout: float = 30) -> dict[str, str]:
        """The keys under prefix once every live member serves the same ones from its own state."""
        deadline = time.monotonic() + timeout
        while True:
            listings = [await self.listing(m, prefix, serializable=True) for m in cluster.alive()]
            if all(listing == listings[0] for listing in listings):
                return listings[0]
            assert time.monotonic() < deadline, "the members did not converge in time"
            await asyncio.sleep(0.2)


@pytest.fixture
async def cluster(tmp_path, iam_alone):
    running = Cluster(tmp_path, iam_alone.iam.url)
    for member in running.members:
        member.start()
    yield running
    running.stop()


@pytest.fixture
async def client(iam_alone):
    headers = {"Authorization": f"Bearer {iam_alone.admin_token()}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield Client(session)


TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


async def test_any_member_takes_writes_and_every_member_reads_them(cluster: Cluster, client: Client) -> None:
    leader = await client.leader(cluster)
    followers = [m for m in cluster.members if m is not leader]
    status, body = await client.put(followers[0], "greeting", "hello")  # forwarded to the leader
    assert status == 200, body
    revision = body["data"]["revision"]
    for member in cluster.members:  # a linearizable read sees it at once, on every member
        status, body = await client.get(member, "greeting")
        assert status == 200 and body["data"]["value"] == "hello" and body["data"]["mod_revision"] == revision

    statuses = [await client.status(m) for m in cluster.members]
    assert len({s["member_id"] for s in statuses}) == 3
    assert {s["leader"] for s in statuses} == {(await client.status(leader))["member_id"]}
    assert sorted(s["role"] for s in statuses) == ["FOLLOWER", "FOLLOWER", "LEADER"]
    status, body = await client.call("GET", f"{followers[1].url}/api/v1/cluster/members")
    members = body["data"]["members"]
    assert sorted(m["peer_address"] for m in members) == sorted(cluster.peers)
    assert [m["client_urls"]["rest"] for m in members if m["is_leader"]] == [leader.url]


async def test_killing_the_leader_under_load_loses_no_acknowledged_write(cluster: Cluster, client: Client) -> None:
    acknowledged: dict[str, str] = {}
    for round_ in range(KILL_ROUNDS):
        leader = await client.leader(cluster)
        killed_at = math.inf
        after_kill = 0
        stop = time.monotonic() + 3.0

        async def writer(w: int) -> None:
            nonlocal after_kill
            i = 0
            while time.monotonic() < stop:
                key, value = f"load/{round_}/{w}/{i}", f"v{round_}-{w}-{i}"
                i += 1
                try:
                    status, body = await client.put(random.choice(cluster.alive()), key, value)
                except TRANSPORT_ERRORS:
                    await asyncio.sleep(0.02)
                    continue
                if status == 200:
                    acknowledged[key] = value
                    after_kill += time.monotonic() > killed_at
                else:
                    assert body["error"]["code"] == "UNAVAILABLE", body  # nothing else may go wrong
                    await asyncio.sleep(0.02)

        async def killer() -> None:
            nonlocal killed_at
            await asyncio.sleep(0.8)
            leader.kill()
            killed_at = time.monotonic()

        await asyncio.gather(killer(), *(writer(w) for w in range(16)))
        assert after_kill > 0, "no write was acknowledged by the new leader"
        new_leader = await client.leader(cluster)
        assert new_leader is not leader
        leader.start()  # it rejoins as a follower and catches up

    assert len(acknowledged) > 100
    for member in cluster.members:  # linearizable reads through every member
        found = await client.listing(member, "load/")
        missing = {k: v for k, v in acknowledged.items() if found.get(k) != v}
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {list(missing.items())[:3]}"
    converged = await client.caught_up(cluster, "load/")
    assert all(converged[k] == v for k, v in acknowledged.items())
    assert cluster.dropped_entries() == []


async def test_a_killed_member_restarts_and_catches_up_from_a_snapshot(cluster: Cluster, client: Client) -> None:
    leader = await client.leader(cluster)
    follower = next(m for m in cluster.members if m is not leader)
    follower.kill()
    for batch in range(5):  # 500 writes: past two snapshots (every 200 entries) while it is down
        results = await asyncio.gather(*(client.put(leader, f"snap/{batch}/{i}", str(i)) for i in range(100)))
        assert all(status == 200 for status, _ in results)
    follower.start()
    converged = await client.caught_up(cluster, "snap/")
    assert len(converged) == 500
    assert "state restored from a snapshot" in follower.log()
    status, body = await client.get(follower, "snap/4/99")
    assert status == 200 and body["data"]["value"] == "99"


async def test_members_are_added_and_removed_over_rest(cluster: Cluster, client: Client, tmp_path) -> None:
    leader = await client.leader(cluster)
    await client.put(leader, "before-join", "1")
    cluster.peers.append(f"127.0.0.1:{free_ports(1)[0]}")
    newcomer = cluster.process(3, cluster.peers)
    cluster.members.append(newcomer)
    newcomer.start()
    follower = next(m for m in cluster.members[:3] if m is not leader)

    status, body = await client.call("POST", f"{follower.url}/api/v1/cluster/members",
                                     json={"peer_address": cluster.peers[3]})
    assert status == 201, body
    assert len(body["data"]["members"]) == 4
    converged = await client.caught_up(cluster, "before-join")
    assert converged == {"before-join": "1"}
    status, body = await client.call("POST", f"{leader.url}/api/v1/cluster/members",
                                     json={"peer_address": cluster.peers[3]})
    assert status == 409 and body["error"]["code"] == "ALREADY_EXISTS"

    # The newcomer may have called elections before it was added (Raft without pre-vote): its
    # higher term can make the others elect again, so the leader is looked up afresh.
    leader = await client.leader(cluster)
    new_id = (await client.status(newcomer))["member_id"]
    leader_id = (await client.status(leader))["member_id"]
    status, body = await client.call("DELETE", f"{leader.url}/api/v1/cluster/members/{leader_id}")
    assert status == 400 and body["error"]["code"] == "FAILED_PRECONDITION"
    status, body = await client.call("DELETE", f"{leader.url}/api/v1/cluster/members/{new_id}")
    assert status == 200, body
    assert sorted(m["peer_address"] for m in body["data"]["members"]) == sorted(cluster.peers[:3])
    newcomer.stop()
    status, body = await client.put(leader, "after-leave", "1")
    assert status == 200, body


# -- linearizability (tests/test_linearizability.py has more, under other faults) ------------------

async def test_reads_and_writes_during_leader_kills_are_linearizable(cluster: Cluster, client: Client) -> None:
    keys = [f"register/{k}" for k in range(4)]
    history: list[Operation] = []
    stop = time.monotonic() + 5.0

    async def worker(c: int) -> None:
        n = 0
        while time.monotonic() < stop:
            key, member = random.choice(keys), random.choice(cluster.alive())
            n += 1
            call = time.monotonic()
            if random.random() < 0.5:
                value = f"c{c}-{n}"
                try:
                    status, body = await client.put(member, key, value)
                except TRANSPORT_ERRORS:
                    status, body = 0, {}
                # A failed write may still commit: its outcome is unknown.
                ret = time.monotonic() if status == 200 else None
                history.append(Operation(c, key, "put", value, call, ret))
            else:
                try:
                    status, body = await client.get(member, key)
                except TRANSPORT_ERRORS:
                    continue
                if status in (200, 404):
                    value = body["data"]["value"] if status == 200 else None
                    history.append(Operation(c, key, "get", None, call, time.monotonic(), value))
            if status not in (200, 404):
                await asyncio.sleep(0.02)

    async def killer() -> None:
        for _ in range(2):
            await asyncio.sleep(1.5)
            leader = await client.leader(cluster)
            leader.kill()
            await client.leader(cluster)
            leader.start()

    await asyncio.gather(killer(), *(worker(c) for c in range(8)))
    reads = sum(op.op == "get" for op in history)
    writes = sum(op.op == "put" and op.ret is not None for op in history)
    assert reads > 20 and writes > 20, (reads, writes)  # a live cluster, on a loaded machine too
    result = check(Register(), history)
    assert result.ok, result.explain()
    assert cluster.dropped_entries() == []
