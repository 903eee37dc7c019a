"""The node agent's PrismNET dataplane setting: the flag or environment that turns it on (off by default),
and the agent's health saying how pods' networks are wired."""

from __future__ import annotations

import aiohttp
import pytest

from photoncloud.common.netdev import DeviceNames
from photoncloud.k8shost.agent.__main__ import parse
from photoncloud.common.credentials import Tokens
from photoncloud.k8shost.agent.api import ApiServer
from photoncloud.k8shost.agent.node import Agent, NodeConfig
from photoncloud.k8shost.agent.podnet import PodNetworks
from photoncloud.k8shost.agent.process import ProcessRuntime
from photoncloud.k8shost.testing import sandbox


def test_the_dataplane_is_off_unless_a_prefix_is_given():
    assert parse([], {}).dataplane is None
    assert parse(["--dataplane-prefix", "pc"], {}).dataplane == DeviceNames("pc")
    assert parse([], {"K8SHOST_AGENT_DATAPLANE_PREFIX": "t1"}).dataplane == DeviceNames("t1")
    assert parse([], {"PHOTONCLOUD_DATAPLANE_PREFIX": "pc"}).dataplane == DeviceNames("pc")  # the platform's setting
    assert parse([], {"PHOTONCLOUD_DATAPLANE_PREFIX": "pc", "K8SHOST_AGENT_DATAPLANE_PREFIX": "x"}).dataplane == \
        DeviceNames("x")


def test_a_prefix_that_is_no_device_name_prefix_stops_the_agent(capsys):
    with pytest.raises(SystemExit):
        parse(["--dataplane-prefix", "Pc-1"], {})
    assert "--dataplane-prefix" in capsys.readouterr().err


def test_the_runtime_says_how_pods_networks_are_wired(tmp_path):
    plain = ProcessRuntime(tmp_path / "a", sandbox(), networks=PodNetworks("k8s-x-", why_not=""))
    assert plain.pod_network.startswith("host-routed")
    on = ProcessRuntime(tmp_path / "b", sandbox(), networks=PodNetworks("k8s-x-", why_not="",
                                                                        dataplane=DeviceNames("pc")))
    assert on.pod_network.startswith("prismnet-dataplane (device prefix pc)")
    refused = ProcessRuntime(tmp_path / "c", sandbox(), networks=PodNetworks("k8s-x-", why_not="the agent is not root"))
    assert refused.pod_network == "unavailable: the agent is not root"


async def test_the_agents_health_says_how_pods_networks_are_wired(tmp_path):
    runtime = ProcessRuntime(tmp_path / "pods", sandbox(),
                             networks=PodNetworks("k8s-x-", why_not="", dataplane=DeviceNames("pc")))
    agent = Agent(NodeConfig("n1", "127.0.0.1", "127.0.0.1", 0, {"cpu": "1"}),
                  ApiServer("http://127.0.0.1:1", Tokens("t")), runtime)
    port = await agent.start_daemon()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                body = await response.json()
        assert body["data"]["status"] == "SERVING" and body["data"]["runtime"] == "process"
        assert body["data"]["pod_network"] == runtime.pod_network
        assert body["data"]["pod_network"].startswith("prismnet-dataplane")
    finally:
        assert agent._runner is not None
        await agent._runner.cleanup()
