"""What one REST request costs the serving process: CPU time per request and requests a second.

Starts IAM and the six other services on free 127.0.0.1 ports over a temporary data directory (as
`make run` does, at the log level given: INFO by default, so every request writes its access-log
line), and a bare aiohttp JSON endpoint in a process of its own (bench/anchor.py: no token, no
middleware, no log), makes the objects the cases read, then runs each case at each --concurrency
(requests in flight: 1, where the client's own time counts as much as the server's, and 16, where
the one-process server is the bound) for --duration seconds after a warm-up, the anchor first and
last. The server's CPU time (user + system, read from /proc before and after) divided by the
requests served is the request path's cost on the server: unlike requests a second it barely
moves when other work shares the machine, so two runs (before and after a change) compare fairly.
The cases are the cheapest authenticated GET of each service (a token verified, one small thing read), then a few more.

    .venv/bin/python bench/request_path.py                 # about two minutes
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

import anchor

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def run(op: Callable[[], Awaitable[None]], pid: int, duration: float,
              concurrency: int = 1) -> tuple[int, float, float]:
    """op repeated by `concurrency` workers, each one at a time, for duration seconds:
    (requests, seconds, server CPU seconds)."""
    count, cpu, started = 0, cpu_seconds(pid), time.perf_counter()

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() - started < duration:
            await op()
            count += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count, time.perf_counter() - started, cpu_seconds(pid) - cpu


SERVICES = ("chainfire", "flaredb", "creditservice", "prismnet", "plasmavmc", "k8shost")


async def bench(urls: dict[str, str], pids: dict[str, int], token: str, org: str, project: str,
                args: argparse.Namespace) -> list[dict]:
    """Every case: its rate and the server's CPU microseconds per request."""
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=max(args.concurrency))
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        async def call(method: str, url: str, body: dict | None = None) -> dict:
            async with session.request(method, url, json=body) as response:
                data = await response.json()
                if response.status >= 300:
                    raise RuntimeError(f"{method} {url}: HTTP {response.status}: {data}")
                return data["data"]

        async def bare() -> None:
            async with session.get(urls["anchor"]) as response:
                await response.json()

        api = {name: url + "/api/v1" for name, url in urls.items()}
        net = api["prismnet"]
        vpcs = [await call("POST", net + "/vpcs", {"name": f"bench-{i}", "project_id": project,
                                                   "cidr_block": f"10.{i}.0.0/16"}) for i in range(20)]
        vpc = vpcs[0]["id"]
        kv = api["chainfire"] + "/kv/bench/key"
        await call("PUT", kv, {"value": "x" * 100})
        db = f"project_id={project}&namespace=bench"
        await call("POST", api["flaredb"] + "/namespaces", {"project_id": project, "name": "bench", "mode": "eventual"})
        await call("PUT", f"{api['flaredb']}/kv/bench/key?{db}", {"value": "x" * 100})
        await call("POST", api["creditservice"] + "/wallets", {"project_id": project, "org_id": org,
                                                                "initial_balance": 1000})
        flavor = (await call("POST", api["plasmavmc"] + "/flavors", {"name": "bench", "vcpus": 1,
                                                                     "memory_mib": 128}))["id"]
        await call("POST", api["k8shost"] + "/namespaces", {"name": "bench", "project_id": project, "org_id": org})
        cases = {
            "anchor: bare aiohttp GET /": ("anchor", bare),
            "iam GET /orgs/{id}": ("iam", lambda: call("GET", f"{api['iam']}/orgs/{org}")),
            "chainfire GET /kv/{key}": ("chainfire", lambda: call("GET", kv)),
            "flaredb GET /kv/{key}": ("flaredb", lambda: call("GET", f"{api['flaredb']}/kv/bench/key?{db}")),
            "creditservice GET /wallets/{project}": ("creditservice",
                                                     lambda: call("GET", f"{api['creditservice']}/wallets/{project}")),
            "prismnet GET /vpcs/{id}": ("prismnet", lambda: call("GET", f"{net}/vpcs/{vpc}")),
            "plasmavmc GET /flavors/{id}": ("plasmavmc", lambda: call("GET", f"{api['plasmavmc']}/flavors/{flavor}")),
            "k8shost GET /namespaces/{name}": ("k8shost", lambda: call("GET", f"{api['k8shost']}/namespaces/bench")),
            "chainfire PUT /kv/{key}": ("chainfire", lambda: call("PUT", kv, {"value": "x" * 100})),
            "prismnet GET /vpcs (20)": ("prismnet", lambda: call("GET", f"{net}/vpcs?project_id={project}")),
            "prismnet PATCH /vpcs/{id}": ("prismnet", lambda: call("PATCH", f"{net}/vpcs/{vpc}",
                                                                   {"description": "changed"})),
            "anchor again": ("anchor", bare),
        }
        results = []
        for concurrency in args.concurrency:
            for name, (service, op) in cases.items():
                await run(op, pids[service], args.warmup, concurrency)
                count, seconds, cpu = await run(op, pids[service], args.duration, concurrency)
                results.append({"case": name, "concurrency": concurrency, "requests": count,
                                "per_second": round(count / seconds, 1), "server_cpu_us": round(cpu / count * 1e6, 1)})
                print(f"  {name}, {concurrency} in flight: {results[-1]['per_second']:.0f}/s, "
                      f"{results[-1]['server_cpu_us']:.0f} us CPU", file=sys.stderr, flush=True)
    for concurrency in args.concurrency:
        same = [r for r in results if r["concurrency"] == concurrency]
        anchors = [r for r in same if r["case"].startswith("anchor")]
        rate = sum(r["per_second"] for r in anchors) / len(anchors)
        cpu = sum(r["server_cpu_us"] for r in anchors) / len(anchors)
        for r in same:
            r["rate_vs_anchor"] = round(r["per_second"] / rate, 3)
            r["cpu_vs_anchor"] = round(r["server_cpu_us"] / cpu, 2)
    return results


def main() -> None:
    """Parse the options, run the cases, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per case (default 4)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each case")
    parser.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 16],
                        help="requests in flight, comma-separated (default 1,16)")
    parser.add_argument("--log-level", default="INFO", help="the services' log level (default INFO, as they run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="photoncloud-bench-") as root:
        bare, anchor_url = anchor.start()
        running = start_platform(Path(root), *SERVICES, log_level=args.log_level)
        try:
            org, project = running.project("bench")
            processes = {"iam": running.iam, **running.services}
            urls = {name: p.url for name, p in processes.items()} | {"anchor": anchor_url}
            pids = {name: p.process.pid for name, p in processes.items() if p.process} | {"anchor": bare.pid}
            results = asyncio.run(bench(urls, pids, running.admin_token(), org, project, args))
        finally:
            running.stop()
            bare.kill()
            bare.wait()
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "python": platform.python_version(), "results": results}, indent=2))
        return
    print("| case | in flight | requests/s | vs anchor | server CPU per request (us) | vs anchor |\n"
          "|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {r['concurrency']} | {r['per_second']:.0f} | {r['rate_vs_anchor']:.2f} "
              f"| {r['server_cpu_us']:.0f} | {r['cpu_vs_anchor']:.1f} |")


if __name__ == "__main__":
    main()
