"""CreditService throughput and latency: reserve+commit pairs, and admission checks, over REST.

Starts IAM and CreditService on free 127.0.0.1 ports over a temporary data directory, opens one
wallet with enough credits, then measures each case for --duration seconds after a warm-up:

- pair: POST /api/v1/reservations, then POST /api/v1/reservations/{id}/commit (one pair = one op);
- admission: POST /api/v1/admission/check (read-only).

    .venv/bin/python bench/credit_bench.py                    # about half a minute
    .venv/bin/python bench/credit_bench.py --duration 2 --concurrency 1,16,64 --json

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
from pathlib import Path

import aiohttp

from chainfire_bench import measure, percentile  # noqa: E402 - a sibling script: the same timing rules
from photoncloud.common.testing import start_platform

async def bench(url: str, token: str, project: str, args: argparse.Namespace) -> list[dict]:
    """Every case at every concurrency."""
    base = f"{url}/api/v1"
    results = []
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async def call(path: str, body: dict, expected: int = 200) -> dict:
            async with session.post(base + path, json=body) as response:
                data = await response.json()
                if response.status != expected:
                    raise RuntimeError(f"HTTP {response.status}: {data}")
                return data["data"]

        await call("/wallets", {"project_id": project, "initial_balance": 10**15}, 201)
        await call("/reservations", {"project_id": project, "amount": 1}, 201)

        async def pair(i: int) -> None:
            held = await call("/reservations", {"project_id": project, "amount": 100, "resource_type": "vm"}, 201)
            await call(f"/reservations/{held['reservation']['id']}/commit", {"actual_amount": 60})

        async def admission(i: int) -> None:
            answer = await call("/admission/check", {"project_id": project, "amount": 100, "resource_type": "vm"})
            if not answer["allowed"]:
                raise RuntimeError(answer["reason"])

        for name, op in (("reserve+commit", pair), ("admission check", admission)):
            for concurrency in args.concurrency:
                await measure(op, concurrency, args.warmup, 10**9)
                latencies, errors, first_error, seconds = await measure(op, concurrency, args.duration, 10**9)
                latencies.sort()
                results.append({"case": name, "concurrency": concurrency, "ops": len(latencies), "errors": errors,
                                 "ops_per_second": round(len(latencies) / seconds, 1),
                                 "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
                                 "p99_ms": round(percentile(latencies, 0.99) * 1000, 2), "first_error": first_error})
                print(f"  {name} x{concurrency}: {results[-1]['ops_per_second']:.0f}/s", file=sys.stderr, flush=True)
    return results


def main() -> None:
    """Parse the options, run the cases, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each case")
    parser.add_argument("--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 64])
    parser.add_argument("--log-level", default="WARNING", help="the service's log level")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="credit-bench-") as data_dir:
        running = start_platform(Path(data_dir), "creditservice", log_level=args.log_level)
        try:
            _, project = running.project("bench")  # a wallet belongs to a project IAM knows
            results = asyncio.run(bench(running.services["creditservice"].url, running.admin_token(), project, args))
        finally:
            running.stop()
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "python": platform.python_version(), "results": results}, indent=2))
        return
    print("| case | concurrency | ops/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {r['concurrency']} | {r['ops_per_second']:.0f} | {r['p50_ms']} | {r['p99_ms']} |"
              f" {r['errors']} |")


if __name__ == "__main__":
    main()
