"""The operator's read of the whole network state (Dataplane.GetNetworkState, GET
/api/v1/dataplane/state): everything of every project, as it was made, and nothing for a tenant."""

from __future__ import annotations

from typing import Any

import aiohttp
import grpc
import pytest

from photoncloud.common import rpc
from photoncloud.common.auth import ORG, PROJECT, Scope
from photoncloud.common.testing import TokenMint, serve
from photoncloud.prismnet.app import build
from photoncloud.prismnet.v1 import prismnet_pb2 as pb
from photoncloud.prismnet.v1 import prismnet_pb2_grpc as pb_grpc


async def populate(call) -> dict[str, Any]:
    """Two projects' networks, made through call(method, path, body) -> data; what was asked and given."""
    made: dict[str, Any] = {"vpcs": {}, "subnets": {}, "ports": {}, "groups": {}}
    for project, second in (("p1", "10.1"), ("p2", "10.2")):
        vpc = await call("POST", "/vpcs", {"name": f"net-{project}", "org_id": "o1", "project_id": project,
                                           "cidr_block": f"{second}.0.0/16"})
        made["vpcs"][vpc["id"]] = (project, f"{second}.0.0/16", vpc["vni"])
        subnet = await call("POST", "/subnets", {"vpc_id": vpc["id"], "name": "web", "cidr_block": f"{second}.1.0/24",
                                                 "gateway_ip": f"{second}.1.254", "dns_servers": ["192.0.2.53"],
                                                 "allocation_pools": [{"start": f"{second}.1.10",
                                                                       "end": f"{second}.1.20"}]})
        made["subnets"][subnet["id"]] = (vpc["id"], f"{second}.1.0/24", f"{second}.1.254", ["192.0.2.53"],
                                         [{"start": f"{second}.1.10", "end": f"{second}.1.20"}])
        group = await call("POST", "/security-groups", {"name": "web", "org_id": "o1", "project_id": project, "rules": [
            {"direction": "INGRESS", "protocol": "TCP", "port_range_min": 22, "port_range_max": 22,
             "remote_cidr": "198.51.100.0/24", "description": "ssh"}]})
        made["groups"][group["id"]] = (project, [
            ("EGRESS", "ANY", 0, 0, "", "", "IPv4", ""), ("EGRESS", "ANY", 0, 0, "", "", "IPv6", ""),
            ("INGRESS", "TCP", 22, 22, "198.51.100.0/24", "", "IPv4", "ssh")])
        port = await call("POST", "/ports", {"subnet_id": subnet["id"], "ip_address": f"{second}.1.15",
                                             "security_group_ids": [group["id"]], "device_id": f"vm-{project}",
                                             "device_type": "VM"})
        made["ports"][port["id"]] = (vpc["id"], subnet["id"], f"{second}.1.15", port["mac_address"], f"vm-{project}",
                                     "VM", [group["id"]])
    return made


def seen(state: dict[str, Any]) -> dict[str, Any]:
    """The fields of an answer a dataplane agent uses, shaped as populate() records what it made."""
    return {
        "vpcs": {v["id"]: (v["project_id"], v["cidr_block"], v["vni"]) for v in state["vpcs"]},
        "subnets": {s["id"]: (s["vpc_id"], s["cidr_block"], s["gateway_ip"], s["dns_servers"], s["allocation_pools"])
                    for s in state["subnets"]},
        "ports": {p["id"]: (p["vpc_id"], p["subnet_id"], p["ip_address"], p["mac_address"], p["device_id"],
                            p["device_type"], p["security_group_ids"]) for p in state["ports"]},
        "groups": {g["id"]: (g["project_id"], [
            (r["direction"], r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_cidr"],
             r["remote_group_id"], r["ethertype"], r["description"]) for r in g["rules"]])
            for g in state["security_groups"]},
    }


@pytest.fixture(scope="module")
def mint():
    return TokenMint()


@pytest.fixture
async def server(tmp_path, mint):
    running = await serve(build, "prismnet", tmp_path, mint.verifier(), iam_url="")
    yield running
    await running.stop()


async def test_the_operator_reads_every_projects_networks_over_both_transports(server, mint):
    base = f"http://127.0.0.1:{server.rest_port}/api/v1"
    operator = {"Authorization": f"Bearer {mint.token()}"}
    async with aiohttp.ClientSession(headers=operator) as session:
        async def call(method: str, path: str, body: dict | None = None) -> dict:
            async with session.request(method, base + path, json=body) as response:
                reply = await response.json()
                assert response.status in (200, 201), reply
                return reply["data"]

        made = await populate(call)
        over_rest = await call("GET", "/dataplane/state")
    assert seen(over_rest) == made
    assert len({v["vni"] for v in over_rest["vpcs"]}) == 2
    assert all(s["used"] == 1 for s in over_rest["subnets"]) and all(s["capacity"] == 11 for s in over_rest["subnets"])
    # Eight commands applied (per project a VPC, a subnet, a group and a port): the store's index, as /health shows it.
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{server.rest_port}/health") as r:
        assert int(over_rest["applied_index"]) == int((await r.json())["data"]["dependencies"]["store"]
                                                      ["applied_index"]) == 8
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        state = await pb_grpc.DataplaneStub(channel).GetNetworkState(
            pb.GetNetworkStateRequest(), metadata=(("authorization", operator["Authorization"]),), timeout=10)
    assert state.applied_index == 8
    from_grpc = seen({
        "vpcs": [{"id": v.id, "project_id": v.project_id, "cidr_block": v.cidr_block, "vni": v.vni}
                 for v in state.vpcs],
        "subnets": [{"id": s.id, "vpc_id": s.vpc_id, "cidr_block": s.cidr_block, "gateway_ip": s.gateway_ip,
                     "dns_servers": list(s.dns_servers),
                     "allocation_pools": [{"start": p.start, "end": p.end} for p in s.allocation_pools]}
                    for s in state.subnets],
        "ports": [{"id": p.id, "vpc_id": p.vpc_id, "subnet_id": p.subnet_id, "ip_address": p.ip_address,
                   "mac_address": p.mac_address, "device_id": p.device_id, "device_type": p.device_type,
                   "security_group_ids": list(p.security_group_ids)} for p in state.ports],
        "security_groups": [{"id": g.id, "project_id": g.project_id, "rules": [
            {f: getattr(r, f) for f in ("direction", "protocol", "port_range_min", "port_range_max", "remote_cidr",
                                        "remote_group_id", "ethertype", "description")} for r in g.rules]}
            for g in state.security_groups],
    })
    assert from_grpc == made


@pytest.mark.parametrize("who, scope, permissions, reason", [
    ("a project's admin", Scope(PROJECT, "o1", "p1"), ("*",), "OPERATOR_ONLY"),
    ("an org's admin", Scope(ORG, "o1"), ("*",), "OPERATOR_ONLY"),
    ("a system viewer of VPCs only", None, ("prismnet:vpcs:read",), "MISSING_PERMISSION"),
])
async def test_a_tenant_or_a_token_without_the_permission_is_refused_on_both_transports(server, mint, who, scope,
                                                                                        permissions, reason):
    token = mint.token(permissions=permissions, **({"scope": scope} if scope else {}))
    url = f"http://127.0.0.1:{server.rest_port}/api/v1/dataplane/state"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            status, reply = response.status, await response.json()
        assert (status, reply["error"]["code"], reply["error"]["details"]["reason"]) == (403, "PERMISSION_DENIED",
                                                                                         reason), who
        async with session.get(url) as response:
            assert response.status == 401
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.DataplaneStub(channel).GetNetworkState(
                pb.GetNetworkStateRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert rpc.error_from_rpc(refused.value).details["reason"] == reason, who


async def test_the_core_reads_one_consistent_state(net):
    """In-process (no principal): the answer holds exactly the resources made, with their fields."""
    vpc = await net.create_vpc("v", "o1", "p1", "fd00:1::/56")
    subnet = await net.create_subnet(vpc.id, "a", "fd00:1:0:1::/64", dns_servers=["fd00::53"])
    group = await net.create_group("g", "o1", "p1")
    port = await net.create_port(subnet.id, security_group_ids=[group.id])
    empty = await net.create_vpc("empty", "o2", "p9", "10.0.0.0/16")
    state = await net.network_state()
    assert state.vpcs == sorted([vpc, empty], key=lambda v: v.id)
    assert state.subnets == [(subnet, 2**64 - 2, 1)]
    assert state.ports == [port] and state.groups == [group]
    assert state.applied_index == net.machine.applied_index() == 5
