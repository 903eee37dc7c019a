"""PrismNET's networks carried for real, as an operator runs the platform on one host: IAM, CreditService,
PrismNET, PlasmaVMC and k8shost as processes, PrismNET's dataplane agent and k8shost's node agent beside
them, all under one device prefix. Two tenants' VPCs over the same range: VMs (emulated guests that ask
for their address by DHCP) and pods of the first reach each other at their PrismNET addresses, the
second tenant's pod reaches none of them; a security group lets through only what its rules allow; the
agent restarts without changing anything; deleting everything leaves nothing on the host."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from photoncloud.common import needs
from photoncloud.common.netdev import DeviceNames
from photoncloud.common.testing import start_platform
from photoncloud.k8shost.testing import agent_account, start_agent, wait_for
from photoncloud.plasmavmc.testing import build_initramfs, guest_kernel
from photoncloud.prismnet.dataplane.links import netns
from photoncloud.prismnet.dataplane.testing import EMPTY, connects, host_view, ping

# Bridges, namespaces, TAPs and nftables take root. CI runs the tests as root, so this runs there.
needs.root("the dataplane makes bridges, namespaces and nftables rules")

BOOT_TIMEOUT = 240  # seconds: two emulated (TCG) guests on a loaded CI machine
SLEEPER = {"name": "main", "command": ["python3", "-c", "import time; time.sleep(3600)"]}


def dataplane_account(platform) -> tuple[str, str]:
    """A service account holding only prismnet:dataplane:read on the system scope, as an operator gives the agent."""
    admin, iam = platform.admin_token(), platform.iam.url
    status, orgs = platform.request("GET", f"{iam}/api/v1/orgs?name=default", token=admin)
    org_id = orgs["data"]["items"][0]["id"]
    status, role = platform.request("POST", f"{iam}/api/v1/roles",
                                    {"name": "prismnet-dataplane", "permissions": ["prismnet:dataplane:read"]}, admin)
    assert status in (200, 201), role
    status, account = platform.request("POST", f"{iam}/api/v1/service-accounts",
                                       {"org_id": org_id, "name": "dataplane-agent"}, admin)
    assert status in (200, 201), account
    status, binding = platform.request("POST", f"{iam}/api/v1/bindings", {
        "principal": f"serviceaccount:{account['data']['service_account']['id']}", "role": "prismnet-dataplane",
        "scope": {"type": "system"}}, admin)
    assert status in (200, 201), binding
    platform.secrets.add(account["data"]["client_secret"])
    return account["data"]["client_id"], account["data"]["client_secret"]


class Cloud:
    """The platform, its agents, and what the test calls them with."""

    def __init__(self, root: Path):
        self.root = root
        self.names = DeviceNames("e" + secrets.token_hex(2)[:3])
        self.state_dir = Path(f"/run/photoncloud/test-networks-{self.names.prefix}")
        self.platform = start_platform(root, "creditservice", "prismnet", "plasmavmc", "k8shost",
                                       extra_args={"plasmavmc": ("--dataplane-prefix", self.names.prefix)})
        self.admin = self.platform.admin_token()
        client_id, secret = dataplane_account(self.platform)
        (root / "dataplane.secret").write_text(secret)
        self.dataplane_flags = ["--prismnet-url", self.platform.services["prismnet"].url, "--iam-url",
                                self.platform.iam.url, "--client-id", client_id, "--client-secret-file",
                                str(root / "dataplane.secret"), "--prefix", self.names.prefix, "--state-dir",
                                str(self.state_dir), "--interval", "0.3"]
        self.dataplane = self.start_dataplane()
        node_id, node_secret = agent_account(self.platform)
        (root / "node.secret").write_text(node_secret)
        self.node = start_agent(self.platform.services["k8shost"], self.platform, root, "node-a", "--client-id",
                                node_id, "--client-secret-file", str(root / "node.secret"), "--dataplane-prefix",
                                self.names.prefix)

    def start_dataplane(self) -> subprocess.Popen[bytes]:
        """The dataplane agent as a process."""
        with open(self.root / "dataplane.log", "ab") as log:
            return subprocess.Popen([sys.executable, "-m", "photoncloud.prismnet.dataplane", *self.dataplane_flags],
                                    stdout=log, stderr=subprocess.STDOUT)

    def rounds(self) -> int:
        """How many rounds the running dataplane agent has reconciled."""
        try:
            return int(json.loads((self.state_dir / "status.json").read_text()).get("rounds", 0))
        except (OSError, ValueError):
            return 0

    def call(self, method: str, service: str, path: str, body: dict | None = None, expect: int = 200) -> dict:
        """One REST call as the operator; the reply's data."""
        process = self.platform.iam if service == "iam" else self.platform.services[service]
        status, reply = self.platform.request(method, process.url + path, body, self.admin)
        assert status == expect, (method, path, status, reply)
        return reply.get("data", {})

    def host(self) -> dict[str, object]:
        """What of the prefix is on the host (dataplane.testing.host_view)."""
        return host_view(self.names, self.state_dir)

    def stop(self) -> None:
        """Stop the agents and the platform, then remove whatever the dataplane still holds."""
        for process in (self.node, self.dataplane):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.platform.stop()
        subprocess.run([sys.executable, "-m", "photoncloud.prismnet.dataplane", *self.dataplane_flags, "--teardown"],
                       capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """The platform on one host with PrismNET's dataplane."""
    running = Cloud(tmp_path_factory.mktemp("networks"))
    try:
        yield running
    finally:
        running.stop()


def console(cloud: Cloud, vm_id: str, text: str) -> str:
    """The VM's console once text is on it."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    output = ""
    while time.monotonic() < deadline:
        output = cloud.call("GET", "plasmavmc", f"/api/v1/vms/{vm_id}/console")["output"]
        if text in output:
            return output
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not on the console within {BOOT_TIMEOUT}s:\n{output[-3000:]}")


def network(cloud: Cloud, tenant: str) -> tuple[str, str, str]:
    """A tenant's project with a VPC 10.81.0.0/16 and a subnet 10.81.1.0/24 in it: (project, VPC, subnet)."""
    _, project_id = cloud.platform.project(f"{tenant}-{uuid.uuid4().hex[:6]}")
    vpc = cloud.call("POST", "prismnet", "/api/v1/vpcs", {"name": tenant, "project_id": project_id,
                                                          "cidr_block": "10.81.0.0/16"}, 201)
    subnet = cloud.call("POST", "prismnet", "/api/v1/subnets", {"vpc_id": vpc["id"], "name": "main",
                                                                "cidr_block": "10.81.1.0/24"}, 201)
    return project_id, vpc["id"], subnet["id"]


def running_pod(cloud: Cloud, namespace: str, name: str) -> tuple[str, str]:
    """Create a pod that sleeps and wait until it runs: (its address, its network namespace)."""
    cloud.call("POST", "k8shost", "/api/v1/pods", {"namespace": namespace, "name": name, "spec": {
        "containers": [SLEEPER]}}, 201)

    def running() -> dict | None:
        pod = cloud.call("GET", "k8shost", f"/api/v1/pods/{namespace}/{name}")
        return pod if pod["status"]["phase"] == "Running" else None

    pod = wait_for(f"pod {name} to run", running, timeout=60)
    uid = pod["metadata"]["uid"]
    (namespace_name,) = [n for n in netns.listnetns() if n.endswith(uid)]
    return pod["status"]["pod_ip"], namespace_name


def test_vms_and_pods_of_a_vpc_reach_each_other_and_nothing_else_reaches_them(cloud, tmp_path):
    names = cloud.names
    project_a, vpc_a, subnet_a = network(cloud, "tenant-a")
    project_b, vpc_b, subnet_b = network(cloud, "tenant-b")
    health = cloud.call("GET", "plasmavmc", "/health")
    assert names.prefix in json.dumps(health["dependencies"])  # PlasmaVMC says its NICs go on the dataplane

    # Two VMs of tenant A on one subnet: the first gets its address by DHCP, the second pings it.
    cloud.call("POST", "creditservice", "/api/v1/wallets", {"project_id": project_a, "initial_balance": 10000}, 201)
    cloud.call("POST", "plasmavmc", "/api/v1/flavors", {"name": "net.tiny", "vcpus": 1, "memory_mib": 128,
                                                        "disk_gib": 1, "price_per_hour": 1}, 201)
    kernel, initrd = guest_kernel(), build_initramfs(tmp_path / "net.cpio", "NETWORK-GUEST", network=True)

    def vm(name: str, cmdline: str) -> dict:
        image = cloud.call("POST", "plasmavmc", "/api/v1/images", {"name": name, "kernel_path": str(kernel),
                                                                   "initrd_path": str(initrd), "cmdline": cmdline}, 201)
        made = cloud.call("POST", "plasmavmc", "/api/v1/vms", {"name": name, "project_id": project_a,
                                                               "flavor_id": "net.tiny", "image_id": image["id"],
                                                               "subnet_ids": [subnet_a]}, 201)
        cloud.call("POST", "plasmavmc", f"/api/v1/vms/{made['id']}/start")
        return made

    first = vm("first", "console=ttyS0 panic=-1")
    first_ip = first["nics"][0]["ip_address"]
    assert names.port(first["nics"][0]["port_id"]) in cloud.host()["devices"]  # its TAP
    assert f"NET {first_ip}/24 via 10.81.1.1" in console(cloud, first["id"], "LISTEN 8080")
    second = vm("second", f"console=ttyS0 panic=-1 peer={first_ip}")
    second_ip = second["nics"][0]["ip_address"]
    output = console(cloud, second["id"], "NETWORK-GUEST")
    assert f"NET {second_ip}/24 via 10.81.1.1" in output and f"PEER {first_ip} OK" in output

    # A pod of tenant A on the same subnet reaches both VMs; a pod of tenant B, in a VPC over the same
    # range, reaches its own gateway and nothing of tenant A's.
    cloud.call("POST", "k8shost", "/api/v1/namespaces", {"name": "web", "project_id": project_a,
                                                         "subnet_id": subnet_a}, 201)
    cloud.call("POST", "k8shost", "/api/v1/namespaces", {"name": "other", "project_id": project_b,
                                                         "subnet_id": subnet_b}, 201)
    pod_a_ip, pod_a = running_pod(cloud, "web", "a")
    # Ports without a device hold tenant B's first addresses, so that its pod's is none of tenant A's.
    spacers = [cloud.call("POST", "prismnet", "/api/v1/ports", {"subnet_id": subnet_b, "name": f"spacer-{n}"}, 201)
               for n in range(3)]
    pod_b_ip, pod_b = running_pod(cloud, "other", "b")
    assert pod_b_ip not in (first_ip, second_ip, pod_a_ip)
    assert ping(pod_a, first_ip) and ping(pod_a, second_ip) and connects(pod_a, first_ip, 8080)
    assert ping(pod_b, "10.81.1.1")
    for address in (first_ip, second_ip, pod_a_ip):
        assert not ping(pod_b, address, count=1)
    assert not connects(pod_b, first_ip, 8080) and not ping(pod_a, pod_b_ip, count=1)

    # A security group on the first VM's port that allows TCP 8080 only: ICMP is dropped, 8080 still answers;
    # once the rule is removed, 8080 is dropped too.
    group = cloud.call("POST", "prismnet", "/api/v1/security-groups", {"name": "web", "project_id": project_a}, 201)
    added = cloud.call("POST", "prismnet", f"/api/v1/security-groups/{group['id']}/rules",
                       {"direction": "INGRESS", "protocol": "TCP", "port_range_min": 8080, "port_range_max": 8080},
                       201)
    cloud.call("PATCH", "prismnet", f"/api/v1/ports/{first['nics'][0]['port_id']}",
               {"security_group_ids": [group["id"]]})
    wait_for("ICMP to the VM to be dropped", lambda: not ping(pod_a, first_ip, count=1), timeout=20)
    assert connects(pod_a, first_ip, 8080) and ping(pod_a, second_ip)
    cloud.call("DELETE", "prismnet", f"/api/v1/security-groups/{group['id']}/rules/{added['rule']['id']}")
    wait_for("TCP 8080 to the VM to be dropped", lambda: not connects(pod_a, first_ip, 8080), timeout=20)

    # The dataplane agent restarts: nothing on the host changes (the same devices by ifindex, namespaces,
    # rules and DHCP), and the networks carry on.
    before = cloud.host()
    cloud.dataplane.send_signal(signal.SIGTERM)
    assert cloud.dataplane.wait(timeout=30) == 0
    (cloud.state_dir / "status.json").unlink()
    cloud.dataplane = cloud.start_dataplane()
    wait_for("two rounds of the restarted agent", lambda: cloud.rounds() >= 2, timeout=30)
    assert cloud.host() == before
    assert ping(pod_a, second_ip)

    # Everything deleted: nothing of it is left on the host.
    for made in (first, second):
        cloud.call("POST", "plasmavmc", f"/api/v1/vms/{made['id']}/stop?force=true")
        cloud.call("DELETE", "plasmavmc", f"/api/v1/vms/{made['id']}")
    for namespace in ("web", "other"):
        cloud.call("DELETE", "k8shost", f"/api/v1/namespaces/{namespace}")
    for spacer in spacers:
        cloud.call("DELETE", "prismnet", f"/api/v1/ports/{spacer['id']}")

    def ports_left() -> list[dict]:
        return [p for subnet in (subnet_a, subnet_b)
                for p in cloud.call("GET", "prismnet", f"/api/v1/ports?subnet_id={subnet}")["items"]]

    wait_for("the pods' ports to go", lambda: not ports_left(), timeout=60)
    cloud.call("DELETE", "prismnet", f"/api/v1/security-groups/{group['id']}")
    for subnet, vpc in ((subnet_a, vpc_a), (subnet_b, vpc_b)):
        cloud.call("DELETE", "prismnet", f"/api/v1/subnets/{subnet}")
        cloud.call("DELETE", "prismnet", f"/api/v1/vpcs/{vpc}")
    wait_for("the host to hold nothing of the VPCs", lambda: cloud.host() == EMPTY, timeout=30)
