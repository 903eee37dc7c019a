"""The platform with TLS on, as processes: auto mode makes one CA for IAM, ChainFire, PrismNET and
PlasmaVMC; curl and etcdctl reach them with `--cacert`, and only with it; the services verify each
other against the CA (IAM's keys over HTTPS, PlasmaVMC's gRPC calls to PrismNET); a service told to
trust another CA refuses IAM."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photoncloud.common import needs
from photoncloud.common import tls
from photoncloud.common.testing import ServiceProcess, free_ports, start_platform

CURL = shutil.which("curl")
ETCDCTL = shutil.which("etcdctl")
HEALTH_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "health.py"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """IAM, ChainFire, PrismNET and PlasmaVMC (fake hypervisor) with --tls auto and one TLS directory."""
    running = start_platform(tmp_path_factory.mktemp("tls-platform"), "chainfire", "prismnet", "plasmavmc",
                             tls=True, extra_args={"plasmavmc": ("--driver", "fake")})
    yield running
    running.stop()


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CURL, "-sS", "--noproxy", "*", "--max-time", "10", *args], capture_output=True,
                          text=True, timeout=30)


GUIDE = Path(__file__).resolve().parent.parent / "docs" / "api" / "rest-api-guide.md"


def guide_tls_session() -> tuple[str, str]:
    """The REST guide's TLS example: its commands (one script) and what they print."""
    section = GUIDE.read_text().split("\n### TLS\n", 1)[1]
    block = section.split("```console\n", 1)[1].split("\n```", 1)[0]
    commands, outputs, continued = [], [], False
    for line in block.splitlines():
        if line.startswith("$ ") or continued:
            commands.append(line[2:] if line.startswith("$ ") and not continued else line)
            continued = line.endswith("\\")
        else:
            outputs.append(line)
    return "\n".join(commands) + "\n", "\n".join(outputs) + "\n"


def test_the_guides_tls_example(platform):
    """First in the module: the guide's commands against the TLS platform (default ports replaced by
    the ones the services got), printing what the guide shows."""
    needs.tools("curl", "etcdctl", "jq", packages={"etcdctl": "etcd-client"})
    script, expected = guide_tls_session()
    chainfire = platform.services["chainfire"]
    for default, port in (("8083", platform.iam.rest_port), ("8081", chainfire.rest_port),
                          ("50051", chainfire.grpc_port)):
        script = script.replace(f"localhost:{default}", f"localhost:{port}")
    script = script.replace(".data/tls/ca.crt", str(platform.ca))
    env = {**os.environ, "ADMIN_PASSWORD": platform.admin_password, "NO_PROXY": "*", "no_proxy": "*"}
    run = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.stdout == expected, run.stderr


def test_one_ca_signed_every_services_certificate_and_its_files_are_private(platform):
    directory = platform.ca.parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    ca = x509.load_pem_x509_certificate(platform.ca.read_bytes())
    for name in ("iam", "chainfire", "prismnet", "plasmavmc"):
        cert = x509.load_pem_x509_certificate((directory / f"{name}.crt").read_bytes())
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert name in names.get_values_for_type(x509.DNSName)
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_curl_with_the_ca_reaches_every_port_and_without_it_fails_verification(platform):
    needs.tool("curl")
    for process in [platform.iam, *platform.services.values()]:
        assert process.url.startswith("https://")
        ok = curl("--cacert", str(platform.ca), f"{process.url}/health")
        assert ok.returncode == 0 and '"status":"SERVING"' in ok.stdout, ok.stderr
        metrics = curl("--cacert", str(platform.ca), f"{process.url}/metrics")
        assert metrics.returncode == 0 and "# TYPE" in metrics.stdout, metrics.stderr
        unverified = curl(f"{process.url}/health")
        assert unverified.returncode == 60, unverified  # curl: the peer's certificate cannot be verified
        plaintext = curl(f"http://127.0.0.1:{process.rest_port}/health")
        assert plaintext.returncode != 0 or '"SERVING"' not in plaintext.stdout


async def test_grpc_over_tls_with_the_ca_and_refused_with_another(platform, tmp_path):
    target = f"127.0.0.1:{platform.services['chainfire'].grpc_port}"
    request = health_pb2.HealthCheckRequest(service="")
    async with grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(platform.ca.read_bytes())) as channel:
        assert (await health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)).status == \
            health_pb2.HealthCheckResponse.SERVING
    other = tls.ensure_ca(tmp_path / "other-ca")
    async with grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(other.read_bytes())) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await health_pb2_grpc.HealthStub(channel).Check(request, timeout=3)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_chainfire_accepts_iams_token_having_fetched_its_keys_over_https(platform):
    token = platform.admin_token()
    chainfire = platform.services["chainfire"].url
    status, reply = platform.request("PUT", f"{chainfire}/api/v1/kv/tls-check", {"value": "on"}, token)
    assert status in (200, 201), reply
    status, reply = platform.request("GET", f"{chainfire}/api/v1/kv/tls-check", token=token)
    assert (status, reply["data"]["value"]) == (200, "on")
    status, reply = platform.request("GET", f"{chainfire}/api/v1/kv/tls-check", token=token + "x")
    assert status == 401, reply


def test_plasmavmc_calls_prismnet_over_grpc_with_tls(platform):
    admin = platform.admin_token()
    _, project_id = platform.project("tls")
    prismnet, plasmavmc = platform.services["prismnet"].url, platform.services["plasmavmc"].url
    status, vpc = platform.request("POST", f"{prismnet}/api/v1/vpcs",
                                   {"name": "main", "project_id": project_id, "cidr_block": "10.30.0.0/16"}, admin)
    assert status == 201, vpc
    status, subnet = platform.request("POST", f"{prismnet}/api/v1/subnets",
                                      {"vpc_id": vpc["data"]["id"], "name": "web", "cidr_block": "10.30.1.0/24"},
                                      admin)
    assert status == 201, subnet
    kernel = platform.ca.parent.parent / "vmlinuz"
    kernel.write_bytes(b"\0" * 512)
    status, flavor = platform.request("POST", f"{plasmavmc}/api/v1/flavors",
                                      {"name": "t1", "vcpus": 1, "memory_mib": 128, "disk_gib": 1}, admin)
    assert status == 201, flavor
    status, image = platform.request("POST", f"{plasmavmc}/api/v1/images",
                                     {"name": "k", "kernel_path": str(kernel)}, admin)
    assert status == 201, image
    status, vm = platform.request("POST", f"{plasmavmc}/api/v1/vms",
                                  {"name": "vm-1", "project_id": project_id, "flavor_id": "t1",
                                   "image_id": image["data"]["id"], "subnet_ids": [subnet["data"]["id"]]}, admin)
    assert status == 201, vm
    [nic] = vm["data"]["nics"]  # the port PlasmaVMC made on PrismNET, over gRPC with TLS
    status, port = platform.request("GET", f"{prismnet}/api/v1/ports/{nic['port_id']}", token=admin)
    assert (status, port["data"]["device_id"]) == (200, vm["data"]["id"])


def test_a_service_that_trusts_another_ca_refuses_iams_tokens(platform, tmp_path):
    other = tls.ensure_ca(tmp_path / "other-ca")
    chainfire = ServiceProcess("chainfire", tmp_path / "chainfire", "--iam-url", platform.iam.url,
                               "--tls", "auto", "--tls-dir", str(platform.ca.parent), "--tls-ca", str(other),
                               ca=platform.ca).start()
    try:
        status, reply = platform.request("GET", f"{chainfire.url}/api/v1/kv/anything", token=platform.admin_token())
        assert status == 503 and "certificate verify failed" in reply["error"]["message"], reply
    finally:
        chainfire.stop()


def test_etcdctl_with_cacert_against_chainfire(platform):
    needs.tool("etcdctl", "etcd-client")
    endpoint = f"https://127.0.0.1:{platform.services['chainfire'].grpc_port}"

    def etcdctl(*args: str, cacert: bool = True) -> subprocess.CompletedProcess:
        trust = [f"--cacert={platform.ca}"] if cacert else []
        return subprocess.run([ETCDCTL, f"--endpoints={endpoint}", "--dial-timeout=5s", "--command-timeout=10s",
                               *trust, f"--user=admin:{platform.admin_password}", *args],
                              env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True, text=True, timeout=60)

    put = etcdctl("put", "tls/etcd", "yes")
    assert (put.returncode, put.stdout) == (0, "OK\n"), put.stderr
    got = etcdctl("get", "tls/etcd")
    assert got.stdout == "tls/etcd\nyes\n", got.stderr
    refused = etcdctl("get", "tls/etcd", cacert=False)  # the system's roots do not know the platform's CA
    assert refused.returncode != 0 and "yes" not in refused.stdout


def test_a_restart_in_auto_mode_reuses_the_ca_and_the_certificate(platform):
    directory = platform.ca.parent
    before = {name: (directory / name).read_bytes() for name in ("ca.crt", "ca.key", "prismnet.crt", "prismnet.key")}
    prismnet = platform.services["prismnet"]
    assert prismnet.stop() == 0
    prismnet.start()
    assert {name: (directory / name).read_bytes() for name in before} == before
    ok = curl("--cacert", str(platform.ca), f"{prismnet.url}/health") if CURL else None
    assert ok is None or ok.returncode == 0


def test_the_health_script_checks_https_ports_with_cacert(platform):
    running = {"iam": platform.iam, **platform.services}
    idle = dict(zip(("flaredb", "k8shost", "creditservice"), free_ports(3)))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_REST_PORT") and not k.startswith("PHOTONCLOUD_")}
    env.update({f"{name.upper()}_REST_PORT": str(p.rest_port) for name, p in running.items()})
    env.update({f"{name.upper()}_REST_PORT": str(port) for name, port in idle.items()})

    def health(*args: str) -> dict[str, dict]:
        result = subprocess.run([sys.executable, "-I", "-S", str(HEALTH_SCRIPT), "--json", "--timeout", "5", *args],
                                env=env, capture_output=True, text=True, timeout=120)
        return {entry["service"]: entry for entry in json.loads(result.stdout)["services"]}

    verified = health("--cacert", str(platform.ca))
    assert {name: verified[name]["status"] for name in running} == dict.fromkeys(running, "healthy")
    unverified = health("--cacert", str(tls.ensure_ca(platform.ca.parent.parent / "stranger")))
    assert {name: unverified[name]["status"] for name in running} == dict.fromkeys(running, "unhealthy")
    assert "certificate verify failed" in unverified["iam"]["reason"]
