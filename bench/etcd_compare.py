"""ChainFire against etcd on the same machine, with the same client: put and get through etcd's v3
gRPC API (ChainFire's generated etcdserverpb stubs on grpc.aio), single node and three nodes.

Starts each system on free 127.0.0.1 ports over temporary data directories (removed afterwards):
etcd from Debian's etcd-server package (the `etcd` binary), and ChainFire with IAM (authentication
on: every call carries an admin token in etcd's `token` metadata; etcd runs without
authentication, its default). With three nodes the workers spread over the members, as etcd
clients do. Reports operations per second, median and 99th percentile latency, the servers' CPU
time per operation (user + system of every member's process, from /proc: unlike operations per
second it barely moves when other work shares the machine), and the ratio ChainFire / etcd. With
one node it also measures the gRPC anchor (grpc_anchor.py: etcd's Put and Range on a bare grpc.aio
server over a dict, no durability): the floor a Python gRPC server sets, which ChainFire's figures
can approach but not pass.

    .venv/bin/python bench/etcd_compare.py                       # everything, about three minutes
    .venv/bin/python bench/etcd_compare.py --nodes 1 --duration 2
    .venv/bin/python bench/etcd_compare.py --json

A benchmark, not a test: it asserts nothing, it reports numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

import grpc_anchor  # this folder's bare gRPC server
from chainfire_bench import batches, measure, percentile, positive_ints  # this folder's ChainFire bench
from photoncloud.common.testing import ServiceProcess, free_ports, start_platform
from photoncloud.etcd.v3 import rpc_pb2 as pb
from photoncloud.etcd.v3 import rpc_pb2_grpc as pb_grpc

LOOPBACK = "127.0.0.1"
STARTUP_SECONDS = 60


@dataclass(frozen=True)
class Target:
    """A running system: its members' gRPC addresses and the metadata every call carries."""

    system: str
    nodes: int
    endpoints: list[str]
    pids: tuple[int, ...]  # the members' processes, whose CPU time is counted
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass
class Result:
    """One case: a system, a cluster size, an operation and a concurrency."""

    system: str
    nodes: int
    op: str
    concurrency: int
    ops: int
    errors: int
    ops_per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float  # the members' CPU time per operation, microseconds
    first_error: str = ""


def cpu_seconds(pids: tuple[int, ...]) -> float:
    """User + system CPU seconds the processes have used (fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def wait_ready(target: Target, deadline: float) -> None:
    """Until every member answers Maintenance.Status and knows a leader."""
    for endpoint in target.endpoints:
        async with grpc.aio.insecure_channel(endpoint, options=[("grpc.enable_http_proxy", 0)]) as channel:
            stub = pb_grpc.MaintenanceStub(channel)
            while True:
                try:
                    status = await stub.Status(pb.StatusRequest(), metadata=target.metadata, timeout=2)
                    if status.leader:
                        break
                except grpc.aio.AioRpcError as exc:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{target.system} at {endpoint} is not ready: {exc.details()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target.system} at {endpoint} has no leader")
                await asyncio.sleep(0.2)


@contextmanager
def etcd(root: Path, nodes: int) -> Iterator[Target]:
    """Debian's etcd: `nodes` members on free loopback ports, fsync on (etcd's default)."""
    binary = shutil.which("etcd")
    if binary is None:
        sys.exit("etcd is not installed (apt-get install etcd-server)")
    ports = free_ports(2 * nodes)
    clients, peers = ports[:nodes], ports[nodes:]
    cluster = ",".join(f"m{i}=http://{LOOPBACK}:{peers[i]}" for i in range(nodes))
    token = f"bench-{secrets.token_hex(4)}"  # one per cluster: members with different tokens never meet
    processes = []
    try:
        for i in range(nodes):
            log = open(root / f"etcd-{i}.log", "wb")  # noqa: SIM115 - the child keeps it open
            processes.append(subprocess.Popen(
                [binary, "--name", f"m{i}", "--data-dir", str(root / f"etcd-{i}"),
                 "--listen-client-urls", f"http://{LOOPBACK}:{clients[i]}",
                 "--advertise-client-urls", f"http://{LOOPBACK}:{clients[i]}",
                 "--listen-peer-urls", f"http://{LOOPBACK}:{peers[i]}",
                 "--initial-advertise-peer-urls", f"http://{LOOPBACK}:{peers[i]}",
                 "--initial-cluster", cluster, "--initial-cluster-state", "new",
                 "--initial-cluster-token", token, "--log-level", "warn", "--logger", "zap"],
                stdout=log, stderr=subprocess.STDOUT))
            log.close()
        yield Target("etcd", nodes, [f"{LOOPBACK}:{port}" for port in clients], tuple(p.pid for p in processes))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def chainfire(root: Path, nodes: int, log_level: str) -> Iterator[Target]:
    """IAM and `nodes` ChainFire members (one Raft cluster when more than one), on free loopback ports."""
    running = start_platform(root, *(["chainfire"] if nodes == 1 else []), log_level=log_level)
    members = list(running.services.values())
    try:
        if nodes > 1:
            peers = [f"{LOOPBACK}:{port}" for port in free_ports(nodes)]
            secret = secrets.token_urlsafe(32)
            for i in range(nodes):
                members.append(ServiceProcess(
                    "chainfire", root / f"chainfire-{i}", "--iam-url", running.iam.url, "--log-level", log_level,
                    "--peer-address", peers[i], "--initial-cluster", ",".join(peers),
                    env={"CHAINFIRE_CLUSTER_SECRET": secret}).start(STARTUP_SECONDS))
        yield Target("chainfire", nodes, [f"{LOOPBACK}:{m.grpc_port}" for m in members],
                     tuple(m.process.pid for m in members if m.process), (("token", running.admin_token()),))
    finally:
        for member in members:
            member.stop()
        running.iam.stop()


@contextmanager
def anchor() -> Iterator[Target]:
    """The gRPC anchor in its own process on a free loopback port."""
    [port] = free_ports(1)
    process = grpc_anchor.start(port)
    try:
        yield Target("anchor", 1, [f"{LOOPBACK}:{port}"], (process.pid,))
    finally:
        process.terminate()
        process.wait(15)


@asynccontextmanager
async def workers_client(target: Target, args: argparse.Namespace) -> AsyncIterator[tuple]:
    """put(i), get(i) and prefill() over one channel per member; operation i goes to member i mod n."""
    value = b"x" * args.value_size
    channels = [grpc.aio.insecure_channel(e, options=[("grpc.enable_http_proxy", 0)]) for e in target.endpoints]
    stubs = [pb_grpc.KVStub(channel) for channel in channels]
    metadata = target.metadata

    def key(i: int) -> bytes:
        return f"bench/{i % args.keys:06d}".encode()

    async def put(i: int) -> None:
        await stubs[i % len(stubs)].Put(pb.PutRequest(key=key(i), value=value), metadata=metadata, timeout=30)

    async def get(i: int) -> None:
        reply = await stubs[i % len(stubs)].Range(pb.RangeRequest(key=key(i)), metadata=metadata, timeout=30)
        if len(reply.kvs) != 1:
            raise RuntimeError("key not found")

    async def prefill() -> None:
        for batch in batches(args.keys):
            ops = [pb.RequestOp(request_put=pb.PutRequest(key=key(i), value=value)) for i in batch]
            await stubs[0].Txn(pb.TxnRequest(success=ops), metadata=metadata, timeout=30)

    try:
        yield put, get, prefill
    finally:
        for channel in channels:
            await channel.close()


async def bench_target(target: Target, args: argparse.Namespace) -> list[Result]:
    """put, then get (every key written first), at each concurrency."""
    await wait_ready(target, time.monotonic() + STARTUP_SECONDS)
    results = []
    async with workers_client(target, args) as (put, get, prefill):
        for name, op in (("put", put), ("get", get)):
            if name == "get":
                await prefill()
            for concurrency in args.concurrency:
                if args.warmup > 0:
                    await measure(op, concurrency, args.warmup, args.ops)
                cpu_before = cpu_seconds(target.pids)
                latencies, errors, first_error, seconds = await measure(op, concurrency, args.duration, args.ops)
                cpu = cpu_seconds(target.pids) - cpu_before
                latencies.sort()
                result = Result(target.system, target.nodes, name, concurrency, len(latencies), errors,
                                round(len(latencies) / seconds, 1), round(percentile(latencies, 0.50) * 1000, 3),
                                round(percentile(latencies, 0.99) * 1000, 3),
                                round(cpu / max(1, len(latencies)) * 1e6, 1), first_error)
                print(f"  {result.system} x{result.nodes} {name} c{concurrency}: {result.ops_per_second:.0f} ops/s",
                      file=sys.stderr, flush=True)
                results.append(result)
    return results


def run(args: argparse.Namespace) -> list[Result]:
    """Every system at every cluster size, one after the other (never two at once on the machine)."""
    results = []
    for nodes in args.nodes:
        for system in args.systems:
            if system == "anchor" and nodes != 1:
                continue  # one process: it has no cluster
            with tempfile.TemporaryDirectory(prefix=f"{system}-bench-") as data_dir:
                root = Path(data_dir)
                starting = {"etcd": lambda: etcd(root, nodes), "anchor": anchor,
                            "chainfire": lambda: chainfire(root, nodes, args.log_level)}[system]()
                try:
                    with starting as target:
                        results += asyncio.run(bench_target(target, args))
                except RuntimeError as exc:
                    print(f"{system} x{nodes}: {exc}", file=sys.stderr)
    return results


def table(results: list[Result]) -> str:
    """One row per case: ChainFire's and etcd's numbers side by side, and ChainFire / etcd; then the
    anchor's ops/s and ChainFire / anchor."""
    by_case = {(r.nodes, r.op, r.concurrency, r.system): r for r in results}
    header = ("| nodes | op | conc | ChainFire ops/s | p50 ms | p99 ms | CPU us/op | etcd ops/s | p50 ms | p99 ms "
              "| CPU us/op | ops/s ratio | p50 ratio | anchor ops/s | vs anchor |")
    lines = [header, "|" + "---:|" * 15]
    for nodes, op, concurrency in sorted({k[:3] for k in by_case}, key=lambda k: (k[0], k[1] != "put", k[2])):
        cf, et = by_case.get((nodes, op, concurrency, "chainfire")), by_case.get((nodes, op, concurrency, "etcd"))
        cells = [str(nodes), op, str(concurrency)]
        for r in (cf, et):
            cells += [f"{r.ops_per_second:.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", f"{r.server_cpu_us:.0f}"] \
                if r else ["-"] * 4
        ratio = cf and et and et.ops_per_second and cf.ops_per_second / et.ops_per_second
        p50 = cf and et and et.p50_ms and cf.p50_ms / et.p50_ms
        cells += [f"{ratio:.2f}" if ratio else "-", f"{p50:.2f}" if p50 else "-"]
        floor = by_case.get((nodes, op, concurrency, "anchor"))
        of_floor = cf and floor and floor.ops_per_second and cf.ops_per_second / floor.ops_per_second
        cells += [f"{floor.ops_per_second:.0f}" if floor else "-", f"{of_floor:.2f}" if of_floor else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    errors = [f"{r.system} x{r.nodes} {r.op} c{r.concurrency}: {r.errors} errors, first: {r.first_error}"
              for r in results if r.errors]
    return "\n".join(lines + errors)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; --help lists them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=positive_ints, default=[1, 3], help="cluster sizes (default: 1,3)")
    parser.add_argument("--concurrency", type=positive_ints, default=[1, 64],
                        help="requests in flight, comma-separated (default: 1,64)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per case (default: 5)")
    parser.add_argument("--ops", type=int, default=100_000, help="at most this many operations per case")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each case")
    parser.add_argument("--keys", type=int, default=1000, help="distinct keys written and read (default: 1000)")
    parser.add_argument("--value-size", type=int, default=100, help="bytes per value (default: 100)")
    parser.add_argument("--log-level", default="INFO", help="ChainFire's and IAM's log level (default: INFO)")
    parser.add_argument("--systems", default="chainfire,etcd,anchor",
                        help="which systems (default: chainfire,etcd,anchor)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    args.systems = [system for system in args.systems.split(",") if system]
    if not args.systems or not set(args.systems) <= {"chainfire", "etcd", "anchor"}:
        parser.error("--systems takes chainfire, etcd and/or anchor")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the comparison and print the table (or JSON)."""
    args = parse_args(argv)
    etcd_version = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout.split("\n")[0] \
        if shutil.which("etcd") else "etcd: not installed"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
               "etcd": etcd_version}
    settings = {k: getattr(args, k) for k in ("nodes", "concurrency", "duration", "warmup", "keys", "value_size")}
    print(f"etcd comparison: {settings}, {machine}", file=sys.stderr)
    results = run(args)
    if args.json:
        print(json.dumps({"machine": machine, "settings": settings, "results": [asdict(r) for r in results]},
                         indent=2))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
