"""Every acknowledged ChainFire write survives SIGKILL of the process; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio

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
