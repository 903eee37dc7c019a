"""The docker runtime against a real Docker engine, with an image the tests make of Debian's static
busybox (no registry needed): a killed container restarted by policy in the same sandbox, a missing
image's reason, command and args over the image, an agent's leftovers removed; what confines a
tenant's pod: its memory limit (OOMKilled), its process limit, the node's default limits, its
capabilities, and its namespace's network, out of other tenants' reach; and the pod with service
workflow with an agent running `--runtime docker`, on its namespace's network and on the network of
a PrismNET subnet. Without an engine the tests are skipped, unless CI
(CI=true, PHOTONCLOUD_REQUIRE_TOOLS=1) or PHOTONCLOUD_REQUIRE_DOCKER=1 makes them fail."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import signal
import subprocess
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from photoncloud.common import needs
from photoncloud.common.testing import start_platform
from photoncloud.k8shost.agent.docker import (NAMESPACE, NAMESPACE_NETWORK, NAMESPACE_PREFIX, NETWORK_PREFIX, NODE,
                                               SUBNET, UID, DockerRuntime)
from photoncloud.k8shost.agent.engine import DEFAULT_HOST, Engine, EngineError
from photoncloud.k8shost.agent.limits import Limits
from photoncloud.k8shost.agent.runtime import Backoff, phase
from photoncloud.k8shost.testing import agent_account, answers, start_agent, until, wait_for

DOCKER_HOST = os.environ.get("DOCKER_HOST", DEFAULT_HOST)
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
IMAGE = "photoncloud/busybox:test"
FAST = Backoff(initial=0.1, maximum=0.4, reset=60)
# An HTTP server naming its pod, for the service to spread connections over.
SERVER = ('mkdir -p /www && printf "hello from %s" "$POD_NAME" > /www/index.html && echo "serving $POD_NAME" && '
          'exec httpd -f -p 8080 -h /www')
MiB = 1024 * 1024


def on_engine(work: Callable[[Engine], Awaitable[Any]]) -> Any:
    """work(engine)'s result, on an engine session of its own (for tests that are not async)."""
    async def run() -> Any:
        engine = Engine(DOCKER_HOST)
        await engine.open()
        try:
            return await work(engine)
        finally:
            await engine.close()

    return asyncio.run(run())


def busybox_tar() -> bytes:
    """A file system of the static busybox, every applet a link to it in /bin."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(BUSYBOX, "bin/busybox")
        for applet in set(applets) - {"busybox"}:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def unavailable(reason: str) -> None:
    """Skip for want of reason, or fail when the environment requires the engine (CI, PHOTONCLOUD_REQUIRE_DOCKER=1)."""
    needs.missing(reason, docker=True)


@pytest.fixture(scope="module")
def image() -> str:
    """The test image, made in the engine from the static busybox."""
    try:
        on_engine(lambda engine: engine.ping())
    except (EngineError, ValueError) as exc:
        unavailable(str(exc))
    if not BUSYBOX.exists():
        unavailable(f"no static busybox at {BUSYBOX} (Debian's busybox-static)")

    async def make(engine: Engine) -> None:
        if not await engine.has_image(IMAGE):  # made again each time, it would leave the last one untagged
            await engine.import_image(busybox_tar(), IMAGE)

    on_engine(make)
    return IMAGE


@pytest.fixture
async def runtime(image, tmp_path):
    """A docker runtime for a node of its own, with a fast back-off; whatever it leaves is removed."""
    made = DockerRuntime(DOCKER_HOST, tmp_path / "pods", FAST, node_name=f"test-{secrets.token_hex(4)}")
    await made.open()
    yield made
    await made.remove_all({NODE: made.node_name})
    await made.prune_networks()
    await made.close()


def pod(command: list[str], policy: str = "Always", image: str = IMAGE, namespace: str = "ns",
        **container: Any) -> dict:
    """A pod of one container running command in image under a restart policy."""
    return {"metadata": {"name": "p", "namespace": namespace, "uid": secrets.token_hex(8)},
            "spec": {"restart_policy": policy, "termination_grace_period_seconds": 2,
                     "containers": [{"name": "main", "image": image, "command": command, **container}]}}


async def test_a_killed_container_is_restarted_by_policy_in_the_same_sandbox(runtime):
    running = runtime.pod(pod(["sh", "-c", "echo up in $POD_NAME; exec sleep 300"]))
    exits: list[tuple[int, str]] = []

    def note() -> None:
        state = running.states()[0]
        if state.state == "TERMINATED":
            exits.append((state.exit_code, state.reason))

    running.containers[0].on_change = note
    running.start()
    try:
        await until(lambda: running.states()[0].state == "RUNNING")
        first, address = running.containers[0].id, running.pod_ip
        assert address and not address.startswith("127.")
        await runtime.engine.call("POST", f"/containers/{first}/kill")  # SIGKILL, as `docker kill` sends
        await until(lambda: running.states()[0].state == "RUNNING" and running.states()[0].restart_count == 1)
        assert exits[0] == (137, "Error") and phase(running.states()) == "Running"
        assert running.containers[0].id != first and running.pod_ip == address  # a new run, the pod's address kept
        await until(lambda: running.log_path("main").read_text() == "up in p\nup in p\n")  # one log across runs
    finally:
        await running.stop()
    assert running.states()[0].done
    assert await runtime.engine.containers({UID: running.meta["uid"]}) == []


async def test_a_missing_image_fails_its_container_with_the_engines_reason(runtime):
    running = runtime.pod(pod(["true"], "Never", image="photoncloud/absent:never"))
    running.start()
    try:
        await until(lambda: running.states()[0].done, timeout=60)
    finally:
        await running.stop()
    state = running.states()[0]
    assert (state.state, state.reason, state.exit_code) == ("TERMINATED", "ErrImagePull", 128)
    assert state.message.startswith("cannot pull image photoncloud/absent:never: ") and phase(running.states()) == \
        "Failed"


async def test_command_and_args_replace_the_images_and_see_the_pods_environment(runtime):
    spec = pod(["sh", "-c"], "Never", args=['echo "$0 $POD_NAMESPACE $(POD_IP) $GREETING"; pwd; exit 3', "ran"],
               env=[{"name": "GREETING", "value": "hi from $(POD_NAME)"}], working_dir="/srv/app")
    running = runtime.pod(spec)
    running.start()
    await until(lambda: running.states()[0].done)
    await running.stop()
    assert (running.states()[0].exit_code, phase(running.states())) == (3, "Failed")
    assert running.log_path("main").read_text() == f"ran ns {running.pod_ip} hi from p\n/srv/app\n"


async def test_an_agent_starting_removes_what_an_earlier_one_of_its_node_left(runtime, tmp_path):
    running = runtime.pod(pod(["sleep", "300"], namespace=f"left-{secrets.token_hex(3)}"))
    running.start()
    await until(lambda: running.states()[0].state == "RUNNING")
    left = {c["Id"] for c in await runtime.engine.containers({UID: running.meta["uid"]})}
    assert len(left) == 2  # the sandbox and the container
    assert running.network in {n["Name"] for n in await runtime.engine.networks(NAMESPACE_NETWORK)}
    for container in running.containers:  # the agent dies: its supervision ends, its containers stay
        container.task.cancel()
    await asyncio.gather(*(c.task for c in running.containers), return_exceptions=True)
    later = DockerRuntime(DOCKER_HOST, tmp_path / "again", FAST, node_name=runtime.node_name)
    await later.open()
    try:
        assert await later.engine.containers({NODE: runtime.node_name}) == []
        assert running.network not in {n["Name"] for n in await later.engine.networks(NAMESPACE_NETWORK)}
    finally:
        await later.close()


def log_text(running: Any, container: str = "main") -> str:
    """What a container of a pod printed so far ("" before its log's first line)."""
    path = running.log_path(container)
    return path.read_text() if path.exists() else ""


async def run_to_end(running: Any, timeout: float = 60) -> str:
    """Start a pod, wait for its containers to end, stop it; its first container's log."""
    running.start()
    try:
        await until(lambda: all(s.done for s in running.states()), timeout)
    finally:
        await running.stop()
    return log_text(running, running.containers[0].name)


async def test_output_up_to_a_quick_exit_reaches_the_log_with_its_last_line_unfinished(runtime):
    # Following the engine's log instead of attaching lost such a last line most of the time.
    for _ in range(3):
        running = runtime.pod(pod(["sh", "-c", "echo first; printf 'no newline'"], "Never"))
        assert await run_to_end(running) == "first\nno newline"


async def test_a_container_over_its_memory_limit_is_oom_killed(runtime):
    # The string doubles until the shell holds more than the limit (no swap to spill into).
    running = runtime.pod(pod(["sh", "-c", "x=a; while true; do x=$x$x; done"], "Never",
                              resources={"limits": {"memory": "16Mi"}}))
    running.start()
    try:
        await until(lambda: running.containers[0].id != "")
        config = (await runtime.engine.inspect(running.containers[0].id))["HostConfig"]
        assert (config["Memory"], config["MemorySwap"]) == (16 * MiB, 16 * MiB)
        await until(lambda: running.states()[0].done, timeout=60)
    finally:
        await running.stop()
    state = running.states()[0]
    assert (state.reason, state.exit_code, phase(running.states())) == ("OOMKilled", 137, "Failed")
    assert "memory limit" in state.message


async def test_a_container_cannot_start_more_processes_than_its_limit(runtime):
    # A subshell starts up to 100 sleeps, saying each, until a fork fails (which ends it); then the shell counts
    # what lives with builtins alone (it can fork no more) and stays, holding the container at its limit.
    bomb = ('(i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); echo "started $i"; done); '
            'set -- /proc/[0-9]*; echo "alive $#"; exec sleep 30')
    running = runtime.pod(pod(["sh", "-c", bomb], "Never", resources={"limits": {"pids": "20"}}))
    running.start()
    try:
        await until(lambda: "alive" in log_text(running), timeout=30)
        # Meanwhile the node runs other pods, and the host forks.
        other = runtime.pod(pod(["echo", "still here"], "Never"))
        assert await run_to_end(other, 30) == "still here\n" and other.states()[0].exit_code == 0
        assert subprocess.run(["true"], timeout=10).returncode == 0
    finally:
        await running.stop()
    lines = log_text(running).splitlines()
    started = max(int(line.split()[1]) for line in lines if line.startswith("started "))
    alive = int(next(line for line in lines if line.startswith("alive ")).split()[1])
    assert any("can't fork" in line for line in lines), lines
    assert started < 20 and alive <= 20, (started, alive)  # docker-init and the shell count too


async def test_a_container_has_only_the_capabilities_a_usual_image_needs_and_cannot_gain_any(runtime):
    running = runtime.pod(pod(["grep", "-E", "^(CapEff|CapBnd|NoNewPrivs):", "/proc/self/status"], "Never"))
    fields = dict(line.split(":\t") for line in (await run_to_end(running)).splitlines())
    # CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, NET_BIND_SERVICE (linux/capability.h)
    expected = sum(1 << number for number in (0, 1, 3, 4, 5, 6, 7, 10))
    assert (int(fields["CapEff"], 16), int(fields["CapBnd"], 16), fields["NoNewPrivs"]) == (expected, expected, "1")


async def test_the_nodes_default_limits_bound_what_a_pod_leaves_out(image, tmp_path):
    defaults = Limits(cpu_millicores=250, memory_bytes=32 * MiB, pids=64)
    limited = DockerRuntime(DOCKER_HOST, tmp_path / "pods", FAST, node_name=f"test-{secrets.token_hex(4)}",
                            default_limits=defaults)
    await limited.open()
    spec = pod(["sleep", "300"])
    spec["spec"]["containers"].append({"name": "own", "image": IMAGE, "command": ["sleep", "300"],
                                       "resources": {"limits": {"memory": "48Mi", "cpu": "1"}}})
    running = limited.pod(spec)
    running.start()
    try:
        await until(lambda: [s.state for s in running.states()] == ["RUNNING", "RUNNING"])
        configs = [(await limited.engine.inspect(c.id))["HostConfig"] for c in running.containers]
        sandbox = (await limited.engine.inspect(running.sandbox_id))["HostConfig"]
    finally:
        await running.stop()
        await limited.remove_all({NODE: limited.node_name})
        await limited.close()
    fields = ("Memory", "MemorySwap", "NanoCpus", "PidsLimit")
    assert [tuple(c[f] for f in fields) for c in configs] == [(32 * MiB, 32 * MiB, 250 * 10**6, 64),
                                                              (48 * MiB, 48 * MiB, 10**9, 64)]
    assert all(c["CapDrop"] == ["ALL"] and c["SecurityOpt"] == ["no-new-privileges"] for c in configs)
    # The sandbox holds only the pause process: no capability, no writes, little memory, few processes.
    assert (sandbox["CapDrop"], sandbox["CapAdd"], sandbox["SecurityOpt"], sandbox["ReadonlyRootfs"],
            sandbox["Memory"], sandbox["PidsLimit"]) == (["ALL"], None, ["no-new-privileges"], True, 16 * MiB, 32)


async def test_a_pod_reaches_its_own_tenants_pods_and_not_another_tenants(runtime):
    tenant, other = f"a-{secrets.token_hex(3)}", f"b-{secrets.token_hex(3)}"
    server = runtime.pod(pod(["sh", "-c", SERVER], namespace=tenant))
    server.start()
    try:
        await until(lambda: "serving" in log_text(server), timeout=30)
        fetch = f"timeout 2 wget -q -O- http://{server.pod_ip}:8080/"  # this busybox's wget -T crashes
        # The same tenant's pod reaches it (tries a few times: httpd listens a moment after saying so) ...
        neighbour = runtime.pod(pod(["sh", "-c", f"for i in 1 2 3 4 5; do {fetch} && exit; sleep 0.5; done; exit 1"],
                                    "Never", namespace=tenant))
        assert await run_to_end(neighbour) == "hello from p" and neighbour.states()[0].exit_code == 0
        # ... another tenant's does not: the engine drops traffic between the two networks.
        stranger = runtime.pod(pod(["sh", "-c", fetch], "Never", namespace=other))
        assert "hello" not in await run_to_end(stranger) and stranger.states()[0].exit_code != 0
        assert [p.network for p in (server, neighbour, stranger)] == [NAMESPACE_PREFIX + n for n in (tenant, tenant,
                                                                                                    other)]
        # The host (where the service proxy runs) reaches every pod.
        assert answers(server.pod_ip, 8080) == {"hello from p"}
        networks = {n["Name"]: n["Labels"] for n in await runtime.engine.networks(NAMESPACE_NETWORK)}
        assert networks[server.network] == {NAMESPACE_NETWORK: tenant}
        assert stranger.network not in networks  # removed with its last pod
    finally:
        await server.stop()
    assert server.network not in {n["Name"] for n in await runtime.engine.networks(NAMESPACE_NETWORK)}


def test_a_node_port_service_spreads_connections_over_pods_in_docker_containers(image, cluster):
    platform, kube, root = cluster
    admin = platform.admin_token()
    _, project_id = platform.project("containers")
    api = f"{kube.url}/api/v1"

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        return platform.request(method, api + path, body, admin)

    def engine_containers(label: str, value: str) -> list[dict]:
        return on_engine(lambda engine: engine.containers({label: value}))

    assert call("POST", "/namespaces", {"name": "dock", "project_id": project_id})[0] == 201
    client_id, secret = agent_account(platform)
    (root / "node-d.secret").write_text(secret)
    agent = start_agent(kube, platform, root, "node-d", "--client-id", client_id, "--client-secret-file",
                        str(root / "node-d.secret"), "--runtime", "docker", "--docker-host", DOCKER_HOST)
    try:
        node = wait_for("the node to register", lambda: call("GET", "/nodes/node-d")[1].get("data"))
        assert node["status"]["runtime"] == "docker"
        uids = {}
        for name in ("web-1", "web-2"):
            status, created = call("POST", "/pods", {
                "namespace": "dock", "name": name, "labels": {"app": "web"},
                "spec": {"node_selector": {"kubernetes.io/hostname": "node-d"}, "termination_grace_period_seconds": 5,
                         "containers": [{"name": "http", "image": image, "command": ["sh", "-c", SERVER],
                                         "ports": [{"container_port": 8080}]}]}})
            assert status == 201, created
            uids[name] = created["data"]["metadata"]["uid"]
        status, service = call("POST", "/services", {"namespace": "dock", "name": "web", "service_type": "NodePort",
                                                     "port": 80, "target_port": 8080, "selector": {"app": "web"}})
        assert status == 201, service
        node_port = service["data"]["spec"]["ports"][0]["node_port"]
        cluster_ip = service["data"]["spec"]["cluster_ip"]

        def both_ready() -> list | None:
            ready = call("GET", "/endpoints/dock/web")[1]["data"]["addresses"]
            return ready if len(ready) == 2 else None

        ready = wait_for("both pods to be endpoints", both_ready, timeout=60)
        assert {a["pod_name"] for a in ready} == {"web-1", "web-2"}
        # The endpoints are the sandboxes' addresses on the namespace's network, not loopback ones.
        sandboxes = {c["Labels"][UID]: c["NetworkSettings"]["Networks"].get(NAMESPACE_PREFIX + "dock", {})
                     .get("IPAddress") for c in engine_containers(NAMESPACE, "dock")
                     if c["Labels"][UID] in uids.values() and c["NetworkSettings"]["Networks"]}
        assert {a["ip"] for a in ready} == set(sandboxes.values()) and len(sandboxes) == 2

        assert wait_for("the node port to reach both pods",
                        lambda: answers("127.0.0.1", node_port) == {"hello from web-1", "hello from web-2"})
        assert wait_for("the cluster IP to reach both pods",
                        lambda: answers(cluster_ip, 80) == {"hello from web-1", "hello from web-2"})
        status, body = call("GET", "/pods/dock/web-1/logs")
        assert status == 200 and body["data"]["text"] == "serving web-1\n"

        # A deleted pod leaves the endpoints and the engine, and the service keeps answering from the other.
        assert call("DELETE", "/pods/dock/web-1")[0] == 200
        wait_for("web-1 to leave the endpoints", lambda: [a["pod_name"] for a in call(
            "GET", "/endpoints/dock/web")[1]["data"]["addresses"]] == ["web-2"])
        wait_for("web-1's containers to be removed", lambda: engine_containers(UID, uids["web-1"]) == [])
        assert wait_for("only web-2 to answer", lambda: answers("127.0.0.1", node_port) == {"hello from web-2"})

        assert call("DELETE", "/pods/dock/web-2")[0] == 200
        assert call("DELETE", "/services/dock/web")[0] == 200
        wait_for("every container of the test to be removed", lambda: engine_containers(NODE, "node-d") == [])
        wait_for("the namespace's network to be removed", lambda: NAMESPACE_PREFIX + "dock" not in {
            n["Name"] for n in on_engine(lambda engine: engine.networks(NAMESPACE_NETWORK))})
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
    assert agent.returncode == 0
    assert engine_containers(NODE, "node-d") == []
    assert secret not in (root / "node-d.log").read_text()


@pytest.fixture(scope="module")
def networked(image, tmp_path_factory):
    """IAM, PrismNET, and k8shost calling PrismNET, as processes: (platform, root)."""
    root = tmp_path_factory.mktemp("networked")
    platform = start_platform(root, "prismnet", "k8shost")
    yield platform, root
    platform.stop()


def test_pods_of_a_namespace_with_a_subnet_get_prismnet_addresses_on_a_docker_network(image, networked):
    platform, root = networked
    admin = platform.admin_token()
    _, project_id = platform.project("subnets")
    kube, prismnet = platform.services["k8shost"], platform.services["prismnet"]

    def call(service: Any, method: str, path: str, body: dict | None = None, expect: int = 200) -> dict:
        status, reply = platform.request(method, f"{service.url}/api/v1{path}", body, admin)
        assert status == expect, (method, path, status, reply)
        return reply.get("data") or {}

    def pod_ports() -> dict[str, str]:
        """The subnet's ports of pods: device_id (a pod's uid) -> address."""
        ports = call(prismnet, "GET", f"/ports?subnet_id={subnet['id']}")["items"]
        return {p["device_id"]: p["ip_address"] for p in ports if p["device_type"] == "POD"}

    def networks() -> list[dict]:
        return on_engine(lambda engine: engine.networks(SUBNET))

    vpc = call(prismnet, "POST", "/vpcs", {"name": "pods", "project_id": project_id, "cidr_block": "10.77.0.0/16"},
               expect=201)
    subnet = call(prismnet, "POST", "/subnets", {"vpc_id": vpc["id"], "name": "pods", "cidr_block": "10.77.1.0/24"},
                  expect=201)
    ns = call(kube, "POST", "/namespaces", {"name": "net", "project_id": project_id, "subnet_id": subnet["id"]},
              expect=201)
    assert ns["subnet_id"] == subnet["id"]
    client_id, secret = agent_account(platform)
    (root / "node-n.secret").write_text(secret)
    agent = start_agent(kube, platform, root, "node-n", "--client-id", client_id, "--client-secret-file",
                        str(root / "node-n.secret"), "--runtime", "docker", "--docker-host", DOCKER_HOST)
    try:
        uids, addresses = {}, {}
        for name in ("web-1", "web-2"):
            created = call(kube, "POST", "/pods", {
                "namespace": "net", "name": name, "labels": {"app": "web"},
                "spec": {"termination_grace_period_seconds": 5,
                         "containers": [{"name": "http", "image": image, "command": ["sh", "-c", SERVER],
                                         "ports": [{"container_port": 8080}]}]}}, expect=201)
            uids[name], addresses[name] = created["metadata"]["uid"], created["status"]["pod_ip"]
            assert created["status"]["network"]["subnet_id"] == subnet["id"]
        # Both addresses are the subnet's, held by ports of the pods.
        assert pod_ports() == {uids[n]: addresses[n] for n in uids}
        assert all(a.startswith("10.77.1.") for a in addresses.values())
        service = call(kube, "POST", "/services", {"namespace": "net", "name": "web", "service_type": "NodePort",
                                                   "port": 80, "target_port": 8080, "selector": {"app": "web"}},
                       expect=201)
        node_port = service["spec"]["ports"][0]["node_port"]

        def both_ready() -> list | None:
            ready = call(kube, "GET", "/endpoints/net/web")["addresses"]
            return ready if len(ready) == 2 else None

        ready = wait_for("both pods to be endpoints", both_ready, timeout=60)
        assert {a["ip"] for a in ready} == set(addresses.values())
        # The sandboxes sit on the subnet's network at those addresses (and the agent's reports kept them).
        sandboxes = {c["Labels"][UID]: c["NetworkSettings"]["Networks"].get(NETWORK_PREFIX + subnet["id"], {})
                     .get("IPAddress") for c in on_engine(lambda engine: engine.containers({NAMESPACE: "net"}))
                     if c["Labels"].get("io.photoncloud.k8shost.container") == "POD"}
        assert sandboxes == {uids[n]: addresses[n] for n in uids}
        assert [n["Labels"][SUBNET] for n in networks()] == [subnet["id"]]
        assert wait_for("the node port to reach both pods",
                        lambda: answers("127.0.0.1", node_port) == {"hello from web-1", "hello from web-2"})

        call(kube, "DELETE", "/pods/net/web-1")
        assert pod_ports() == {uids["web-2"]: addresses["web-2"]}
        wait_for("web-1's containers to be removed",
                 lambda: on_engine(lambda engine: engine.containers({UID: uids["web-1"]})) == [])
        call(kube, "DELETE", "/namespaces/net")
        assert pod_ports() == {}
        wait_for("every container of the test to be removed",
                 lambda: on_engine(lambda engine: engine.containers({NODE: "node-n"})) == [])
        wait_for("the subnet's network to be removed", lambda: networks() == [])
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
    assert agent.returncode == 0
    assert on_engine(lambda engine: engine.containers({NODE: "node-n"})) == [] and networks() == []
