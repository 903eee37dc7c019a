"""Pods on a PrismNET dataplane (the process runtime, as root): with a device-name prefix, a pod's namespace
gets eth0 on its VPC's bridge (the host end named for the port, the address on the subnet's prefix, the
port's MAC, the default route via the gateway) and keeps a link to the host for the service proxy; it
waits a bounded time for the bridge, which the dataplane agent makes (here the test makes it, with a
namespace holding the gateway address as the VPC's router would)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from photoncloud.common import needs
from photoncloud.common.netdev import DeviceNames
from photoncloud.k8shost.agent.podnet import HOST_END, PodNetworks, VpcPort
from photoncloud.k8shost.agent.process import ProcessRuntime
from photoncloud.k8shost.agent.runtime import Backoff
from photoncloud.k8shost.testing import sandbox, until

# Namespaces, veths and bridges take root. CI runs the tests as root, so these run there.
needs.root("making network namespaces and bridges")

FAST = Backoff(initial=0.1, maximum=0.4, reset=60)
MAC = "02:00:0a:4d:00:05"
MTU = 1450


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip` (bounded)."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


def links(netns: str = "") -> dict[str, dict]:
    """The links of a namespace (the host's: ""), by name, as `ip -j -d` describes them."""
    found = json.loads(ip(*(["-n", netns] if netns else []), "-j", "-d", "link", "show").stdout)
    return {link["ifname"]: link for link in found}


def pings(address: str, netns: str = "", tries: int = 3) -> bool:
    """Whether the address answers a ping from the namespace (the host's: ""), within the tries."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    for _ in range(tries):
        if subprocess.run([*prefix, "busybox", "ping", "-c", "1", "-W", "2", address], capture_output=True,
                          timeout=10).returncode == 0:
            return True
    return False


@dataclass
class Vpc:
    """A VPC's network on this host as the dataplane agent makes it: its bridge, and its router namespace
    holding the subnet's gateway address on gw0, whose peer is on the bridge."""

    names: DeviceNames
    id: str
    subnet: str  # e.g. 10.77.3.0/24
    gateway: str

    @property
    def bridge(self) -> str:
        """The VPC's bridge."""
        return self.names.bridge(self.id)

    @property
    def router(self) -> str:
        """The router namespace."""
        return self.names.router(self.id)

    def address(self, host: int) -> str:
        """The subnet's address with this host part."""
        return self.subnet.rsplit(".", 1)[0] + f".{host}"

    def port(self, port_id: str) -> VpcPort:
        """A port of the subnet, as a pod's network names it."""
        return VpcPort(self.id, port_id, self.subnet, self.gateway)


def _names() -> DeviceNames:
    """A prefix of this test's own (a letter, three more), so nothing else's devices are touched."""
    return DeviceNames("t" + secrets.token_hex(2)[:3])


def _subnet() -> str:
    """A /24 of 10.0.0.0/8 unlikely to be another run's (the host gets /32 routes to pods' addresses)."""
    return f"10.{secrets.choice(range(100, 250))}.{secrets.choice(range(1, 250))}.0/24"


@pytest.fixture
def vpc() -> Iterator[Vpc]:
    """A bridge and a router namespace with the gateway on it; removed afterwards."""
    names, vpc_id, subnet = _names(), f"vpc-{uuid.uuid4()}", _subnet()
    made = Vpc(names, vpc_id, subnet, subnet.rsplit(".", 1)[0] + ".1")
    # br_netfilter shows bridged packets to iptables, where a Docker engine's FORWARD policy drops them: as the
    # dataplane agent does for its bridges, let this bridge's own traffic past it.
    docker_rule = ["DOCKER-USER", "-i", made.bridge, "-o", made.bridge, "-j", "ACCEPT"]
    docker = subprocess.run(["iptables", "-S", "DOCKER-USER"], capture_output=True, timeout=10).returncode == 0
    try:
        if docker:
            subprocess.run(["iptables", "-I", *docker_rule], check=True, timeout=10)
        ip("link", "add", made.bridge, "mtu", str(MTU), "type", "bridge")  # as a VXLAN on it would lower it
        ip("link", "set", made.bridge, "up")
        ip("netns", "add", made.router)
        ip("link", "add", names.gateway(vpc_id), "mtu", str(MTU), "type", "veth", "peer", "name", "gw0", "mtu",
           str(MTU), "netns", made.router)
        ip("link", "set", names.gateway(vpc_id), "master", made.bridge, "up")
        ip("-n", made.router, "link", "set", "lo", "up")
        ip("-n", made.router, "addr", "add", f"{made.gateway}/24", "dev", "gw0")
        ip("-n", made.router, "link", "set", "gw0", "up")
        yield made
    finally:
        ip("netns", "delete", made.router, check=False)  # its veth goes with it
        ip("link", "delete", made.bridge, check=False)
        if docker:
            subprocess.run(["iptables", "-D", *docker_rule], capture_output=True, timeout=10)


def pod_networks(vpc: Vpc, bridge_wait: float = 15.0) -> PodNetworks:
    """An agent's pods' namespaces, on the VPC's dataplane prefix."""
    return PodNetworks(f"k8s-{vpc.names.prefix}-", dataplane=vpc.names, bridge_wait=bridge_wait)


async def test_a_pods_eth0_is_on_its_vpcs_bridge_and_its_link_to_the_host_stays(vpc):
    networks = pod_networks(vpc)
    address, namespace = vpc.address(5), networks.prefix + "p1"
    await networks.add("p1", address, MAC, vpc.port("port-1"))
    try:
        inside = links(namespace)
        assert sorted(inside) == ["eth0", "host0", "lo"]
        assert inside["eth0"]["address"] == MAC and inside["eth0"]["mtu"] == MTU  # the bridge's
        addresses = json.loads(ip("-n", namespace, "-j", "addr", "show", "eth0").stdout)[0]["addr_info"]
        assert [(a["local"], a["prefixlen"]) for a in addresses if a["family"] == "inet"] == [(address, 24)]
        # host0 carries no address: only the route to the host's end.
        assert [a for a in json.loads(ip("-n", namespace, "-j", "addr", "show", "host0").stdout)[0]["addr_info"]
                if a["family"] == "inet"] == []
        routes = {(r["dst"], r.get("gateway", ""), r["dev"])
                  for r in json.loads(ip("-n", namespace, "-j", "route", "show").stdout)}
        assert ("default", vpc.gateway, "eth0") in routes and (HOST_END, "", "host0") in routes
        # The host end is named for the port and enslaved to the VPC's bridge.
        host_end = links()[vpc.names.port("port-1")]
        assert host_end["master"] == vpc.bridge and host_end["linkinfo"]["info_kind"] == "veth"
        assert vpc.names.owns(vpc.names.port("port-1"))
        # The VPC's router (the gateway) and the pod reach each other over the bridge.
        assert pings(address, vpc.router)
        assert pings(vpc.gateway, namespace)
        # The host reaches the pod over its own link, as the service proxy does.
        (route,) = json.loads(ip("-j", "route", "get", address).stdout)
        assert route["dev"] == PodNetworks.host_end("p1")
        assert pings(address)
    finally:
        await networks.remove("p1")
    assert networks.held() == []
    host = links()
    assert vpc.names.port("port-1") not in host and PodNetworks.host_end("p1") not in host
    assert vpc.bridge in host  # the dataplane's, not the pod's
    assert not pings(address, vpc.router, tries=1)


async def test_a_pod_waits_a_bounded_time_for_its_vpcs_bridge(vpc):
    networks = pod_networks(vpc, bridge_wait=1.0)
    elsewhere = Vpc(vpc.names, f"vpc-{uuid.uuid4()}", vpc.subnet, vpc.gateway)  # a VPC without a bridge here
    started = time.monotonic()
    with pytest.raises(RuntimeError) as missing:
        await networks.add("p2", vpc.address(6), MAC, elsewhere.port("port-2"))
    assert 1.0 <= time.monotonic() - started < 5.0
    assert elsewhere.bridge in str(missing.value) and elsewhere.id in str(missing.value)
    assert "did not appear within 1 s" in str(missing.value)
    assert networks.held() == [] and vpc.names.port("port-2") not in links()

    # A bridge that comes within the bound (the dataplane agent was a moment late) is joined.
    networks.bridge_wait = 10.0
    later = asyncio.get_running_loop().call_later(0.5, lambda: ip("link", "add", elsewhere.bridge, "type", "bridge"))
    try:
        await networks.add("p2", vpc.address(6), MAC, elsewhere.port("port-2"))
        assert links()[vpc.names.port("port-2")]["master"] == elsewhere.bridge
        await networks.remove("p2")
    finally:
        later.cancel()
        ip("link", "delete", elsewhere.bridge, check=False)


async def test_a_pod_whose_network_names_no_vpc_is_refused_on_a_dataplane(vpc):
    networks = pod_networks(vpc)
    with pytest.raises(ValueError, match="names no VPC"):
        await networks.add("p3", vpc.address(7), MAC, VpcPort("", "port-3", vpc.subnet, vpc.gateway))
    assert networks.held() == []


async def test_without_a_dataplane_eth0_is_the_link_to_the_host_as_before(vpc):
    networks = PodNetworks(f"k8s-{vpc.names.prefix}-")
    namespace = networks.prefix + "p4"
    await networks.add("p4", vpc.address(8), MAC, vpc.port("port-4"))  # the VPC is not looked at
    try:
        assert sorted(links(namespace)) == ["eth0", "lo"]
        addresses = json.loads(ip("-n", namespace, "-j", "addr", "show", "eth0").stdout)[0]["addr_info"]
        assert [(a["local"], a["prefixlen"]) for a in addresses if a["family"] == "inet"] == [(vpc.address(8), 32)]
        assert vpc.names.port("port-4") not in links()
        assert pings(vpc.address(8)) and not pings(vpc.address(8), vpc.router, tries=1)
    finally:
        await networks.remove("p4")


async def test_pruning_at_start_removes_the_port_devices_of_this_agents_pods_only(vpc):
    networks, other = pod_networks(vpc), PodNetworks(f"k8o-{vpc.names.prefix}-", dataplane=vpc.names)
    await networks.add("gone", vpc.address(9), MAC, vpc.port("port-5"))
    await other.add("theirs", vpc.address(10), "02:00:0a:4d:00:0a", vpc.port("port-6"))
    # A process still in the pod's namespace keeps it (and its veths) alive after its name was deleted.
    holder = subprocess.Popen(["ip", "netns", "exec", networks.prefix + "gone", "sleep", "30"])
    try:
        await until(lambda: holder.poll() is None and _has_process_in(networks.prefix + "gone", holder.pid))
        assert pings(vpc.address(10), networks.prefix + "gone")  # pods of one VPC reach each other on its bridge
        ip("netns", "delete", networks.prefix + "gone")
        assert networks.held() == [] and vpc.names.port("port-5") in links()
        restarted = pod_networks(vpc)  # the agent's next start
        assert await restarted.prune() == ["gone"]
        host = links()
        assert vpc.names.port("port-5") not in host and PodNetworks.host_end("gone") not in host
        assert vpc.names.port("port-6") in host and other.held() == ["theirs"]  # another agent's
    finally:
        holder.kill()
        holder.wait(timeout=10)
        await other.remove("theirs")
        await networks.remove("gone")
    assert vpc.names.port("port-6") not in links()


def _has_process_in(namespace: str, pid: int) -> bool:
    """Whether the process has joined the named network namespace."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(Path("/run/netns") / namespace).st_ino
    except OSError:
        return False


def dataplane_pod(script: str, vpc: Vpc, host: int, uid: str) -> dict:
    """A pod of one container whose address k8shost assigned from a subnet of the VPC."""
    return {"metadata": {"name": uid, "namespace": "web", "uid": uid},
            "spec": {"restart_policy": "Never", "containers": [{"name": "main", "command": ["python3", "-c", script]}]},
            "status": {"pod_ip": vpc.address(host),
                       "network": {"subnet_id": "s1", "port_id": f"port-{uid}", "cidr_block": vpc.subnet,
                                   "gateway_ip": vpc.gateway, "mac_address": MAC, "vpc_id": vpc.id}}}


async def test_the_process_runtime_runs_a_pod_on_its_vpcs_network(vpc, tmp_path):
    networks = pod_networks(vpc)
    runtime = ProcessRuntime(tmp_path / "pods", sandbox(), FAST, networks=networks)
    await runtime.open()
    assert runtime.pod_network.startswith(f"prismnet-dataplane (device prefix {vpc.names.prefix})")
    server = """
import os, socket
s = socket.socket()
s.bind((os.environ["POD_IP"], 0))
s.listen()
print(s.getsockname()[1], sorted(name for _, name in socket.if_nameindex()), flush=True)
conn, peer = s.accept()
conn.sendall(b"hello from " + peer[0].encode())
conn.close()
"""
    running = runtime.pod(dataplane_pod(server, vpc, 11, "web1"), "127.128.0.2")
    running.start()
    try:
        log = running.log_path("main")
        await until(lambda: log.exists() and log.read_text().endswith("\n"))
        port, interfaces = log.read_text().split(" ", 1)
        assert interfaces.strip() == "['eth0', 'host0', 'lo']"
        assert pings(vpc.address(11), vpc.router)
        reader, writer = await asyncio.open_connection(vpc.address(11), int(port))  # the host, as the proxy
        assert await reader.read() == f"hello from {HOST_END}".encode()
        writer.close()
        await until(lambda: running.states()[0].done)
        assert running.states()[0].reason == "Completed"
    finally:
        await running.stop()
    assert networks.held() == [] and vpc.names.port("port-web1") not in links()

    # A pod of a VPC whose bridge never appears fails, naming the bridge and the VPC.
    networks.bridge_wait = 0.5
    orphan = dataplane_pod("print('never')", vpc, 12, "web2")
    orphan["status"]["network"]["vpc_id"] = "vpc-elsewhere"
    failed = runtime.pod(orphan)
    failed.start()
    try:
        await until(lambda: failed.states()[0].done, timeout=5)
        (state,) = failed.states()
        assert state.reason == "PodAddressUnavailable"
        assert vpc.names.bridge("vpc-elsewhere") in state.message and "vpc-elsewhere" in state.message
        assert not failed.log_path("main").exists()
    finally:
        await failed.stop()
    assert networks.held() == []
