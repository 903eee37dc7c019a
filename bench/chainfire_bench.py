"""ChainFire throughput and latency: put and get, over REST (aiohttp) and gRPC (grpc.aio).

Starts a ChainFire on free 127.0.0.1 ports over a temporary data directory (or measures one that
runs already: --rest / --grpc, on 127.0.0.1 only), then for each transport runs put, then get, at
each concurrency, for --duration seconds or --ops operations, whichever ends first, after a short
warm-up. Reports operations per second and the median and 99th percentile latency.

    .venv/bin/python bench/chainfire_bench.py                 # the whole run, about a minute
    .venv/bin/python bench/chainfire_bench.py --duration 2 --concurrency 1,16,64 --json
    .venv/bin/python bench/chainfire_bench.py --rest 127.0.0.1:8081 --grpc 127.0.0.1:50051

A benchmark, not a test: it asserts nothing, it reports numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import grpc

from photoncloud.chainfire.v1 import kv_pb2 as pb
from photoncloud.chainfire.v1 import kv_pb2_grpc as pb_grpc
from photoncloud.common.testing import DIRECT, start_platform

LOOPBACK = "127.0.0.1"
TXN_BATCH = 128  # the most operations one transaction branch may hold

Op = Callable[[int], Awaitable[None]]


@dataclass
class Result:
    transport: str
    op: str
    concurrency: int
    ops: int
    errors: int
    seconds: float
    ops_per_second: float
    p50_ms: float
    p99_ms: float
    first_error: str = ""


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def measure(op: Op, concurrency: int, duration: float, max_ops: int) -> tuple[list[float], int, str, float]:
    """Run op from `concurrency` workers until duration or max_ops: latencies, errors, first error, seconds."""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    counter = itertools.count()
    started = time.perf_counter()
    deadline = started + duration

    async def worker() -> None:
        nonlocal errors, first_error
        while time.perf_counter() < deadline:
            i = next(counter)
            if i >= max_ops:
                return
            begun = time.perf_counter()
            try:
                await op(i)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"[:200]
                continue
            latencies.append(time.perf_counter() - begun)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, first_error, time.perf_counter() - started


async def run_case(transport: str, name: str, op: Op, concurrency: int, args: argparse.Namespace) -> Result:
    if args.warmup > 0:
        await measure(op, concurrency, args.warmup, args.ops)
    latencies, errors, first_error, seconds = await measure(op, concurrency, args.duration, args.ops)
    latencies.sort()
    return Result(transport, name, concurrency, len(latencies), errors, round(seconds, 3),
                  round(len(latencies) / seconds, 1), round(percentile(latencies, 0.50) * 1000, 3),
                  round(percentile(latencies, 0.99) * 1000, 3), first_error)


def key(i: int, keys: int) -> str:
    return f"bench/{i % keys:06d}"


@dataclass
class Client:
    """One transport's operations: put and get of key number i, and writing every key once."""

    put: Op
    get: Op
    prefill: Callable[[], Awaitable[None]]


@asynccontextmanager
async def rest_client(address: str, concurrency: int, args: argparse.Namespace) -> AsyncIterator[Client]:
    base = f"http://{address}/api/v1"
    value = "x" * args.value_size
    body = json.dumps({"value": value}).encode()
    headers = {"Authorization": f"Bearer {args.token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), headers=headers) as session:

        async def call(method: str, url: str, data: bytes | None = None) -> None:
            async with session.request(method, url, data=data) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")

        async def prefill() -> None:
            for batch in batches(args.keys):
                puts = [{"put": {"key": key(i, args.keys), "value": value}} for i in batch]
                await call("POST", f"{base}/txn", json.dumps({"success": puts}).encode())

        yield Client(put=lambda i: call("PUT", f"{base}/kv/{key(i, args.keys)}", body),
                     get=lambda i: call("GET", f"{base}/kv/{key(i, args.keys)}"), prefill=prefill)


@asynccontextmanager
async def grpc_client(address: str, concurrency: int, args: argparse.Namespace) -> AsyncIterator[Client]:
    value = b"x" * args.value_size
    # One HTTP/2 connection for every worker, straight to loopback (never through an http_proxy).
    metadata = (("authorization", f"Bearer {args.token}"),)
    async with grpc.aio.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        stub = pb_grpc.KVStub(channel)

        async def put(i: int) -> None:
            await stub.Put(pb.PutRequest(key=key(i, args.keys).encode(), value=value), metadata=metadata)

        async def get(i: int) -> None:
            response = await stub.Range(pb.RangeRequest(key=key(i, args.keys).encode()), metadata=metadata)
            if len(response.kvs) != 1:
                raise RuntimeError("key not found")

        async def prefill() -> None:
            for batch in batches(args.keys):
                puts = [pb.RequestOp(request_put=pb.PutRequest(key=key(i, args.keys).encode(), value=value))
                        for i in batch]
                await stub.Txn(pb.TxnRequest(success=puts), metadata=metadata)

        yield Client(put=put, get=get, prefill=prefill)


def batches(keys: int) -> list[range]:
    return [range(start, min(start + TXN_BATCH, keys)) for start in range(0, keys, TXN_BATCH)]


CLIENTS = {"rest": rest_client, "grpc": grpc_client}


async def bench(addresses: dict[str, str], args: argparse.Namespace) -> list[Result]:
    """Every case: for each transport, put then get, at each concurrency."""
    results = []
    for transport in args.transport:
        client = CLIENTS[transport]
        for op in args.op:
            if op == "get":  # every key read must exist
                async with client(addresses[transport], 1, args) as ops:
                    await ops.prefill()
            for concurrency in args.concurrency:
                async with client(addresses[transport], concurrency, args) as ops:
                    result = await run_case(transport, op, getattr(ops, op), concurrency, args)
                results.append(result)
                report_progress(result)
    return results


def report_progress(result: Result) -> None:
    print(f"  {result.transport} {result.op} x{result.concurrency}: {result.ops_per_second:.0f} ops/s",
          file=sys.stderr, flush=True)


@contextmanager
def chainfire(log_level: str) -> Iterator[tuple[str, str, str]]:
    """IAM and ChainFire processes on free loopback ports over a temporary data directory:
    ChainFire's REST and gRPC addresses, and an admin token."""
    with tempfile.TemporaryDirectory(prefix="chainfire-bench-") as data_dir:
        try:
            running = start_platform(Path(data_dir), "chainfire", log_level=log_level)
        except RuntimeError as exc:
            sys.exit(str(exc))
        service = running.services["chainfire"]
        try:
            yield f"{LOOPBACK}:{service.rest_port}", f"{LOOPBACK}:{service.grpc_port}", running.admin_token()
        finally:
            running.stop()


def wait_healthy(address: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with DIRECT.open(f"http://{address}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"chainfire at {address} is not healthy after {timeout:.0f}s")


def loopback_address(value: str) -> str:
    """HOST:PORT on 127.0.0.1 (`localhost` is taken as 127.0.0.1); anything else is refused."""
    host, _, port = value.rpartition(":")
    if host not in (LOOPBACK, "localhost") or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r}: give 127.0.0.1:PORT (the benchmark only talks to loopback)")
    return f"{LOOPBACK}:{port}"


def positive_ints(value: str) -> list[int]:
    numbers = [int(part) for part in value.split(",") if part.strip()]
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError("give positive integers separated by commas, e.g. 1,64")
    return numbers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rest", type=loopback_address, help="measure a running ChainFire's REST port, 127.0.0.1:PORT")
    parser.add_argument("--grpc", type=loopback_address, help="measure a running ChainFire's gRPC port, 127.0.0.1:PORT")
    parser.add_argument("--transport", default="rest,grpc", help="which transports (default: rest,grpc)")
    parser.add_argument("--op", default="put,get", help="which operations (default: put,get)")
    parser.add_argument("--concurrency", type=positive_ints, default=[1, 64],
                        help="requests in flight, comma-separated (default: 1,64)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per case (default: 5)")
    parser.add_argument("--ops", type=int, default=100_000, help="at most this many operations per case")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each case")
    parser.add_argument("--keys", type=int, default=1000, help="distinct keys written and read (default: 1000)")
    parser.add_argument("--value-size", type=int, default=100, help="bytes per value (default: 100)")
    parser.add_argument("--log-level", default="INFO", help="the started server's log level (default: INFO)")
    parser.add_argument("--token", default=os.environ.get("PHOTONCLOUD_TOKEN", ""),
                        help="with --rest/--grpc: an access token that may read and write keys (env PHOTONCLOUD_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    args.transport = [t for t in args.transport.split(",") if t]
    args.op = [o for o in args.op.split(",") if o]
    if not set(args.transport) <= {"rest", "grpc"} or not set(args.op) <= {"put", "get"}:
        parser.error("--transport takes rest and/or grpc, --op put and/or get")
    if args.rest or args.grpc:  # a running server: only the transports it was given
        args.transport = [t for t in args.transport if getattr(args, t)]
    return args


def table(results: list[Result]) -> str:
    header = f"{'transport':<9} {'op':<4} {'conc':>5} {'ops':>8} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.transport:<9} {r.op:<4} {r.concurrency:>5} {r.ops:>8} {r.ops_per_second:>9.1f} "
                     f"{r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>6}")
        if r.first_error:
            lines.append(f"  first error: {r.first_error}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    settings = {k: getattr(args, k) for k in ("duration", "ops", "warmup", "keys", "value_size", "concurrency")}
    print(f"chainfire bench: {settings}, {machine['cpus']} CPUs", file=sys.stderr)
    if args.rest or args.grpc:
        if args.rest:
            wait_healthy(args.rest, timeout=5)
        results = asyncio.run(bench({"rest": args.rest, "grpc": args.grpc}, args))
    else:
        with chainfire(args.log_level) as (rest, grpc_address, args.token):
            results = asyncio.run(bench({"rest": rest, "grpc": grpc_address}, args))
    if args.json:
        print(json.dumps({"machine": machine, "settings": settings, "results": [asdict(r) for r in results]},
                         indent=2))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
