"""Every acknowledged write survives SIGKILL of the process, even with writes in flight (ChainFire,
and PrismNET for the services on SqliteState); SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp


async def put_many(url: str, token: str, count: int) -> list[int]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async def put(i: int) -> int:
            async with session.put(f"{url}/api/v1/kv/durable/{i:04d}", json={"value": f"v{i}"}) as r:
                assert r.status == 200
                return (await r.json())["data"]["revision"]
        return await asyncio.gather(*(put(i) for i in range(count)))


async def read_all(url: str, token: str) -> dict[str, str]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.get(f"{url}/api/v1/kv", params={"prefix": "durable/", "page_size": 1000}) as r:
            items = (await r.json())["data"]["items"]
    return {kv["key"]: kv["value"] for kv in items}


async def test_acknowledged_writes_survive_sigkill(platform):
    chainfire, token = platform.services["chainfire"], platform.admin_token()
    revisions = await put_many(chainfire.url, token, 200)
    chainfire.kill()
    assert chainfire.process.returncode == -9
    chainfire.start()
    assert await read_all(chainfire.url, token) == {f"durable/{i:04d}": f"v{i}" for i in range(200)}
    # Revisions continue after the restart instead of starting over.
    assert (await put_many(chainfire.url, token, 1))[0] == max(revisions) + 1


async def test_sigterm_shuts_down_gracefully(platform):
    chainfire = platform.services["chainfire"]
    assert chainfire.stop() == 0
    assert "shutting down" in chainfire.log() and "stopped" in chainfire.log()
    chainfire.start()


async def writes_until_killed(service, write) -> dict[Any, Any]:
    """Sixteen writers write until the service is SIGKILLed under them; what was acknowledged."""
    acknowledged: dict[Any, Any] = {}
    stop = False

    async def writer(w: int) -> None:
        for i in itertools.count():
            if stop:
                return
            try:
                key, value = await write(f"{w}-{i}")
            except (TimeoutError, aiohttp.ClientError):
                return  # killed: this one's answer never came
            acknowledged[key] = value

    async def killer() -> None:
        nonlocal stop
        while len(acknowledged) < 300:
            await asyncio.sleep(0.01)
        service.process.kill()  # SIGKILL with writes in flight
        stop = True

    await asyncio.gather(killer(), *(writer(w) for w in range(16)))
    await asyncio.to_thread(service.process.wait)
    return acknowledged


async def test_writes_in_flight_when_sigkilled_lose_nothing_acknowledged(platform):
    chainfire, token = platform.services["chainfire"], platform.admin_token()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async def write(name: str) -> tuple[str, str]:
            async with session.put(f"{chainfire.url}/api/v1/kv/inflight/{name}", json={"value": name}) as r:
                assert r.status == 200
                return f"inflight/{name}", name

        acknowledged = await writes_until_killed(chainfire, write)
    chainfire.start()
    assert 300 <= len(acknowledged) < 1000
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.get(f"{chainfire.url}/api/v1/kv", params={"prefix": "inflight/", "page_size": 1000}) as r:
            found = {kv["key"]: kv["value"] for kv in (await r.json())["data"]["items"]}
    assert {k: found.get(k) for k in acknowledged} == acknowledged


async def test_a_sqlite_service_sigkilled_under_writes_loses_nothing_acknowledged(platform):
    prismnet, token = platform.services["prismnet"], platform.admin_token()
    _, project_id = platform.project("durability")
    url = f"{prismnet.url}/api/v1/security-groups"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async def write(name: str) -> tuple[str, str]:
            async with session.post(url, json={"name": name, "project_id": project_id}) as r:
                assert r.status == 201
                return (await r.json())["data"]["id"], name

        acknowledged = await writes_until_killed(prismnet, write)
    prismnet.start()
    assert 300 <= len(acknowledged) < 1000
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        found = {}
        for group_id in acknowledged:
            async with session.get(f"{url}/{group_id}") as r:
                found[group_id] = (await r.json())["data"]["name"] if r.status == 200 else None
    assert found == acknowledged
