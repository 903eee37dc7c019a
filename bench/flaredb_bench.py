"""FlareDB over REST next to raw sqlite3 in this process, with the same durability settings.

Three workloads, each for --duration seconds (after --warmup unmeasured ones) at each --concurrency
(requests in flight):
single-statement inserts (one INSERT per request), batched inserts (--batch INSERTs per request, one
transaction) and point queries (SELECT by primary key, consistency weak). The same three run on a
sqlite3 file in this process, in WAL mode with synchronous=FULL (FlareDB's settings), one
transaction per insert or per batch, on one thread. Prints a table with the ratios FlareDB / sqlite3.

    .venv/bin/python bench/flaredb_bench.py             # starts IAM and FlareDB on free ports
    .venv/bin/python bench/flaredb_bench.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
from photoncloud.common.testing import start_platform

PROJECT = "bench"
ROW = "x" * 100  # every row holds a 100-byte text


@dataclass
class Result:
    """One measured case: rows (or queries) per second, and requests per second."""

    system: str
    workload: str
    concurrency: int
    rows_per_s: float
    requests_per_s: float
    errors: int


async def measure(call: Callable[[int], Awaitable[None]], concurrency: int, duration: float,
                  warmup: float) -> tuple[int, int, float]:
    """Run call(i) from `concurrency` workers for `duration` seconds after `warmup` unmeasured ones:
    (requests, errors, seconds)."""
    counter = iter(range(10**12))
    warm = time.perf_counter() + warmup
    while time.perf_counter() < warm:
        await call(next(counter))
    done = errors = 0
    stop = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal done, errors
        while time.perf_counter() < stop:
            try:
                await call(next(counter))
                done += 1
            except AssertionError:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, errors, time.perf_counter() - started


async def flaredb(url: str, token: str, args: argparse.Namespace) -> list[Result]:
    """The three workloads over FlareDB's REST API."""
    results = []
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=max(args.concurrency))
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        async def sql(statements: list[dict], consistency: str = "weak") -> dict:
            body = {"project_id": PROJECT, "statements": statements, "consistency": consistency}
            async with session.post(f"{url}/api/v1/sql", json=body) as response:
                data = await response.json()
                assert response.status == 200, data
                return data["data"]

        await sql([{"sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"}])
        insert = {"sql": "INSERT INTO t (v) VALUES (?)", "params": [ROW]}

        async def single(i: int) -> None:
            await sql([insert])

        async def batch(i: int) -> None:
            await sql([insert] * args.batch)

        for concurrency in args.concurrency:
            for workload, call, rows in (("insert", single, 1), (f"insert x{args.batch}", batch, args.batch)):
                n, errors, seconds = await measure(call, concurrency, args.duration, args.warmup)
                results.append(Result("FlareDB", workload, concurrency, n * rows / seconds, n / seconds, errors))
                report(results[-1])
        count = (await sql([{"sql": "SELECT max(id) FROM t"}]))["results"][0]["rows"][0][0]

        async def query(i: int) -> None:
            result = await sql([{"sql": "SELECT v FROM t WHERE id = ?", "params": [random.randint(1, count)]}])
            assert result["results"][0]["rows"], result

        for concurrency in args.concurrency:
            n, errors, seconds = await measure(query, concurrency, args.duration, args.warmup)
            results.append(Result("FlareDB", "query", concurrency, n / seconds, n / seconds, errors))
            report(results[-1])
    return results


def raw_sqlite(path: Path, args: argparse.Namespace) -> list[Result]:
    """The same workloads on sqlite3 in this process: WAL, synchronous=FULL, one thread."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    results = []

    def run(workload: str, rows: int, once: Callable[[], None]) -> None:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < args.duration:
            once()
            n += 1
        seconds = time.perf_counter() - started
        results.append(Result("sqlite3", workload, 1, n * rows / seconds, n / seconds, 0))
        report(results[-1])

    def single() -> None:
        db.execute("INSERT INTO t (v) VALUES (?)", (ROW,))  # autocommit: one transaction, one fsync

    def batch() -> None:
        db.execute("BEGIN IMMEDIATE")
        for _ in range(args.batch):
            db.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
        db.execute("COMMIT")

    run("insert", 1, single)
    run(f"insert x{args.batch}", args.batch, batch)
    count = db.execute("SELECT max(id) FROM t").fetchone()[0]
    run("query", 1, lambda: db.execute("SELECT v FROM t WHERE id = ?", (random.randint(1, count),)).fetchall())
    db.close()
    return results


def report(result: Result) -> None:
    """A progress line on stderr."""
    print(f"  {result.system:<8} {result.workload:<12} c={result.concurrency:<3} {result.rows_per_s:10.0f} rows/s",
          file=sys.stderr)


def table(results: list[Result]) -> str:
    """A Markdown table: FlareDB's rows, each with its ratio to sqlite3's same workload."""
    raw = {r.workload: r.rows_per_s for r in results if r.system == "sqlite3"}
    lines = ["| workload | system | concurrency | rows/s (queries/s) | requests/s | vs sqlite3 |",
             "|---|---|---:|---:|---:|---:|"]
    for r in sorted(results, key=lambda r: (r.workload, r.system != "sqlite3", r.concurrency)):
        ratio = "1" if r.system == "sqlite3" else f"{r.rows_per_s / raw[r.workload]:.3f}"
        lines.append(f"| {r.workload} | {r.system} | {r.concurrency} | {r.rows_per_s:.0f} | {r.requests_per_s:.0f} "
                     f"| {ratio} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per case")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each FlareDB case")
    parser.add_argument("--batch", type=int, default=100, help="INSERTs per batched request")
    parser.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 16],
                        help="FlareDB requests in flight, comma-separated")
    parser.add_argument("--log-level", default="WARNING", help="FlareDB's log level")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run every case and print the results."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flaredb-bench-") as root:
        print("raw sqlite3 in this process:", file=sys.stderr)
        results = raw_sqlite(Path(root) / "raw.sqlite3", args)
        (Path(root) / "platform").mkdir()
        running = start_platform(Path(root) / "platform", "flaredb", log_level=args.log_level)
        try:
            print("FlareDB over REST:", file=sys.stderr)
            results += asyncio.run(flaredb(running.services["flaredb"].url, running.admin_token(), args))
        finally:
            running.stop()
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "python": platform.python_version(),
                          "sqlite": sqlite3.sqlite_version, "results": [asdict(r) for r in results]}, indent=2))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
