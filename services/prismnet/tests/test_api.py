"""PrismNET over both transports: one table of steps over REST and gRPC with the same results and
errors; 50 concurrent port creations filling a subnet; tenancy."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import aiohttp
import pytest

from photoncloud.common.auth import PROJECT, Scope
from photoncloud.common.server import Server
from photoncloud.common.testing import (GrpcContract, Operation, RestContract, TokenMint, over_both_transports,
                                        serve, subset, without)
from photoncloud.prismnet.app import build
from photoncloud.prismnet.v1 import prismnet_pb2 as pb
from photoncloud.prismnet.v1 import prismnet_pb2_grpc as pb_grpc

OPS = {
    "create_vpc": Operation("POST", "/vpcs", "Vpcs/CreateVpc"),
    "get_vpc": Operation("GET", "/vpcs/{id}", "Vpcs/GetVpc"),
    "list_vpcs": Operation("GET", "/vpcs", "Vpcs/ListVpcs"),
    "update_vpc": Operation("PATCH", "/vpcs/{id}", "Vpcs/UpdateVpc"),
    "delete_vpc": Operation("DELETE", "/vpcs/{id}", "Vpcs/DeleteVpc"),
    "create_subnet": Operation("POST", "/subnets", "Subnets/CreateSubnet"),
    "get_subnet": Operation("GET", "/subnets/{id}", "Subnets/GetSubnet"),
    "list_subnets": Operation("GET", "/subnets", "Subnets/ListSubnets"),
    "delete_subnet": Operation("DELETE", "/subnets/{id}", "Subnets/DeleteSubnet"),
    "create_port": Operation("POST", "/ports", "Ports/CreatePort"),
    "get_port": Operation("GET", "/ports/{id}", "Ports/GetPort"),
    "list_ports": Operation("GET", "/ports", "Ports/ListPorts"),
    "attach": Operation("POST", "/ports/{id}/attach", "Ports/AttachPort"),
    "detach": Operation("POST", "/ports/{id}/detach", "Ports/DetachPort"),
    "delete_port": Operation("DELETE", "/ports/{id}", "Ports/DeletePort"),
    "create_group": Operation("POST", "/security-groups", "SecurityGroups/CreateSecurityGroup"),
    "get_group": Operation("GET", "/security-groups/{id}", "SecurityGroups/GetSecurityGroup"),
    "list_groups": Operation("GET", "/security-groups", "SecurityGroups/ListSecurityGroups"),
    "update_group": Operation("PATCH", "/security-groups/{id}", "SecurityGroups/UpdateSecurityGroup"),
    "delete_group": Operation("DELETE", "/security-groups/{id}", "SecurityGroups/DeleteSecurityGroup"),
}
# Fields that differ between two servers running the same steps: generated ids, MACs and times.
VOLATILE = {"id", "vpc_id", "subnet_id", "port_id", "subnet_ids", "port_ids", "security_group_ids", "remote_group_id",
            "mac_address", "created_at", "updated_at", "next_page_token"}

# (op, args with $name standing for an id saved earlier, save the result's id as, expected)
STEPS = [
    ("create_vpc", {"name": "main", "org_id": "o1", "project_id": "p1", "cidr_block": "10.0.0.1/16"}, "",
     "INVALID_ARGUMENT"),
    ("create_vpc", {"name": "main", "org_id": "o1", "project_id": "p1", "cidr_block": "10.0.0.0/16"}, "vpc",
     {"cidr_block": "10.0.0.0/16"}),
    ("update_vpc", {"id": "$vpc", "description": "the main network"}, "",
     {"name": "main", "description": "the main network"}),
    ("create_subnet", {"vpc_id": "$vpc", "name": "web", "cidr_block": "10.0.1.0/24"}, "web",
     {"gateway_ip": "10.0.1.1", "capacity": "253", "used": "0",
      "allocation_pools": [{"start": "10.0.1.2", "end": "10.0.1.254"}]}),
    ("create_subnet", {"vpc_id": "$vpc", "name": "db", "cidr_block": "10.0.2.0/24", "gateway_ip": "10.0.2.254",
                       "dns_servers": ["10.0.0.2"]}, "db", {"gateway_ip": "10.0.2.254", "dns_servers": ["10.0.0.2"]}),
    ("create_subnet", {"vpc_id": "$vpc", "name": "wide", "cidr_block": "10.0.0.0/22"}, "", "FAILED_PRECONDITION"),
    ("create_subnet", {"vpc_id": "$vpc", "name": "out", "cidr_block": "10.1.0.0/24"}, "", "INVALID_ARGUMENT"),
    ("list_subnets", {"vpc_id": "$vpc"}, "", {"items": [{}, {}]}),
    ("create_group", {"name": "web", "org_id": "o1", "project_id": "p1", "rules": [
        {"direction": "INGRESS", "protocol": "TCP", "port_range_min": 443, "port_range_max": 443,
         "remote_cidr": "0.0.0.0/0"}]}, "group", {"rules": [
        {"direction": "EGRESS", "protocol": "ANY", "ethertype": "IPv4", "remote_cidr": ""},
        {"direction": "EGRESS", "protocol": "ANY", "ethertype": "IPv6", "remote_cidr": ""},
        {"direction": "INGRESS", "protocol": "TCP", "port_range_min": 443}]}),
    ("create_port", {"subnet_id": "$web", "name": "a"}, "port", {"ip_address": "10.0.1.2", "status": "DOWN"}),
    ("create_port", {"subnet_id": "$web", "ip_address": "10.0.1.20", "security_group_ids": ["$group"]}, "",
     {"ip_address": "10.0.1.20"}),
    ("create_port", {"subnet_id": "$web", "ip_address": "10.0.1.20"}, "", "ALREADY_EXISTS"),
    ("create_port", {"subnet_id": "$web", "ip_address": "10.0.2.5"}, "", "INVALID_ARGUMENT"),
    ("attach", {"id": "$port", "device_id": "vm-1", "device_type": "VM"}, "",
     {"device_id": "vm-1", "device_type": "VM", "status": "ACTIVE"}),
    ("attach", {"id": "$port", "device_id": "vm-2", "device_type": "VM"}, "", "FAILED_PRECONDITION"),
    ("list_ports", {"subnet_id": "$web", "device_id": "vm-1"}, "", {"items": [{"ip_address": "10.0.1.2"}]}),
    ("detach", {"id": "$port"}, "", {"device_id": "", "status": "DOWN"}),
    ("get_subnet", {"id": "$web"}, "", {"used": "2"}),
    ("delete_group", {"id": "$group"}, "", "FAILED_PRECONDITION"),
    ("delete_vpc", {"id": "$vpc"}, "", "FAILED_PRECONDITION"),
    ("delete_subnet", {"id": "$web"}, "", "FAILED_PRECONDITION"),
    ("delete_port", {"id": "$port"}, "", {"ip_address": "10.0.1.2"}),
    ("get_port", {"id": "$port"}, "", "NOT_FOUND"),
    ("create_port", {"subnet_id": "$web"}, "", {"ip_address": "10.0.1.2"}),  # the freed address, again
    ("update_group", {"id": "$group", "name": "web-tier"}, "", {"name": "web-tier"}),
    ("list_groups", {"project_id": "p1"}, "", {"items": [{"name": "web-tier"}]}),
    ("delete_subnet", {"id": "$db"}, "", {"name": "db"}),
    ("get_vpc", {"id": "$vpc"}, "", {"name": "main"}),
    ("list_vpcs", {"org_id": "o1"}, "", {"items": [{"name": "main"}]}),
]


async def run(client: RestContract | GrpcContract) -> list[Any]:
    results, saved = [], {}
    for op, args, save, expected in STEPS:
        args = {k: [saved.get(x[1:], x) for x in v] if isinstance(v, list) and v and isinstance(v[0], str)
                else saved[v[1:]] if isinstance(v, str) and v.startswith("$") else v for k, v in args.items()}
        result = await client.call(op, args)
        if "items" in result:  # listed by id, and ids are random: compare them by name
            result["items"].sort(key=lambda item: (item["name"], item.get("ip_address", "")))
        if isinstance(expected, str):
            assert result.get("error") == expected, (op, args, result)
        else:
            assert "error" not in result and subset(expected, result), (op, args, result)
            if save:
                saved[save] = result["id"]
        results.append(result)
    return results


@pytest.fixture(scope="module")
def mint():
    return TokenMint()


async def start(data_dir, mint: TokenMint) -> Server:
    """A prismnet trusting mint's tokens, without IAM: project ids are taken as given."""
    return await serve(build, "prismnet", data_dir, mint.verifier(), iam_url="")


async def test_rest_and_grpc_agree_step_by_step(tmp_path, mint):
    over_rest, over_grpc = await over_both_transports(lambda d: start(d, mint), tmp_path, mint.token(), OPS, pb,
                                                      pb_grpc, run)
    for step, a, b in zip(STEPS, over_rest, over_grpc):
        assert without(a, VOLATILE) == without(b, VOLATILE), step


@pytest.fixture
async def server(tmp_path, mint):
    running = await start(tmp_path, mint)
    yield running
    await running.stop()


async def test_fifty_concurrent_port_creations_fill_a_small_subnet_exactly(server, mint):
    base = f"http://127.0.0.1:{server.rest_port}/api/v1"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {mint.token()}"}) as session:
        async def post(path: str, body: dict) -> tuple[int, dict]:
            async with session.post(base + path, json=body) as response:
                return response.status, await response.json()

        _, vpc = await post("/vpcs", {"name": "v", "org_id": "o1", "project_id": "p1", "cidr_block": "10.9.0.0/16"})
        _, subnet = await post("/subnets", {"vpc_id": vpc["data"]["id"], "name": "tiny", "cidr_block": "10.9.0.0/27"})
        capacity = subnet["data"]["capacity"]
        network = ipaddress.ip_network("10.9.0.0/27")
        assert capacity == network.num_addresses - 3  # network, broadcast and gateway are never given out
        results = await asyncio.gather(*(post("/ports", {"subnet_id": subnet["data"]["id"]}) for _ in range(50)))
        made = [body["data"]["ip_address"] for status, body in results if status == 201]
        refused = [body["error"]["code"] for status, body in results if status != 201]
        assert len(made) == capacity and len(set(made)) == capacity
        assert all(ipaddress.ip_address(a) in network and a != "10.9.0.1" for a in made)
        assert refused == ["RESOURCE_EXHAUSTED"] * (50 - capacity)
        status, body = await post("/ports", {"subnet_id": subnet["data"]["id"]})
        assert status == 429 and body["error"]["details"]["reason"] == "SUBNET_FULL"


async def test_each_project_sees_only_its_own_networks(server, mint):
    base = f"http://127.0.0.1:{server.rest_port}/api/v1"
    admin = {"Authorization": f"Bearer {mint.token()}"}
    p1 = {"Authorization": "Bearer " + mint.token(permissions=("*:*:read", "*:*:write"), roles=("member",),
                                                  scope=Scope(PROJECT, "o1", "p1"))}
    async with aiohttp.ClientSession() as session:
        async def call(method: str, path: str, headers: dict, body: dict | None = None) -> tuple[int, dict]:
            async with session.request(method, base + path, json=body, headers=headers) as response:
                return response.status, await response.json()

        status, other = await call("POST", "/vpcs", admin, {"name": "theirs", "org_id": "o1", "project_id": "p2",
                                                             "cidr_block": "10.2.0.0/16"})
        assert status == 201
        status, mine = await call("POST", "/vpcs", p1, {"name": "mine", "org_id": "o1", "project_id": "p1",
                                                        "cidr_block": "10.1.0.0/16"})
        assert status == 201
        status, body = await call("POST", "/vpcs", p1, {"name": "x", "org_id": "o1", "project_id": "p2",
                                                        "cidr_block": "10.3.0.0/16"})
        assert status == 403
        status, body = await call("GET", "/vpcs", p1)
        assert [v["name"] for v in body["data"]["items"]] == ["mine"]
        status, body = await call("GET", f"/vpcs/{other['data']['id']}", p1)
        assert status == 403
        status, body = await call("POST", "/subnets", p1, {"vpc_id": other["data"]["id"], "name": "s",
                                                           "cidr_block": "10.2.1.0/24"})
        assert status == 403
        status, body = await call("GET", "/vpcs?project_id=p2", p1)
        assert status == 403
