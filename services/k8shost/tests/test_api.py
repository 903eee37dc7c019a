"""k8shost over both transports: one table of steps over REST and gRPC with the same results and
errors (resource versions included), and watches over server-sent events and a gRPC stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import grpc
import pytest

from photoncloud.common.auth import PROJECT, Scope
from photoncloud.common.config import ServerConfig
from photoncloud.common.rpc import error_from_rpc
from photoncloud.common.server import Server
from photoncloud.common.testing import GrpcContract, Operation, RestContract, TokenMint, sse_events, subset, without
from photoncloud.k8shost.app import build
from photoncloud.k8shost.v1 import k8shost_pb2 as pb
from photoncloud.k8shost.v1 import k8shost_pb2_grpc as pb_grpc

OPS = {
    "create_ns": Operation("POST", "/namespaces", "Namespaces/CreateNamespace"),
    "get_ns": Operation("GET", "/namespaces/{name}", "Namespaces/GetNamespace"),
    "list_ns": Operation("GET", "/namespaces", "Namespaces/ListNamespaces"),
    "update_ns": Operation("PUT", "/namespaces/{name}", "Namespaces/UpdateNamespace"),
    "delete_ns": Operation("DELETE", "/namespaces/{name}", "Namespaces/DeleteNamespace"),
    "create_pod": Operation("POST", "/pods", "Pods/CreatePod"),
    "get_pod": Operation("GET", "/pods/{namespace}/{name}", "Pods/GetPod"),
    "list_pods": Operation("GET", "/pods", "Pods/ListPods"),
    "update_pod": Operation("PUT", "/pods/{namespace}/{name}", "Pods/UpdatePod"),
    "delete_pod": Operation("DELETE", "/pods/{namespace}/{name}", "Pods/DeletePod"),
    "pod_status": Operation("PUT", "/pods/{namespace}/{name}/status", "Pods/UpdatePodStatus"),
    "logs": Operation("GET", "/pods/{namespace}/{name}/logs", "Pods/GetPodLogs"),
    "create_svc": Operation("POST", "/services", "Services/CreateService"),
    "get_svc": Operation("GET", "/services/{namespace}/{name}", "Services/GetService"),
    "list_svc": Operation("GET", "/services", "Services/ListServices"),
    "update_svc": Operation("PUT", "/services/{namespace}/{name}", "Services/UpdateService"),
    "delete_svc": Operation("DELETE", "/services/{namespace}/{name}", "Services/DeleteService"),
    "get_eps": Operation("GET", "/endpoints/{namespace}/{name}", "Endpoints/GetEndpoints"),
    "list_eps": Operation("GET", "/endpoints", "Endpoints/ListEndpoints"),
    "register": Operation("POST", "/nodes", "Nodes/RegisterNode"),
    "heartbeat": Operation("POST", "/nodes/{name}/heartbeat", "Nodes/Heartbeat"),
    "get_node": Operation("GET", "/nodes/{name}", "Nodes/GetNode"),
    "list_nodes": Operation("GET", "/nodes", "Nodes/ListNodes"),
    "update_node": Operation("PUT", "/nodes/{name}", "Nodes/UpdateNode"),
    "delete_node": Operation("DELETE", "/nodes/{name}", "Nodes/DeleteNode"),
}
# Fields that differ between two servers running the same steps: generated uids and times.
VOLATILE = {"uid", "creation_timestamp", "last_transition_time", "last_heartbeat_time", "start_time"}
CONTAINER = {"name": "main", "command": ["sleep", "60"], "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}
NODE = {"name": "node-a", "labels": {"disk": "ssd"}, "capacity": {"cpu": "1", "memory": "1Gi", "pods": "10"},
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}], "daemon_port": 1, "daemon_token": "secret",
        "runtime": "process"}

# (op, args, expected: a subset of the result, or an error code)
STEPS = [
    ("create_ns", {"name": "Web", "org_id": "o1", "project_id": "p1"}, "INVALID_ARGUMENT"),
    ("create_ns", {"name": "web", "org_id": "o1", "project_id": "p1", "labels": {"env": "prod"}},
     {"metadata": {"name": "web", "resource_version": "1", "labels": {"env": "prod"}}, "phase": "Active"}),
    ("create_ns", {"name": "web", "org_id": "o1", "project_id": "p1"}, "ALREADY_EXISTS"),
    ("create_ns", {"name": "dev", "org_id": "o1", "project_id": "p1", "labels": {"env": "dev"}},
     {"metadata": {"resource_version": "2"}}),
    ("list_ns", {"label_selector": "env in (prod)"}, {"items": [{"metadata": {"name": "web"}}],
                                                      "resource_version": "2", "next_page_token": ""}),
    ("list_ns", {"label_selector": "env in prod"}, "INVALID_ARGUMENT"),
    ("update_ns", {"name": "dev", "labels": {"env": "test"}, "resource_version": "1"}, "ABORTED"),
    ("update_ns", {"name": "dev", "labels": {"env": "test"}, "resource_version": "2"},
     {"metadata": {"labels": {"env": "test"}, "resource_version": "3"}}),
    ("create_pod", {"namespace": "web", "name": "a", "labels": {"app": "a"}, "spec": {"containers": [CONTAINER]}},
     {"metadata": {"resource_version": "4"}, "status": {"phase": "Pending"},
      "spec": {"restart_policy": "Always", "containers": [{"resources": {"requests": {"cpu": "250m"}}}]}}),
    ("create_pod", {"namespace": "web", "name": "b", "image": "python:3", "command": ["python3"], "args": ["-V"]},
     {"spec": {"containers": [{"name": "main", "image": "python:3", "command": ["python3"], "args": ["-V"]}]}}),
    ("create_pod", {"namespace": "web", "name": "c", "spec": {"containers": [CONTAINER], "restart_policy": "Maybe"}},
     "INVALID_ARGUMENT"),
    ("create_pod", {"namespace": "nope", "name": "c", "image": "x"}, "NOT_FOUND"),
    ("list_pods", {"namespace": "web", "label_selector": "!app"}, {"items": [{"metadata": {"name": "b"}}]}),
    ("list_pods", {"page_size": 1}, {"items": [{"metadata": {"name": "a"}}]}),
    ("update_pod", {"namespace": "web", "name": "a", "labels": {"app": "a", "v": "2"}, "resource_version": "4"},
     {"metadata": {"labels": {"app": "a", "v": "2"}, "resource_version": "6"}}),
    ("logs", {"namespace": "web", "name": "a"}, "FAILED_PRECONDITION"),
    ("pod_status", {"namespace": "web", "name": "a", "status": {"phase": "Running"}}, "FAILED_PRECONDITION"),
    ("register", NODE, {"metadata": {"name": "node-a", "resource_version": "7"},
                        "status": {"conditions": [{"type": "Ready", "status": "True"}], "daemon_port": 1,
                                   "capacity": {"cpu": "1"}, "allocatable": {"cpu": "1"}}}),
    ("heartbeat", {"name": "node-a"}, {"metadata": {"resource_version": "8"}}),
    ("heartbeat", {"name": "node-b"}, "NOT_FOUND"),
    ("list_nodes", {"label_selector": "disk=ssd"}, {"items": [{"metadata": {"name": "node-a"}}]}),
    ("update_node", {"name": "node-a", "labels": {"disk": "ssd"}, "unschedulable": True},
     {"spec": {"unschedulable": True}}),
    ("get_node", {"name": "node-a"}, {"spec": {"unschedulable": True}, "metadata": {"resource_version": "9"}}),
    ("create_svc", {"namespace": "web", "name": "front", "service_type": "NodePort", "port": 80, "target_port": 8080,
                    "selector": {"app": "a"}},
     {"spec": {"type": "NodePort", "selector": {"app": "a"}, "cluster_ip": "127.96.0.2",
               "ports": [{"port": 80, "target_port": 8080, "node_port": 30000}]}}),
    ("get_eps", {"namespace": "web", "name": "front"},
     {"metadata": {"name": "front"}, "addresses": [], "ports": [{"port": 8080, "protocol": "TCP"}]}),
    ("list_eps", {"namespace": "web"}, {"items": [{"metadata": {"name": "front"}}]}),
    ("create_svc", {"namespace": "web", "name": "bad", "service_type": "LoadBalancer", "port": 80},
     "INVALID_ARGUMENT"),
    ("update_svc", {"namespace": "web", "name": "front", "labels": {"tier": "edge"},
                    "spec": {"type": "ClusterIP", "selector": {"app": "b"}, "ports": [{"port": 81}]}},
     {"metadata": {"labels": {"tier": "edge"}}, "spec": {"type": "ClusterIP", "ports": [{"port": 81,
                                                                                         "target_port": 81}]}}),
    ("list_svc", {"namespace": "web", "label_selector": "tier=edge"}, {"items": [{"metadata": {"name": "front"}}]}),
    ("get_svc", {"namespace": "web", "name": "front"}, {"spec": {"selector": {"app": "b"}}}),
    ("delete_svc", {"namespace": "web", "name": "front", "resource_version": "1"}, "ABORTED"),
    ("delete_svc", {"namespace": "web", "name": "front"}, {"metadata": {"name": "front"}}),
    ("get_svc", {"namespace": "web", "name": "front"}, "NOT_FOUND"),
    ("get_eps", {"namespace": "web", "name": "front"}, "NOT_FOUND"),
    ("delete_pod", {"namespace": "web", "name": "b"}, {"metadata": {"name": "b"}}),
    ("get_pod", {"namespace": "web", "name": "a"}, {"metadata": {"labels": {"v": "2"}}}),
    ("delete_node", {"name": "node-a"}, {"metadata": {"name": "node-a"}}),
    ("delete_ns", {"name": "web"}, {"metadata": {"name": "web"}}),
    ("get_pod", {"namespace": "web", "name": "a"}, "NOT_FOUND"),
    ("get_ns", {"name": "dev"}, {"metadata": {"labels": {"env": "test"}}, "org_id": "o1", "project_id": "p1"}),
]


async def run(client: RestContract | GrpcContract) -> list[Any]:
    """Run every step, checking each result or error code; the results."""
    results = []
    for op, args, expected in STEPS:
        result = await client.call(op, args)
        if isinstance(expected, str):
            assert result.get("error") == expected, (op, args, result)
        else:
            assert "error" not in result and subset(expected, result), (op, args, result)
        results.append(result)
    return results


@pytest.fixture(scope="module")
def mint():
    """The token mint the servers trust."""
    return TokenMint()


async def start(data_dir, mint: TokenMint, **options: Any) -> Server:
    """A k8shost server on free ports trusting the mint (no IAM)."""
    config = ServerConfig(service="k8shost", bind="127.0.0.1", rest_port=0, grpc_port=0, data_dir=data_dir,
                          shutdown_grace=2, iam_url="", options=options)  # no IAM: project ids are taken as given
    service = await build(config)
    service.verifier = mint.verifier()
    server = Server(service, config)
    await server.start()
    return server


async def test_rest_and_grpc_agree_step_by_step(tmp_path, mint):
    token = mint.token()
    # Without the scheduler, whose writes would interleave with the steps at its own pace.
    rest_server = await start(tmp_path / "rest", mint, disable_scheduler=True)
    grpc_server = await start(tmp_path / "grpc", mint, disable_scheduler=True)
    try:
        async with aiohttp.ClientSession() as session, \
                grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.grpc_port}") as channel:
            over_rest = await run(RestContract(session, rest_server.rest_port, {"Authorization": f"Bearer {token}"},
                                               OPS, pb))
            over_grpc = await run(GrpcContract(channel, (("authorization", f"Bearer {token}"),), OPS, pb, pb_grpc))
    finally:
        await rest_server.stop()
        await grpc_server.stop()
    for step, a, b in zip(STEPS, over_rest, over_grpc, strict=True):
        assert without(a, VOLATILE) == without(b, VOLATILE), step
    assert "secret" not in json.dumps(over_rest)  # the daemon token is never shown


@pytest.fixture
async def server(tmp_path, mint):
    """A running server without the scheduler."""
    running = await start(tmp_path, mint, disable_scheduler=True)  # the revisions in the tests are the steps' own
    yield running
    await running.stop()


async def test_watch_over_server_sent_events_and_grpc_from_a_resource_version(server, mint):
    base = f"http://127.0.0.1:{server.rest_port}/api/v1"
    headers = {"Authorization": f"Bearer {mint.token()}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async def call(method: str, path: str, body: dict | None = None) -> dict:
            async with session.request(method, base + path, json=body) as response:
                return await response.json()

        await call("POST", "/namespaces", {"name": "web", "org_id": "o1", "project_id": "p1"})
        listed = await call("GET", "/pods?namespace=web")
        since = listed["data"]["resource_version"]
        await call("POST", "/pods", {"namespace": "web", "name": "a", "labels": {"app": "a"}, "command": ["true"]})
        await call("PUT", "/pods/web/a", {"labels": {"app": "a", "v": "2"}})
        await call("DELETE", "/pods/web/a")
        async with session.get(f"{base}/watch/pods", params={"namespace": "web", "resource_version": since,
                                                             "timeout_seconds": "5"}) as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
            over_sse = await asyncio.wait_for(sse_events(response, 3), 5)
        assert [(name, e["type"], e["kind"], e["pod"]["metadata"]["name"], e["resource_version"])
                for name, e in over_sse] == [("added", "ADDED", "Pod", "a", "2"),
                                             ("modified", "MODIFIED", "Pod", "a", "3"),
                                             ("deleted", "DELETED", "Pod", "a", "4")]
        async with session.get(f"{base}/watch/pods", params={"resource_version": "0x"}) as response:
            assert response.status == 400

        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = pb_grpc.WatchStub(channel)
            stream = stub.Watch(pb.WatchRequest(kind="pods", namespace="web", resource_version=since,
                                                timeout_seconds=5),
                                metadata=(("authorization", headers["Authorization"]),))
            over_grpc = []
            async for event in stream:
                over_grpc.append((event.type, event.pod.metadata.name, event.resource_version))
                if len(over_grpc) == 3:
                    stream.cancel()
                    break
            assert over_grpc == [("ADDED", "a", "2"), ("MODIFIED", "a", "3"), ("DELETED", "a", "4")]

            # Live: a watch from now sees a change made after it opened, on both transports.
            live = stub.Watch(pb.WatchRequest(kind="namespaces", timeout_seconds=5),
                              metadata=(("authorization", headers["Authorization"]),))
            first = await live.read()
            assert (first.type, first.namespace.metadata.name) == ("ADDED", "web")
            async with session.get(f"{base}/watch/namespaces", params={"resource_version": "4",
                                                                       "timeout_seconds": "5"}) as response:
                await call("POST", "/namespaces", {"name": "dev", "org_id": "o1", "project_id": "p1"})
                (name, event), = await asyncio.wait_for(sse_events(response, 1), 5)
            assert (name, event["namespace"]["metadata"]["name"]) == ("added", "dev")
            second = await asyncio.wait_for(live.read(), 5)
            assert (second.type, second.namespace.metadata.name, second.resource_version) == ("ADDED", "dev", "5")
            live.cancel()


async def test_a_too_old_resource_version_is_out_of_range_on_both_transports(tmp_path, mint):
    server = await start(tmp_path, mint, history_kept=3)
    base = f"http://127.0.0.1:{server.rest_port}/api/v1"
    headers = {"Authorization": f"Bearer {mint.token()}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.post(f"{base}/namespaces", json={"name": "web", "org_id": "o1", "project_id": "p1"}):
                pass
            for i in range(5):  # revisions 2-6: only 4-6 are kept
                async with session.put(f"{base}/namespaces/web", json={"labels": {"i": str(i)}}):
                    pass
            async with session.get(f"{base}/watch/namespaces", params={"resource_version": "2"}) as response:
                body = await response.json()
            assert response.status == 400 and body["error"]["code"] == "OUT_OF_RANGE"
            assert body["error"]["details"] == {"reason": "RESOURCE_VERSION_TOO_OLD",
                                                "compacted_resource_version": "3"}
            async with session.get(f"{base}/watch/namespaces", params={"resource_version": "3",
                                                                       "timeout_seconds": "2"}) as response:
                events = await asyncio.wait_for(sse_events(response, 3), 5)
            assert [e["metadata"]["labels"]["i"] for _, e in [(n, d["namespace"]) for n, d in events]] == \
                ["2", "3", "4"]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stream = pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(kind="namespaces", resource_version="1"),
                                                      metadata=(("authorization", headers["Authorization"]),))
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stream.read()
            assert error_from_rpc(error.value).code.name == "OUT_OF_RANGE"
    finally:
        await server.stop()


async def test_a_project_token_sees_only_its_own_namespaces_and_cannot_act_as_a_node(server, mint):
    base = f"http://127.0.0.1:{server.rest_port}/api/v1"
    admin = {"Authorization": f"Bearer {mint.token()}"}
    p1 = {"Authorization": "Bearer " + mint.token(permissions=("*:*:read", "*:*:write"), roles=("member",),
                                                  scope=Scope(PROJECT, "o1", "p1"))}
    async with aiohttp.ClientSession() as session:
        async def call(method: str, path: str, headers: dict, body: dict | None = None) -> tuple[int, dict]:
            async with session.request(method, base + path, json=body, headers=headers) as response:
                return response.status, await response.json()

        theirs = {"name": "theirs", "org_id": "o1", "project_id": "p2"}
        assert (await call("POST", "/namespaces", admin, theirs))[0] == 201
        assert (await call("POST", "/namespaces", p1, {"name": "mine", "org_id": "o1", "project_id": "p1"}))[0] == 201
        assert (await call("POST", "/namespaces", p1, {"name": "x", "org_id": "o1", "project_id": "p2"}))[0] == 403
        _, body = await call("GET", "/namespaces", p1)
        assert [n["metadata"]["name"] for n in body["data"]["items"]] == ["mine"]
        assert (await call("POST", "/pods", p1, {"namespace": "theirs", "name": "a", "command": ["true"]}))[0] == 403
        assert (await call("POST", "/nodes", p1, NODE))[0] == 403
        project_admin = {"Authorization": "Bearer " + mint.token(permissions=("*",), roles=("admin",),
                                                                 scope=Scope(PROJECT, "o1", "p1"))}
        for method, path, body in (("POST", "/nodes", NODE), ("POST", f"/nodes/{NODE['name']}/heartbeat", {}),
                                   ("PUT", "/pods/mine/a/status", {"phase": "Running"})):
            status, reply = await call(method, path, project_admin, body)
            assert (status, reply["error"]["details"]["reason"]) == (403, "OPERATOR_ONLY"), path
        assert (await call("GET", "/pods", {}))[0] == 401


async def test_rest_reads_bodies_as_the_contract_says(server, mint):
    base = f"http://127.0.0.1:{server.rest_port}/api/v1"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {mint.token()}"}) as session:
        async def call(method: str, path: str, body: Any = None) -> tuple[int, dict]:
            async with session.request(method, base + path, json=body) as response:
                return response.status, await response.json()

        # Fields the contract marks REQUIRED, nested ones named by their path; unknown fields refused.
        status, reply = await call("POST", "/namespaces", {"name": "web"})
        assert (status, reply["error"]["details"]["field"]) == (400, "project_id")
        status, reply = await call("POST", "/pods", {"namespace": "web", "name": "a",
                                                     "spec": {"containers": [{"command": ["true"]}]}})
        assert (status, reply["error"]["details"]["field"]) == (400, "spec.containers.0.name")
        status, reply = await call("POST", "/nodes", {"name": "n", "addresses": [{"type": "Hostname"}]})
        assert (status, reply["error"]["details"]["field"]) == (400, "addresses.0.address")
        status, reply = await call("PUT", "/pods/web/a/status", {"uid": ""})
        assert (status, reply["error"]["details"]["field"]) == (400, "status")
        status, reply = await call("PUT", "/nodes/n", {"unschedulable": True, "cordoned": True})
        assert (status, reply["error"]["details"]["field"]) == (400, "cordoned")

        # A delete's precondition comes in its body; a spec left out of a service's update keeps it.
        assert (await call("POST", "/namespaces", {"name": "web", "org_id": "o1", "project_id": "p1"}))[0] == 201
        status, created = await call("POST", "/services", {"namespace": "web", "name": "s", "port": 80})
        assert status == 201 and created["data"]["spec"]["ports"][0]["target_port"] == 80
        status, updated = await call("PUT", "/services/web/s", {"labels": {"a": "b"}})
        assert status == 200 and updated["data"]["spec"] == created["data"]["spec"]
        status, reply = await call("DELETE", "/services/web/s", {"resource_version": "1"})
        assert (status, reply["error"]["code"]) == (409, "ABORTED")

        # A watch event holds its kind's object alone.
        async with session.get(f"{base}/watch/namespaces", params={"timeout_seconds": "1"}) as response:
            (name, event), = await asyncio.wait_for(sse_events(response, 1), 5)
        assert name == "added" and set(event) == {"type", "kind", "resource_version", "namespace"}
