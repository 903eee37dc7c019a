"""FlareDB tenant isolation: how long an endless query of project A runs before FlareDB stops it, and
what A's endless queries add to project B's one-row requests.

Three phases of --duration seconds each, on one FlareDB member (its defaults) started with IAM:
A idle; A sending endless reads (a recursive CTE without end, --a-concurrency requests in flight,
each sent again as soon as it is refused); A sending endless writes (INSERT ... SELECT from the same
CTE). Meanwhile B sends one-row requests, one after another on each of two connections: point reads
(consistency --consistency) on one, one-row INSERTs on the other. Prints, per phase, how long A's
requests ran and what they got, and B's latencies (p50, p99, max).

    .venv/bin/python bench/flaredb_isolation.py              # starts IAM and FlareDB on free ports
    .venv/bin/python bench/flaredb_isolation.py --duration 10 --a-concurrency 4 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from photoncloud.common.testing import start_platform

A, B = "tenant-a", "tenant-b"
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
LOAD = {"idle": None,
        "endless reads": ENDLESS + "SELECT count(*) FROM c",
        "endless writes": "INSERT INTO t (a) " + ENDLESS + "SELECT x FROM c"}


@dataclass
class Phase:
    """One phase: A's requests (how long each ran, what it got) and B's latencies in milliseconds."""

    name: str
    a_ms: list[float] = field(default_factory=list)
    a_codes: Counter = field(default_factory=Counter)
    b_read_ms: list[float] = field(default_factory=list)
    b_write_ms: list[float] = field(default_factory=list)
    b_errors: int = 0


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values, 0 if there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def run_phase(session: aiohttp.ClientSession, url: str, name: str, args: argparse.Namespace) -> Phase:
    """A's load (if any) and B's requests for args.duration seconds."""
    phase = Phase(name)
    stop = time.monotonic() + args.duration

    async def sql(project: str, statement: str, consistency: str = "weak") -> tuple[int, dict]:
        body = {"project_id": project, "sql": statement, "consistency": consistency}
        async with session.post(f"{url}/api/v1/sql", json=body) as response:
            return response.status, await response.json()

    async def tenant_a() -> None:
        while time.monotonic() < stop:
            started = time.monotonic()
            _, body = await sql(A, LOAD[name])
            phase.a_ms.append((time.monotonic() - started) * 1000)
            phase.a_codes[body["error"]["code"] if "error" in body else "OK"] += 1

    async def tenant_b(write: bool) -> None:
        await asyncio.sleep(0.2)  # A's requests are running
        n = 0
        while time.monotonic() < stop:
            n += 1
            started = time.monotonic()
            status, _ = await (sql(B, f"INSERT INTO t (a) VALUES ({n})") if write else
                               sql(B, "SELECT a FROM t WHERE rowid = 1", args.consistency))
            elapsed = (time.monotonic() - started) * 1000
            if status != 200:
                phase.b_errors += 1
            (phase.b_write_ms if write else phase.b_read_ms).append(elapsed)

    loads = [tenant_a() for _ in range(args.a_concurrency)] if LOAD[name] else []
    await asyncio.gather(tenant_b(write=False), tenant_b(write=True), *loads)
    return phase


async def measure(url: str, token: str, args: argparse.Namespace) -> list[Phase]:
    """Every phase, in order."""
    connector = aiohttp.TCPConnector(limit=args.a_concurrency + 4)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}, connector=connector,
                                     timeout=timeout) as session:
        for project in (A, B):
            body = {"project_id": project, "statements": [{"sql": "CREATE TABLE t (a)"},
                                                          {"sql": "INSERT INTO t (a) VALUES (0)"}]}
            async with session.post(f"{url}/api/v1/sql", json=body) as response:
                assert response.status == 200, await response.text()
        phases = []
        for name in LOAD:
            print(f"  {name} ...", file=sys.stderr)
            phases.append(await run_phase(session, url, name, args))
        return phases


def table(phases: list[Phase]) -> str:
    """A Markdown table: per phase, A's requests and B's latencies."""
    lines = ["| A's load | A's requests: ran p50 / max (ms), outcome | B read p50 / p99 / max (ms) | "
             "B write p50 / p99 / max (ms) | B requests (errors) |", "|---|---|---:|---:|---:|"]
    for p in phases:
        a = (f"{percentile(p.a_ms, 50):.0f} / {max(p.a_ms):.0f}, "
             + ", ".join(f"{n} {code}" for code, n in p.a_codes.most_common())) if p.a_ms else "-"
        r = f"{percentile(p.b_read_ms, 50):.1f} / {percentile(p.b_read_ms, 99):.1f} / {max(p.b_read_ms):.1f}"
        w = f"{percentile(p.b_write_ms, 50):.1f} / {percentile(p.b_write_ms, 99):.1f} / {max(p.b_write_ms):.1f}"
        lines.append(f"| {p.name} | {a} | {r} | {w} | {len(p.b_read_ms) + len(p.b_write_ms)} ({p.b_errors}) |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per phase")
    parser.add_argument("--a-concurrency", type=int, default=2, help="A's endless requests in flight")
    parser.add_argument("--consistency", default="weak", choices=["none", "weak", "strong"],
                        help="the consistency of B's reads")
    parser.add_argument("--log-level", default="WARNING", help="FlareDB's log level")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run every phase and print the results."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flaredb-isolation-") as root:
        running = start_platform(Path(root), "flaredb", log_level=args.log_level)
        try:
            phases = asyncio.run(measure(running.services["flaredb"].url, running.admin_token(), args))
        finally:
            running.stop()
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "python": platform.python_version(),
                          "sqlite": sqlite3.sqlite_version, "a_concurrency": args.a_concurrency,
                          "phases": [{"name": p.name, "a_requests": len(p.a_ms), "a_codes": dict(p.a_codes),
                                      "a_max_ms": max(p.a_ms, default=0), "b_errors": p.b_errors,
                                      "b_reads": len(p.b_read_ms), "b_writes": len(p.b_write_ms),
                                      "b_read_p50_ms": percentile(p.b_read_ms, 50),
                                      "b_read_p99_ms": percentile(p.b_read_ms, 99),
                                      "b_write_p50_ms": percentile(p.b_write_ms, 50),
                                      "b_write_p99_ms": percentile(p.b_write_ms, 99),
                                      "a_median_ms": statistics.median(p.a_ms) if p.a_ms else 0}
                                     for p in phases]}, indent=2))
    else:
        print(table(phases))


if __name__ == "__main__":
    main()
