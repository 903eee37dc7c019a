"""/metrics of a three-member ChainFire cluster: each member's Raft role, and the leader's view of
how far each follower lags, with one follower stopped while writes go on."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests import test_chainfire_cluster as chainfire
from tests.test_chainfire_cluster import Client, Cluster

# The cluster and its client: the ChainFire cluster tests' own fixtures.
cluster, client = chainfire.cluster, chainfire.client


async def scrape(member) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A member's /metrics, with no token."""
    async with aiohttp.ClientSession() as session, session.get(member.url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def lags(samples) -> dict[str, float]:
    return {dict(labels)["member_id"]: v for (name, labels), v in samples.items()
            if name == "photoncloud_raft_follower_lag_entries"}


def role(samples, name: str) -> float:
    return samples[("photoncloud_raft_role", (("role", name), ("service", "chainfire")))]


async def test_members_report_their_role_and_the_leader_each_followers_lag(cluster: Cluster, client: Client) -> None:
    leader = await client.leader(cluster)
    followers = [m for m in cluster.members if m is not leader]
    ids = {m.url: str((await client.status(m))["member_id"]) for m in cluster.members}
    status, body = await client.put(leader, "warm", "up")
    assert status == 200, body

    deadline = time.monotonic() + 20
    while lags(await scrape(leader)) != {ids[m.url]: 0 for m in followers}:  # both caught up
        assert time.monotonic() < deadline, lags(await scrape(leader))
        await asyncio.sleep(0.2)
    samples = await scrape(leader)
    assert role(samples, "LEADER") == 1 and role(samples, "FOLLOWER") == 0
    assert samples[("photoncloud_raft_members", (("service", "chainfire"),))] == 3
    for follower in followers:
        theirs = await scrape(follower)
        assert role(theirs, "FOLLOWER") == 1 and role(theirs, "LEADER") == 0
        assert lags(theirs) == {}  # only the leader knows the followers' progress

    stopped, running = followers
    stopped.stop()
    for i in range(5):
        status, body = await client.put(leader, f"k{i}", "v")
        assert status == 200, body
    deadline = time.monotonic() + 20
    while True:
        seen = lags(await scrape(leader))
        if seen.get(ids[stopped.url], 0) >= 5 and seen.get(ids[running.url]) == 0:
            break
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.2)
    keys = ("photoncloud_chainfire_keys", (("service", "chainfire"),))
    assert (await scrape(leader))[keys] == 6
