"""PrismNET's dataplane on this host: how long a new port takes to answer, and what its path costs.

Runs as root under the device prefix "bd", with network namespaces plugged into the VPC's bridge as
ports' devices (as a VM's TAP or a pod's veth would be), and removes everything it made at the end.

1. **Port creation to address answering**, driving `Dataplane.reconcile` directly: a VPC with a
   port already answering (the pinger); for each run a new port joins the state and the script
   times the round that takes it in (reconcile), plugging its namespace, busybox udhcpc's lease
   in it, and the first ping from the pinger that it answers. Also a round with nothing new (what
   each of the agent's rounds costs when nothing changed) and a ping to an address that answers
   already (the floor of the ping step: starting `ip netns exec busybox ping`).
2. **The same with PrismNET and the agent as processes** (unless --no-platform): IAM and PrismNET
   (`start_platform`), the agent `python -m photoncloud.prismnet.dataplane --interval I` reading
   PrismNET's state with an admin token; each run (after a pause of a random part of the interval, so
   that the POSTs fall all over the agent's cycle) times `POST /api/v1/ports` returning, the port's
   reservation in the agent's DHCP hosts file (the agent's round: waiting for it, reading the state,
   reconciling), then the lease and the first ping answered, as above. Each run's port keeps its
   address (ports are not deleted), so every lease is of an address never leased before. Then, with
   nothing changing for 10 s, the share of a core the agent (with the commands it runs) and PrismNET use.
3. **Throughput and latency between two ports**: iperf3 (`-t S`, one TCP stream) and busybox ping
   (`-c 20 -i 0.2`, the average RTT) between two ports of one subnet (through the bridge) and of two
   subnets (through the VPC's router namespace), each without security groups and with every port
   in a group allowing TCP 5201 and ICMP in and everything out; next to the host's loopback and a
   bare veth pair between two namespaces (no bridge, no netfilter).

Every figure is the median of --runs runs (--path-runs for part 3) with the smallest and largest.

    .venv/bin/python bench/dataplane.py                   # as root; about six minutes
    .venv/bin/python bench/dataplane.py --runs 3 --path-runs 2 --no-platform
    .venv/bin/python bench/dataplane.py --json

A benchmark, not a test: it asserts nothing, it reports numbers (it stops if a step fails).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from photoncloud.common.netdev import DeviceNames
from photoncloud.common.testing import Platform, free_ports, start_platform
from photoncloud.prismnet.dataplane import firewall
from photoncloud.prismnet.dataplane.agent import Dataplane, unsupported
from photoncloud.prismnet.dataplane.links import netns
from photoncloud.prismnet.dataplane.state import NetPort, NetRule, NetSubnet, NetVpc, NetworkState
from photoncloud.prismnet.dataplane.testing import dhcp, ping, plug, run_in, unplug

NAMES = DeviceNames("bd")
STATE_DIR = Path(f"/run/photoncloud/bench-dataplane-{NAMES.prefix}")  # under /run: dnsmasq reads it unprivileged
AGENT_STATE_DIR = Path(f"/run/photoncloud/bench-dataplane-agent-{NAMES.prefix}")
IPERF_PORT = 5201
GROUP = (NetRule("INGRESS", "TCP", IPERF_PORT, IPERF_PORT, "", "", "IPv4"),
         NetRule("INGRESS", "ICMP", 0, 0, "", "", "IPv4"),
         NetRule("EGRESS", "ANY", 0, 0, "", "", "IPv4"), NetRule("EGRESS", "ANY", 0, 0, "", "", "IPv6"))
IDLE_SECONDS = 10.0  # how long the agent's CPU is read with nothing changing (part 2)
WAIT = 20.0  # the longest any one step may take before the run stops


def now() -> float:
    """A monotonic clock, in seconds."""
    return time.perf_counter()


def summary(values: list[float]) -> dict[str, float]:
    """Median, smallest and largest."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def namespace(name: str) -> str:
    """A namespace of this script's own."""
    return f"{NAMES.prefix}-ns-{name}"


class FirewallWatch:
    """Whether bridged traffic got past Docker's FORWARD policy (DROP) all through a run: each dataplane on the host
    has its own DOCKER-USER rule, which a round puts back if it went (Docker restarting, an operator's flush).
    `nft monitor` reports each deletion of a DOCKER-USER rule; a run during which one happened, or after which
    this dataplane's is missing, is not counted, and is run again."""

    def __init__(self) -> None:
        self.deleted: list[float] = []
        self.monitor: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start watching the host's rules."""
        self.monitor = subprocess.Popen(["nft", "monitor", "rules"], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, args=(self.monitor,), daemon=True).start()

    def _read(self, monitor: subprocess.Popen[str]) -> None:
        assert monitor.stdout is not None
        for line in monitor.stdout:
            if line.startswith("delete rule ip filter DOCKER-USER"):
                self.deleted.append(now())

    def stop(self) -> None:
        """Stop watching."""
        if self.monitor is not None:
            self.monitor.terminate()
            self.monitor.wait(timeout=10)

    def clean(self, since: float) -> bool:
        """Whether no DOCKER-USER rule was deleted since then, and ours is there (or Docker is not)."""
        if any(t >= since for t in self.deleted):
            return False
        iptables = shutil.which("iptables")
        if iptables is None or subprocess.run([iptables, "-w", "5", "-S", "DOCKER-USER"],
                                              capture_output=True).returncode:
            return True
        return subprocess.run([iptables, "-w", "5", "-C", *firewall.docker_rule(NAMES)],
                              capture_output=True).returncode == 0


WATCH = FirewallWatch()


def first_answer(source: str, address: str) -> tuple[float, int]:
    """Seconds until a ping from the namespace is answered (one ping at a time, each waiting 1 s), and the tries."""
    start = now()
    for attempt in range(1, 21):
        if ping(source, address, count=1, wait=1):
            return now() - start, attempt
    raise RuntimeError(f"{address} never answered a ping from {source}")


def lease_of(name: str, scratch: Path, port: NetPort) -> float:
    """Seconds until udhcpc in the namespace has the port's address."""
    start = now()
    lease = dhcp(name, scratch)
    elapsed = now() - start
    if not lease.startswith(port.ip_address + "/"):
        raise RuntimeError(f"DHCP in {name} gave {lease!r}, not {port.ip_address}")
    return elapsed


def vpc_state(ports: list[NetPort]) -> NetworkState:
    """One VPC (10.77.0.0/16) with two subnets, these ports, and the group GROUP ("bench")."""
    return NetworkState(
        vpcs={"bench-vpc": NetVpc("bench-vpc", "10.77.0.0/16", 4177)},
        subnets={"s1": NetSubnet("s1", "bench-vpc", "10.77.1.0/24", "10.77.1.1", ()),
                 "s2": NetSubnet("s2", "bench-vpc", "10.77.2.0/24", "10.77.2.1", ())},
        ports={p.id: p for p in ports}, groups={"bench": GROUP})


def port(id: str, subnet: int, host: int, grouped: bool = True) -> NetPort:
    """A port of the bench VPC: 10.77.<subnet>.<host>."""
    return NetPort(id, "bench-vpc", f"s{subnet}", f"10.77.{subnet}.{host}", f"fa:16:3e:77:{subnet:02x}:{host:02x}",
                   ("bench",) if grouped else ())


class Plugged:
    """The namespaces plugged in as ports, unplugged (and the dataplane torn down) at the end."""

    def __init__(self, dataplane: Dataplane):
        self.dataplane = dataplane
        self.namespaces: dict[str, str] = {}

    def plug(self, port: NetPort) -> str:
        """Plug a namespace in as the port's device."""
        name = namespace(port.id)
        self.namespaces[port.id] = name
        plug(self.dataplane.names, port, name)
        return name

    def unplug(self, port_id: str) -> None:
        """Remove the port's device and namespace."""
        unplug(self.dataplane.names, port_id, self.namespaces.pop(port_id))

    def close(self) -> None:
        """Unplug every namespace, then remove everything the dataplane made."""
        for port_id in list(self.namespaces):
            self.unplug(port_id)
        self.dataplane.teardown()
        shutil.rmtree(self.dataplane.state_dir, ignore_errors=True)


@contextmanager
def dataplane(state_dir: Path = STATE_DIR) -> Iterator[Plugged]:
    """A Dataplane under the script's prefix; everything it made (and every namespace plugged) removed after."""
    plugged = Plugged(Dataplane(NAMES, state_dir))
    try:
        yield plugged
    finally:
        plugged.close()


def port_to_answer(runs: int, scratch: Path) -> dict[str, Any]:
    """Part 1: reconcile, plug, lease and first ping of a new port, with Dataplane.reconcile called directly."""
    pinger = port("pinger", 1, 10)
    state = vpc_state([pinger])
    times: dict[str, list[float]] = {k: [] for k in ("reconcile", "plug", "lease", "first ping", "total",
                                                     "round, nothing new", "ping floor")}
    tries: list[int] = []
    with dataplane() as net:
        net.dataplane.reconcile(state)
        source = net.plug(pinger)
        lease_of(source, scratch, pinger)
        run = 0
        while len(times["total"]) < runs:
            if run >= 3 * runs:
                raise RuntimeError("the host's firewall changed under too many runs (see FirewallWatch)")
            new = port(f"new{run}", 1, 100 + run)
            run += 1
            grown = vpc_state([pinger, new])
            t0 = now()
            net.dataplane.reconcile(grown)
            t1 = now()
            name = net.plug(new)
            t2 = now()
            lease = lease_of(name, scratch, new)
            answered, attempts = first_answer(source, new.ip_address)
            t3 = now()
            net.unplug(new.id)
            net.dataplane.reconcile(state)
            if not WATCH.clean(t0):
                continue
            times["reconcile"].append(t1 - t0)
            times["plug"].append(t2 - t1)
            times["lease"].append(lease)
            times["first ping"].append(answered)
            times["total"].append(t3 - t0)
            tries.append(attempts)
            t5 = now()
            net.dataplane.reconcile(state)
            times["round, nothing new"].append(now() - t5)
            t6 = now()
            first_answer(source, "10.77.1.1")
            times["ping floor"].append(now() - t6)
    return {"seconds": {k: summary(v) for k, v in times.items()}, "ping tries": tries, "runs_not_counted": run - runs}


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, with that of its children it has waited for (the agent's nft, iptables, ip)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def cpu_share(pid: int, seconds: float) -> float:
    """The share of one core a process uses over the next seconds."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def call(running: Platform, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One PrismNET REST call; its data, or an error if it failed."""
    status, reply = running.request(method, running.services["prismnet"].url + path, body, token)
    if status >= 300:
        raise RuntimeError(f"{method} {path}: HTTP {status}: {reply}")
    data: dict[str, Any] = reply.get("data") or {}
    return data


def wait_until(condition: Callable[[], bool], what: str, step: float = 0.002) -> float:
    """Poll condition every step seconds (at most WAIT); the seconds it took."""
    start = now()
    while not condition():
        if now() - start > WAIT:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(step)
    return now() - start


def as_port(data: dict[str, Any]) -> NetPort:
    """A port from PrismNET's REST answer."""
    return NetPort(data["id"], data["vpc_id"], data["subnet_id"], data["ip_address"], data["mac_address"],
                   tuple(data.get("security_group_ids", ())))


def with_agent(runs: int, interval: float, scratch: Path) -> dict[str, Any]:
    """Part 2: from POST /api/v1/ports to the address answering, with PrismNET and the agent as processes."""
    (scratch / "platform").mkdir()
    running = start_platform(scratch / "platform", "prismnet", log_level="WARNING")
    agent: subprocess.Popen[bytes] | None = None
    net = Plugged(Dataplane(NAMES, AGENT_STATE_DIR))
    try:
        token = running.admin_token()
        _, project = running.project("bench-dataplane")
        vpc = call(running, "POST", "/api/v1/vpcs", token,
                   {"name": "bench", "project_id": project, "cidr_block": "10.78.0.0/16"})
        subnet = call(running, "POST", "/api/v1/subnets", token,
                      {"vpc_id": vpc["id"], "name": "bench", "cidr_block": "10.78.1.0/24"})
        group = call(running, "POST", "/api/v1/security-groups", token, {
            "name": "bench", "project_id": project,
            "rules": [{"direction": "INGRESS", "protocol": "ICMP", "remote_cidr": "0.0.0.0/0"}]})

        def new_port(name: str) -> NetPort:
            return as_port(call(running, "POST", "/api/v1/ports", token,
                                {"subnet_id": subnet["id"], "name": name, "security_group_ids": [group["id"]]}))

        hosts = AGENT_STATE_DIR / "dhcp" / NAMES.router(vpc["id"]) / "hosts"

        def reserved(p: NetPort) -> Callable[[], bool]:
            return lambda: hosts.exists() and f"{p.mac_address},{p.ip_address}" in hosts.read_text()

        pinger = new_port("pinger")
        log = (scratch / "agent.log").open("wb")
        agent = subprocess.Popen(
            [sys.executable, "-m", "photoncloud.prismnet.dataplane", "--prismnet-url", running.services["prismnet"].url,
             "--iam-url", running.iam.url, "--prefix", NAMES.prefix, "--state-dir", str(AGENT_STATE_DIR),
             "--interval", str(interval), "--log-level", "INFO"],
            env={**os.environ, "PRISMNET_DATAPLANE_TOKEN": token}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_until(reserved(pinger), "the agent's first round")
        source = net.plug(pinger)
        lease_of(source, scratch, pinger)
        times: dict[str, list[float]] = {k: [] for k in ("POST /ports", "POST to reserved (agent)", "plug", "lease",
                                                         "first ping", "total")}
        tries: list[int] = []
        run = 0
        phase = random.Random(0)  # seeded: the same pauses in every run of the script
        while len(times["total"]) < runs:
            if run >= 3 * runs:
                raise RuntimeError("the host's firewall changed under too many runs (see FirewallWatch)")
            run += 1
            # A run lasts a fixed time after the round that took its port in, so the next POST would fall at the same
            # point of the agent's cycle every time: a pause of a random part of the interval spreads them over it.
            time.sleep(phase.uniform(0, interval))
            t0 = now()
            new = new_port(f"new{run}")
            t1 = now()
            wait_until(reserved(new), f"the agent to take in port {new.id}")
            t2 = now()
            name = net.plug(new)
            t3 = now()
            lease = lease_of(name, scratch, new)
            answered, attempts = first_answer(source, new.ip_address)
            total = now() - t0
            net.unplug(new.id)  # the port stays: each run's new port takes an address never leased before
            if not WATCH.clean(t0):
                continue
            tries.append(attempts)
            times["POST /ports"].append(t1 - t0)
            times["POST to reserved (agent)"].append(t2 - t1)
            times["plug"].append(t3 - t2)
            times["lease"].append(lease)
            times["first ping"].append(answered)
            times["total"].append(total)
        prismnet = running.services["prismnet"].process
        assert prismnet is not None
        idle = {"agent": cpu_share(agent.pid, IDLE_SECONDS), "prismnet": cpu_share(prismnet.pid, IDLE_SECONDS)}
        return {"seconds": {k: summary(v) for k, v in times.items()}, "ping tries": tries, "interval": interval,
                "runs_not_counted": run - runs, "idle_cpu_share": idle}
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=15)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(timeout=15)
        net.close()
        running.stop()


def in_namespace(name: str) -> list[str]:
    """The prefix that runs a command in a namespace ("" : the host's)."""
    return ["ip", "netns", "exec", name] if name else []


def iperf(server: str, client: str, address: str, port: int, seconds: float) -> tuple[float, int]:
    """One iperf3 TCP test from client to server (namespaces, "" for the host): Gbit/s received, retransmits."""
    listener = subprocess.Popen([*in_namespace(server), "iperf3", "-s", "-1", "-B", address, "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = now() + WAIT
        while True:  # until the server listens
            result = subprocess.run([*in_namespace(client), "iperf3", "-c", address, "-p", str(port),
                                     "-t", str(seconds), "-J"], capture_output=True, text=True, timeout=seconds + 30)
            report = json.loads(result.stdout or "{}")
            if "error" not in report and result.returncode == 0:
                break
            if now() > deadline:
                raise RuntimeError(f"iperf3 to {address}: {report.get('error', result.stderr)}")
            time.sleep(0.05)
        listener.wait(timeout=15)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait(timeout=15)
    end = report["end"]
    return end["sum_received"]["bits_per_second"] / 1e9, int(end["sum_sent"].get("retransmits", 0))


def rtt(client: str, address: str, count: int) -> float:
    """busybox ping's average round trip from a namespace ("" : the host), in milliseconds."""
    result = subprocess.run([*in_namespace(client), "busybox", "ping", "-q", "-c", str(count), "-i", "0.2", address],
                            capture_output=True, text=True, timeout=count * 0.2 + 30)
    for line in result.stdout.splitlines():
        if line.startswith("round-trip"):
            return float(line.split("=")[1].split("/")[1])
    raise RuntimeError(f"ping {address} from {client or 'the host'}: {result.stdout}{result.stderr}")


def measure(server: str, client: str, address: str, port: int, runs: int, seconds: float, pings: int,
            round: Callable[[], object] | None = None) -> dict[str, Any]:
    """Throughput and ping RTT between a pair, runs times; through the dataplane's bridge when round is given (a round
    of the dataplane before each run, as the agent's, and a run the host's firewall changed under not counted)."""
    gbits: list[float] = []
    retransmits: list[float] = []
    rtts: list[float] = []
    disturbed = 0
    while len(gbits) < runs:
        if round is not None:
            round()
        start = now()
        try:
            rate, resent = iperf(server, client, address, port, seconds)
            average = rtt(client, address, pings)
        except RuntimeError:
            if round is None or WATCH.clean(start):
                raise
        if round is not None and not WATCH.clean(start):
            disturbed += 1
            if disturbed > 3 * runs:
                raise RuntimeError("the host's firewall changed under too many runs (see FirewallWatch)")
            continue
        gbits.append(rate)
        retransmits.append(float(resent))
        rtts.append(average)
    return {"gbit_s": summary(gbits), "retransmits": summary(retransmits), "rtt_ms": summary(rtts),
            "runs_not_counted": disturbed}


@contextmanager
def veth_pair() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a bare veth pair (10.79.0.1 and .2): no bridge, no netfilter on the way."""
    left, right = namespace("veth1"), namespace("veth2")
    for name in (left, right):
        netns.create(name)
    try:
        subprocess.run(["ip", "-n", left, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
                        "netns", right], check=True)
        for name, address in ((left, "10.79.0.1/24"), (right, "10.79.0.2/24")):
            run_in(name, "ip", "addr", "add", address, "dev", "eth0")
            run_in(name, "ip", "link", "set", "eth0", "up")
            run_in(name, "ip", "link", "set", "lo", "up")
        yield left, right
    finally:
        for name in (left, right):
            if name in netns.listnetns():
                netns.remove(name)


def paths(runs: int, seconds: float, pings: int, scratch: Path) -> list[dict[str, Any]]:
    """Part 3: iperf3 and ping over loopback, a bare veth pair, and between ports of the VPC with and without groups."""
    results = []

    def record(case: str, groups: str, figures: dict[str, Any]) -> None:
        results.append({"case": case, "groups": groups, **figures})

    (loopback_port,) = free_ports(1)
    record("host loopback (127.0.0.1)", "-", measure("", "", "127.0.0.1", loopback_port, runs, seconds, pings))
    with veth_pair() as (left, right):
        record("veth pair, two namespaces, no bridge", "-", measure(right, left, "10.79.0.2", IPERF_PORT, runs,
                                                                    seconds, pings))
    a, b, c = port("a", 1, 11), port("b", 1, 12), port("c", 2, 13)
    ungrouped = [replace(p, security_group_ids=()) for p in (a, b, c)]
    with dataplane() as net:
        net.dataplane.reconcile(vpc_state(ungrouped))
        names = {p.id: net.plug(p) for p in ungrouped}
        for p in ungrouped:
            lease_of(names[p.id], scratch, p)
        for grouped, state in (("none", vpc_state(ungrouped)), ("TCP 5201 + ICMP in", vpc_state([a, b, c]))):
            def reconcile(state: NetworkState = state) -> object:
                return net.dataplane.reconcile(state)

            record("same subnet (bridge)", grouped, measure(names["b"], names["a"], b.ip_address, IPERF_PORT, runs,
                                                            seconds, pings, reconcile))
            record("two subnets (bridge, router namespace)", grouped,
                   measure(names["c"], names["a"], c.ip_address, IPERF_PORT, runs, seconds, pings, reconcile))
    return results


def spread(figure: dict[str, float], scale: float = 1.0, digits: int = 1) -> str:
    """"median (min-max)"."""
    median, low, high = (figure[k] * scale for k in ("median", "min", "max"))
    return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def print_tables(results: dict[str, Any]) -> None:
    """Markdown tables of the results."""
    for part, title in (("port_to_answer", "Port to answering, Dataplane.reconcile called directly"),
                        ("with_agent", "POST /api/v1/ports to answering, PrismNET and the agent as processes")):
        if part not in results:
            continue
        print(f"\n{title} (ms; median, min, max)\n")
        print("| step | median | min | max |\n|---|---:|---:|---:|")
        for step, figure in results[part]["seconds"].items():
            median, low, high = (figure[k] * 1000 for k in ("median", "min", "max"))
            print(f"| {step} | {median:.1f} | {low:.1f} | {high:.1f} |")
        print(f"\npings until the first answer, each run: {results[part]['ping tries']}; runs not counted (the "
              f"host's firewall changed under them): {results[part]['runs_not_counted']}")
        if "idle_cpu_share" in results[part]:
            idle = results[part]["idle_cpu_share"]
            print(f"with nothing changing, at --interval {results[part]['interval']}: the agent uses "
                  f"{idle['agent']:.1%} of a core, PrismNET {idle['prismnet']:.1%}")
    if "paths" in results:
        print("\nThroughput (iperf3, one TCP stream) and ping RTT (median (min-max))\n")
        print("| path | security groups | Gbit/s | retransmits | ping RTT ms | runs not counted |\n"
              "|---|---|---:|---:|---:|---:|")
        for row in results["paths"]:
            print(f"| {row['case']} | {row['groups']} | {spread(row['gbit_s'], digits=2)} | "
                  f"{row['retransmits']['median']:.0f} | {spread(row['rtt_ms'], digits=3)} | "
                  f"{row['runs_not_counted']} |")


def main() -> None:
    """Run the parts asked for and print their tables (or JSON)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="new ports timed, in each of parts 1 and 2")
    p.add_argument("--path-runs", type=int, default=3, help="iperf3 and ping runs of each path in part 3")
    p.add_argument("--seconds", type=float, default=3.0, help="each iperf3 run's length")
    p.add_argument("--pings", type=int, default=20, help="pings (0.2 s apart) of each RTT measurement")
    p.add_argument("--interval", type=float, default=0.2, help="the agent's seconds between rounds (part 2)")
    p.add_argument("--no-platform", action="store_true", help="skip part 2 (PrismNET and the agent as processes)")
    p.add_argument("--no-paths", action="store_true", help="skip part 3 (iperf3 and ping)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    why = unsupported()
    if why:
        raise SystemExit(f"the dataplane cannot run here: {why}")
    results: dict[str, Any] = {"cpus": os.cpu_count(), "kernel": platform.release(),
                               "python": platform.python_version(), "loadavg_before": os.getloadavg()[0]}
    WATCH.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-dataplane-") as directory:
            scratch = Path(directory)
            results["port_to_answer"] = port_to_answer(args.runs, scratch)
            if not args.no_platform:
                results["with_agent"] = with_agent(args.runs, args.interval, scratch)
            if not args.no_paths:
                results["paths"] = paths(args.path_runs, args.seconds, args.pings, scratch)
    finally:
        WATCH.stop()
    results["loadavg_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{results['cpus']} CPUs, Linux {results['kernel']}, Python {results['python']}, load average "
              f"{results['loadavg_before']:.2f} before, {results['loadavg_after']:.2f} after")
        print_tables(results)


if __name__ == "__main__":
    main()
