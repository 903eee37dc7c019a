"""FlareDB over REST next to raw sqlite3 in this process, with the same durability settings, and
next to a bare aiohttp JSON endpoint.

Three workloads, each for --duration seconds (after --warmup unmeasured ones) at each --concurrency
(requests in flight):
single-statement inserts (one INSERT per request), batched inserts (--batch INSERTs per request, one
transaction) and point queries (SELECT by primary key, consistency weak). The same three run on a
sqlite3 file in this process, in WAL mode with synchronous=FULL (FlareDB's settings), one
transaction per insert or per batch, on one thread; and the point queries' rate is set beside a bare
aiohttp endpoint's (bench/anchor.py: GET of a small JSON object, no token, no log, no store) with the
same client. Each case's time is cut into --rounds slices that alternate with the slices of what it
is compared with (sqlite3's same workload at one in flight, the anchor at the same concurrency), so
that a disk or a machine busier at one moment weighs on both alike. Prints a table with the ratios.

    .venv/bin/python bench/flaredb_bench.py             # starts IAM, FlareDB and the anchor on free ports
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

import anchor

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
    ratio: float | None = None  # FlareDB's rows/s over what it is compared with (None: the reference)
    versus: str = ""  # what that is


class Tally:
    """Requests, errors and seconds added up over a case's slices."""

    def __init__(self) -> None:
        self.done = self.errors = 0
        self.seconds = 0.0

    def add(self, done: int, errors: int, seconds: float) -> None:
        """Count one slice."""
        self.done += done
        self.errors += errors
        self.seconds += seconds


COUNTER = iter(range(10**12))


async def measure(call: Callable[[int], Awaitable[None]], concurrency: int, duration: float,
                  warmup: float = 0.0) -> tuple[int, int, float]:
    """Run call(i) from `concurrency` workers for `duration` seconds after `warmup` unmeasured ones:
    (requests, errors, seconds)."""
    counter = COUNTER
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


class RawSqlite:
    """The workloads on a sqlite3 file in this process: WAL, synchronous=FULL, one thread."""

    def __init__(self, path: Path, batch: int):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        self.batch = batch
        self.count = 0

    def single(self) -> None:
        """One insert: autocommit, one transaction, one fsync."""
        self.db.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
        self.count += 1

    def batched(self) -> None:
        """batch inserts in one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        for _ in range(self.batch):
            self.db.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
        self.db.execute("COMMIT")
        self.count += self.batch

    def query(self) -> None:
        """A point query on a random existing id."""
        self.db.execute("SELECT v FROM t WHERE id = ?", (random.randint(1, self.count),)).fetchall()

    def run(self, once: Callable[[], None], seconds: float) -> tuple[int, int, float]:
        """once() repeated for seconds: (times, 0, seconds)."""
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            once()
            n += 1
        return n, 0, time.perf_counter() - started


async def compare(url: str, anchor_url: str, token: str, raw: RawSqlite, args: argparse.Namespace) -> list[Result]:
    """The three workloads over FlareDB's REST API, each in slices alternating with what it is compared with."""
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

        async def bare(i: int) -> None:
            async with session.get(anchor_url) as response:
                assert response.status == 200
                await response.json()

        await sql([{"sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"}])
        insert = {"sql": "INSERT INTO t (v) VALUES (?)", "params": [ROW]}

        async def single(i: int) -> None:
            await sql([insert])

        async def batch(i: int) -> None:
            await sql([insert] * args.batch)

        async def query(i: int) -> None:
            result = await sql([{"sql": "SELECT v FROM t WHERE id = ?", "params": [random.randint(1, count)]}])
            assert result["results"][0]["rows"], result

        count = 0
        workloads = (("insert", single, 1, raw.single), (f"insert x{args.batch}", batch, args.batch, raw.batched),
                     ("query", query, 1, raw.query))
        slice_seconds = args.duration / args.rounds
        for workload, call, rows, local in workloads:
            if workload == "query":
                count = (await sql([{"sql": "SELECT max(id) FROM t"}]))["results"][0]["rows"][0][0]
            for concurrency in args.concurrency:
                mine, theirs, plain = Tally(), Tally(), Tally()
                await measure(call, concurrency, 0, args.warmup)
                for _ in range(args.rounds):
                    if concurrency == 1:
                        theirs.add(*raw.run(local, slice_seconds))
                    if workload == "query":
                        plain.add(*await measure(bare, concurrency, slice_seconds))
                    mine.add(*await measure(call, concurrency, slice_seconds))
                rate = mine.done * rows / mine.seconds
                if theirs.done:
                    results.append(Result("sqlite3", workload, 1, theirs.done * rows / theirs.seconds,
                                          theirs.done / theirs.seconds, 0))
                    report(results[-1])
                if plain.done:
                    results.append(Result("anchor", workload, concurrency, plain.done / plain.seconds,
                                          plain.done / plain.seconds, plain.errors))
                    report(results[-1])
                reference = (plain.done / plain.seconds, "anchor") if plain.done else (
                    next(r.rows_per_s for r in results if r.system == "sqlite3" and r.workload == workload), "sqlite3")
                results.append(Result("FlareDB", workload, concurrency, rate, mine.done / mine.seconds, mine.errors,
                                      rate / reference[0], reference[1]))
                report(results[-1])
    return results


def report(result: Result) -> None:
    """A progress line on stderr."""
    print(f"  {result.system:<8} {result.workload:<12} c={result.concurrency:<3} {result.rows_per_s:10.0f} rows/s",
          file=sys.stderr)


def table(results: list[Result]) -> str:
    """A Markdown table in the order measured: FlareDB's rows with their ratio to what they were set beside."""
    lines = ["| workload | system | concurrency | rows/s (queries/s) | requests/s | FlareDB / reference |",
             "|---|---|---:|---:|---:|---:|"]
    for r in results:
        ratio = f"{r.ratio:.3f} (vs {r.versus})" if r.ratio is not None else "reference"
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
    parser.add_argument("--rounds", type=int, default=3,
                        help="slices each case is cut into, alternating with its reference's")
    parser.add_argument("--log-level", default="INFO", help="FlareDB's log level (default INFO, as it runs)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run every case and print the results."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flaredb-bench-") as root:
        raw = RawSqlite(Path(root) / "raw.sqlite3", args.batch)
        (Path(root) / "platform").mkdir()
        bare, anchor_url = anchor.start()
        running = start_platform(Path(root) / "platform", "flaredb", log_level=args.log_level)
        try:
            url = running.services["flaredb"].url
            results = asyncio.run(compare(url, anchor_url, running.admin_token(), raw, args))
        finally:
            running.stop()
            bare.kill()
            bare.wait()
            raw.db.close()
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "python": platform.python_version(),
                          "sqlite": sqlite3.sqlite_version, "results": [asdict(r) for r in results]}, indent=2))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
