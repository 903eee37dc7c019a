"""Fixtures: a k8shost core on an in-memory store and on a file, with a clock the tests move; a PrismNET stand-in;
and IAM with k8shost as processes, for the tests that run node agents against them."""

from __future__ import annotations

import pytest

from photoncloud.common.replication import LocalLog
from photoncloud.common.testing import Clock, FakeNetwork, ServiceProcess, free_ports, start_platform
from photoncloud.k8shost.core import KubeCore
from photoncloud.k8shost.machine import ObjectStateMachine
from photoncloud.k8shost.store import SqliteObjectStore


@pytest.fixture
def prismnet():
    """PrismNET in memory: a subnet of p1 with room for five pods (a /29: gateway .1, pods .2-.6), one of p2."""
    return FakeNetwork({"s1": ("p1", "10.1.0.0/29"), "s2": ("p2", "10.2.0.0/24")})


@pytest.fixture
def clock():
    """The core's clock."""
    return Clock()


@pytest.fixture(params=["memory", "file"])
async def kube(request, tmp_path, clock):
    """A KubeCore over an in-memory store (reads run on the applying thread) and over a file
    (reads run on the loop, from a snapshot of the last commit); its scheduler and node monitor run
    only when a test calls them."""
    store = SqliteObjectStore(":memory:" if request.param == "memory" else tmp_path / "objects.sqlite3")
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
