"""Every acknowledged write survives SIGKILL of the process; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio

import aiohttp

from photoncloud.common.testing import ServiceProcess


async def put_many(url: str, count: int) -> list[int]:
    async with aiohttp.ClientSession() as session:
        async def put(i: int) -> int:
            async with session.put(f"{url}/api/v1/kv/durable/{i:04d}", json={"value": f"v{i}"}) as r:
                assert r.status == 200
                return (await r.json())["data"]["revision"]
        return await asyncio.gather(*(put(i) for i in range(count)))


async def read_all(url: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/api/v1/kv", params={"prefix": "durable/", "page_size": 1000}) as r:
            items = (await r.json())["data"]["items"]
    return {kv["key"]: kv["value"] for kv in items}


async def test_acknowledged_writes_survive_sigkill(tmp_path):
    service = ServiceProcess("chainfire", tmp_path / "data").start()
    try:
        revisions = await put_many(service.url, 200)
        service.kill()
        assert service.process.returncode == -9
        service.start()
        stored = await read_all(service.url)
        assert stored == {f"durable/{i:04d}": f"v{i}" for i in range(200)}
        async with aiohttp.ClientSession() as session:
            async with session.put(f"{service.url}/api/v1/kv/after", json={"value": "x"}) as r:
                # Revisions continue after the restart instead of starting over.
                assert (await r.json())["data"]["revision"] == max(revisions) + 1
    finally:
        service.kill()


async def test_sigterm_shuts_down_gracefully(tmp_path):
    service = ServiceProcess("chainfire", tmp_path / "data").start()
    await put_many(service.url, 1)
    assert service.stop() == 0
    assert "shutting down" in service.log() and "stopped" in service.log()
