"""Pods' addresses from PrismNET: a namespace names a subnet of its project, each pod created there
gets a port (freed with the pod or its namespace), and agents' reports keep the address."""

from __future__ import annotations

from dataclasses import replace

import pytest

from photoncloud.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceError,
    Unavailable,
)
from photoncloud.common import protojson
from photoncloud.common.network import PortInfo
from photoncloud.common.replication import LocalLog
from photoncloud.common.testing import FakeNetwork
from photoncloud.k8shost import convert
from photoncloud.k8shost.core import KubeCore
from photoncloud.k8shost.machine import ObjectStateMachine
from photoncloud.k8shost.records import Pod, decode, encode
from photoncloud.k8shost.store import SqliteObjectStore

SPEC = {"containers": [{"name": "main", "command": ["sleep", "60"]}]}


@pytest.fixture
async def kube(clock, prismnet):
    """A KubeCore with PrismNET."""
    store = SqliteObjectStore(":memory:")
    machine = ObjectStateMachine(store, history_kept=50)
    core = KubeCore(machine, LocalLog(machine), clock=clock, network=prismnet)
    yield core
    await core.close()
    store.close()


async def test_a_pod_in_a_namespace_with_a_subnet_gets_a_port_and_its_address(kube, prismnet):
    ns = await kube.create_namespace("web", "o1", "p1", subnet_id="s1")
    assert ns.subnet_id == "s1"
    pod = await kube.create_pod("web", "a", spec=SPEC)
    (port,) = prismnet.ports.values()
    assert prismnet.devices[port.id] == (pod.metadata.uid, "web.a")
    assert pod.status.pod_ip == port.ip_address == "10.1.0.2"
    assert (pod.status.network.port_id, pod.status.network.cidr_block, pod.status.network.gateway_ip) == \
        (port.id, "10.1.0.0/29", "10.1.0.1")
    await kube.create_namespace("plain", "o1", "p1")
    assert (await kube.create_pod("plain", "a", spec=SPEC)).status.pod_ip == ""  # its node's runtime gives one
    assert len(prismnet.ports) == 1


async def test_the_agents_report_keeps_the_assigned_address(kube):
    await kube.create_namespace("web", "o1", "p1", subnet_id="s1")
    await kube.register_node("n1", {}, {"cpu": "2", "memory": "1Gi", "pods": "10"}, None,
                             [{"type": "InternalIP", "address": "127.0.0.1"}], 10250, "t")
    pod = await kube.create_pod("web", "a", spec=SPEC)
    await kube.schedule()
    reported = await kube.update_pod_status("web", "a", pod.metadata.uid, {"phase": "Running", "pod_ip": "172.17.0.9"})
    assert reported.status.phase == "Running"
    assert (reported.status.pod_ip, reported.status.network) == (pod.status.pod_ip, pod.status.network)


async def test_deleting_a_pod_or_its_namespace_deletes_the_ports(kube, prismnet):
    await kube.create_namespace("web", "o1", "p1", subnet_id="s1")
    for name in ("a", "b", "c"):
        await kube.create_pod("web", name, spec=SPEC)
    assert len(prismnet.ports) == 3
    await kube.delete_pod("web", "a")
    assert sorted(p.ip_address for p in prismnet.ports.values()) == ["10.1.0.3", "10.1.0.4"]
    assert (await kube.create_pod("web", "d", spec=SPEC)).status.pod_ip == "10.1.0.2"  # freed, so taken again
    await kube.delete_namespace("web")
    assert prismnet.ports == {}


async def test_a_pod_whose_port_cannot_be_made_is_refused_with_prismnets_error(kube, prismnet):
    await kube.create_namespace("web", "o1", "p1", subnet_id="s1")
    for i in range(5):  # .2 to .6
        await kube.create_pod("web", f"p{i}", spec=SPEC)
    with pytest.raises(ResourceExhausted):
        await kube.create_pod("web", "full", spec=SPEC)
    prismnet.down = True
    with pytest.raises(Unavailable) as down:
        await kube.create_pod("web", "down", spec=SPEC)
    assert down.value.details == {"dependency": "prismnet"}
    # Nor is a pod deleted while its port cannot be: retried later, the deletion frees both.
    with pytest.raises(Unavailable):
        await kube.delete_pod("web", "p0")
    assert (await kube.pod("web", "p0")).status.pod_ip
    prismnet.down = False
    await kube.delete_pod("web", "p0")
    with pytest.raises(NotFound):
        await kube.pod("web", "full")
    assert len(prismnet.ports) == 4


async def test_a_refused_proposal_deletes_the_port_it_made(kube, prismnet):
    await kube.create_namespace("web", "o1", "p1", subnet_id="s1")
    await kube.create_pod("web", "a", spec=SPEC)
    with pytest.raises(ServiceError) as error:
        await kube.create_pod("web", "a", spec=SPEC)  # ALREADY_EXISTS, found when the command is applied
    assert error.value.code.name == "ALREADY_EXISTS"
    assert len(prismnet.ports) == 1


async def test_a_namespace_names_an_existing_subnet_of_its_own_project(kube, prismnet):
    with pytest.raises(NotFound) as missing:
        await kube.create_namespace("web", "o1", "p1", subnet_id="nope")
    assert missing.value.details["field"] == "subnet_id" and "nope" in missing.value.message
    with pytest.raises(InvalidArgument) as foreign:
        await kube.create_namespace("web", "o1", "p1", subnet_id="s2")
    assert foreign.value.details["field"] == "subnet_id"
    ns = await kube.create_namespace("web", "o1", "p1")
    with pytest.raises(InvalidArgument):
        await kube.update_namespace("web", subnet_id="s2")
    updated = await kube.update_namespace("web", {"a": "b"}, subnet_id="s1",
                                          resource_version=str(ns.metadata.resource_version))
    assert (updated.subnet_id, updated.metadata.labels) == ("s1", {"a": "b"})
    assert (await kube.update_namespace("web")).subnet_id == ""  # a replacement without one: none from now on


async def test_without_prismnet_a_namespace_cannot_name_a_subnet(clock):
    store = SqliteObjectStore(":memory:")
    machine = ObjectStateMachine(store)
    kube = KubeCore(machine, LocalLog(machine), clock=clock)
    try:
        with pytest.raises(FailedPrecondition) as error:
            await kube.create_namespace("web", "o1", "p1", subnet_id="s1")
        assert error.value.details["reason"] == "NO_PRISMNET"
    finally:
        await kube.close()
        store.close()


class VpcNetwork(FakeNetwork):
    """PrismNET in memory whose ports carry their subnet's VPC, as the real client's do."""

    async def create_port(self, subnet_id: str, name: str, device_id: str) -> PortInfo:
        """A port on the subnet, of VPC vpc-<subnet>."""
        port = replace(await super().create_port(subnet_id, name, device_id), vpc_id=f"vpc-{subnet_id}")
        self.ports[port.id] = port
        return port


async def test_a_pods_network_names_its_ports_vpc_for_the_node_agent(clock):
    store = SqliteObjectStore(":memory:")
    machine = ObjectStateMachine(store)
    kube = KubeCore(machine, LocalLog(machine), clock=clock, network=VpcNetwork({"s1": ("p1", "10.1.0.0/29")}))
    try:
        await kube.create_namespace("web", "o1", "p1", subnet_id="s1")
        pod = await kube.create_pod("web", "a", spec=SPEC)
        assert pod.status.network is not None and pod.status.network.vpc_id == "vpc-s1"
        assert (await kube.pod("web", "a")).status.network == pod.status.network  # as stored
        # What the node agent receives (the API's JSON of the message) carries it.
        assert protojson.to_json(convert.pod(pod))["status"]["network"]["vpc_id"] == "vpc-s1"
    finally:
        await kube.close()
        store.close()
    # A pod stored before networks named their VPC still loads (without one).
    old = encode(pod)
    del old["status"]["network"]["vpc_id"]
    loaded = decode(Pod, old)
    assert loaded.status.network is not None and loaded.status.network.vpc_id == ""
    assert loaded.status.network.port_id == pod.status.network.port_id
