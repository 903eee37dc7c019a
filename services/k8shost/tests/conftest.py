"""Fixtures: a k8shost core on an in-memory store, with a clock the tests move; a PrismNET stand-in;
and IAM with k8shost as processes, for the tests that run node agents against them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest

from photoncloud.common.errors import NotFound, ResourceExhausted, Unavailable
from photoncloud.common.network import PortInfo
from photoncloud.common.replication import LocalLog
from photoncloud.common.testing import Clock, ServiceProcess, free_ports, start_platform
from photoncloud.k8shost.core import KubeCore
from photoncloud.k8shost.machine import ObjectStateMachine
from photoncloud.k8shost.store import SqliteObjectStore


@dataclass
class FakePrismNet:
    """PrismNET in memory: subnets are {id: (project_id, cidr)}; ports remember their device and name."""

    subnets: dict[str, tuple[str, str]] = field(default_factory=dict)
    ports: dict[str, PortInfo] = field(default_factory=dict)
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)  # port id -> (device_id, name)
    down: bool = False
    made: int = 0

    def _up(self) -> None:
        if self.down:
            raise Unavailable("prismnet cannot be reached", {"dependency": "prismnet"})

    async def subnet_project(self, subnet_id: str) -> str:
        """The subnet's project."""
        self._up()
        if subnet_id not in self.subnets:
            raise NotFound(f"subnet {subnet_id} not found", {"id": subnet_id})
        return self.subnets[subnet_id][0]

    async def create_port(self, subnet_id: str, name: str, device_id: str) -> PortInfo:
        """The subnet's lowest free address after its gateway (RESOURCE_EXHAUSTED when none is left)."""
        self._up()
        network = ipaddress.ip_network(self.subnets[subnet_id][1])
        hosts = [str(h) for h in network.hosts()]
        taken = {p.ip_address for p in self.ports.values() if p.subnet_id == subnet_id}
        free = next((h for h in hosts[1:] if h not in taken), None)
        if free is None:
            raise ResourceExhausted(f"subnet {subnet_id} has no free address", {"reason": "SUBNET_FULL"})
        self.made += 1
        port = PortInfo(f"port-{self.made}", subnet_id, free, f"fa:16:3e:00:00:{self.made:02x}", hosts[0],
                        str(network))
        self.ports[port.id] = port
        self.devices[port.id] = (device_id, name)
        return port

    async def delete_port(self, port_id: str) -> None:
        """Forget a port."""
        self._up()
        self.ports.pop(port_id, None)
        self.devices.pop(port_id, None)


@pytest.fixture
def prismnet():
    """PrismNET in memory: a subnet of p1 with room for five pods (a /29: gateway .1, pods .2-.6), one of p2."""
    return FakePrismNet({"s1": ("p1", "10.1.0.0/29"), "s2": ("p2", "10.2.0.0/24")})


@pytest.fixture
def clock():
    """The core's clock."""
    return Clock()


@pytest.fixture
async def kube(clock):
    """A KubeCore over an in-memory store; its scheduler and node monitor run only when a test calls them."""
    store = SqliteObjectStore(":memory:")
    machine = ObjectStateMachine(store, history_kept=50)
    core = KubeCore(machine, LocalLog(machine), clock=clock, node_grace_seconds=10)
    yield core
    await core.close()
    store.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """IAM, and k8shost with a short node grace and one free node port, as processes: (platform, k8shost, root)."""
    root = tmp_path_factory.mktemp("k8shost")
    platform = start_platform(root)
    (node_port,) = free_ports(1)
    kube = ServiceProcess("k8shost", root / "k8shost", "--iam-url", platform.iam.url, "--revocation-poll-seconds",
                          "0.5", "--node-grace-seconds", "3", "--node-monitor-seconds", "0.5",
                          "--service-node-port-range", f"{node_port}-{node_port}")
    try:
        kube.start()
    except BaseException:
        platform.stop()
        raise
    platform.services["k8shost"] = kube
    yield platform, kube, root
    platform.stop()
