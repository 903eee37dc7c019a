"""k8shost: pod create-to-Running latency with a node agent, and pod list latency with many pods.

Starts IAM on free 127.0.0.1 ports over a temporary data directory, then two k8shost API servers:

- pod start: one k8shost (its defaults: the scheduler on) and one node agent
  (`python -m photoncloud.k8shost.agent`, which makes its own IAM service account from the
  administrator's password file on its first start, as `make run` does). After one warm-up pod,
  --pods pods (each one container, `sleep 3600`, in its bubblewrap sandbox unless --unsandboxed)
  are created in one namespace, first all at once,
  then one at a time (each waited for until Running). For each pod: the time from its
  POST /api/v1/pods returning to the watch event (GET /api/v1/watch/pods, server-sent events,
  opened before the first POST) showing status.phase Running; and, on the way, to the event
  showing it bound to the node (spec.node_name set). The pods are deleted after each run, and
  the run waits for the agent to stop their processes.
- list: another k8shost, by default with --disable-scheduler and no agent (the pods stay
  Pending, unbound), where --list-pods pods are created at --create-concurrency requests in
  flight (the creation rate), then GET /api/v1/pods?namespace=... is timed --requests times,
  one request in flight: the whole list following next_page_token at the default page size
  (100), the whole list in one page (page_size=1000, the maximum), and one page of 100.
  --list-with-scheduler runs this with the scheduler on instead (no node: every pod is
  Unschedulable, which the scheduler re-examines).

    .venv/bin/python bench/k8shost_bench.py                   # about a minute
    .venv/bin/python bench/k8shost_bench.py --pods 20 --list-pods 500 --json

A benchmark, not a test: it asserts nothing, it reports numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as python_platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from chainfire_bench import percentile  # noqa: E402 - a sibling script: the same percentile rule
from photoncloud.common.testing import Platform, ServiceProcess, start_platform

NAMESPACE = "bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- processes ------------------------------------------------------------------------------------

def start_k8shost(running: Platform, root: Path, name: str, log_level: str, *flags: str) -> ServiceProcess:
    """A k8shost API server pointed at the platform's IAM, on free ports."""
    kube = ServiceProcess("k8shost", root / name, "--iam-url", running.iam.url, "--log-level", log_level,
                          "--revocation-poll-seconds", "0.5", *flags)
    kube.start()
    running.services[name] = kube
    return kube


def start_agent(running: Platform, kube: ServiceProcess, root: Path, args: argparse.Namespace) -> subprocess.Popen:
    """A node agent that bootstraps its own IAM account; returned once its node is Ready."""
    password_file = root / "admin-password"
    with os.fdopen(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(running.admin_password + "\n")
    log_path = root / "k8shost-agent.log"
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        agent = subprocess.Popen(
            [sys.executable, "-m", "photoncloud.k8shost.agent", "--api-url", kube.url, "--iam-url", running.iam.url,
             "--node-name", "bench-node", "--data-dir", str(root / "k8shost-agent"),
             "--bootstrap-password-file", str(password_file), "--daemon-port", "0", "--log-level", args.log_level,
             "--max-pods", str(max(110, args.pods + 10)), "--heartbeat-seconds", str(args.heartbeat_seconds),
             "--sync-seconds", str(args.sync_seconds),
             *(["--insecure-unsandboxed-pods"] if args.unsandboxed else [])],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    token, deadline = running.admin_token(), time.monotonic() + 60
    while True:
        if agent.poll() is not None:
            raise RuntimeError(f"the node agent exited:\n{log_path.read_text()}")
        _, nodes = running.request("GET", f"{kube.url}/api/v1/nodes", token=token)
        if any(c["type"] == "Ready" and c["status"] == "True"
               for node in nodes.get("data", {}).get("items", ()) for c in node["status"]["conditions"]):
            return agent
        if time.monotonic() > deadline:
            agent.kill()
            raise RuntimeError(f"no node registered in 60 s:\n{log_path.read_text()}")
        time.sleep(0.2)


def stop_agent(agent: subprocess.Popen) -> None:
    """SIGTERM (the agent stops its pods), then SIGKILL if it lingers."""
    if agent.poll() is None:
        agent.terminate()
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def children(pid: int) -> int:
    """How many live processes have pid as their parent (Linux /proc)."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            count += 1
    return count


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process used so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class LoadSampler:
    """The 1-minute load average, sampled every second while a phase runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            await asyncio.sleep(1.0)

    def __enter__(self) -> LoadSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        return {"load_start": round(self.samples[0], 2), "load_max": round(max(self.samples), 2),
                "load_end": round(self.samples[-1], 2)}


# -- the API --------------------------------------------------------------------------------------

class Api:
    """JSON calls to one k8shost's REST API with a token."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session, self.base = session, f"{url}/api/v1"

    async def call(self, method: str, path: str, body: dict | None = None, expected: int = 200) -> dict:
        async with self.session.request(method, self.base + path, json=body) as response:
            data = await response.json()
            if response.status != expected:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}: {data}")
            return data["data"]


def pod_body(name: str) -> dict[str, Any]:
    return {"namespace": NAMESPACE, "name": name, "command": ["sleep", "3600"]}


class PodWatch:
    """The pods of a namespace as a watch (server-sent events) shows them: when each was first seen
    bound to a node and first seen Running (the client's perf_counter)."""

    def __init__(self) -> None:
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.events = 0
        self._waiters: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task | None = None
        self._response: aiohttp.ClientResponse | None = None

    async def open(self, api: Api, namespace: str) -> None:
        listing = await api.call("GET", f"/pods?namespace={namespace}&page_size=1")
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        self._response = await api.session.get(
            f"{api.base}/watch/pods", params={"namespace": namespace, "resource_version": listing["resource_version"]},
            timeout=timeout)
        if self._response.status != 200:
            raise RuntimeError(f"the watch was refused: HTTP {self._response.status}")
        self._task = asyncio.get_running_loop().create_task(self._read(self._response))

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        async for line in response.content:
            if not line.startswith(b"data: "):
                continue
            now = time.perf_counter()
            event = json.loads(line[len(b"data: "):])
            pod = event.get("pod")
            if pod is None:
                continue
            self.events += 1
            name = pod["metadata"]["name"]
            if pod["spec"]["node_name"] and name not in self.bound:
                self.bound[name] = now
            if pod["status"]["phase"] == "Running" and name not in self.running:
                self.running[name] = now
                self._waiter(name).set()

    def _waiter(self, name: str) -> asyncio.Event:
        return self._waiters.setdefault(name, asyncio.Event())

    async def running_of(self, names: list[str], timeout: float) -> None:
        """Wait until every named pod was seen Running (or timeout seconds pass)."""
        waits = [asyncio.ensure_future(self._waiter(n).wait()) for n in names]
        try:
            await asyncio.wait(waits, timeout=timeout)
        finally:
            for w in waits:
                w.cancel()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._response is not None:
            self._response.close()


def stats_ms(values: list[float]) -> dict[str, float]:
    """count, p50, p99, mean and max of seconds, in milliseconds."""
    values = sorted(values)
    if not values:
        return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0, "max_ms": 0.0}
    return {"count": len(values), "p50_ms": round(percentile(values, 0.5) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            "mean_ms": round(sum(values) / len(values) * 1000, 1), "max_ms": round(values[-1] * 1000, 1)}


# -- pod start latency ----------------------------------------------------------------------------

async def pod_start(url: str, token: str, agent: subprocess.Popen, server_pid: int,
                    args: argparse.Namespace) -> list[dict[str, Any]]:
    """Create-to-Running of --pods pods, created all at once, then one at a time."""
    results = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        api = Api(session, url)
        watch = PodWatch()
        await watch.open(api, NAMESPACE)
        try:
            created: dict[str, float] = {}

            async def create(name: str) -> None:
                await api.call("POST", "/pods", pod_body(name), 201)
                created[name] = time.perf_counter()

            async def clean(names: list[str]) -> None:
                gate = asyncio.Semaphore(8)

                async def delete(name: str) -> None:
                    async with gate:
                        await api.call("DELETE", f"/pods/{NAMESPACE}/{name}", {})

                await asyncio.gather(*(delete(n) for n in names))
                deadline = time.monotonic() + 60
                while children(agent.pid) and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)

            await create("warm-up")  # the first pod of a fresh agent, not counted
            await watch.running_of(["warm-up"], args.timeout)
            await clean(["warm-up"])

            for mode in ("concurrent", "sequential"):
                names = [f"{mode[:3]}-{i:04d}" for i in range(args.pods)]
                cpu_before = cpu_seconds(server_pid), cpu_seconds(agent.pid)
                events_before = watch.events
                with LoadSampler() as load:
                    started = time.perf_counter()
                    if mode == "concurrent":
                        await asyncio.gather(*(create(n) for n in names))
                        await watch.running_of(names, args.timeout)
                    else:
                        for name in names:
                            await create(name)
                            await watch.running_of([name], args.timeout)
                    ended = max((watch.running.get(n, 0.0) for n in names), default=started)
                cpu_after = cpu_seconds(server_pid), cpu_seconds(agent.pid)
                running = [n for n in names if n in watch.running]

                def since(times: dict[str, float], pick: Any) -> float:
                    seen = [times[n] for n in names if n in times]
                    return round(pick(seen) - started, 3) if seen else 0.0

                result = {"mode": mode, "pods": len(names), "running": len(running),
                          "seconds_to_all_running": round(ended - started, 2),
                          "timeline_s": {"last_post_returned": since(created, max),
                                         "first_bound": since(watch.bound, min), "last_bound": since(watch.bound, max),
                                         "first_running": since(watch.running, min),
                                         "last_running": since(watch.running, max)},
                          "create_to_running": stats_ms([watch.running[n] - created[n] for n in running]),
                          "create_to_bound": stats_ms([watch.bound[n] - created[n] for n in names
                                                       if n in watch.bound]),
                          "bound_to_running": stats_ms([watch.running[n] - watch.bound[n] for n in running
                                                        if n in watch.bound]),
                          "watch_events": watch.events - events_before,
                          "cpu_seconds": {"k8shost": round(cpu_after[0] - cpu_before[0], 2),
                                          "agent": round(cpu_after[1] - cpu_before[1], 2)},
                          **load.summary()}
                results.append(result)
                print(f"  {mode}: {len(running)}/{len(names)} Running, p50 "
                      f"{result['create_to_running']['p50_ms']} ms", file=sys.stderr, flush=True)
                await clean(names)
        finally:
            await watch.close()
    return results


# -- list latency ---------------------------------------------------------------------------------

async def listing(url: str, token: str, server_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    """Create --list-pods pods (the rate), then time listings of them."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"},
                                     connector=aiohttp.TCPConnector(limit=args.create_concurrency)) as session:
        api = Api(session, url)
        names = iter(range(args.list_pods))
        latencies: list[float] = []
        done: list[float] = []

        async def creator() -> None:
            for i in names:
                begun = time.perf_counter()
                await api.call("POST", "/pods", pod_body(f"pod-{i:05d}"), 201)
                done.append(time.perf_counter())
                latencies.append(done[-1] - begun)

        cpu_before = cpu_seconds(server_pid)
        with LoadSampler() as load:
            started = time.perf_counter()
            await asyncio.gather(*(creator() for _ in range(args.create_concurrency)))
            seconds = time.perf_counter() - started
        tenth = max(1, len(done) // 10)  # the rate over the first and the last tenth of the pods
        creation = {"pods": args.list_pods, "concurrency": args.create_concurrency, "seconds": round(seconds, 2),
                    "pods_per_second": round(args.list_pods / seconds, 1),
                    "pods_per_second_first_tenth": round(tenth / (done[tenth - 1] - started), 1),
                    "pods_per_second_last_tenth": round(tenth / (done[-1] - done[-tenth - 1]), 1)
                    if len(done) > tenth else 0.0, "post": stats_ms(latencies),
                    "cpu_seconds_k8shost": round(cpu_seconds(server_pid) - cpu_before, 2), **load.summary()}
        print(f"  created {args.list_pods} pods: {creation['pods_per_second']}/s", file=sys.stderr, flush=True)
        # No requests for --settle seconds; over the last three (at most), what the server does on its own.
        await asyncio.sleep(max(0.0, args.settle - 3))
        cpu_before, settle_started = cpu_seconds(server_pid), time.perf_counter()
        await asyncio.sleep(min(3.0, args.settle))
        creation["idle_cpu_percent"] = round((cpu_seconds(server_pid) - cpu_before)
                                             / (time.perf_counter() - settle_started) * 100, 1)

        async def fetch(page_size: int, whole: bool) -> tuple[int, int, int]:
            """(bytes, items, requests) of one listing: every page if whole, else the first."""
            size = items = requests = 0
            token = ""
            while True:
                query = f"/pods?namespace={NAMESPACE}" + (f"&page_size={page_size}" if page_size else "") + \
                        (f"&page_token={token}" if token else "")
                async with session.get(api.base + query) as response:
                    raw = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}: {raw[:300]!r}")
                page = json.loads(raw)["data"]
                size, items, requests = size + len(raw), items + len(page["items"]), requests + 1
                token = page["next_page_token"]
                if not whole or not token:
                    return size, items, requests

        cases = []
        for name, page_size, whole in (("whole list, default pages", 0, True),
                                       ("whole list, page_size=1000", 1000, True),
                                       ("one page, page_size=100", 100, False)):
            await fetch(page_size, whole)  # warm-up
            times = []
            cpu_before = cpu_seconds(server_pid)
            with LoadSampler() as load:
                for _ in range(args.requests):
                    begun = time.perf_counter()
                    size, items, requests = await fetch(page_size, whole)
                    times.append(time.perf_counter() - begun)
            cases.append({"case": name, "items": items, "requests_per_listing": requests, "bytes": size,
                          "listings": len(times), **stats_ms(times),
                          "server_cpu_ms_per_listing": round((cpu_seconds(server_pid) - cpu_before)
                                                             / len(times) * 1000, 1), **load.summary()})
            print(f"  {name}: p50 {cases[-1]['p50_ms']} ms", file=sys.stderr, flush=True)
    return {"scheduler": args.list_with_scheduler, "creation": creation, "listings": cases}


# -- main -----------------------------------------------------------------------------------------

def namespace(running: Platform, kube: ServiceProcess, project_id: str, token: str) -> None:
    status, body = running.request("POST", f"{kube.url}/api/v1/namespaces",
                                   {"name": NAMESPACE, "project_id": project_id}, token)
    if status != 201:
        raise RuntimeError(f"cannot create the namespace: {status} {body}")


def run(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    running = start_platform(root, log_level=args.log_level)  # IAM alone; the k8shosts are started here
    results: dict[str, Any] = {"cpus": os.cpu_count(), "python": python_platform.python_version()}
    try:
        _, project_id = running.project("bench")
        if args.pods:
            kube = start_k8shost(running, root, "k8shost-pods", args.log_level)
            token = running.admin_token()
            namespace(running, kube, project_id, token)
            agent = start_agent(running, kube, root, args)
            try:
                assert kube.process is not None
                results["pod_start"] = asyncio.run(pod_start(kube.url, token, agent, kube.process.pid, args))
            finally:
                stop_agent(agent)
                kube.stop()
        if args.list_pods:
            flags = () if args.list_with_scheduler else ("--disable-scheduler",)
            kube = start_k8shost(running, root, "k8shost-list", args.log_level, *flags)
            token = running.admin_token()
            namespace(running, kube, project_id, token)
            assert kube.process is not None
            results["list"] = asyncio.run(listing(kube.url, token, kube.process.pid, args))
    finally:
        running.stop()
    return results


def print_tables(results: dict[str, Any]) -> None:
    if "pod_start" in results:
        print("| pods created | Running | all Running after s | create-to-Running p50 ms | p99 ms | mean ms | max ms |"
              " create-to-bound p50 ms | bound-to-Running p50 ms | load max |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in results["pod_start"]:
            c = r["create_to_running"]
            print(f"| {r['pods']} {r['mode']} | {r['running']} | {r['seconds_to_all_running']} | {c['p50_ms']} |"
                  f" {c['p99_ms']} | {c['mean_ms']} | {c['max_ms']} | {r['create_to_bound']['p50_ms']} |"
                  f" {r['bound_to_running']['p50_ms']} | {r['load_max']} |")
        for r in results["pod_start"]:
            t = r["timeline_s"]
            print(f"\n{r['mode']}: last POST returned at {t['last_post_returned']} s; bound from {t['first_bound']} to "
                  f"{t['last_bound']} s; Running from {t['first_running']} to {t['last_running']} s; CPU: k8shost "
                  f"{r['cpu_seconds']['k8shost']} s, agent {r['cpu_seconds']['agent']} s", end="")
        print()
    if "list" in results:
        c = results["list"]["creation"]
        print(f"\nCreated {c['pods']} pods at {c['concurrency']} in flight in {c['seconds']} s: "
              f"{c['pods_per_second']} pods/s (first tenth {c['pods_per_second_first_tenth']}/s, last tenth "
              f"{c['pods_per_second_last_tenth']}/s; POST p50 {c['post']['p50_ms']} ms, p99 {c['post']['p99_ms']} ms; "
              f"scheduler {'on' if results['list']['scheduler'] else 'off'}; server CPU while idle afterwards: "
              f"{c['idle_cpu_percent']} %)\n")
        print("| listing | pods | requests | bytes | p50 ms | p99 ms | mean ms | max ms | server CPU ms |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in results["list"]["listings"]:
            print(f"| {r['case']} | {r['items']} | {r['requests_per_listing']} | {r['bytes']} | {r['p50_ms']} |"
                  f" {r['p99_ms']} | {r['mean_ms']} | {r['max_ms']} | {r['server_cpu_ms_per_listing']} |")


def main() -> None:
    """Parse the options, run both parts, print tables (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50, help="pods started per mode (0: skip the pod start part)")
    parser.add_argument("--list-pods", type=int, default=1000, help="pods created to list (0: skip the list part)")
    parser.add_argument("--requests", type=int, default=50, help="listings timed per case")
    parser.add_argument("--create-concurrency", type=int, default=16, help="POSTs in flight creating the pods to list")
    parser.add_argument("--list-with-scheduler", action="store_true",
                        help="keep the scheduler on in the list part (default: --disable-scheduler)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds between creating and listing (the server's idle CPU is measured over the "
                             "last three)")
    parser.add_argument("--timeout", type=float, default=180.0, help="the longest wait for pods to run")
    parser.add_argument("--heartbeat-seconds", type=float, default=5.0, help="the agent's heartbeat period")
    parser.add_argument("--sync-seconds", type=float, default=10.0, help="the agent's resync period")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="run the agent with --insecure-unsandboxed-pods: what the pods' sandbox costs")
    parser.add_argument("--log-level", default="WARNING", help="the services' and the agent's log level")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="k8shost-bench-") as data_dir:
        results = run(Path(data_dir), args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_tables(results)


if __name__ == "__main__":
    main()
