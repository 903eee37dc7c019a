"""What one REST request costs the serving process: CPU time per request and requests a second.

Starts IAM, ChainFire and PrismNET on free 127.0.0.1 ports over a temporary data directory, makes
the objects the cases read, then runs each case with one request in flight for --duration seconds
after a warm-up. The server's CPU time (user + system, read from /proc before and after) divided by
the requests served is the request path's cost on the server: unlike requests a second it barely
moves when other work shares the machine, so two runs (before and after a change) compare fairly.

    .venv/bin/python bench/request_path.py                 # about half a minute
    .venv/bin/python bench/request_path.py --duration 5 --json

A benchmark, not a test: it asserts nothing, it reports numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from photoncloud.common.testing import start_platform

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def run(op: Callable[[], Awaitable[None]], pid: int, duration: float) -> tuple[int, float, float]:
    """op repeated, one at a time, for duration seconds: (requests, seconds, server CPU seconds)."""
    count, cpu, started = 0, cpu_seconds(pid), time.perf_counter()
    while time.perf_counter() - started < duration:
        await op()
        count += 1
    return count, time.perf_counter() - started, cpu_seconds(pid) - cpu


async def bench(urls: dict[str, str], pids: dict[str, int], token: str, project: str,
                args: argparse.Namespace) -> list[dict]:
    """Every case: its rate and the server's CPU microseconds per request."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async def call(method: str, url: str, body: dict | None = None) -> dict:
            async with session.request(method, url, json=body) as response:
                data = await response.json()
                if response.status >= 300:
                    raise RuntimeError(f"{method} {url}: HTTP {response.status}: {data}")
                return data["data"]

        net = urls["prismnet"] + "/api/v1"
        vpcs = [await call("POST", net + "/vpcs", {"name": f"bench-{i}", "project_id": project,
                                                   "cidr_block": f"10.{i}.0.0/16"}) for i in range(20)]
        vpc = vpcs[0]["id"]
        kv = urls["chainfire"] + "/api/v1/kv/bench/key"
        await call("PUT", kv, {"value": "x" * 100})
        cases = {
            "chainfire GET /kv/{key}": ("chainfire", lambda: call("GET", kv)),
            "chainfire PUT /kv/{key}": ("chainfire", lambda: call("PUT", kv, {"value": "x" * 100})),
            "prismnet GET /vpcs/{id}": ("prismnet", lambda: call("GET", f"{net}/vpcs/{vpc}")),
            "prismnet GET /vpcs (20)": ("prismnet", lambda: call("GET", f"{net}/vpcs?project_id={project}")),
            "prismnet PATCH /vpcs/{id}": ("prismnet", lambda: call("PATCH", f"{net}/vpcs/{vpc}",
                                                                   {"description": "changed"})),
        }
        results = []
        for name, (service, op) in cases.items():
            await run(op, pids[service], args.warmup)
            count, seconds, cpu = await run(op, pids[service], args.duration)
            results.append({"case": name, "requests": count, "per_second": round(count / seconds, 1),
                            "server_cpu_us": round(cpu / count * 1e6, 1)})
            print(f"  {name}: {results[-1]['per_second']:.0f}/s, {results[-1]['server_cpu_us']:.0f} us CPU",
                  file=sys.stderr, flush=True)
    return results


def main() -> None:
    """Parse the options, run the cases, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per case (default 4)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each case")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="photoncloud-bench-") as root:
        running = start_platform(Path(root), "chainfire", "prismnet", log_level="WARNING")
        try:
            _, project = running.project("bench")
            urls = {name: p.url for name, p in running.services.items()}
            pids = {name: p.process.pid for name, p in running.services.items()}
            results = asyncio.run(bench(urls, pids, running.admin_token(), project, args))
        finally:
            running.stop()
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "python": platform.python_version(), "results": results}, indent=2))
        return
    print("| case | requests/s | server CPU per request (us) |\n|---|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {r['per_second']:.0f} | {r['server_cpu_us']:.0f} |")


if __name__ == "__main__":
    main()
