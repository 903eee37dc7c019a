"""Drive ChainFire with aetcd, an etcd client library from PyPI, and print what it saw as JSON.

Run as its own process (`python tests/etcd_python_client.py HOST PORT USER PASSWORD`): aetcd ships
etcd's generated modules, which define the same protobuf names as ChainFire's etcd protos, and one
process holds only one definition of each name.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aetcd


async def main(host: str, port: int, user: str, password: str) -> dict:
    """Each etcd operation once; what came back, as plain data."""
    seen: dict = {}
    async with aetcd.Client(host, port, username=user, password=password, timeout=10) as client:
        put = await client.put(b"py/a", b"1")
        await client.put(b"py/b", b"2")
        got = await client.get(b"py/a")
        seen["put_revision"] = put.header.revision
        seen["get"] = [got.value.decode(), got.mod_revision, got.version]
        seen["prefix"] = [[kv.key.decode(), kv.value.decode()] for kv in await client.get_prefix(b"py/")]
        succeeded, _ = await client.transaction(
            compare=[client.transactions.value(b"py/a") == b"1"],
            success=[client.transactions.put(b"py/c", b"3")],
            failure=[client.transactions.put(b"py/c", b"never")])
        seen["txn"] = [succeeded, (await client.get(b"py/c")).value.decode()]

        watch = await client.watch(b"py/w")
        await client.put(b"py/w", b"x")
        await client.delete(b"py/w")
        events = []
        async for event in watch:
            events.append([str(event.kind), event.kv.key.decode(), event.kv.value.decode()])
            if len(events) == 2:
                break
        await watch.cancel()
        seen["watch"] = events

        lease = await client.lease(30)
        await client.put(b"py/l", b"leased", lease=lease.id)
        refreshed = await client.refresh_lease(lease.id)
        seen["lease"] = [lease.ttl, refreshed.TTL, await lease.granted_ttl(),
                         [k.decode() for k in await lease.keys()]]
        await lease.revoke()
        seen["after_revoke"] = await client.get(b"py/l") is None

        seen["deleted"] = (await client.delete_prefix(b"py/")).deleted
        status = await client.status()
        seen["status"] = [status.version, status.leader is not None, status.raft_term]
        seen["members"] = len([m async for m in client.members()])
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))))
