"""/metrics of all seven services as a scraper reads them: the process's and the build's metrics,
domain gauges that follow the domain, nothing of a tenant's, and a dashboard that queries only
what is exported."""

from __future__ import annotations

import json
import platform as python_platform
import re
import secrets
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from photoncloud.common.testing import start_platform

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "docs" / "grafana" / "photoncloud.json"
SERVICES = ("iam", "chainfire", "flaredb", "creditservice", "prismnet", "plasmavmc", "k8shost")
PROCESS = ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
           "process_open_fds", "process_max_fds", "process_start_time_seconds")


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """All seven, PlasmaVMC on its fake driver (no guest runs: the gauges are what is tested)."""
    running = start_platform(tmp_path_factory.mktemp("metrics"), "chainfire", "flaredb", "creditservice",
                             "prismnet", "plasmavmc", "k8shost",
                             extra_args={"plasmavmc": ("--driver", "fake"),
                                         # a node without heartbeats turns NotReady in seconds, not 40
                                         "k8shost": ("--node-grace-seconds", "2", "--node-monitor-seconds", "0.5")})
    yield running
    running.stop()


def url_of(platform, name: str) -> str:
    return platform.iam.url if name == "iam" else platform.services[name].url


def scrape_text(platform, name: str) -> str:
    """GET /metrics with no token, as Prometheus does."""
    with urllib.request.urlopen(url_of(platform, name) + "/metrics", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()


def scrape(platform, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by (sample name, sorted labels)."""
    samples = {}
    for family in text_string_to_metric_families(scrape_text(platform, name)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    """One sample's value (KeyError when it is not exported)."""
    return samples[(name, tuple(sorted(labels.items())))]


def total(samples, name: str) -> float:
    """The sum of a metric's samples over every label set."""
    return sum(v for (sample, _), v in samples.items() if sample == name)


def ok(platform, method: str, url: str, body, token: str) -> dict:
    status, reply = platform.request(method, url, body, token)
    assert status in (200, 201), reply
    return reply["data"]


def test_every_service_exports_process_and_build_metrics(platform):
    for name in SERVICES:
        samples = scrape(platform, name)
        names = {sample for sample, _ in samples}
        assert set(PROCESS) <= names, (name, set(PROCESS) - names)
        assert value(samples, "process_resident_memory_bytes") > 1_000_000  # a Python process, really measured
        status, health = platform.request("GET", url_of(platform, name) + "/health")
        assert status == 200, health
        build = {labels: v for (sample, labels), v in samples.items() if sample == "photoncloud_build_info"}
        assert build == {(("python_version", python_platform.python_version()), ("service", name),
                          ("version", health["data"]["version"])): 1.0}, name
        assert value(samples, "photoncloud_domain_metrics_up", service=name) == 1.0, name


def test_requests_are_counted_by_service_and_route(platform):
    before = scrape(platform, "prismnet")
    route = {"service": "prismnet", "transport": "rest", "method": "GET", "route": "/health", "code": "OK"}
    count = before.get(("photoncloud_requests_total", tuple(sorted(route.items()))), 0.0)
    platform.request("GET", platform.services["prismnet"].url + "/health")
    after = scrape(platform, "prismnet")
    assert value(after, "photoncloud_requests_total", **route) == count + 1


def test_raft_gauges_of_a_single_member(platform):
    for name in ("chainfire", "flaredb"):
        samples = scrape(platform, name)
        assert value(samples, "photoncloud_raft_role", service=name, role="LEADER") == 1
        assert value(samples, "photoncloud_raft_role", service=name, role="FOLLOWER") == 0
        assert value(samples, "photoncloud_raft_members", service=name) == 1
        assert value(samples, "photoncloud_raft_has_leader", service=name) == 1
        assert value(samples, "photoncloud_raft_term", service=name) >= 1


def test_chainfire_keys_follow_puts_and_deletes(platform):
    url = platform.services["chainfire"].url
    admin = platform.admin_token()
    before = value(scrape(platform, "chainfire"), "photoncloud_chainfire_keys", service="chainfire")
    applied = value(scrape(platform, "chainfire"), "photoncloud_raft_applied_index", service="chainfire")
    for key in ("metrics/a", "metrics/b"):
        ok(platform, "PUT", f"{url}/api/v1/kv/{key}", {"value": "v"}, admin)
    samples = scrape(platform, "chainfire")
    assert value(samples, "photoncloud_chainfire_keys", service="chainfire") == before + 2
    assert value(samples, "photoncloud_raft_applied_index", service="chainfire") >= applied + 2
    assert value(samples, "photoncloud_raft_commit_index", service="chainfire") >= applied + 2
    ok(platform, "DELETE", f"{url}/api/v1/kv/metrics/a", None, admin)
    assert value(scrape(platform, "chainfire"), "photoncloud_chainfire_keys", service="chainfire") == before + 1


def test_flaredb_counts_databases_and_namespaces(platform):
    _, project_id = platform.project(f"metrics-db-{secrets.token_hex(3)}")
    token = platform.project_member(project_id, "admin")
    before = scrape(platform, "flaredb")
    ok(platform, "POST", platform.services["flaredb"].url + "/api/v1/namespaces", {"name": "cache", "mode": "strong"},
       token)
    after = scrape(platform, "flaredb")
    assert value(after, "photoncloud_flaredb_databases", service="flaredb") == value(
        before, "photoncloud_flaredb_databases", service="flaredb") + 1
    assert value(after, "photoncloud_flaredb_namespaces", service="flaredb") == value(
        before, "photoncloud_flaredb_namespaces", service="flaredb") + 1


def test_iam_counts_users_projects_and_tokens_issued(platform):
    before = scrape(platform, "iam")
    issued = value(before, "photoncloud_iam_tokens_issued_total", service="iam", grant_type="password")
    platform.project(f"metrics-iam-{secrets.token_hex(3)}")  # one token issued for it, then the project
    platform.user_with_role("viewer")  # one more token, then the user
    after = scrape(platform, "iam")
    assert value(after, "photoncloud_iam_tokens_issued_total", service="iam", grant_type="password") == issued + 2
    assert value(after, "photoncloud_iam_tokens_issued_total", service="iam", grant_type="refresh_token") == value(
        before, "photoncloud_iam_tokens_issued_total", service="iam", grant_type="refresh_token")
    for name in ("photoncloud_iam_projects", "photoncloud_iam_users"):
        assert value(after, name, service="iam") == value(before, name, service="iam") + 1, name


def test_wallets_vpcs_ports_vms_and_pods_move_the_gauges(platform, tmp_path):
    admin = platform.admin_token()
    org_id, project_id = platform.project(f"metrics-{secrets.token_hex(3)}")
    credit = platform.services["creditservice"].url
    net = platform.services["prismnet"].url
    vmc = platform.services["plasmavmc"].url
    kube = platform.services["k8shost"].url
    before = {name: scrape(platform, name) for name in ("creditservice", "prismnet", "plasmavmc", "k8shost")}

    # A wallet with 10000 credits: one more ACTIVE wallet, the balance total up by as much.
    ok(platform, "POST", f"{credit}/api/v1/wallets", {"project_id": project_id, "initial_balance": 10000}, admin)
    samples = scrape(platform, "creditservice")
    old = before["creditservice"]
    assert value(samples, "photoncloud_creditservice_wallets", service="creditservice", status="ACTIVE") == value(
        old, "photoncloud_creditservice_wallets", service="creditservice", status="ACTIVE") + 1
    assert value(samples, "photoncloud_creditservice_balance_credits", service="creditservice") == value(
        old, "photoncloud_creditservice_balance_credits", service="creditservice") + 10000
    assert value(samples, "photoncloud_creditservice_transactions_total", service="creditservice") > value(
        old, "photoncloud_creditservice_transactions_total", service="creditservice")

    # A VPC, a /28 subnet (13 addresses to give: 16 less network, broadcast and gateway), a port.
    vpc = ok(platform, "POST", f"{net}/api/v1/vpcs", {"name": "m", "project_id": project_id,
                                                       "cidr_block": "10.9.0.0/16"}, admin)
    subnet = ok(platform, "POST", f"{net}/api/v1/subnets", {"vpc_id": vpc["id"], "name": "m",
                                                             "cidr_block": "10.9.1.0/28"}, admin)
    ok(platform, "POST", f"{net}/api/v1/ports", {"subnet_id": subnet["id"], "name": "p"}, admin)
    samples, old = scrape(platform, "prismnet"), before["prismnet"]
    for name, more in (("photoncloud_prismnet_vpcs", 1), ("photoncloud_prismnet_subnets", 1),
                       ("photoncloud_prismnet_ports", 1)):
        assert value(samples, name, service="prismnet") == value(old, name, service="prismnet") + more, name
    v4 = {"service": "prismnet", "ip_version": "4"}
    assert value(samples, "photoncloud_prismnet_addresses_capacity", **v4) == value(
        old, "photoncloud_prismnet_addresses_capacity", **v4) + 13
    assert value(samples, "photoncloud_prismnet_addresses_used", **v4) == value(
        old, "photoncloud_prismnet_addresses_used", **v4) + 1
    assert value(samples, "photoncloud_prismnet_addresses_free", **v4) == value(
        old, "photoncloud_prismnet_addresses_free", **v4) + 12

    # A VM (created STOPPED, with a port of the subnet): one more STOPPED VM, its vCPU and memory.
    ok(platform, "POST", f"{vmc}/api/v1/flavors", {"name": "m.tiny", "vcpus": 1, "memory_mib": 128, "disk_gib": 1,
                                                    "price_per_hour": 1}, admin)
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd"
    kernel.write_bytes(b"kernel")
    initrd.write_bytes(b"initrd")
    image = ok(platform, "POST", f"{vmc}/api/v1/images", {"name": "m", "kernel_path": str(kernel),
                                                          "initrd_path": str(initrd)}, admin)
    vm = ok(platform, "POST", f"{vmc}/api/v1/vms", {"name": "m", "project_id": project_id, "flavor_id": "m.tiny",
                                                     "image_id": image["id"], "subnet_ids": [subnet["id"]]}, admin)
    assert vm["state"] == "STOPPED"
    samples, old = scrape(platform, "plasmavmc"), before["plasmavmc"]
    stopped = {"service": "plasmavmc", "state": "STOPPED"}
    assert value(samples, "photoncloud_plasmavmc_vms", **stopped) == value(old, "photoncloud_plasmavmc_vms",
                                                                            **stopped) + 1
    assert value(samples, "photoncloud_plasmavmc_vcpus", **stopped) == value(old, "photoncloud_plasmavmc_vcpus",
                                                                              **stopped) + 1
    assert value(samples, "photoncloud_plasmavmc_memory_bytes", **stopped) == value(
        old, "photoncloud_plasmavmc_memory_bytes", **stopped) + 128 * 2**20
    assert value(samples, "photoncloud_plasmavmc_vms", service="plasmavmc", state="RUNNING") == value(
        old, "photoncloud_plasmavmc_vms", service="plasmavmc", state="RUNNING")
    # Its reservation is open on the wallet.
    assert value(scrape(platform, "creditservice"), "photoncloud_creditservice_reservations_open",
                 service="creditservice") == value(before["creditservice"],
                                                   "photoncloud_creditservice_reservations_open",
                                                   service="creditservice") + 1

    # A pod with no node to run it: one more Pending pod, and a namespace more.
    namespace = f"m{secrets.token_hex(3)}"
    ok(platform, "POST", f"{kube}/api/v1/namespaces", {"name": namespace, "project_id": project_id}, admin)
    ok(platform, "POST", f"{kube}/api/v1/pods", {"namespace": namespace, "name": "p", "spec": {
        "containers": [{"name": "main", "command": ["sleep", "60"]}]}}, admin)
    samples, old = scrape(platform, "k8shost"), before["k8shost"]
    pending = {"service": "k8shost", "phase": "Pending"}
    assert value(samples, "photoncloud_k8shost_pods", **pending) == value(old, "photoncloud_k8shost_pods",
                                                                          **pending) + 1
    for kind in ("namespaces", "pods"):
        labels = {"service": "k8shost", "kind": kind}
        assert value(samples, "photoncloud_k8shost_objects", **labels) == value(
            old, "photoncloud_k8shost_objects", **labels) + 1
    assert total(samples, "photoncloud_k8shost_nodes") == total(old, "photoncloud_k8shost_nodes")

    # Deleting the pod takes it out of the gauge again.
    ok(platform, "DELETE", f"{kube}/api/v1/pods/{namespace}/p", None, admin)
    deadline = time.monotonic() + 15
    while total(scrape(platform, "k8shost"), "photoncloud_k8shost_pods") != total(old, "photoncloud_k8shost_pods"):
        assert time.monotonic() < deadline, "the deleted pod stayed in photoncloud_k8shost_pods"
        time.sleep(0.2)


def test_nodes_are_counted_by_readiness_as_it_changes(platform):
    kube = platform.services["k8shost"].url
    before = scrape(platform, "k8shost")
    ready = {"service": "k8shost", "ready": "True"}
    unknown = {"service": "k8shost", "ready": "Unknown"}
    ok(platform, "POST", f"{kube}/api/v1/nodes", {"name": f"edge-{secrets.token_hex(3)}",
                                                   "capacity": {"cpu": "1", "memory": "1Gi", "pods": "1"}},
       platform.admin_token())
    samples = scrape(platform, "k8shost")
    assert value(samples, "photoncloud_k8shost_nodes", **ready) == value(before, "photoncloud_k8shost_nodes",
                                                                         **ready) + 1
    # No agent sends its heartbeats: past the grace period its readiness is Unknown.
    deadline = time.monotonic() + 20
    while value(scrape(platform, "k8shost"), "photoncloud_k8shost_nodes", **unknown) != value(
            before, "photoncloud_k8shost_nodes", **unknown) + 1:
        assert time.monotonic() < deadline, "the silent node's readiness never turned Unknown"
        time.sleep(0.3)
    assert value(scrape(platform, "k8shost"), "photoncloud_k8shost_nodes", **ready) == value(
        before, "photoncloud_k8shost_nodes", **ready)


def test_metrics_are_public_and_show_nothing_of_a_tenant(platform):
    """A tenant's identifiers, names, words and secrets never reach the public /metrics, and a tenant
    cannot add series to it by what it names things."""
    org_id, project_id = platform.project(f"tenant-{secrets.token_hex(4)}")
    tenant = platform.project_member(project_id, "admin")
    net = platform.services["prismnet"].url
    vpc = ok(platform, "POST", f"{net}/api/v1/vpcs", {"name": "leaky-vpc-name", "project_id": project_id,
                                                       "cidr_block": "10.8.0.0/16"}, tenant)
    subnet = ok(platform, "POST", f"{net}/api/v1/subnets", {"vpc_id": vpc["id"], "name": "leaky-subnet",
                                                             "cidr_block": "10.8.1.0/24"}, tenant)
    before = scrape(platform, "prismnet")
    port = ok(platform, "POST", f"{net}/api/v1/ports", {
        "subnet_id": subnet["id"], "name": "leaky-port", "device_id": "leakydevice1", "device_type": "TENANTWORD"},
        tenant)
    after = scrape(platform, "prismnet")
    other = {"service": "prismnet", "device_type": "OTHER"}
    assert value(after, "photoncloud_prismnet_ports_by_device", **other) == value(
        before, "photoncloud_prismnet_ports_by_device", **other) + 1
    assert {labels for (name, labels) in after if name == "photoncloud_prismnet_ports_by_device"} == {
        labels for (name, labels) in before if name == "photoncloud_prismnet_ports_by_device"}
    tenant_words = {org_id, project_id, vpc["id"], subnet["id"], port["id"], port["mac_address"], "leaky",
                    "TENANTWORD", "leakydevice1"}
    for name in SERVICES:
        text = scrape_text(platform, name)  # no token: the route is public
        for word in tenant_words | platform.secrets | {tenant}:
            assert word.lower() not in text.lower(), (name, word)


# PromQL's words, which are not metric names.
PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "avg", "max", "min", "count", "by", "without", "on", "ignoring",
    "group_left", "group_right", "histogram_quantile", "topk", "bottomk", "and", "or", "unless", "offset",
    "time", "clamp_min", "clamp_max", "delta", "deriv", "abs", "label_replace", "vector", "scalar", "bool",
}


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression queries: what remains once strings, label matchers,
    ranges, grouping clauses, function calls and numbers are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)  # strings (inside matchers, label_replace)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\w+", " ", text)  # dashboard variables ($__rate_interval)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end():].lstrip()
        if word in PROMQL_WORDS or following.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]?", word) or word in ("e", "Inf", "NaN"):
            continue
        names.add(word)
    return names


def test_metric_names_are_read_from_promql():
    assert metric_names('sum by (service, route) (rate(photoncloud_requests_total{code=~"5.."}[5m]))') == {
        "photoncloud_requests_total"}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(x_bucket{service=\"$service\"}[$__rate_interval])))"
                        " / on (service) group_left y") == {"x_bucket", "y"}


def dashboard_expressions() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    expressions = []

    def walk(panels):
        for panel in panels:
            expressions.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
            walk(panel.get("panels", []))

    walk(document["panels"])
    for variable in document.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        if isinstance(query, str) and query.startswith("label_values("):
            expressions.append(query[len("label_values("):].split(",")[0])
    return expressions


def test_the_dashboard_queries_only_what_the_services_export(platform):
    # Sample names, and family names too: a family may have no sample yet (a follower's lag on a
    # cluster of one) and is still exported.
    exported = set()
    for name in SERVICES:
        for family in text_string_to_metric_families(scrape_text(platform, name)):
            exported |= {family.name, *(sample.name for sample in family.samples)}
    expressions = dashboard_expressions()
    queried = set().union(*(metric_names(expression) for expression in expressions))
    assert queried, "the dashboard queries nothing"
    assert all(metric_names(expression) for expression in expressions), "an expression queries no metric"
    assert queried <= exported, sorted(queried - exported)
    # Every service's domain has a panel: each one's own metrics are queried.
    for name in ("chainfire", "flaredb", "iam", "plasmavmc", "k8shost", "creditservice", "prismnet"):
        assert any(metric.startswith(f"photoncloud_{name}_") for metric in queried), name
    assert {"photoncloud_raft_role", "photoncloud_raft_follower_lag_entries", "process_cpu_seconds_total",
            "process_resident_memory_bytes", "photoncloud_request_duration_seconds_bucket",
            "photoncloud_requests_total"} <= queried
