"""PlasmaVMC over both transports (the fake hypervisor, no CreditService or PrismNET): one table of
steps over REST and gRPC with the same results and errors; permissions and tenancy; /health."""

from __future__ import annotations

from typing import Any

import aiohttp
import grpc
import pytest

from photoncloud.common.auth import PROJECT, Scope
from photoncloud.common.config import ServerConfig
from photoncloud.common.server import Server
from photoncloud.common.testing import GrpcContract, Operation, RestContract, TokenMint, subset, without
from photoncloud.plasmavmc.app import build
from photoncloud.plasmavmc.v1 import plasmavmc_pb2 as pb
from photoncloud.plasmavmc.v1 import plasmavmc_pb2_grpc as pb_grpc

OPS = {
    "create_flavor": Operation("POST", "/flavors", "Flavors/CreateFlavor"),
    "get_flavor": Operation("GET", "/flavors/{id}", "Flavors/GetFlavor"),
    "list_flavors": Operation("GET", "/flavors", "Flavors/ListFlavors"),
    "update_flavor": Operation("PATCH", "/flavors/{id}", "Flavors/UpdateFlavor"),
    "delete_flavor": Operation("DELETE", "/flavors/{id}", "Flavors/DeleteFlavor"),
    "register_image": Operation("POST", "/images", "Images/RegisterImage"),
    "get_image": Operation("GET", "/images/{id}", "Images/GetImage"),
    "list_images": Operation("GET", "/images", "Images/ListImages"),
    "delete_image": Operation("DELETE", "/images/{id}", "Images/DeleteImage"),
    "create_vm": Operation("POST", "/vms", "Vms/CreateVm"),
    "get_vm": Operation("GET", "/vms/{id}", "Vms/GetVm"),
    "list_vms": Operation("GET", "/vms", "Vms/ListVms"),
    "delete_vm": Operation("DELETE", "/vms/{id}", "Vms/DeleteVm"),
    "start": Operation("POST", "/vms/{id}/start", "Vms/StartVm"),
    "stop": Operation("POST", "/vms/{id}/stop", "Vms/StopVm"),
    "reboot": Operation("POST", "/vms/{id}/reboot", "Vms/RebootVm"),
    "pause": Operation("POST", "/vms/{id}/pause", "Vms/PauseVm"),
    "resume": Operation("POST", "/vms/{id}/resume", "Vms/ResumeVm"),
    "console": Operation("GET", "/vms/{id}/console", "Vms/GetConsole"),
}
# Fields that differ between two servers running the same steps: generated ids and times.
VOLATILE = {"id", "vm_id", "image_id", "flavor_id", "vm_ids", "created_at", "updated_at", "started_at",
            "next_page_token", "output"}


def steps(kernel: str) -> list[tuple[str, dict[str, Any], str, Any]]:
    """(op, args with $name standing for an id saved earlier, save the result's id as, expected)."""
    return [
        ("create_flavor", {"name": "tiny", "vcpus": 1, "memory_mib": 64}, "", "INVALID_ARGUMENT"),
        ("create_flavor", {"name": "tiny", "vcpus": 1, "memory_mib": 128, "disk_gib": 1, "price_per_hour": 30},
         "flavor", {"name": "tiny", "price_per_hour": "30"}),
        ("create_flavor", {"name": "tiny", "vcpus": 2, "memory_mib": 256}, "", "ALREADY_EXISTS"),
        ("update_flavor", {"id": "$flavor", "description": "one vCPU"}, "", {"description": "one vCPU"}),
        ("get_flavor", {"id": "tiny"}, "", {"vcpus": 1, "memory_mib": "128"}),
        ("list_flavors", {}, "", {"items": [{"name": "tiny"}]}),
        ("register_image", {"name": "linux", "kernel_path": "relative/vmlinuz"}, "", "INVALID_ARGUMENT"),
        ("register_image", {"name": "linux", "kernel_path": kernel}, "image",
         {"kind": "KERNEL", "kernel": {"size_bytes": "4096"}, "size_bytes": "4096", "disk_format": ""}),
        ("get_image", {"id": "nope"}, "", "NOT_FOUND"),
        ("list_images", {}, "", {"items": [{"name": "linux"}]}),
        ("create_vm", {"name": "web", "org_id": "o1", "project_id": "p1", "image_id": "$image", "flavor_id": "tiny",
                       "vcpus": 2}, "", "INVALID_ARGUMENT"),
        ("create_vm", {"name": "web", "org_id": "o1", "project_id": "p1", "image_id": "nope", "flavor_id": "tiny"},
         "", "NOT_FOUND"),
        ("create_vm", {"name": "web", "org_id": "o1", "project_id": "p1", "image_id": "$image", "flavor_id": "tiny"},
         "vm", {"state": "STOPPED", "vcpus": 1, "memory_mib": "128", "price_per_hour": "30", "nics": []}),
        ("create_vm", {"name": "db", "org_id": "o1", "project_id": "p1", "image_id": "$image", "vcpus": 2,
                       "memory_mib": 1536}, "db", {"price_per_hour": "30", "flavor_id": ""}),
        ("stop", {"id": "$vm"}, "", "FAILED_PRECONDITION"),
        ("start", {"id": "$vm"}, "", {"state": "RUNNING"}),
        ("start", {"id": "$vm"}, "", "FAILED_PRECONDITION"),
        ("console", {"id": "$vm"}, "", {"truncated": False}),
        ("pause", {"id": "$vm"}, "", {"state": "PAUSED"}),
        ("reboot", {"id": "$vm"}, "", "FAILED_PRECONDITION"),
        ("resume", {"id": "$vm"}, "", {"state": "RUNNING"}),
        ("reboot", {"id": "$vm"}, "", {"state": "RUNNING"}),
        ("list_vms", {"state": "RUNNING"}, "", {"items": [{"name": "web"}]}),
        ("list_vms", {"project_id": "p1", "state": "STOPPED"}, "", {"items": [{"name": "db"}]}),
        ("list_vms", {"state": "ASLEEP"}, "", "INVALID_ARGUMENT"),
        ("delete_image", {"id": "$image"}, "", "FAILED_PRECONDITION"),
        ("stop", {"id": "$vm", "force": True}, "", {"state": "STOPPED", "last_error": ""}),
        ("delete_vm", {"id": "$vm"}, "", {"name": "web"}),
        ("delete_vm", {"id": "$db"}, "", {"name": "db"}),
        ("get_vm", {"id": "$vm"}, "", "NOT_FOUND"),
        ("delete_image", {"id": "$image"}, "", {"name": "linux"}),
        ("delete_flavor", {"id": "$flavor"}, "", {"name": "tiny"}),
        ("get_flavor", {"id": "tiny"}, "", "NOT_FOUND"),
    ]


async def run(client: RestContract | GrpcContract, kernel: str) -> list[Any]:
    """Run the steps through client, checking each result; the results."""
    results, saved = [], {}
    for op, args, save, expected in steps(kernel):
        args = {k: saved[v[1:]] if isinstance(v, str) and v.startswith("$") else v for k, v in args.items()}
        result = await client.call(op, args)
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
    """Signs the tokens the servers trust."""
    return TokenMint()


async def start(data_dir, mint: TokenMint) -> Server:
    """PlasmaVMC in-process on free ports, with the fake hypervisor."""
    config = ServerConfig(service="plasmavmc", bind="127.0.0.1", rest_port=0, grpc_port=0, data_dir=data_dir,
                          shutdown_grace=2, iam_url="",  # no IAM: project ids are taken as given
                          options={"driver": "fake", "creditservice_grpc": "", "prismnet_grpc": ""})
    service = await build(config)
    service.verifier = mint.verifier()
    server = Server(service, config)
    await server.start()
    return server


@pytest.fixture
def kernel(tmp_path):
    """A file to register as a kernel."""
    path = tmp_path / "vmlinuz"
    path.write_bytes(b"k" * 4096)
    return str(path)


async def test_rest_and_grpc_agree_step_by_step(tmp_path, mint, kernel):
    token = mint.token()
    rest_server, grpc_server = await start(tmp_path / "rest", mint), await start(tmp_path / "grpc", mint)
    try:
        async with aiohttp.ClientSession() as session, \
                grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.grpc_port}") as channel:
            over_rest = await run(RestContract(session, rest_server.rest_port, {"Authorization": f"Bearer {token}"},
                                               OPS, pb), kernel)
            over_grpc = await run(GrpcContract(channel, (("authorization", f"Bearer {token}"),), OPS, pb, pb_grpc),
                                  kernel)
    finally:
        await rest_server.stop()
        await grpc_server.stop()
    for step, a, b in zip(steps(kernel), over_rest, over_grpc):
        assert without(a, VOLATILE) == without(b, VOLATILE), step


@pytest.fixture
async def server(tmp_path, mint):
    """A running PlasmaVMC."""
    running = await start(tmp_path, mint)
    yield running
    await running.stop()


async def test_members_run_vms_of_their_project_only_and_operators_manage_flavors_and_images(server, mint, kernel):
    base = f"http://127.0.0.1:{server.rest_port}"
    admin = {"Authorization": f"Bearer {mint.token()}"}
    member = {"Authorization": "Bearer " + mint.token(permissions=("*:*:read", "*:*:write"), roles=("member",),
                                                      scope=Scope(PROJECT, "o1", "p1"))}
    async with aiohttp.ClientSession() as session:
        async def call(method: str, path: str, headers: dict, body: dict | None = None) -> tuple[int, dict]:
            async with session.request(method, base + path, json=body, headers=headers) as response:
                return response.status, await response.json()

        status, body = await call("GET", "/health", {})
        assert status == 200 and body["data"]["dependencies"]["hypervisor"] == {"driver": "fake", "accel": "none",
                                                                                  "kvm": False}
        assert body["data"]["dependencies"]["network"] == {"mode": "user-mode (QEMU slirp, restricted)"}
        status, body = await call("POST", "/api/v1/flavors", member, {"name": "x", "vcpus": 1, "memory_mib": 128})
        assert status == 403 and body["error"]["details"]["action"] == "plasmavmc:flavors:manage"
        status, body = await call("POST", "/api/v1/images", member, {"name": "x", "kernel_path": kernel})
        assert status == 403
        # the project's own admin holds `*` there, and is still a tenant
        project_admin = {"Authorization": "Bearer " + mint.token(permissions=("*",), roles=("admin",),
                                                                 scope=Scope(PROJECT, "o1", "p1"))}
        for path, body in (("/api/v1/flavors", {"name": "free", "vcpus": 64, "memory_mib": 131072}),
                           ("/api/v1/images", {"name": "secrets", "kernel_path": kernel})):
            status, reply = await call("POST", path, project_admin, body)
            assert (status, reply["error"]["details"]["reason"]) == (403, "OPERATOR_ONLY"), path
        _, listed = await call("GET", "/api/v1/flavors", admin)
        assert "free" not in [f["name"] for f in listed["data"]["items"]]
        status, image = await call("POST", "/api/v1/images", admin, {"name": "linux", "kernel_path": kernel})
        assert status == 201
        status, _ = await call("GET", f"/api/v1/images/{image['data']['id']}", member)
        assert status == 200  # images are the platform's: every member may boot them
        vm = {"name": "a", "image_id": image["data"]["id"], "vcpus": 1, "memory_mib": 128}
        status, theirs = await call("POST", "/api/v1/vms", admin, {**vm, "org_id": "o1", "project_id": "p2"})
        assert status == 201
        status, mine = await call("POST", "/api/v1/vms", member, {**vm, "org_id": "o1", "project_id": "p1"})
        assert status == 201
        status, _ = await call("POST", "/api/v1/vms", member, {**vm, "org_id": "o1", "project_id": "p2"})
        assert status == 403
        status, body = await call("GET", "/api/v1/vms", member)
        assert [v["id"] for v in body["data"]["items"]] == [mine["data"]["id"]]
        for path in ("", "/start", "/console"):
            method = "POST" if path == "/start" else "GET"
            status, _ = await call(method, f"/api/v1/vms/{theirs['data']['id']}{path}", member)
            assert status == 403, path
        status, body = await call("POST", f"/api/v1/vms/{mine['data']['id']}/stop?force=maybe", member)
        assert status == 400 and body["error"]["details"]["field"] == "force"
        status, body = await call("GET", "/api/v1/vms?state=RUNNING", admin)
        assert status == 200 and body["data"]["items"] == []
